/* plexcache-r: Each viewer's pace on the Cached files tab: per user and show, the episodes a day learned from
 * run to run, how many next episodes that caches ahead and how many are due before the next run. The figures
 * come with the status every tab already polls (`status.pace`, fastest first, and `status.pace_settings`), so
 * nothing starts the CLI for them. Loaded after plexcache-r.js, whose PCR.h builds every piece of markup. */
(function () {
  'use strict';
  var PCR = window.PCR;
  if (!PCR || PCR.pace) return;
  PCR.pace = {};
  var h = PCR.h, fill = PCR.fill;
  var shown = null;   // what is drawn now: the status polls every 10 s, a redraw only when a figure changed

  function $(id) { return document.getElementById(id); }

  /** A figure a person reads at a glance, as `status` words it in a terminal: "4.3 a day", or for a slow
   * viewer whole episodes a week ("6 a week"; a fraction of a day reads badly); "none lately" when the
   * viewer has stopped (the 14 days hold no episode). */
  function paceWords(perDay) {
    var weekly = Math.round(perDay * 7);
    if (perDay >= 1) return perDay.toFixed(1).replace(/\.0$/, '') + ' a day';
    if (weekly >= 1) return weekly + ' a week';
    return perDay > 0 ? '1 every ' + Math.round(1 / (perDay * 7)) + ' weeks' : 'none lately';
  }
  PCR.pace.words = paceWords;

  /** A link to a setting on the Settings tab, named by the setting's own label. */
  function settingLink(key, text) {
    var a = h('a', { href: '#', class: 'pcr-link', 'data-setting': key },
      text || ((PCR.schema.keys || {})[key] || {}).label || key);
    a.addEventListener('click', function (e) { e.preventDefault(); PCR.toField('[data-key="' + key + '"]')(); });
    return a;
  }
  function deflt(key) { return ((PCR.schema.keys || {})[key] || {}).default; }
  function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }

  function row(p) {
    var folder = String(p.show).replace(/^[^/]*\//, '');   // SHARE/FOLDER: the show's folder reads as its name
    return h('tr', { 'data-per-day': p.episodes_per_day },
      h('td', { dir: 'auto', title: p.show }, folder),
      h('td', { dir: 'auto' }, p.user),
      h('td', { title: p.episodes_per_day + ' episodes a day' }, paceWords(p.episodes_per_day)),
      h('td', { class: 'pcr-num' }, String(p.ahead)),
      h('td', { class: 'pcr-num' }, String(p.due)));
  }

  function whereFrom(set) {
    return h('p', { class: 'pcr-small grey-text' },
      'Each figure is learned from run to run (how far each viewer got down their next episodes) and, at the ' +
      'first run, from Plex\'s own history of the last 14 days; a show needs three days of it. Cached ahead is ',
      plural(set.pace_days, 'day'), ' of that pace (', settingLink('demand.pace_days'), '), at most ',
      String(set.next_episodes), ' (', settingLink('demand.next_episodes'), '). Due: the episodes likely ' +
      'watched before the next run; only those wake a sleeping array disk.');
  }

  function render(doc) {
    var box = $('pcr-pace'), body = $('pcr-pace-body');
    if (!box || !doc.ok) return;   // the Dashboard says when the status cannot be read
    var set = doc.pace_settings || { on: deflt('demand.pace'), next_episodes: deflt('demand.next_episodes'),
      pace_days: deflt('demand.pace_days') };   // a status without them (an older command): the defaults
    var learned = doc.pace || [], key = JSON.stringify([set, learned]);
    if (key === shown) return;
    shown = key;
    body.className = '';
    if (!set.on) {
      box.dataset.state = 'off';
      fill(body, h('p', null, 'Learning each viewer\'s pace is off: every viewer gets the same ',
        plural(set.next_episodes, 'next episode'), ' after the one they are on. ',
        settingLink('demand.pace', 'Turn it on in Settings'), '.'));
      return;
    }
    box.dataset.state = learned.length ? 'learned' : 'empty';
    fill(body, learned.length ? [
      h('div', { class: 'pcr-table-wrap' }, h('table', { class: 'unraid pcr-table pcr-pace-table' },
        h('thead', null, h('tr', null, h('td', null, 'Show'), h('td', null, 'Viewer'), h('td', null, 'Pace'),
          h('td', { class: 'pcr-num', title: 'Next episodes kept cached for this viewer' }, 'Cached ahead'),
          h('td', { class: 'pcr-num', title: 'Next episodes likely watched before the next run' }, 'Due by the next run'))),
        h('tbody', null, learned.map(row)))),
      whereFrom(set)] : [
      h('p', null, 'Nothing learned yet: a viewer\'s pace shows here once they have watched a show over three ' +
        'days or more.'),
      whereFrom(set)]);
  }

  PCR.statusListeners.push(render);
})();
