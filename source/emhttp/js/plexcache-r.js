/* plexcache-r web UI: one script for every tab of Settings → User Utilities → PlexCache-R.
 * Talks only to include/exec.php: GET reads, POST (with Unraid's csrf_token) changes. No framework:
 * Unraid pages carry jQuery, but nothing here needs it. */
(function () {
  'use strict';
  if (window.PCR) return;
  var PCR = window.PCR = {};
  var ENDPOINT = '/plugins/plexcache-r/include/exec.php';
  // The schema and the words for the backend's own terms (`plexcache-r config schema`), put in the page by
  // PHP from the copy shipped beside it: exit codes, reasons, finding kinds, fixes, levels, every setting.
  var SCHEMA = window.PCR_SCHEMA || { keys: {}, vocabulary: {} };
  var VOCAB = SCHEMA.vocabulary || {};
  var EXIT_WORDS = VOCAB.exit_codes || {}, REASONS = VOCAB.reasons || {};
  PCR.schema = SCHEMA;
  /** The words for a backend term of one table (reasons, finding_kinds, fixes, ...); the term itself, made
   * readable, when the table lacks it. */
  PCR.words = function (table, key) {
    var w = (VOCAB[table] || {})[key];
    return w != null ? w : String(key).replace(/[_-]/g, ' ');
  };

  // --- plumbing -------------------------------------------------------------------------------------

  function $(id) { return document.getElementById(id); }

  /** The one way this script builds markup: h('td', {class: 'x', title: t}, 'text', node, [more]).
   * Children are nodes or text (never parsed as HTML); null, false and undefined are skipped. Attributes
   * are set one by one; event handlers are added with addEventListener, never as on* attributes. */
  function build(el, attrs, kids) {
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (/^on/i.test(k)) throw new Error('h(): set ' + k + ' with addEventListener');
      if (v == null || v === false) return;
      if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'checked' || k === 'value') el[k] = v;
      else el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
    });
    return fill(el, kids, true);
  }
  function h(tag, attrs) { return build(document.createElement(tag), attrs, [].slice.call(arguments, 2)); }
  function svg(tag, attrs) {
    return build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, [].slice.call(arguments, 2));
  }
  /** Replace what el holds with kids (nodes, text, or lists of them); keep=true appends instead. */
  function fill(el, kids, keep) {
    if (!keep) el.textContent = '';
    (Array.isArray(kids) ? kids : [kids]).forEach(function add(k) {
      if (k == null || k === false) return;
      if (Array.isArray(k)) k.forEach(add);
      else el.appendChild(typeof k === 'object' ? k : document.createTextNode(String(k)));
    });
    return el;
  }
  function icon(name, cls) { return h('i', { class: 'fa fa-' + name + (cls ? ' ' + cls : '') }); }

  /** A CSS attribute selector for any value, quotes and all. */
  function attrIs(name, value) { return '[' + name + '="' + String(value).replace(/["\\]/g, '\\$&') + '"]'; }

  // What Unraid's CSRF check (local_prepend.php) answers when the page's token is no longer the server's:
  // 7.4 and later a 403 naming csrf_token, earlier releases an empty 200.
  var STALE_TOKEN = 'Unraid refused the request: this page\'s security token is out of date (was the server ' +
    'restarted?). Reload the page and try again.';
  function answer(post) {
    return function (r) {
      return r.text().then(function (text) {
        var doc = null;
        try { doc = JSON.parse(text); } catch (e) { /* not JSON: described below */ }
        if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
          if (r.status === 403 && /csrf_token/.test(doc.error)) return { ok: false, error: STALE_TOKEN };
          if (doc.ok === undefined) doc.ok = r.ok;
          return doc;
        }
        if (post && r.status === 200 && text === '') return { ok: false, error: STALE_TOKEN };
        return { ok: false, error: 'the server answered HTTP ' + r.status + (text ? ': ' + text.slice(0, 200) : ' with nothing') };
      });
    };
  }
  function failed(e) { return { ok: false, error: 'cannot reach the server (' + e + ')' }; }
  PCR.get = function (action, params) {
    var q = new URLSearchParams(Object.assign({ action: action }, params || {}));
    return fetch(ENDPOINT + '?' + q, { credentials: 'same-origin', cache: 'no-store' }).then(answer(false), failed);
  };
  /** A change: Unraid's csrf_token in the body (every release reads it there); lists and mappings go as one
   * JSON field each, so a selection of any size is one field PHP cannot cut short. */
  PCR.post = function (action, data) {
    var body = new URLSearchParams();
    body.append('action', action);
    body.append('csrf_token', window.csrf_token || '');
    Object.keys(data || {}).forEach(function (k) {
      var v = data[k];
      body.append(k, v !== null && typeof v === 'object' ? JSON.stringify(v) : v);
    });
    return fetch(ENDPOINT, { method: 'POST', credentials: 'same-origin', body: body }).then(answer(true), failed);
  };
  /** A bulk action on files: the paths as one JSON list, and how many, so the endpoint can tell a cut list. */
  PCR.postPaths = function (action, paths) { return PCR.post(action, { paths: paths, count: paths.length }); };
  PCR.bytes = function (n) {
    if (n == null || isNaN(n)) return '-';
    var u = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'], i = 0, v = Number(n);
    // decimal, as Unraid's Main tab and the CLI (words.human_bytes) show sizes: 1 GB = 10^9 bytes
    while (Math.abs(v) >= 1000 && i < u.length - 1) { v /= 1000; i++; }
    return (i ? v.toFixed(v < 10 ? 2 : 1) : v.toFixed(0)) + ' ' + u[i];
  };
  PCR.ago = function (t) {
    if (!t) return 'never';
    var d = Math.max(0, Date.now() / 1000 - t);
    if (d < 60) return 'just now';
    if (d < 3600) return Math.round(d / 60) + ' min ago';
    if (d < 86400) return Math.round(d / 3600) + ' h ago';
    return Math.round(d / 86400) + ' d ago';
  };
  PCR.when = function (t) { return t ? new Date(t * 1000).toLocaleString() : '-'; };
  PCR.duration = function (s) {
    if (s == null || !isFinite(s)) return '-';
    s = Math.round(s);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
  };
  function message(el, text, kind) {
    if (!el) return;
    el.textContent = text || '';
    el.className = el.className.replace(/\bpcr-(ok|err|busy)\b/g, '').trim() + (kind ? ' pcr-' + kind : '');
  }
  function errorText(doc) {
    return PCR.say((doc && doc.error) || 'unknown error');
  }
  // The CLI speaks to people at a shell: its messages name setting keys and commands. On the pages the
  // same words name the field (its label on the Settings tab) or the button that does it.
  var COMMAND_WORDS = [
    [/plex login/, 'Sign in with Plex on the Settings tab'], [/^recover/, 'Run now'],
    [/^audit/, 'Check now on the Maintenance tab'], [/^list/, 'the Cached files tab'], [/^stop/, 'Stop'],
    [/^run/, 'Run now'], [/^config/, 'the Settings tab'], [/^schedule/, 'Apply on the Settings tab']];
  function fieldLabel(key) {
    var entry = SCHEMA.keys[key.replace(/\[\d+\]/g, '[]')] || SCHEMA.keys[key.replace(/\[\d+\].*$/, '')];
    return entry ? '"' + entry.label + '"' : null;
  }
  PCR.say = function (text) {
    text = String(text).replace(/(?:(?:run|start|see|use) )?`plexcache-r ([^`]*)`/g, function (all, cmd) {
      var hit = COMMAND_WORDS.filter(function (c) { return c[0].test(cmd); })[0];
      return 'use ' + (hit ? hit[1] : 'the plugin\'s pages');
    });
    text = text.replace(/\b(plex|users|demand|cache|schedule|notify|live|paths)\.[a-z_]+(?:\[\d+\](?:\.[a-z_]+)?)?/g,
      function (key) { return fieldLabel(key) || key; });
    return text.replace(/\(([^()]+)\) \(\1\)/g, '($1)');
  };
  /** A detached job's end as one sentence: "Run finished: ...", "Dry run stopped on request.", "Run not
   * started: the Unraid mover is running." */
  PCR.jobSentence = function (info, what) {
    var code = info.exit_code, summary = jobSummary(info).replace(/^dry run:?\s*/i, '');
    var how = code === 0 || code === 1 ? ' finished: ' : code === 5 ? ' ' : code === 3 ? ' could not read Plex: ' : ' not started: ';
    if (code === 3 && /^Plex could not be read/i.test(summary)) how = ' finished: ';
    return what + how + summary.charAt(0).toLowerCase() + summary.slice(1) + (/[.!?]$/.test(summary) ? '' : '.');
  };
  function confirmAsk(title, text, then) {
    if (typeof window.swal === 'function') {
      window.swal({ title: title, text: text, type: 'warning', showCancelButton: true, confirmButtonText: 'Proceed' },
        function (ok) { if (ok) then(); });
    } else if (window.confirm(title + '\n\n' + text)) then();
  }
  /** Run init once, the first time the element is on screen (its tab is chosen). */
  function whenShown(el, init) {
    if (!el) return;
    if (!('IntersectionObserver' in window)) { init(); return; }
    var io = new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) { io.disconnect(); init(); }
    });
    io.observe(el);
  }
  function visible(el) { return !!el && el.offsetParent !== null && !document.hidden; }
  function reasonKey(f) {
    // a pinned title's files are pinned whoever else wants them (a pin outranks every other reason)
    if (f.pinned || (f.reasons || []).some(function (r) { return r.source === 'pinned'; })) return 'pinned';
    return (f.reasons && f.reasons[0] && f.reasons[0].source) || 'retention';
  }
  /** Why a file is cached; a pinned one says so first and still tells why it was cached. */
  function reasonText(f) {
    var r = f.reasons || [];
    var why = !r.length ? (f.pinned ? '' : PCR.words('reasons', 'retention')) :
      (r[0].detail || PCR.words('reasons', r[0].source)) + (r.length > 1 ? ' +' + (r.length - 1) : '');
    return f.pinned ? PCR.words('reasons', 'pinned') + (why ? ' - ' + why : '') : why;
  }
  /** Text as search compares it: lower case, accents off ("Amélie" is found by "amelie"). */
  function folded(text) {
    return String(text).toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '');
  }

  // --- shared data: the managed files, fetched once and refreshed on demand ----------------------------

  var filesPromise = null, filesListeners = [];
  PCR.files = function (refresh) {
    if (!filesPromise || refresh) {
      filesPromise = PCR.get('list').then(function (doc) {
        if (doc.ok) {
          (doc.files || []).forEach(function (f, i) {
            f._i = i; f._reason = reasonKey(f); f._reasonText = reasonText(f);
            f._users = (f.users || []).join(', ');
            f._hay = folded([f.title, f.path, f._users, f._reasonText, f.disk, f.library].join('\u0001'));
          });
        }
        return doc;
      });
      if (refresh) filesPromise.then(function (doc) { filesListeners.forEach(function (fn) { fn(doc); }); });
    }
    return filesPromise;
  };
  function onFiles(fn) { filesListeners.push(fn); }

  // --- jobs: a detached CLI run the page follows until it ends -----------------------------------------

  PCR.followJob = function (name, onDone, onTick) {
    var tries = 0;
    (function poll() {
      PCR.get('job', { name: name }).then(function (info) {
        tries++;
        if (onTick) onTick(info);
        if (info.ok && (info.running || (info.exit_code == null && tries < 5))) setTimeout(poll, 1000);
        else onDone(info);
      });
    })();
  };
  function jobSummary(info) {
    var r = info.result || {}, code = info.exit_code;
    if (code === 5) return EXIT_WORDS[5];   // its stderr holds whatever the run warned about first
    if (info.error && code) return PCR.say(info.error);
    if (r.message) return PCR.say(r.message);
    return EXIT_WORDS[code] || ('ended with exit code ' + code);
  }

  // --- Dashboard ------------------------------------------------------------------------------------

  // The full status starts plexcache-r; while something runs, the quick polls in between read only the
  // run's progress file (the `progress` action, PHP alone), and a change of state brings a full one at once.
  var FULL_EVERY = 10000, statusTimer = null, fastUntil = 0, lastState = null, lastFull = 0;
  function pollStatus() {
    clearTimeout(statusTimer);
    var full = lastState === null || Date.now() - lastFull >= FULL_EVERY;
    PCR.get(full ? 'status' : 'progress').then(function (doc) {
      var running = doc.ok && doc.state === 'running';
      if (full) { renderStatus(doc); if (doc.ok) lastFull = Date.now(); }
      else if (doc.ok && doc.state === lastState) renderBanner(doc);
      else lastFull = 0;   // started or ended: the next poll, now, is a full one
      if (lastState === 'running' && !running) PCR.files(true);
      if (full || !doc.ok || doc.state === lastState) lastState = doc.ok ? doc.state : lastState;
      statusTimer = setTimeout(pollStatus, !lastFull ? 0 : running || Date.now() < fastUntil ? 1500 : FULL_EVERY);
    });
  }
  PCR.pollSoon = function () { fastUntil = Date.now() + 15000; setTimeout(pollStatus, 400); };

  // other scripts of the pages follow the status too (the run history reloads when a run has ended)
  PCR.statusListeners = [];
  function renderStatus(doc) {
    PCR.statusListeners.forEach(function (fn) { fn(doc); });
    var warn = $('pcr-warnings');
    if (!doc.ok) {
      fill(warn, h('div', { class: 'pcr-warning pcr-warning-error' }, icon('exclamation-circle'), ' ',
        'Cannot read the status: ' + errorText(doc)));
      return;
    }
    var ws = (doc.warnings || []).slice();
    var lr = doc.last_run || null;
    (lr && lr.unknown || []).forEach(function (u) {
      ws.push({ code: 'plex_unreadable', message: 'Plex could not be read for ' + (u.scope || 'a user') +
        (u.source ? ' (' + u.source + ')' : '') + ': ' + (u.error || '') + '. Nothing of theirs was moved back.' });
    });
    if (doc.stray_backups) ws.push({ code: 'stray_backups', message: doc.stray_backups + ' file(s) could not be cached ' +
      'at the last run: a .plexcached backup beside each is not known to hold the same bytes. Maintenance, Check now ' +
      'lists them under Stray backups: Fix removes a backup that proves identical; if they differ, you choose.' });
    fill(warn, ws.map(function (w) {
      return h('div', { class: 'pcr-warning', dataset: { code: w.code } }, icon('exclamation-triangle'), ' ', w.message);
    }));
    renderBanner(doc);
    renderPool(doc.cache || {});
    var c = doc.counts || {};
    $('pcr-count').textContent = c.files != null ? c.files : '-';
    $('pcr-bytes').textContent = PCR.bytes(c.bytes);
    $('pcr-pinned').textContent = c.pinned != null ? c.pinned : '-';
    $('pcr-next-run').textContent = doc.next_run ? PCR.when(doc.next_run) + ' (next run)' : 'not scheduled';
    var live = doc.live || {};
    // one inline box: Unraid 7 lays out each child of a <dd> as a row of its own
    fill($('pcr-live'), !live.enabled ? (live.running ? h('span', { class: 'orange-text' }, 'disabled, still running (pid ' + live.pid + ')') : 'disabled') :
      live.running ? h('span', null, h('span', { class: 'green-text' }, 'running'), liveSince(live), liveChannel(live.state)) :
      h('span', { class: 'orange-text' }, 'enabled, not running'));
    renderLastRun(lr, doc.state === 'running');
    renderActivity(doc);
  }

  // Which process live mode runs as and since when (the watcher's lock and its state file).
  function liveSince(live) {
    var parts = [live.pid ? 'pid ' + live.pid : '', live.since ? 'since ' + PCR.when(live.since) : ''].filter(Boolean);
    return parts.length ? ' (' + parts.join(', ') + ')' : '';
  }

  // How live mode hears about plays: Plex's notifications, or polling while that channel is down.
  function liveChannel(st) {
    if (!st || !st.channel) return '';
    return st.channel === 'notifications' ? ', following Plex notifications' : ', polling Plex';
  }

  function renderBanner(doc) {
    var b = $('pcr-banner'), p = doc.progress, running = doc.state === 'running';
    b.hidden = !running;
    renderRunbar(doc);
    $('pcr-run').disabled = running || !!PCR.runBlocked; $('pcr-dry').disabled = running;
    if (!running) return;
    p = p || {};
    var pct = p.bytes_total ? Math.min(100, 100 * p.bytes_done / p.bytes_total) :
      (p.files_total ? Math.min(100, 100 * p.files_done / p.files_total) : 0);
    $('pcr-banner-action').textContent = ({ run: 'Run in progress', evict: 'Moving files back', 'audit-fix': 'Fixing' })[p.action] || 'Working';
    $('pcr-banner-phase').textContent = p.phase ? '(' + p.phase + ')' : '';
    $('pcr-banner-bar').style.width = pct.toFixed(1) + '%';
    $('pcr-banner-pct').textContent = pct.toFixed(0) + '%';
    $('pcr-banner-file').textContent = p.current_file || '';
    $('pcr-banner-file').title = p.current_file || '';
    $('pcr-banner-bytes').textContent = (p.files_total ? p.files_done + ' / ' + p.files_total + ' files, ' : '') +
      PCR.bytes(p.bytes_done) + ' / ' + PCR.bytes(p.bytes_total);
    $('pcr-banner-rate').textContent = p.rate_bps ? PCR.bytes(p.rate_bps) + '/s' : '';
    $('pcr-banner-eta').textContent = p.eta_seconds != null ? 'ETA ' + PCR.duration(p.eta_seconds) : '';
  }

  // The run seen from the other tabs: one small bar at the foot of the window, fed by the Dashboard's poll
  // (its banner shows the run on the Dashboard itself), with a Stop of its own.
  function renderRunbar(doc) {
    var bar = $('pcr-runbar'), p = doc.progress || {}, running = doc.state === 'running';
    bar.hidden = !running || visible($('pcr-dashboard'));
    if (bar.hidden) return;
    var pct = p.bytes_total ? Math.min(100, 100 * p.bytes_done / p.bytes_total) :
      (p.files_total ? Math.min(100, 100 * p.files_done / p.files_total) : 0);
    fill($('pcr-runbar-text'), [icon('refresh fa-spin'), ' ',
      h('strong', null, ({ run: 'Run in progress', evict: 'Moving files back', 'audit-fix': 'Fixing' })[p.action] || 'Working'),
      ' ' + pct.toFixed(0) + '%', p.files_total ? ', ' + p.files_done + ' / ' + p.files_total + ' files' : '']);
  }

  function makeRunbar() {
    var bar = h('div', { id: 'pcr-runbar', class: 'pcr pcr-runbar', role: 'status', hidden: true },
      h('span', { id: 'pcr-runbar-text' }), ' ', h('input', { type: 'button', id: 'pcr-runbar-stop', value: 'Stop' }));
    document.body.appendChild(bar);
    $('pcr-runbar-stop').addEventListener('click', function () {
      var btn = this;
      btn.disabled = true;
      PCR.post('stop').then(function (r) {
        btn.disabled = false;
        fill($('pcr-runbar-text'), r.ok ? 'Stopping: the copy in flight is undone...' : errorText(r));
        PCR.pollSoon();
      });
    });
  }

  function renderPool(c) {
    var total = c.total_bytes || 0, used = c.used_bytes || 0, managed = Math.min(c.managed_bytes || 0, used);
    var pct = function (v) { return total ? Math.max(0, Math.min(100, 100 * v / total)) : 0; };
    var root = $('pcr-pool');
    $('pcr-pool-name').textContent = c.pool ? c.pool + (total ? ' - ' + PCR.bytes(total) : '') : '';
    root.querySelector('.pcr-seg-managed').style.width = pct(managed) + '%';
    var other = root.querySelector('.pcr-seg-other');
    other.style.left = pct(managed) + '%';
    other.style.width = pct(used - managed) + '%';
    var lim = root.querySelector('.pcr-mark-limit'), floor = root.querySelector('.pcr-mark-floor');
    lim.hidden = !c.limit_bytes; lim.style.left = pct(c.limit_bytes) + '%';
    floor.hidden = !c.floor_bytes; floor.style.left = (100 - pct(c.floor_bytes)) + '%';
    $('pcr-managed').textContent = PCR.bytes(c.managed_bytes);
    $('pcr-other').textContent = PCR.bytes(Math.max(0, used - managed));
    $('pcr-free').textContent = PCR.bytes(c.free_bytes);
    $('pcr-limit').textContent = c.limit_bytes ? 'Limit for cached files: ' + PCR.bytes(c.limit_bytes) + '.' : 'No limit for cached files.';
    $('pcr-floor').textContent = c.floor_bytes ? 'Always kept free: ' + PCR.bytes(c.floor_bytes) + '.' : '';
    root.setAttribute('aria-label', 'Cache pool: ' + PCR.bytes(used) + ' used of ' + PCR.bytes(total) + ', ' + PCR.bytes(managed) + ' cached by PlexCache-R');
  }

  function renderLastRun(lr, running) {
    var el = $('pcr-last');
    if (!lr || !lr.started_at) {
      el.textContent = running ? 'The first run is under way.' : 'No run yet.';
      $('pcr-last-when').textContent = '';
      return;
    }
    $('pcr-last-when').textContent = PCR.ago(lr.finished_at || lr.started_at);
    var code = lr.exit_code, cls = code === 0 ? 'green-text' : (code === 5 ? 'orange-text' : 'red-text');
    el.className = 'pcr-last';
    fill(el, [
      h('div', { class: cls }, h('b', null, (lr.dry_run ? 'Dry run ' : '') + (EXIT_WORDS[code] || 'exit ' + code))),
      h('div', null, (lr.cached || 0) + ' cached (' + PCR.bytes(lr.bytes_cached) + '), ' + (lr.moved_back || 0) +
        ' moved back (' + PCR.bytes(lr.bytes_moved_back) + '), ' + (lr.skipped || 0) + ' skipped, ',
        h('span', { class: lr.failed ? 'red-text' : null }, (lr.failed || 0) + ' failed')),
      h('div', { class: 'grey-text pcr-small' }, PCR.when(lr.started_at) + ', took ' +
        PCR.duration((lr.finished_at || lr.started_at) - lr.started_at) + (lr.message ? ' - ' + lr.message : ''))]);
  }

  /** Who wanted a file and why, each user once with each of their reasons once: "alice (On Deck), bob". */
  function whoAndWhy(reasons, users) {
    var by = {};
    (reasons || []).forEach(function (r) {
      var list = by[r.user] = by[r.user] || [], w = PCR.words('reasons', r.source);
      if (list.indexOf(w) < 0) list.push(w);
    });
    (users || []).forEach(function (u) { by[u] = by[u] || []; });
    return Object.keys(by).map(function (u) { return u + (by[u].length ? ' (' + by[u].join(', ') + ')' : ''); }).join(', ');
  }

  /** One line of Recent activity: when that file was done, what happened, its title, for whom and why. */
  function activityItem(a) {
    var at = a.done_at || a.at;
    if (!a.title) {   // a file the registry no longer knows (moved back, dropped): the event's own words
      return h('li', { title: a.path || null }, h('span', { class: 'grey-text', title: PCR.when(at) }, PCR.ago(at)), ' ', a.message);
    }
    var who = whoAndWhy(a.reasons, a.users);
    return h('li', { title: a.path, dataset: { kind: a.kind } },
      h('span', { class: 'grey-text pcr-when', title: PCR.when(at) }, PCR.ago(at)), ' ',
      a.message.slice(0, a.message.indexOf(a.title)), h('b', { dir: 'auto' }, a.title),
      a.message.slice(a.message.indexOf(a.title) + a.title.length), ' ',
      who && h('span', { class: 'grey-text' }, 'for ' + who));
  }

  function renderActivity(doc) {
    var ul = $('pcr-activity');
    if (Array.isArray(doc.activity) && doc.activity.length) {
      fill(ul, doc.activity.slice(0, 12).map(activityItem));
      return;
    }
    PCR.files().then(function (list) {
      if (!list.ok || !(list.files || []).length) return;
      var recent = list.files.slice().sort(function (a, b) { return (b.cached_at || 0) - (a.cached_at || 0); }).slice(0, 10);
      fill(ul, recent.map(function (f) {
        return h('li', { title: f.path }, h('span', { class: 'grey-text' }, PCR.ago(f.cached_at)), ' Cached ',
          h('b', { dir: 'auto' }, f.title || f.path), ' ',
          h('span', { class: 'grey-text' }, 'for ' + (f._users || 'nobody') + ' - ' + f._reasonText + ', ' + PCR.bytes(f.size)));
      }));
    });
  }

  function startRun(dry) {
    var msg = $('pcr-run-msg');
    message(msg, 'Starting...', 'busy');
    PCR.post('run', dry ? { dry_run: 1 } : {}).then(function (r) {
      if (!r.ok) { message(msg, errorText(r), 'err'); return; }
      message(msg, (dry ? 'Dry run' : 'Run') + ' started in the background.', 'busy');
      PCR.pollSoon();
      PCR.followJob('run', function (info) {
        var ok = info.exit_code === 0;
        message(msg, PCR.jobSentence(info, dry ? 'Dry run' : 'Run'), ok ? 'ok' : 'err');
        pollStatus(); PCR.files(true);
        if (PCR.afterRun) PCR.afterRun(info);
      });
    });
  }

  function initDashboard() {
    if (!$('pcr-dashboard')) return;
    makeRunbar();
    $('pcr-run').addEventListener('click', function () { startRun(false); });
    $('pcr-dry').addEventListener('click', function () { if (PCR.preview) PCR.preview(); else startRun(true); });
    $('pcr-stop').addEventListener('click', function () {
      this.disabled = true;
      var btn = this;
      PCR.post('stop').then(function (r) {
        btn.disabled = false;
        message($('pcr-run-msg'), r.ok ? (r.running ? 'Stopping: the copy in flight is undone...' : 'Nothing is running.') : errorText(r), r.ok ? 'busy' : 'err');
        PCR.pollSoon();
      });
    });
    pollStatus();
    if (PCR.start) { PCR.start(); return; }   // plexcache-r-start.js: the set-up checklist tells the connection too
    PCR.get('plex_test').then(function (t) {
      var el = $('pcr-plex');
      if (t.ok && t.server) {
        fill(el, [h('span', { class: 'green-text' }, icon('check-circle'), ' ', t.server.name), ' ',
          h('span', { class: 'grey-text' }, 'Plex ' + t.server.version + ', signed in as ' + t.owner + ', ' + t.libraries + ' libraries')]);
      } else {
        fill(el, h('span', { class: 'red-text' }, icon('times-circle'), ' ', errorText(t)));
      }
    });
  }

  // --- Settings -------------------------------------------------------------------------------------

  var LEVELS = Object.keys(VOCAB.levels || {});
  var settingsLoaded = null, knownUsers = [];

  function getPath(obj, key) {
    return key.split('.').reduce(function (o, k) { return o == null ? undefined : o[k]; }, obj);
  }
  function setPath(obj, key, value) {
    var parts = key.split('.'), o = obj;
    parts.slice(0, -1).forEach(function (k) { o = o[k] = o[k] || {}; });
    o[parts[parts.length - 1]] = value;
  }
  function checklist(el, values, options, labels) {
    var all = [];
    (options || []).concat(values || []).forEach(function (v) { if (all.indexOf(v) < 0) all.push(v); });
    fill(el, all.length ? all.map(function (v) {
      return h('label', { class: 'pcr-inline' }, h('input', { type: 'checkbox', value: v, checked: (values || []).indexOf(v) >= 0 }),
        ' ', labels && labels[v] || v);
    }) : h('span', { class: 'grey-text' }, el.dataset.empty || 'none'));
  }
  /** One cell of a row of a list of rows (table's data-key + field): the schema's label names it. */
  function cell(table, attrs) {
    var entry = SCHEMA.keys[table + '[].' + attrs.dataset.field] || {};
    return h('td', null, h('input', Object.assign({ 'aria-label': entry.label }, attrs)));
  }
  var ROW_CELLS = {
    'pcr-mappings': function (r) {
      var t = 'plex.path_mappings';
      return [cell(t, { type: 'text', dataset: { field: 'plex' }, value: r.plex || '', placeholder: '/data/tv' }),
        cell(t, { type: 'text', dataset: { field: 'share' }, value: r.share || '', placeholder: '/mnt/user/tv' }),
        cell(t, { type: 'checkbox', dataset: { field: 'cacheable' }, checked: r.cacheable !== false })];
    },
    'pcr-overrides': function (r) {
      var t = 'users.overrides';
      return [cell(t, { type: 'text', dataset: { field: 'name' }, list: 'pcr-user-names', value: r.name || '' }),
        cell(t, { type: 'checkbox', dataset: { field: 'on_deck' }, checked: r.on_deck !== false }),
        cell(t, { type: 'checkbox', dataset: { field: 'watchlist' }, checked: r.watchlist !== false }),
        // a stored PIN arrives as the mask and goes back as it, which keeps it; emptied, it is removed
        cell(t, { type: 'password', dataset: { field: 'pin' }, value: r.pin || '', placeholder: 'no PIN',
          autocomplete: 'new-password', inputmode: 'numeric' })];
    },
    'pcr-webhooks': function (r) {
      var lv = r.levels || SCHEMA.keys['notify.webhooks[].levels'].default;
      return [cell('notify.webhooks', { type: 'password', dataset: { field: 'url', type: 'secret' }, value: r.url || '',
        placeholder: 'https://discord.com/api/webhooks/...', autocomplete: 'new-password' }),
        h('td', { dataset: { field: 'levels' }, role: 'group', 'aria-label': SCHEMA.keys['notify.webhooks[].levels'].label },
          LEVELS.map(function (l) {
            return h('label', { class: 'pcr-inline' }, h('input', { type: 'checkbox', value: l, checked: lv.indexOf(l) >= 0 }), ' ', VOCAB.levels[l]);
          }))];
    }
  };
  function addRow(table, r) {
    table.tBodies[0].appendChild(h('tr', null, ROW_CELLS[table.id](r || {}),
      h('td', null, h('a', { href: '#', class: 'pcr-del-row', title: 'Remove' }, icon('trash')))));
  }
  function readRows(table) {
    return Array.prototype.map.call(table.tBodies[0].rows, function (tr) {
      var o = {};
      tr.querySelectorAll('[data-field]').forEach(function (f) {
        var k = f.dataset.field;
        if (f.tagName === 'TD') o[k] = Array.prototype.map.call(f.querySelectorAll('input:checked'), function (c) { return c.value; });
        else o[k] = f.type === 'checkbox' ? f.checked : f.value.trim();
      });
      return o;
    });
  }

  // What Default leaves as it is: what ties the plugin to this server and its users, none of which has a
  // meaningful default (the whole Plex section, the per-user exceptions and their PINs, the RSS address,
  // the webhooks, the paths)
  var KEPT_BY_DEFAULT = 'the Plex connection, libraries, path mappings, per-user exceptions, the watchlist ' +
    'RSS address, webhooks and paths';
  function keptByDefault(key, type) {
    return type === 'secret' || /^(plex|paths)\.|^users\.overrides$|^notify\.webhooks$/.test(key);
  }
  function fillSettings(s, keepSecrets) {
    var form = $('pcr-settings');
    form.querySelectorAll('[data-key]').forEach(function (el) {
      var key = el.dataset.key, type = el.dataset.type, v = getPath(s, key);
      if (keepSecrets && keptByDefault(key, type)) return;
      if (type === 'bool') { if (el.type === 'checkbox') el.checked = !!v; else el.value = v ? 'true' : 'false'; }
      else if (type === 'csv') el.value = (v || []).join(', ');
      else if (type === 'checklist') checklist(el, v || [], Array.prototype.map.call(el.querySelectorAll('input'), function (i) { return i.value; }));
      else if (type === 'multi') {   // the one list of choices is of levels
        var entry = SCHEMA.keys[key] || {};
        checklist(el, v || [], entry.options || [], entry.words || VOCAB.levels);
      }
      else if (type === 'rows') { fill(el.tBodies[0], []); (v || []).forEach(function (r) { addRow(el, r); }); }
      else el.value = v == null ? '' : v;
    });
    showMode();
  }

  function readSettings() {
    var out = {};
    $('pcr-settings').querySelectorAll('[data-key]').forEach(function (el) {
      var key = el.dataset.key, type = el.dataset.type, v;
      if (type === 'bool') v = el.type === 'checkbox' ? el.checked : el.value === 'true';
      else if (type === 'int' || type === 'float') {
        var t = el.value.trim(), n = Number(t);
        v = t !== '' && isFinite(n) ? n : t;   // a non-number goes as typed, so the CLI names the problem
      } else if (type === 'csv') v = el.value.split(',').map(function (x) { return x.trim(); }).filter(Boolean);
      else if (type === 'checklist' || type === 'multi') v = Array.prototype.map.call(el.querySelectorAll('input:checked'), function (c) { return c.value; });
      else if (type === 'rows') v = readRows(el);
      else v = el.value.trim();
      setPath(out, key, v);
    });
    return out;
  }

  function clearProblems() {
    document.querySelectorAll('#pcr-settings .pcr-problem').forEach(function (e) { e.remove(); });
    document.querySelectorAll('#pcr-settings .pcr-invalid').forEach(function (e) { e.classList.remove('pcr-invalid'); });
  }
  /** A field was changed: its note (shown after the last Apply) no longer applies. */
  function clearProblemAt(el) {
    var box = el.closest && (el.closest('td') || el.closest('dd'));
    if (!box) return;
    box.querySelectorAll('.pcr-problem').forEach(function (e) { e.remove(); });
    el.classList.remove('pcr-invalid');
  }
  /** Put each problem from `config set` next to its field: "cache.min_free", "plex.path_mappings[0].share". */
  function showProblems(problems, warning) {
    var form = $('pcr-settings'), loose = [];
    problems.forEach(function (p) {
      var m = /^(.*?)\[(\d+)\](?:\.(\w+))?/.exec(p.key), target = null;
      if (m) {
        var table = form.querySelector(attrIs('data-key', m[1]));
        var row = table && table.tBodies && table.tBodies[0].rows[+m[2]];
        target = row ? (m[3] && row.querySelector(attrIs('data-field', m[3]))) || row.querySelector('input') : table;
      } else target = form.querySelector(attrIs('data-key', p.key));
      if (!target) { loose.push(p.key.charAt(0) === '(' ? p.message : p.key + ': ' + p.message); return; }
      if (!warning) target.classList.add('pcr-invalid');
      var note = h('div', { class: 'pcr-problem ' + (warning ? 'orange-text pcr-warn' : 'red-text'), role: 'alert',
        dataset: { problem: p.key } }, icon(warning ? 'exclamation-triangle' : 'exclamation-circle'), ' ', p.message);
      (target.closest('td') || target.closest('dd') || target.parentNode).appendChild(note);
    });
    var first = !warning && form.querySelector('.pcr-invalid');
    if (first && first.scrollIntoView) first.scrollIntoView({ block: 'center' });
    return loose;
  }

  function dirty(on) { $('pcr-apply').disabled = !on; }
  function editing() {
    var el = document.activeElement;
    return !!el && !!el.closest && !!el.closest('#pcr-settings') && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName) &&
      el.type !== 'button' && el.type !== 'submit';
  }

  /** Fill the form from the saved settings; keepEdits: unless the user changed a field meanwhile (Apply is
   * enabled again) or is in one (rows are rebuilt: the field would go from under the cursor), so a reload
   * after saving never wipes what was typed while it was on its way. */
  function loadSettings(keepEdits) {
    var msg = $('pcr-settings-msg');
    return PCR.get('config').then(function (doc) {
      if (keepEdits && (!$('pcr-apply').disabled || editing())) return;
      if (!doc.ok) { message(msg, 'Cannot read the settings: ' + errorText(doc), 'err'); return; }
      settingsLoaded = doc.settings;
      clearProblems();
      fillSettings(doc.settings, false);
      dirty(false);
      var bad = doc.problems || [];
      if (!bad.length) return;
      var whole = bad.filter(function (p) { return p.key === '(file)' || p.key === '(top level)'; })[0];
      if (whole) {   // nothing of the file could be read: the form holds the defaults, not the user's values
        var line = /line \d+/.exec(whole.message);
        message(msg, 'The settings file cannot be read' + (line ? ' (' + line[0] + ')' : '') + ', so the form shows the ' +
          'defaults, not your settings. Fix the file on the flash drive, or enter your settings here and press Apply: ' +
          'the unreadable file is then kept beside the new one.', 'err');
        return;
      }
      // a settings file with bad values: the form shows what is in it, each bad value marked, to be corrected
      var loose = showProblems(bad);
      message(msg, 'The settings file has ' + bad.length + ' value(s) that are not valid' +
        (loose.length ? ' (' + loose.join('; ') + ')' : ', marked below') +
        '. Correct them and press Apply; until then their defaults are used.', 'err');
    });
  }

  /** What Apply did to live mode, which follows its setting at once. */
  function liveSentence(live) {
    if (!live) return '';
    if (!live.ok) return ' Live mode: ' + PCR.say(live.message || 'the service did not answer') + '.';
    if (live.restarted) return ' Live mode restarted with the new settings.';
    return live.enabled ? ' Live mode is on.' : ' Live mode is off.';
  }

  function applySettings() {
    var msg = $('pcr-settings-msg');
    clearProblems();
    $('pcr-apply').disabled = true;
    message(msg, 'Saving...', 'busy');
    PCR.post('config_set', { settings: readSettings() }).then(function (r) {
      if (r.ok) {
        var sched = r.schedule || {};
        message(msg, 'Saved.' + (r.kept_broken ? ' The unreadable settings file was kept as ' + r.kept_broken + '.' : '') +
          (sched.ok === false ? ' Schedule not applied: ' + sched.error : '') + liveSentence(r.live), 'ok');
        loadSettings(true).then(function () { if ((r.warnings || []).length) showProblems(r.warnings, true); });
        PCR.pollSoon();
        return;
      }
      $('pcr-apply').disabled = false;
      var loose = r.problems ? showProblems(r.problems) : [errorText(r)];
      message(msg, 'Nothing was saved: ' + (r.problems ? r.problems.length + ' setting(s) need attention' : '') +
        (loose.length ? (r.problems ? '; ' : '') + loose.join('; ') : '') + '.', 'err');
    });
  }

  function showMode() {
    var mode = ($('pcr-mode') || {}).value;
    document.querySelectorAll('#pcr-settings .pcr-mode').forEach(function (dl) {
      dl.hidden = !dl.classList.contains('pcr-mode-' + mode);
    });
  }

  function loadLibraries(suggest) {
    var msg = $('pcr-lib-msg');
    message(msg, 'Asking Plex...', 'busy');
    return PCR.get('plex_libraries').then(function (doc) {
      if (!doc.ok) { message(msg, errorText(doc), 'err'); return; }
      var el = $('pcr-libraries'), chosen = readSettings().plex.libraries, labels = {};
      var titles = (doc.libraries || []).filter(function (l) { return l.type === 'movie' || l.type === 'show'; })
        .map(function (l) { labels[l.title] = l.title + ' (' + l.type + ')'; return l.title; });
      checklist(el, chosen, titles, labels);
      message(msg, titles.length + ' libraries', 'ok');
      if (suggest) {
        var table = $('pcr-mappings'), have = readRows(table).map(function (r) { return r.plex.replace(/\/+$/, ''); }), added = 0;
        (doc.libraries || []).forEach(function (l) {
          (l.locations || []).forEach(function (loc) {
            var p = loc.replace(/\/+$/, '');
            var covered = have.some(function (h) { return h && (p === h || p.indexOf(h + '/') === 0); });
            if (!covered) { addRow(table, { plex: p, share: '/mnt/user/' + p.split('/').pop(), cacheable: true }); have.push(p); added++; }
          });
        });
        message(msg, added ? added + ' mapping(s) suggested: check the share paths, then Apply' : 'every library folder is already mapped', 'ok');
        if (added) dirty(true);
      }
    });
  }

  function loadUsers() {
    var msg = $('pcr-user-msg');
    message(msg, 'Asking Plex...', 'busy');
    return PCR.get('plex_users').then(function (doc) {
      if (!doc.ok) { message(msg, errorText(doc), 'err'); return; }
      var labels = {};
      knownUsers = (doc.users || []).map(function (u) { labels[u.name] = u.name + ' (' + u.kind + ')'; return u.name; });
      checklist($('pcr-skip'), readSettings().users.skip, knownUsers, labels);
      var dl = $('pcr-user-names') || document.body.appendChild(Object.assign(document.createElement('datalist'), { id: 'pcr-user-names' }));
      fill(dl, knownUsers.map(function (n) { return h('option', { value: n }); }));
      message(msg, knownUsers.length + ' users', 'ok');
    });
  }

  function signIn() {
    var box = $('pcr-pin'), state = $('pcr-pin-state'), btn = $('pcr-signin');
    btn.disabled = true;
    box.hidden = false;
    $('pcr-pin-code').textContent = '....';
    message(state, 'asking plex.tv for a code...', 'busy');
    PCR.post('plex_login').then(function (r) {
      if (!r.ok) { btn.disabled = false; message(state, errorText(r), 'err'); return; }
      $('pcr-pin-code').textContent = r.code;
      var a = $('pcr-pin-link'); a.href = r.link; a.textContent = r.link.replace(/^https?:\/\//, '');
      message(state, 'waiting for the code to be entered...', 'busy');
      var until = r.expires_at ? r.expires_at * 1000 : Date.now() + 300000;
      (function poll() {
        PCR.post('plex_login_poll').then(function (p) {
          if (p.ok && p.signed_in) {
            btn.disabled = false;
            message(state, 'Signed in. The token is stored (never shown).', 'ok');
            loadSettings();
          } else if (!p.ok || Date.now() > until) {
            btn.disabled = false;
            message(state, 'Not signed in: ' + (p.ok ? 'the code expired; press Sign in again' : errorText(p)), 'err');
          } else setTimeout(poll, 2000);
        });
      })();
    });
  }

  /** The section index: a keyboard user lands on the section's first control (or on Apply), not only
   * scrolled to it. The Advanced section opens when chosen. */
  function indexJump(e) {
    // href="#" and the target in data-to: Unraid's page asks before following any other link
    var a = e.target.closest('a[data-to]'), target = a && $(a.dataset.to);
    if (!target) return;
    e.preventDefault();
    if (target.id === 'pcr-s-advanced' && $('pcr-advanced').hidden) $('pcr-adv-toggle').click();
    var first = target.matches('input, select') ? target : null, el = target;
    while (!first && (el = el.nextElementSibling)) {
      first = el.matches('input:not([type=button]), select') ? el : el.querySelector('input:not([type=button]), select');
    }
    target.scrollIntoView({ block: 'start' });
    if (first) first.focus({ preventScroll: target !== first });
  }

  function initSettings() {
    var form = $('pcr-settings');
    if (!form) return;
    $('pcr-libraries').dataset.empty = 'press Load from Plex to choose; none ticked means every movie and TV library';
    $('pcr-skip').dataset.empty = 'nobody ignored';
    form.addEventListener('input', function (e) { dirty(true); clearProblemAt(e.target); });
    form.addEventListener('change', function (e) { dirty(true); clearProblemAt(e.target); if (e.target.id === 'pcr-mode') showMode(); });
    form.addEventListener('click', function (e) {
      var add = e.target.closest('.pcr-add-row'), del = e.target.closest('.pcr-del-row');
      if (add) { addRow($(add.dataset.for)); dirty(true); }
      if (del) { e.preventDefault(); del.closest('tr').remove(); dirty(true); }
    });
    $('pcr-apply').addEventListener('click', applySettings);
    $('pcr-settings-index').addEventListener('click', indexJump);
    $('pcr-default').addEventListener('click', function () {
      confirmAsk('Reset to defaults?', 'Every setting below the Plex connection goes back to its default, except ' +
        KEPT_BY_DEFAULT + '. Nothing is saved until you press Apply.', function () {
        PCR.get('defaults').then(function (doc) {
          if (!doc.ok) { message($('pcr-settings-msg'), errorText(doc), 'err'); return; }
          clearProblems();
          fillSettings(doc.settings, true);
          dirty(true);
          message($('pcr-settings-msg'), 'Defaults loaded; kept ' + KEPT_BY_DEFAULT + '. Press Apply to save them.', 'busy');
        });
      });
    });
    $('pcr-test').addEventListener('click', function () {
      var m = $('pcr-test-msg');
      message(m, 'Connecting...', 'busy');
      PCR.post('plex_try', { settings: { plex: readSettings().plex } }).then(function (t) {
        if (t.ok && t.server) message(m, 'Connected to ' + t.server.name + ' (Plex ' + t.server.version + ') as ' + t.owner + '.', 'ok');
        else message(m, errorText(t), 'err');
      });
    });
    $('pcr-signin').addEventListener('click', signIn);
    $('pcr-load-libraries').addEventListener('click', function () { loadLibraries(false); });
    $('pcr-suggest-mappings').addEventListener('click', function () { loadLibraries(true); });
    $('pcr-load-users').addEventListener('click', loadUsers);
    $('pcr-adv-toggle').addEventListener('click', function (e) {
      e.preventDefault();
      var adv = $('pcr-advanced');
      adv.hidden = !adv.hidden;
      this.textContent = adv.hidden ? 'Show' : 'Hide';
      this.setAttribute('aria-expanded', String(!adv.hidden));
    });
    loadSettings();
  }

  // --- Cached files ---------------------------------------------------------------------------------

  var F = { all: [], shown: [], sort: 'cached_at', dir: -1, page: 0, size: 100, selected: new Set() };
  var SORTERS = {
    title: function (f) { return (f.title || f.path).toLowerCase(); }, users: function (f) { return f._users.toLowerCase(); },
    reason: function (f) { return f._reasonText.toLowerCase(); }, size: function (f) { return f.size || 0; },
    cached_at: function (f) { return f.cached_at || 0; }, disk: function (f) { return f.disk || ''; },
    // the queue a shortage of room moves back, first to go first; files it never moves back last
    leaves: function (f) { return f.eviction_rank == null ? Infinity : f.eviction_rank; }
  };

  // When and why a file leaves the pool, and its place in the queue if space runs short (`list`'s words).
  function leavesCell(f) {
    return h('td', { class: 'pcr-leaves pcr-hide-phone', title: f.leaves_at ? PCR.when(f.leaves_at) : null }, f.leaves || '-',
      f.if_space_short && h('div', { class: 'grey-text pcr-small' }, f.if_space_short));
  }

  function filesApply() {
    var q = folded($('pcr-filter').value.trim()), reason = $('pcr-filter-reason').value;
    var words = q ? q.split(/\s+/) : [];
    F.shown = F.all.filter(function (f) {
      if (reason && f._reason !== reason && !(reason === 'pinned' && f.pinned)) return false;
      for (var i = 0; i < words.length; i++) if (f._hay.indexOf(words[i]) < 0) return false;
      return true;
    });
    var key = SORTERS[F.sort], dir = F.dir;
    F.shown.sort(function (a, b) { var x = key(a), y = key(b); return x < y ? -dir : x > y ? dir : a._i - b._i; });
    F.page = Math.min(F.page, Math.max(0, Math.ceil(F.shown.length / F.size) - 1));
    filesRender();
  }

  /** Pin and Unpin told apart at a glance: Pin is the plain pin, Unpin the orange pin crossed out. */
  function pinControl(pinned) {
    return pinned
      ? h('a', { href: '#', class: 'pcr-act pcr-act-unpin', dataset: { act: 'unpin' }, title: 'Unpin: let it move back when no one wants it' },
        h('span', { class: 'fa-stack pcr-stack' }, icon('thumb-tack', 'fa-stack-1x orange-text'), icon('ban', 'fa-stack-1x')))
      : h('a', { href: '#', class: 'pcr-act pcr-act-pin', dataset: { act: 'pin' }, title: 'Pin: keep it on the pool' }, icon('thumb-tack'));
  }

  function fileRow(f) {
    var chosen = F.selected.has(f.path);
    return h('tr', { class: chosen ? 'pcr-selected' : null, dataset: { path: f.path } },
      h('td', { class: 'pcr-col-check' }, h('input', { type: 'checkbox', class: 'pcr-row-check', checked: chosen, 'aria-label': 'Select' })),
      h('td', { class: 'pcr-title', title: f.path }, f.pinned && [icon('thumb-tack', 'orange-text'), ' '],
        h('span', { dir: 'auto' }, f.title || f.path),
        h('div', { class: 'grey-text pcr-small pcr-ellipsis' }, h('span', { class: 'pcr-phone-only' }, f._reasonText + ' - '),
          (f.library ? f.library + ' - ' : ''), h('span', { dir: 'auto' }, f.path))),
      h('td', { class: 'pcr-hide-phone', dir: 'auto' }, f._users || '-'),
      h('td', { class: 'pcr-hide-phone', dir: 'auto' }, f._reasonText),
      h('td', { class: 'pcr-num' }, PCR.bytes(f.size)),
      h('td', { class: 'pcr-hide-phone', title: PCR.when(f.cached_at) }, PCR.ago(f.cached_at)),
      h('td', { class: 'pcr-hide-phone' }, f.disk || '-'),
      leavesCell(f),
      h('td', { class: 'pcr-col-act' },
        pinControl(f.pinned), ' ',
        h('a', { href: '#', class: 'pcr-act', dataset: { act: 'evict' }, title: 'Move back to the array' }, icon('reply'))));
  }

  function filesRender() {
    var start = F.page * F.size, rows = F.shown.slice(start, start + F.size), body = $('pcr-files-body');
    fill(body, F.shown.length ? rows.map(fileRow) : h('tr', null, h('td', { colspan: 9, class: 'grey-text' },
      F.all.length ? 'No file matches the filter.' : 'No files are cached yet.')));
    var pages = Math.max(1, Math.ceil(F.shown.length / F.size));
    $('pcr-page-info').textContent = F.shown.length ? (start + 1) + '-' + (start + rows.length) + ' of ' + F.shown.length +
      (F.shown.length !== F.all.length ? ' (filtered from ' + F.all.length + ')' : '') + ' - page ' + (F.page + 1) + ' of ' + pages : '';
    $('pcr-prev').disabled = F.page === 0; $('pcr-next').disabled = F.page >= pages - 1;
    document.querySelectorAll('#pcr-files-table .pcr-sortable').forEach(function (td) {
      td.classList.toggle('pcr-sorted', td.dataset.sort === F.sort);
      td.setAttribute('aria-sort', td.dataset.sort === F.sort ? (F.dir > 0 ? 'ascending' : 'descending') : 'none');
    });
    $('pcr-check-all').checked = rows.length > 0 && rows.every(function (f) { return F.selected.has(f.path); });
    selectionChanged();
  }

  /** The selection may reach past the page shown: "Select all N" takes every file the filter matches. */
  function selectionChanged() {
    var n = F.selected.size;
    var missing = n ? F.shown.filter(function (f) { return !F.selected.has(f.path); }).length : 0;
    $('pcr-sel-info').textContent = n ? n + ' selected' : '';
    var all = $('pcr-select-all');
    all.hidden = !missing;
    all.textContent = 'Select all ' + F.shown.length + (F.shown.length !== F.all.length ? ' matching' : '');
    $('pcr-select-none').hidden = !n;
    ['pcr-bulk-pin', 'pcr-bulk-unpin', 'pcr-bulk-evict'].forEach(function (id) { $(id).disabled = !n; });
  }

  function filesAct(act, paths) {
    var msg = $('pcr-files-msg');
    if (!paths.length) return;
    var go = function () {
      message(msg, (act === 'evict' ? 'Moving back ' : (act === 'pin' ? 'Pinning ' : 'Unpinning ')) + paths.length + ' file(s)...', 'busy');
      PCR.postPaths(act, paths).then(function (r) {
        if (!r.ok) { message(msg, errorText(r), 'err'); return; }
        if (act !== 'evict') {
          message(msg, (act === 'pin' ? 'Pinned ' : 'Unpinned ') + ((r.changed || paths).length) + ' file(s).', 'ok');
          PCR.files(true);
          return;
        }
        PCR.pollSoon();
        PCR.followJob('evict', function (info) {
          var res = info.result || {};
          message(msg, info.exit_code === 0 ? 'Moved back ' + (res.moved_back != null ? res.moved_back : paths.length) + ' file(s).' :
            'Move back ' + jobSummary(info) + '.', info.exit_code === 0 ? 'ok' : 'err');
          paths.forEach(function (p) { F.selected.delete(p); });
          PCR.files(true);
        });
      });
    };
    if (act === 'evict') {
      confirmAsk('Move back ' + paths.length + ' file(s)?', 'They are copied back to the array now; the next run caches them again if someone still wants them (pin to prevent that).', go);
    } else go();
  }

  /** Column headers that sort on a click, and from the keyboard: each is a Tab stop, Enter or Space sorts. */
  function sortableHeaders(thead, sort) {
    thead.querySelectorAll('.pcr-sortable').forEach(function (td) { td.tabIndex = 0; td.setAttribute('role', 'columnheader'); });
    thead.addEventListener('click', function (e) {
      var td = e.target.closest('.pcr-sortable');
      if (td) sort(td);
    });
    thead.addEventListener('keydown', function (e) {
      var td = e.target.closest('.pcr-sortable');
      if (!td || (e.key !== 'Enter' && e.key !== ' ')) return;
      e.preventDefault();
      sort(td);
    });
  }

  function initFiles() {
    if (!$('pcr-files')) return;
    var body = $('pcr-files-body'), timer = null;
    var load = function (doc) {
      if (!doc.ok) {
        fill(body, h('tr', null, h('td', { colspan: 9, class: 'red-text' }, 'Cannot read the cached files: ' + errorText(doc))));
        return;
      }
      F.all = doc.files || [];
      var known = new Set(F.all.map(function (f) { return f.path; }));
      F.selected.forEach(function (p) { if (!known.has(p)) F.selected.delete(p); });
      filesApply();
    };
    onFiles(load);
    $('pcr-filter').addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(function () { F.page = 0; filesApply(); }, 120); });
    $('pcr-filter-reason').addEventListener('change', function () { F.page = 0; filesApply(); });
    $('pcr-page-size').addEventListener('change', function () { F.size = +this.value; F.page = 0; filesRender(); });
    $('pcr-prev').addEventListener('click', function () { F.page--; filesRender(); });
    $('pcr-next').addEventListener('click', function () { F.page++; filesRender(); });
    $('pcr-refresh-files').addEventListener('click', function () { PCR.files(true); });
    sortableHeaders(document.querySelector('#pcr-files-table thead'), function (td) {
      if (F.sort === td.dataset.sort) F.dir = -F.dir; else { F.sort = td.dataset.sort; F.dir = ['title', 'users', 'leaves'].indexOf(td.dataset.sort) >= 0 ? 1 : -1; }
      filesApply();
    });
    $('pcr-check-all').addEventListener('change', function () {
      var on = this.checked, start = F.page * F.size;
      F.shown.slice(start, start + F.size).forEach(function (f) { if (on) F.selected.add(f.path); else F.selected.delete(f.path); });
      filesRender();
    });
    body.addEventListener('change', function (e) {
      if (!e.target.classList.contains('pcr-row-check')) return;
      var tr = e.target.closest('tr'), p = tr.dataset.path;
      if (e.target.checked) F.selected.add(p); else F.selected.delete(p);
      tr.classList.toggle('pcr-selected', e.target.checked);
      selectionChanged();
    });
    body.addEventListener('click', function (e) {
      var a = e.target.closest('.pcr-act');
      if (!a) return;
      e.preventDefault();
      filesAct(a.dataset.act, [a.closest('tr').dataset.path]);
    });
    $('pcr-select-all').addEventListener('click', function (e) {
      e.preventDefault();
      F.shown.forEach(function (f) { F.selected.add(f.path); });
      filesRender();
    });
    $('pcr-select-none').addEventListener('click', function (e) { e.preventDefault(); F.selected.clear(); filesRender(); });
    $('pcr-bulk-pin').addEventListener('click', function () { filesAct('pin', Array.from(F.selected)); });
    $('pcr-bulk-unpin').addEventListener('click', function () { filesAct('unpin', Array.from(F.selected)); });
    $('pcr-bulk-evict').addEventListener('click', function () { filesAct('evict', Array.from(F.selected)); });
    whenShown($('pcr-files'), function () { PCR.files().then(load); });
  }

  // --- Storage --------------------------------------------------------------------------------------

  /** A horizontal bar chart as inline SVG: one labelled bar per group, largest first. */
  function barChart(groups, total) {
    var rows = Object.keys(groups).map(function (k) { return [k, groups[k]]; }).sort(function (a, b) { return b[1] - a[1]; });
    if (!rows.length) return h('p', { class: 'grey-text' }, 'Nothing cached yet.');
    var more = rows.slice(8), max = rows[0][1] || 1, step = 26;
    rows = rows.slice(0, 8);
    if (more.length) rows.push([more.length + ' more', more.reduce(function (sum, r) { return sum + r[1]; }, 0)]);
    return svg('svg', { class: 'pcr-bars', viewBox: '0 0 400 ' + rows.length * step, width: '100%', role: 'img',
      preserveAspectRatio: 'xMinYMin meet' }, rows.map(function (r, i) {
      var w = Math.max(2, 250 * r[1] / max), y = i * step;
      var pct = total ? ' (' + (100 * r[1] / total).toFixed(0) + '%)' : '';
      return svg('g', null, svg('title', null, r[0] + ': ' + PCR.bytes(r[1]) + pct),
        svg('text', { x: 0, y: y + 11, class: 'pcr-bar-label' }, r[0].length > 34 ? r[0].slice(0, 33) + '\u2026' : r[0]),
        svg('rect', { x: 0, y: y + 14, width: w.toFixed(1), height: 8, rx: 2, class: 'pcr-bar pcr-bar-' + (i % 6) }),
        svg('text', { x: (w + 6).toFixed(1), y: y + 22, class: 'pcr-bar-value' }, PCR.bytes(r[1]) + pct));
    }));
  }

  function storageRow(f, third) {
    return h('tr', null, h('td', { class: 'pcr-title', title: f.path, dir: 'auto' }, f.title || f.path),
      h('td', { class: 'pcr-hide-phone' }, f._users || '-'),
      third === 'size' ? h('td', { class: 'pcr-num' }, PCR.bytes(f.size)) : h('td', { title: PCR.when(f.cached_at) }, PCR.ago(f.cached_at)));
  }

  function renderStorage(doc) {
    if (!doc.ok) {
      fill($('pcr-by-library'), h('p', { class: 'red-text' }, errorText(doc)));
      return;
    }
    var files = doc.files || [], total = 0, lib = {}, user = {}, reason = {}, disk = {};
    var add = function (m, k, v) { m[k] = (m[k] || 0) + v; };
    files.forEach(function (f) {
      var size = f.size || 0;
      total += size;
      add(lib, f.library || 'Unknown library', size);
      add(reason, REASONS[f._reason] || f._reason, size);
      add(disk, f.disk || 'unknown', size);
      var us = f.users && f.users.length ? f.users : ['nobody (retained or pinned)'];
      us.forEach(function (u) { add(user, u, size / us.length); });   // a shared file's size is split between its users
    });
    fill($('pcr-by-library'), barChart(lib, total));
    fill($('pcr-by-user'), [barChart(user, total), h('p', { class: 'grey-text pcr-small' }, 'A file several users want counts a share for each.')]);
    fill($('pcr-by-reason'), barChart(reason, total));
    fill($('pcr-by-disk'), barChart(disk, total));
    var top = function (order, third) {
      var rows = files.slice().sort(order).slice(0, 10).map(function (f) { return storageRow(f, third); });
      return rows.length ? rows : h('tr', null, h('td', { colspan: 3, class: 'grey-text' }, 'Nothing cached yet.'));
    };
    fill($('pcr-largest'), top(function (a, b) { return (b.size || 0) - (a.size || 0); }, 'size'));
    fill($('pcr-oldest'), top(function (a, b) { return (a.cached_at || 0) - (b.cached_at || 0); }, 'age'));
  }

  // Plays are only seen while live mode follows Plex: each one served from the pool left an array disk asleep.
  function renderPlays(doc) {
    var live = (doc && doc.live) || {}, st = live.state, box = $('pcr-plays');
    if (!doc || !doc.ok) { fill(box, h('p', { class: 'red-text' }, errorText(doc))); return; }
    if (!st) {
      fill(box, h('p', { class: 'grey-text' }, live.enabled ? 'Live mode is starting; plays are counted while it runs.'
        : 'Turn on live mode (Settings, Schedule) to count the plays the pool serves: each one is an array disk left asleep.'));
      return;
    }
    var pct = st.plays ? Math.round(100 * st.plays_from_pool / st.plays) : 0;
    fill(box, [h('p', null, h('span', { class: 'pcr-big' }, st.plays_from_pool), ' of ' + st.plays +
      ' plays started from the pool (' + pct + '%) since ' + PCR.when(st.since) + '.'),
      h('p', { class: 'grey-text pcr-small' }, 'Each one is a disk spin-up (and 5-15 s of waiting) avoided.')]);
  }

  function initStorage() {
    if (!$('pcr-storage')) return;
    onFiles(renderStorage);
    whenShown($('pcr-storage'), function () {
      PCR.files().then(renderStorage);
      PCR.get('status').then(renderPlays);
    });
  }

  // --- Maintenance ----------------------------------------------------------------------------------

  var FIX_ASKS = { 'all-safe': 'every finding with a safe fix', 'keep-new': 'the new copies (their originals are deleted)',
    'keep-original': 'the originals (the new copies are deleted once they are back)' };
  /** What a Fix button asks about: a kind of finding, or one of the fixes that concern several kinds. */
  function fixTarget(kind) {
    var scoped = kind.split(':');   // CHOICE:KIND, a choice for one kind of finding
    if (scoped.length === 2) return FIX_ASKS[scoped[0]] + ' of ' + PCR.words('finding_kinds', scoped[1]).toLowerCase();
    return FIX_ASKS[kind] || PCR.words('finding_kinds', kind);
  }

  /** A finding's message with its own path left out: findings that differ only by path read alike. */
  function findingShape(f) {
    var text = f.message || f.detail || '';
    if (f.path && text.indexOf(f.path + ': ') === 0) return text.slice(f.path.length + 2);
    return text.split(f.path || '\u0000').join('\u2026');
  }

  /** The physical copies a finding concerns, each with its size: what a person needs to choose between. */
  function findingCopies(f) {
    var paths = f.paths || [];
    if ((f.choices || []).indexOf('keep') >= 0) return keepCopies(f);
    if (paths.length < 2) return null;
    return h('ul', { class: 'pcr-copies' }, paths.map(function (p, i) {
      return h('li', { dir: 'auto' }, h('code', null, p), f.sizes && f.sizes[i] != null ? ' (' + PCR.bytes(f.sizes[i]) + ')' : '');
    }));
  }

  /** A duplicate's copies side by side (where, size, time; the same bytes or not once compared), each with
   * the button that keeps it; comparing reads them whole, so it is a button of its own. */
  function keepCopies(f) {
    return h('div', { class: 'pcr-keep', dataset: { path: f.path } },
      h('ul', { class: 'pcr-copies' }, (f.paths || []).map(function (p, i) {
        var place = (f.places || [])[i] || p.split('/')[2] || p;
        return h('li', { dataset: { copy: p } },
          h('input', { type: 'button', class: 'pcr-fix', dataset: { kind: 'keep:' + p, place: place }, value: PCR.words('fixes', 'keep') }),
          ' ', h('b', null, place), ': ', h('code', { dir: 'auto' }, p),
          ' (' + PCR.bytes((f.sizes || [])[i]) + ', modified ' + PCR.when((f.mtimes || [])[i]) + ') ',
          h('span', { class: 'pcr-same' }));
      })),
      h('input', { type: 'button', class: 'pcr-compare', dataset: { path: f.path }, value: 'Compare contents' }),
      h('span', { class: 'grey-text pcr-compare-msg' }, ' reads every copy whole: their disks spin up'));
  }

  /** Compare a duplicate's copies (a job: hashing takes as long as reading them) and say beside each whether
   * it holds the same bytes. */
  function compareCopies(b) {
    var box = b.closest('.pcr-keep'), note = box.querySelector('.pcr-compare-msg');
    b.disabled = true;
    message(note, ' Reading every copy...', 'busy');
    PCR.post('audit_compare', { path: b.dataset.path }).then(function (r) {
      if (!r.ok) { b.disabled = false; message(note, ' ' + errorText(r), 'err'); return; }
      PCR.followJob('audit_compare', function (info) {
        var res = info.result || {};
        b.disabled = false;
        if (!res.copies) { message(note, ' ' + jobSummary(info), 'err'); return; }
        message(note, res.identical ? ' They hold the same bytes: keeping either one removes the other.' :
          ' They differ: the copy you do not keep is set aside (renamed), not deleted.', res.identical ? 'ok' : 'err');
        Array.prototype.forEach.call(box.querySelectorAll('li[data-copy]'), function (li) {
          var c = res.copies.filter(function (x) { return x.path === li.dataset.copy; })[0];
          message(li.querySelector('.pcr-same'), !c ? 'gone' : res.identical ? 'same bytes' : c.blake2b ?
            'differs (' + c.blake2b.slice(0, 12) + ')' : c.error ? 'unreadable' : 'differs (size)', res.identical ? 'ok' : 'err');
        });
      });
    });
  }

  /** Findings alike (the same words but for their path) as one line with a count; their paths and copies
   * open below it. */
  function findingLines(list) {
    var shapes = {}, order = [];
    list.forEach(function (f) {
      var s = findingShape(f);
      if (!shapes[s]) { shapes[s] = []; order.push(s); }
      shapes[s].push(f);
    });
    return order.map(function (s) {
      var same = shapes[s], f = same[0];
      var fix = f.fix ? h('span', { class: 'grey-text' }, '\u00a0- fix: ' + PCR.words('fixes', f.fix)) :
        !(f.choices || []).length && h('span', { class: 'grey-text' }, '\u00a0- no automatic fix' +
          ((f.paths || []).length > 1 ? ': the copies are listed below' : ''));
      if (same.length === 1) {
        return h('li', { title: f.path || null }, f.message || f.detail || '',
          f.path && (f.message || '').indexOf(f.path) < 0 && [' ', h('span', { class: 'grey-text', dir: 'auto' }, f.path)], fix, findingCopies(f));
      }
      return h('li', { class: 'pcr-alike' }, h('b', null, '\u00d7' + same.length), ' files: ', s, fix,
        h('details', null, h('summary', null, 'The ' + same.length + ' files'),
          h('ul', null, same.slice(0, 200).map(function (g) { return h('li', { dir: 'auto' }, g.path, findingCopies(g)); }),
            same.length > 200 && h('li', { class: 'grey-text' }, 'and ' + (same.length - 200) + ' more'))));
    });
  }

  /** What the last fix did, kept on screen (above the findings) until the next one. */
  function renderFixResult(fixes, done) {
    var box = $('pcr-fix-result') || $('pcr-findings').parentNode.insertBefore(
      h('div', { id: 'pcr-fix-result', class: 'pcr-fix-result', role: 'status' }), $('pcr-findings'));
    var by = {};
    (fixes || []).forEach(function (o) {
      var g = by[o.fix] = by[o.fix] || { ok: 0, other: [] };
      if (o.result === 'ok') g.ok++; else g.other.push(o);
    });
    fill(box, [h('div', { class: done.kind === 'ok' ? 'green-text' : 'orange-text' }, 'What the fix did (' + new Date().toLocaleTimeString() + '):'),
      h('ul', null, Object.keys(by).map(function (fix) {
        var g = by[fix];
        return h('li', null, PCR.words('fixes', fix) + ': ' + g.ok + ' done' + (g.other.length ? ', ' + g.other.length + ' not:' : ''),
          g.other.length > 0 && h('ul', null, g.other.slice(0, 50).map(function (o) {
            return h('li', { dir: 'auto' }, o.path + ': ' + o.result + (o.message ? ' (' + o.message + ')' : ''));
          })));
      }))]);
  }

  function findingGroup(kind, list) {
    var fixable = list.some(function (f) { return !!f.fix; });
    return h('div', { class: 'pcr-finding', dataset: { kind: kind } },
      h('div', { class: 'title' },
        h('span', { class: 'left' }, icon('exclamation-triangle', 'orange-text title'), PCR.words('finding_kinds', kind), ' ',
          h('span', { class: 'grey-text' }, '(' + list.length + ')')),
        h('span', { class: 'right' }, fixable && h('input', { type: 'button', class: 'pcr-fix', dataset: { kind: kind }, value: 'Fix' }),
          // a choice decides this group's findings only (CHOICE:KIND), never another kind offering it too
          ((list[0] && list[0].choices) || []).filter(function (c) { return c !== 'keep'; }).map(function (c) { return h('input', { type: 'button', class: 'pcr-fix', dataset: { kind: c + ':' + kind }, value: PCR.words('fixes', c) }); }))),
      h('ul', { class: 'pcr-activity' }, findingLines(list)));
  }

  function historyRow(entry) {
    var bad = entry.result && entry.result !== 'ok';
    return h('tr', null, h('td', null, PCR.when(entry.at || entry.time || entry.started_at)),
      h('td', null, (entry.action || entry.kind || '') + (entry.fix ? ' (' + entry.fix + ')' : '')),
      h('td', { class: bad ? 'orange-text' : null }, (entry.result ? entry.result + ': ' : '') + (entry.message || '')));
  }

  function renderAudit(doc, done) {
    var box = $('pcr-findings'), msg = $('pcr-audit-msg');
    $('pcr-audit').disabled = false;
    if (!doc.ok) {
      fill(box, []);
      message(msg, 'The check failed: ' + errorText(doc), 'err');
      return;
    }
    if (done) message(msg, done.text, done.kind);
    else message(msg, (doc.cheap ? 'Quick check done ' : 'Full check done ') + new Date().toLocaleTimeString() + '.', 'ok');
    if (doc.cheap) {
      var last = doc.last_full;
      $('pcr-audit-last').textContent = last ? 'Last full check ' + PCR.when(last.at) + ': ' + (last.findings ?
        last.findings + ' finding(s); press Check now to see them again.' : 'all good.') : 'No full check yet.';
    } else $('pcr-audit-last').textContent = '';
    var findings = doc.findings || [], groups = {};
    findings.forEach(function (f) { (groups[f.kind] = groups[f.kind] || []).push(f); });
    var kinds = Object.keys(groups);
    var fixAll = kinds.length > 1 && findings.some(function (f) { return f.fix && f.fix !== 'delete-redundant'; });
    fill(box, kinds.length ? [
      fixAll && h('div', { class: 'pcr-toolbar' }, h('input', { type: 'button', class: 'pcr-fix', dataset: { kind: 'all-safe' }, value: PCR.words('fixes', 'all-safe') }),
        h('span', { class: 'grey-text' }, 'recover, protect, sync and restore; nothing is deleted')),
      kinds.map(function (k) { return findingGroup(k, groups[k]); })
    ] : h('div', { class: 'pcr-notice pcr-good' }, icon('check-circle', 'green-text'), ' All good: every cached file is protected and accounted for.'));
    var hist = doc.history || [];
    if (hist.length) fill($('pcr-history'), hist.slice().reverse().slice(0, 50).map(historyRow));
  }

  /** Check now; `done` ({text, kind}) is what a fix that just ended has to say, shown once the check is in. */
  function runAudit(done, quick) {
    $('pcr-audit').disabled = true;
    message($('pcr-audit-msg'), quick ? 'Checking the pool...' : 'Checking every array disk (they spin up)...', 'busy');
    PCR.get(quick ? 'audit_cheap' : 'audit').then(function (doc) { renderAudit(doc, done); });
  }

  function initMaintenance() {
    if (!$('pcr-maint')) return;
    $('pcr-audit').addEventListener('click', function () { runAudit(); });
    $('pcr-findings').addEventListener('click', function (e) {
      if (e.target.closest('.pcr-compare')) { compareCopies(e.target.closest('.pcr-compare')); return; }
      var b = e.target.closest('.pcr-fix');
      if (!b) return;
      var kind = b.dataset.kind, msg = $('pcr-audit-msg'), keep = kind.indexOf('keep:') === 0;
      confirmAsk(keep ? 'Keep the copy on ' + b.dataset.place + '?' : 'Fix ' + fixTarget(kind) + '?', keep ?
        'Each other copy of this file is compared with it first: removed if it holds the same bytes, otherwise renamed to NAME.plexcache-discarded beside it (nothing is deleted).' :
        'The fix runs in the background and is recorded in the maintenance history.', function () {
        b.disabled = true;
        message(msg, 'Fixing...', 'busy');
        PCR.post('audit_fix', { kinds: [kind] }).then(function (r) {
          if (!r.ok) { b.disabled = false; message(msg, errorText(r), 'err'); return; }
          PCR.pollSoon();
          PCR.followJob('audit_fix', function (info) {
            var done = { text: 'Fix ' + jobSummary(info) + '.', kind: info.exit_code === 0 ? 'ok' : 'err' };
            renderFixResult((info.result || {}).fixes, done);
            if (info.result && info.result.findings) renderAudit(info.result, done); else runAudit(done);
          });
        });
      });
    });
    whenShown($('pcr-maint'), function () { runAudit(null, true); });   // opening a tab wakes no disk
  }

  // --- Logs -----------------------------------------------------------------------------------------

  var L = { offset: null, timer: null, lines: [], empty: null };
  function logParams(extra) {
    return Object.assign({ level: $('pcr-log-level').value, q: $('pcr-log-q').value, lines: $('pcr-log-lines').value,
      run: $('pcr-log-run').value, from: $('pcr-log-from').value, to: $('pcr-log-to').value }, extra || {});
  }
  // The runs the log names (each command's process id), newest first, as a picker; the chosen one stays chosen.
  function logRuns(runs) {
    var select = $('pcr-log-run'), chosen = select.value, list = (runs || []).slice().reverse();
    if (chosen && !list.some(function (r) { return r.id === chosen; })) list.unshift({ id: chosen });   // out of the window now
    fill(select, [h('option', { value: '' }, 'Every run')].concat(list.map(function (r) {
      var span = !r.first ? '' : ': ' + r.first + ' to ' + (r.last.slice(0, 10) === r.first.slice(0, 10) ? r.last.slice(11) : r.last);
      // a run's id is its start and its process (20261206-153854-4242); an older line names the process alone
      var run = /^\d{8}-\d{6}-(\d+)/.exec(r.id);
      return h('option', { value: r.id, selected: r.id === chosen }, (run ? 'Run' : 'Process ' + r.id) + span + (run ? ' (process ' + run[1] + ')' : ''));
    })));
  }
  function logLine(line, i) {
    var m = /^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL)\b/.exec(line), lv = m ? m[1].toLowerCase() : '';
    return [i ? '\n' : null, h('span', { class: 'pcr-log-' + lv }, line)];
  }
  function logRender(scroll) {
    var pre = $('pcr-log'), atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    fill(pre, L.lines.length ? L.lines.map(logLine) : h('span', { class: 'grey-text' }, L.empty || 'No log lines match.'));
    if (scroll || atEnd) pre.scrollTop = pre.scrollHeight;
  }
  function logLoad() {
    PCR.get('log', logParams()).then(function (d) {
      if (!d.ok) { $('pcr-log-info').textContent = errorText(d); return; }
      L.lines = d.lines || []; L.offset = d.offset;
      logRuns(d.runs);
      L.empty = d.size ? null : 'Nothing logged yet: the first run writes here.';
      logRender(true);
      $('pcr-log-info').textContent = d.missing ? 'The log file does not exist yet: it appears with the first run.' :
        !d.size ? 'The log is empty.' : 'Showing the last ' + L.lines.length + ' matching line(s); the log is ' + PCR.bytes(d.size) + '.';
    });
  }
  function logTail() {
    clearTimeout(L.timer);
    L.timer = setTimeout(logTail, 3000);
    if (!$('pcr-log-live').checked || L.offset == null || !visible($('pcr-log'))) return;
    PCR.get('log', logParams({ offset: L.offset })).then(function (d) {
      if (!d.ok) return;
      if (d.size < L.offset) { logLoad(); return; }   // the log was rotated
      L.offset = d.offset;
      if (d.lines && d.lines.length) {
        L.lines = L.lines.concat(d.lines).slice(-Number($('pcr-log-lines').value));
        logRender(false);
      }
    });
  }
  function initLogs() {
    if (!$('pcr-logs')) return;
    var t = null;
    ['pcr-log-level', 'pcr-log-lines', 'pcr-log-run', 'pcr-log-from', 'pcr-log-to'].forEach(function (id) { $(id).addEventListener('change', logLoad); });
    $('pcr-log-q').addEventListener('input', function () { clearTimeout(t); t = setTimeout(logLoad, 250); });
    $('pcr-log-refresh').addEventListener('click', logLoad);
    whenShown($('pcr-logs'), function () { logLoad(); logTail(); });
  }

  /** Open the Settings tab at a field (Unraid's tab bar: buttons in 7.x, labels of radio inputs in 6.12). */
  function toField(selector) {
    return function () {
      var t = document.querySelector('button#tab2, label[for=tab2]');
      if (t) t.click();
      setTimeout(function () {
        var el = document.querySelector(selector);
        if (el) { el.scrollIntoView({ block: 'center' }); if (el.focus) el.focus(); }
      }, 50);
    };
  }

  // for the other scripts of the pages (Get started and the preview, History, pins, each viewer's pace)
  Object.assign(PCR, { h: h, fill: fill, icon: icon, message: message, errorText: errorText, reasonText: reasonText,
    confirmAsk: confirmAsk, startRun: startRun, pollStatus: pollStatus, svg: svg, whenShown: whenShown,
    onFiles: onFiles, toField: toField });

  function init() { initDashboard(); initSettings(); initFiles(); initStorage(); initMaintenance(); initLogs(); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
