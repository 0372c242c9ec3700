/* plexcache-r: the Dashboard's Get started panel (the set-up checklist from `setup --check-plex`) and the
 * preview of a run (`plan`). Loaded after plexcache-r.js, whose helpers it uses (PCR.h builds every piece of
 * markup from elements and text). A fresh install sees the checklist; once a run has happened, a step that
 * breaks comes back as a warning with its button. Run now stays disabled, with the reason, until runs are safe. */
(function () {
  'use strict';
  var PCR = window.PCR;
  if (!PCR || PCR.start) return;
  var h = PCR.h, fill = PCR.fill, icon = PCR.icon, message = PCR.message;
  var STATE_ICON = { done: ['check-circle', 'green-text'], todo: ['circle-o', 'grey-text'], broken: ['exclamation-triangle', 'orange-text'] };

  function $(id) { return document.getElementById(id); }
  function button(id, label, then, attrs) {
    var b = h('input', Object.assign({ type: 'button', id: id, value: label }, attrs || {}));
    b.addEventListener('click', then);
    return b;
  }
  function link(label, then) {
    var a = h('a', { href: '#', class: 'pcr-link' }, label);
    a.addEventListener('click', function (e) { e.preventDefault(); then(); });
    return a;
  }
  var toField = PCR.toField;

  // --- the checklist ----------------------------------------------------------------------------------

  /** Ask again; after a change made here (signed in, saved, checked again) the status's warnings are read again too. */
  function refresh(changed) {
    return PCR.get('setup').then(function (doc) { render(doc); if (changed === true) PCR.pollStatus(); return doc; });
  }
  function changed() { return refresh(true); }

  function render(doc) {
    renderPlex(doc);
    $('pcr-dashboard').classList.toggle('pcr-setup-known', !!doc.ok);   // its steps replace the status's Mover Tuning line
    if (!doc.ok) { block(null); return; }   // the CLI itself refuses an unsafe run; say nothing more here
    block(doc.ready ? null : 'Runs wait for set-up: ' + doc.missing.join('; ') + '.');
    var panel = $('pcr-start'), first = !doc.first_run_done;
    panel.hidden = !first;
    if (first) {
      var done = doc.steps.filter(function (s) { return s.state === 'done'; }).length;
      $('pcr-start-count').textContent = done + ' of ' + doc.steps.length + ' done';
      fill($('pcr-steps'), doc.steps.map(function (s) { return stepItem(s, doc); }));
    }
    // after the first run, only what broke is shown: as a warning, with the button that mends it
    fill($('pcr-setup-warnings'), first ? [] : doc.steps.filter(function (s) { return s.state !== 'done'; }).map(function (s) {
      return h('div', { class: 'pcr-warning pcr-step', dataset: { code: 'setup_' + s.id, step: s.id, state: s.state } },
        icon('exclamation-triangle'), ' ', h('b', null, s.title + ': '), s.detail, ' ', actions(s, doc));
    }));
  }

  function block(reason) {
    PCR.runBlocked = reason;
    var run = $('pcr-run');
    if (reason) run.disabled = true;
    else if (run.disabled && $('pcr-banner').hidden) run.disabled = false;
    run.title = reason || '';
    $('pcr-run-why').textContent = reason || '';
  }

  function renderPlex(doc) {
    var el = $('pcr-plex'), step = doc.ok && doc.steps.filter(function (s) { return s.id === 'plex'; })[0];
    if (doc.ok && doc.plex && doc.plex.server) {
      var p = doc.plex;
      fill(el, [h('span', { class: 'green-text' }, icon('check-circle'), ' ', p.server.name), ' ',
        h('span', { class: 'grey-text' }, 'Plex ' + (p.server.version || '') + ', signed in as ' + p.owner + ', ' + p.libraries + ' libraries')]);
    } else if (step && step.state === 'todo' && /^not signed in/.test(step.detail)) {
      fill(el, h('span', { class: 'grey-text' }, icon('circle-o'), ' Not signed in yet (see Get started)'));
    } else {
      fill(el, h('span', { class: 'red-text' }, icon('times-circle'), ' ', step ? step.detail : PCR.errorText(doc)));
    }
  }

  function stepItem(s, doc) {
    var mark = STATE_ICON[s.state] || STATE_ICON.todo;
    return h('li', { class: 'pcr-step', dataset: { step: s.id, state: s.state } },
      h('span', { class: 'pcr-step-mark ' + mark[1] }, icon(mark[0])),
      h('div', { class: 'pcr-step-body' },
        h('b', null, s.title), s.required ? h('span', { class: 'grey-text pcr-small' }, ' required') : null,
        h('div', { class: 'pcr-small' }, s.detail), actions(s, doc)));
  }

  /** What mends or changes a step: a button where the page can do it, else a link to the field. */
  function actions(s, doc) {
    var box = h('div', { class: 'pcr-step-actions' });
    var parts = {
      plex: function () {
        return s.state === 'done' ? [link('Sign in again or paste a token', toField('[data-key="plex.token"]'))] :
          [button('pcr-start-signin', 'Sign in to Plex', function () { signIn(box); }), ' ',
            link('or paste a token in Settings', toField('[data-key="plex.token"]'))];
      },
      libraries: function () { return [link('Choose in Settings', toField('#pcr-libraries'))]; },
      mappings: function () { return mappingActions(doc); },
      users: function () { return [link('Change in Settings', toField('[data-key="users.owner.on_deck"]'))]; },
      mover_tuning: function () { return s.state === 'done' ? [] : moverTuning(doc); },
      first_run: function () {
        return s.state === 'done' ? [] : [button('pcr-start-preview', 'Preview the first run', function () { PCR.preview(); },
          { disabled: !doc.ready, title: doc.ready ? '' : 'the required steps come first' })];
      }
    };
    return fill(box, (parts[s.id] || function () { return []; })());
  }

  function mappingActions(doc) {
    var out = [], sug = doc.suggested_mappings || [];
    if (sug.length) {
      out.push(h('ul', { class: 'pcr-suggest' }, sug.map(function (m) {
        return h('li', null, h('code', null, m.plex), ' → ', h('code', null, m.share),
          h('span', { class: 'grey-text' }, ' (' + m.library + ')'), m.note ? h('span', { class: 'orange-text' }, ' ' + m.note) : null);
      })));
      var msg = h('span', { class: 'pcr-msg' });
      out.push(button('pcr-start-mappings', sug.length > 1 ? 'Use these ' + sug.length + ' mappings' : 'Use this mapping',
        function () { useMappings(sug, msg); }), ' ', msg, ' ');
    }
    if ((doc.unmatched_folders || []).length) {
      out.push(h('div', { class: 'pcr-small orange-text' }, 'No share matches ' + doc.unmatched_folders.join(', ') + ': map it by hand. '));
    }
    out.push(link(sug.length ? 'or edit them in Settings' : 'Edit in Settings', toField('#pcr-mappings')));
    return out;
  }

  function useMappings(suggested, msg) {
    message(msg, 'Saving...', 'busy');
    PCR.get('config').then(function (doc) {
      if (!doc.ok) { message(msg, PCR.errorText(doc), 'err'); return null; }
      var mappings = (doc.settings.plex.path_mappings || []).concat(suggested.map(function (m) {
        return { plex: m.plex, share: m.share, cacheable: true };
      }));
      return PCR.post('config_set', { settings: { plex: { path_mappings: mappings } } });
    }).then(function (r) {
      if (!r) return;
      if (!r.ok) { message(msg, PCR.errorText(r), 'err'); return; }
      message(msg, 'Saved.', 'ok');
      changed();
    });
  }

  function moverTuning(doc) {
    var path = h('input', { type: 'text', readonly: true, class: 'pcr-copy', value: doc.ignore_list, id: 'pcr-start-ignore-list' });
    path.addEventListener('focus', function () { path.select(); });
    var msg = h('span', { class: 'pcr-msg' });
    return [
      h('div', { class: 'pcr-small' }, 'With CA Mover Tuning installed (from Apps), open ',
        h('a', { href: '/Settings/Scheduler', target: '_blank' }, 'Settings → Scheduler → Mover Tuning'),
        ', set ', h('b', null, 'Ignore files listed inside of a text file'), ' to ', h('b', null, 'Yes'),
        ' and paste this path into the file field, then Apply:'),
      h('div', { class: 'pcr-line' }, path, ' ',
        button('pcr-start-copy', 'Copy', function () { copy(path, msg); }), ' ',
        button('pcr-start-recheck', 'Check again', function () { message(msg, 'Checking...', 'busy'); changed(); }), ' ', msg),
      link('The mover never touches these shares: run without Mover Tuning', waive)];
  }

  function copy(input, msg) {
    input.select();
    var done = function () { message(msg, 'Copied.', 'ok'); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand('copy'); done(); });
    else { document.execCommand('copy'); done(); }
  }

  function waive() {
    PCR.confirmAsk('Run without CA Mover Tuning?', 'The stock mover moves every file on the pool back to the array, cached ' +
      'files included. Choose this only when the mover never runs or is kept off these shares another way.', function () {
      PCR.post('config_set', { settings: { schedule: { mover_tuning_waived: true } } }).then(changed);
    });
  }

  /** PIN sign-in, inline: the code, the plex.tv/link address, and polling until the code was entered. */
  function signIn(box) {
    var state = h('span', { class: 'pcr-msg' }), code = h('b', { class: 'pcr-pin-code', id: 'pcr-start-code' }, '....');
    var where = h('a', { href: 'https://plex.tv/link', target: '_blank', rel: 'noopener' }, 'plex.tv/link');
    fill(box, h('div', { class: 'pcr-pin-box' }, 'Open ', where, ' and enter the code ', code, ' ', state));
    message(state, 'asking plex.tv for a code...', 'busy');
    PCR.post('plex_login').then(function (r) {
      if (!r.ok) { message(state, PCR.errorText(r), 'err'); return; }
      code.textContent = r.code; where.href = r.link; where.textContent = r.link.replace(/^https?:\/\//, '');
      message(state, 'waiting for the code to be entered...', 'busy');
      var until = r.expires_at ? r.expires_at * 1000 : Date.now() + 300000;
      (function poll() {
        PCR.post('plex_login_poll').then(function (p) {
          if (p.ok && p.signed_in) { message(state, 'Signed in.', 'ok'); changed(); }
          else if (!p.ok || Date.now() > until) message(state, 'Not signed in: ' + (p.ok ? 'the code expired; press Sign in again' : PCR.errorText(p)), 'err');
          else setTimeout(poll, 2000);
        });
      })();
    });
  }

  // --- the preview --------------------------------------------------------------------------------------

  var ACTION_WORDS = { cache: 'Cache', move_back: 'Move back' };

  PCR.preview = function () {
    var sec = $('pcr-preview'), body = $('pcr-preview-body');
    sec.hidden = false;
    fill(body, h('p', { class: 'grey-text' }, icon('circle-o-notch', 'fa-spin'), ' Asking Plex what each user is about to watch...'));
    sec.scrollIntoView({ block: 'start' });
    PCR.get('plan').then(function (doc) { renderPreview(body, doc); });
  };

  function renderPreview(body, doc) {
    if (!doc.ok) { fill(body, h('p', { class: 'red-text' }, 'The preview failed: ' + PCR.errorText(doc))); return; }
    var moves = doc.actions.filter(function (a) { return ACTION_WORDS[a.action]; });
    var out = leftOut(doc), sum = doc.summary || {}, sp = doc.space || {};
    fill(body, [
      h('p', { id: 'pcr-preview-summary' }, h('b', null, (sum.cache || 0) + ' to cache'), ' (' + PCR.bytes(sum.bytes_to_cache) + '), ',
        h('b', null, (sum.move_back || 0) + ' to move back'), ' (' + PCR.bytes(sum.bytes_to_move_back) + '), ',
        (sum.keep || 0) + ' stay, ' + out.length + ' left out. ',
        sp.pool ? h('span', { id: 'pcr-preview-space' }, 'Pool ' + sp.pool + ': ' + PCR.bytes(sp.free_before) + ' free now, ' +
          PCR.bytes(sp.free_after) + ' after this run' + (sp.floor_bytes ? ' (' + PCR.bytes(sp.floor_bytes) + ' always kept free)' : '') + '.') : null),
      moves.length ? table('pcr-preview-moves', ['', 'File', 'Size', 'Disk', 'Users', 'Why'], moves.map(moveRow)) :
        h('p', { class: 'grey-text' }, 'Nothing to move now.'),
      out.length ? [h('h4', null, 'Wanted, but left out'), table('pcr-preview-left', ['File', 'Size', 'Why'], out.map(function (o) {
        return h('tr', null, h('td', { title: o.path || '' }, o.title), h('td', null, o.size ? PCR.bytes(o.size) : '-'), h('td', null, o.why));
      }))] : null,
      h('div', { class: 'pcr-actions' }, sum.cache || sum.move_back ? button('pcr-preview-run', 'Start this run', startFromPreview,
        { disabled: !!PCR.runBlocked, title: PCR.runBlocked || '' }) : null, ' ',
        h('span', { class: 'grey-text pcr-small' }, PCR.runBlocked || 'Runs in the background; the banner shows its progress.'))]);
  }

  function moveRow(a) {
    var users = a.users || (a.reasons || []).map(function (r) { return r.user; });
    return h('tr', { dataset: { path: a.path, action: a.action } },
      h('td', null, ACTION_WORDS[a.action]), h('td', { title: a.path }, a.title || a.path.split('/').pop()),
      h('td', null, PCR.bytes(a.size)), h('td', null, a.disk || '-'), h('td', null, users.filter(Boolean).join(', ') || '-'),
      h('td', null, a.why || PCR.reasonText(a)));
  }

  /** Every wanted file a run would not cache, with why: skipped by the plan, unmapped, filtered, unknown users. */
  function leftOut(doc) {
    var out = doc.actions.filter(function (a) { return a.action === 'skip'; }).map(function (a) {
      return { title: a.title || a.path.split('/').pop(), path: a.path, size: a.size, why: a.why || 'skipped' };
    });
    (doc.unmapped || []).forEach(function (p) { out.push({ title: p.split('/').pop(), path: p, why: 'no path mapping covers ' + p }); });
    (doc.filtered || []).forEach(function (f) { out.push({ title: f.title, why: f.why }); });
    (doc.unknown || []).forEach(function (u) {
      out.push({ title: 'Demand of ' + (u.scope || 'a user'), why: 'Plex could not be read (' + (u.error || u.source || '') + '); nothing of theirs is moved back' });
    });
    return out;
  }

  function table(id, heads, rows) {
    return h('table', { class: 'unraid pcr-table', id: id }, h('thead', null, h('tr', null, heads.map(function (t) { return h('td', null, t); }))),
      h('tbody', null, rows));
  }

  function startFromPreview() {
    this.disabled = true;
    $('pcr-preview').hidden = true;
    PCR.startRun(false);
  }
  PCR.afterRun = function () { refresh(); };   // a finished run may complete the checklist

  PCR.start = function () {
    $('pcr-preview-close').addEventListener('click', function () { $('pcr-preview').hidden = true; });
    refresh();
  };
})();
