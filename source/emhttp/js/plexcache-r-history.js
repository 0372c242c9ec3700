/* plexcache-r: the Dashboard's History section, from `history` (docs/cli.md): a chart of the pool space cached
 * files used and of the plays served from the pool or from the array over the last 30 days (inline SVG, with the
 * figures as a table for screen readers and anyone who wants the numbers), and the recent runs with their outcome,
 * each linked to its lines on the Logs tab. Loaded after plexcache-r.js, whose helpers build every piece of markup
 * from elements and text (PCR.h, PCR.svg); it reloads when a new run has ended. */
(function () {
  'use strict';
  var PCR = window.PCR;
  if (!PCR || PCR.history) return;
  var h = PCR.h, svg = PCR.svg, fill = PCR.fill;
  var KIND = { run: 'Run', live: 'Live mode run', evict: 'Move back', recover: 'Repair', 'audit-fix': 'Health fix' };
  var SHOWN = 10;
  var state = { doc: null, all: false, lastRun: undefined, activity: [] };
  PCR.history = state;

  function $(id) { return document.getElementById(id); }
  function day(d) { return new Date(d + 'T12:00:00').toLocaleDateString(undefined, { month: 'short', day: 'numeric' }); }

  // --- the chart ---------------------------------------------------------------------------------

  var W = 720, LEFT = 64, TOP1 = 22, H1 = 70, TOP2 = 124, H2 = 48, BOTTOM = TOP2 + H2;

  /** Columns for one series: each day's value scaled to the panel; null days leave a gap. */
  function columns(days, top, height, parts, max, title) {
    var step = (W - LEFT) / days.length, width = Math.max(2, step * 0.7);
    return days.map(function (d, i) {
      var y = top + height, kids = [svg('title', null, title(d))];
      parts.forEach(function (p) {
        var v = p.value(d);
        if (!v) return;
        var hgt = Math.max(1, height * v / max);
        y -= hgt;
        kids.push(svg('rect', { x: (LEFT + i * step + (step - width) / 2).toFixed(1), y: y.toFixed(1),
          width: width.toFixed(1), height: hgt.toFixed(1), class: p.cls }));
      });
      // the whole column answers the pointer, so a day without plays still shows its figures
      kids.push(svg('rect', { x: (LEFT + i * step).toFixed(1), y: top, width: step.toFixed(1), height: height, class: 'pcr-h-hit' }));
      return svg('g', null, kids);
    });
  }
  function axis(top, height, label) {
    return [svg('line', { x1: LEFT, x2: W, y1: top + height + 0.5, y2: top + height + 0.5, class: 'pcr-h-axis' }),
      svg('text', { x: LEFT - 6, y: top + 10, class: 'pcr-h-tick', 'text-anchor': 'end' }, label),
      svg('text', { x: LEFT - 6, y: top + height, class: 'pcr-h-tick', 'text-anchor': 'end' }, '0')];
  }
  function dayLabels(days) {
    var step = (W - LEFT) / days.length, at = [0, Math.floor((days.length - 1) / 2), days.length - 1];
    return at.filter(function (v, i) { return at.indexOf(v) === i; }).map(function (i) {
      var anchor = i === 0 && days.length > 1 ? 'start' : i === days.length - 1 && days.length > 1 ? 'end' : 'middle';
      var x = anchor === 'start' ? LEFT + i * step : anchor === 'end' ? LEFT + (i + 1) * step : LEFT + (i + 0.5) * step;
      return svg('text', { x: x.toFixed(1), y: BOTTOM + 16, class: 'pcr-h-tick', 'text-anchor': anchor }, day(days[i].day));
    });
  }
  function plays(d) { return d.plays_pool + d.plays_array; }

  /** The chart's words: what a screen reader says for the picture, and the sentence under it. */
  function summary(days, known) {
    var pool = known.map(function (d) { return d.managed_bytes; });
    var total = days.reduce(function (n, d) { return n + plays(d); }, 0);
    var fromPool = days.reduce(function (n, d) { return n + d.plays_pool; }, 0);
    var low = Math.min.apply(null, pool), high = Math.max.apply(null, pool), today = pool[pool.length - 1];
    var space = !known.length ? 'No run has cached files yet.' : known.length === 1 || low === high
      ? 'Cached files used ' + PCR.bytes(today) + ' of the pool.'
      : 'Cached files used between ' + PCR.bytes(low) + ' and ' + PCR.bytes(high) + ' of the pool, ' + PCR.bytes(today) + ' now.';
    var played = !total ? 'No plays counted (live mode counts them while it runs).'
      : fromPool + ' of ' + total + ' plays were served from the pool (' + Math.round(100 * fromPool / total) + '%), '
        + (total - fromPool) + ' from the array.';
    return 'Last ' + days.length + ' days: ' + space + ' ' + played;
  }

  function figuresTable(days) {
    var rows = days.filter(function (d) { return d.managed_bytes != null || plays(d); }).reverse();
    return h('details', { class: 'pcr-h-figures' }, h('summary', null, 'The figures by day'),
      h('table', { class: 'unraid pcr-table' },
        h('thead', null, h('tr', null, h('td', null, 'Day'), h('td', { class: 'pcr-num' }, 'Pool used'),
          h('td', { class: 'pcr-num' }, 'From the pool'), h('td', { class: 'pcr-num' }, 'From the array'))),
        h('tbody', null, rows.map(function (d) {
          return h('tr', null, h('td', null, d.day), h('td', { class: 'pcr-num' }, d.managed_bytes == null ? '-' : PCR.bytes(d.managed_bytes)),
            h('td', { class: 'pcr-num' }, d.plays_pool), h('td', { class: 'pcr-num' }, d.plays_array));
        }))));
  }

  function chart(days) {
    var known = days.filter(function (d) { return d.managed_bytes != null; });
    var anyPlays = days.some(plays);
    if (!known.length && !anyPlays) {
      return h('p', { class: 'grey-text', id: 'pcr-h-summary' }, 'Nothing to draw yet: the chart fills in as runs cache files ' +
        'and, with live mode on, as plays are counted.');
    }
    var maxPool = Math.max.apply(null, known.map(function (d) { return d.managed_bytes; }).concat([1]));
    var maxPlays = Math.max.apply(null, days.map(plays).concat([1]));
    var words = summary(days, known);
    var picture = svg('svg', { class: 'pcr-h-chart', viewBox: '0 0 ' + W + ' ' + (BOTTOM + 22), width: '100%', role: 'img',
      'aria-labelledby': 'pcr-h-summary', preserveAspectRatio: 'xMinYMin meet' },
      svg('text', { x: LEFT, y: TOP1 - 8, class: 'pcr-h-name' }, 'Pool space used by cached files'),
      axis(TOP1, H1, PCR.bytes(maxPool)),
      columns(days, TOP1, H1, [{ cls: 'pcr-h-pool', value: function (d) { return d.managed_bytes; } }], maxPool, function (d) {
        return day(d.day) + ': ' + (d.managed_bytes == null ? 'no figure yet' : PCR.bytes(d.managed_bytes) + ' cached on the pool');
      }),
      svg('text', { x: LEFT, y: TOP2 - 8, class: 'pcr-h-name' }, 'Plays a day'),
      axis(TOP2, H2, String(maxPlays)),
      columns(days, TOP2, H2, [{ cls: 'pcr-h-from-pool', value: function (d) { return d.plays_pool; } },
        { cls: 'pcr-h-from-array', value: function (d) { return d.plays_array; } }], maxPlays, function (d) {
        return day(d.day) + ': ' + d.plays_pool + ' play(s) from the pool, ' + d.plays_array + ' from the array';
      }),
      dayLabels(days));
    var note = known.length === 1 ? ' One day recorded so far: the chart grows a column a day.' : '';
    return [h('div', { class: 'pcr-legend' },
      h('span', null, h('i', { class: 'pcr-key pcr-h-pool' }), 'Pool used by cached files'),
      h('span', null, h('i', { class: 'pcr-key pcr-h-from-pool' }), 'Plays from the pool'),
      h('span', null, h('i', { class: 'pcr-key pcr-h-from-array' }), 'Plays from the array (a disk spun up)')),
      picture, h('p', { class: 'pcr-small', id: 'pcr-h-summary' }, words + note), figuresTable(days)];
  }

  // --- the runs ------------------------------------------------------------------------------------

  function outcome(r) {
    var code = r.exit_code, cls = code === 0 ? 'green-text' : code === 1 ? 'orange-text' : code === 5 ? 'grey-text' : 'red-text';
    var words = PCR.words('exit_codes', code == null ? '?' : code);
    return h('td', { class: 'pcr-h-outcome' }, h('b', { class: cls }, words.charAt(0).toUpperCase() + words.slice(1)),
      r.message ? h('span', { dir: 'auto' }, ': ' + PCR.say(r.message.replace(/^dry run:\s*/i, ''))) : null,
      files(r) ? h('span', { class: 'pcr-h-files' }, ' (' + files(r) + ')') : null, itsFiles(r));
  }
  /** The files this run moved, from the recent activity that names it (the newest 50 events). */
  function itsFiles(r) {
    var events = state.activity.filter(function (a) { return a.run === r.id; });
    if (!events.length) return null;
    return h('details', { class: 'pcr-h-events' }, h('summary', null, events.length + ' file event' + (events.length === 1 ? '' : 's')),
      h('ul', null, events.map(function (a) { return h('li', { dir: 'auto' }, a.message); })));
  }
  /** What the message does not say already: the failed files of a run whose message counts the others. */
  function files(r) {
    return r.failed && !/failed/.test(r.message || '') ? r.failed + ' failed' : '';
  }
  /** Open the Logs tab on one run's lines (Unraid's tab bar: buttons in 7.x, labels of radio inputs in 6.12). */
  function showLog(id) {
    var select = $('pcr-log-run');
    if (!select) return;
    if (!select.querySelector('option[value="' + id + '"]')) select.appendChild(h('option', { value: id }, 'Run ' + id));
    select.value = id;
    var t = document.querySelector('button#tab6, label[for=tab6]');
    if (t) t.click();
    select.dispatchEvent(new Event('change'));
  }
  function runRow(r) {
    var moved = (r.bytes_cached || 0) + (r.bytes_moved_back || 0);
    var link = h('a', { href: '#', class: 'pcr-link', 'aria-label': 'Log of the run started ' + PCR.when(r.started_at) }, 'Log');
    link.addEventListener('click', function (e) { e.preventDefault(); showLog(r.id); });
    return h('tr', { 'data-run': r.id },
      h('td', { title: r.id }, PCR.when(r.started_at)),
      h('td', null, (r.dry_run ? 'Dry run' : KIND[r.kind] || r.kind) +
        (r.finished_at && r.started_at ? ' (' + PCR.duration(Math.round(r.finished_at - r.started_at)) + ')' : '')),
      outcome(r),
      h('td', { class: 'pcr-num pcr-hide-phone' }, moved ? PCR.bytes(moved) : '-'),
      h('td', { class: 'pcr-hide-phone' }, r.plays ? r.plays_from_pool + ' of ' + r.plays + ' from the pool' : '-'),
      h('td', null, link));
  }
  function runsTable(runs) {
    if (!runs.length) return h('p', { class: 'grey-text' }, 'No run yet: each run, scheduled, started here or by live mode, is listed here with its outcome.');
    var shown = state.all ? runs : runs.slice(0, SHOWN), more = null;
    if (runs.length > SHOWN) {
      more = h('input', { type: 'button', id: 'pcr-h-more', value: state.all ? 'Show fewer' : 'Show all ' + runs.length });
      more.addEventListener('click', function () { state.all = !state.all; render(); });
    }
    return [h('table', { class: 'unraid pcr-table', id: 'pcr-h-runs' },
      h('thead', null, h('tr', null, h('td', null, 'Started'), h('td', null, 'What'), h('td', null, 'Outcome'),
        h('td', { class: 'pcr-num pcr-hide-phone' }, 'Moved'),
        h('td', { class: 'pcr-hide-phone', title: 'Plays live mode saw start after this run, before the next' }, 'Plays since'),
        h('td', null, h('span', { class: 'pcr-sr' }, 'Log')))),
      h('tbody', null, shown.map(runRow))), more];
  }

  function render() {
    var doc = state.doc, box = $('pcr-runhist-body');
    if (!box || !doc) return;
    if (!doc.ok) { fill(box, h('p', { class: 'red-text' }, PCR.errorText(doc))); return; }
    fill(box, [h('div', { class: 'pcr-h-chart-box' }, chart(doc.days || [])), h('h4', null, 'Recent runs'), runsTable(doc.runs || [])]);
  }
  function load() {
    return PCR.get('history').then(function (doc) { state.doc = doc; render(); });
  }

  function init() {
    var box = $('pcr-runhist');
    if (!box) return;
    PCR.whenShown(box, load);
    // a run that ended (a new last run) is a new line in the history: read it again once shown
    PCR.statusListeners.push(function (doc) {
      var id = doc.ok && doc.state !== 'running' && doc.last_run ? doc.last_run.run_id || doc.last_run.finished_at : null;
      var known = state.activity.length;
      if (doc.ok) state.activity = doc.activity || [];
      if (state.lastRun !== undefined && id !== state.lastRun && state.doc) load();
      else if (!known && state.activity.length) render();   // the first status names each run's files
      state.lastRun = id;
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
