/* plexcache-r: Pin a movie, show or season on the Cached files tab. Searches Plex's titles (`plex search`), pins
 * one by its rating key (`pin --key`: the next run caches it, as far as the pool has room) and lists the pinned
 * titles with Unpin (from `list`). Loaded after plexcache-r.js, whose PCR.h builds every piece of markup. */
(function () {
  'use strict';
  var PCR = window.PCR;
  if (!PCR || PCR.pins) return;
  PCR.pins = {};
  var h = PCR.h, fill = PCR.fill, message = PCR.message;
  var KIND = { movie: 'Movie', show: 'Show', season: 'Season' };

  function $(id) { return document.getElementById(id); }

  function pinButton(r) {
    var label = r.pinned ? 'Pinned' : r.kind === 'show' ? 'Pin the show' : 'Pin';
    var b = h('input', { type: 'button', class: 'pcr-title-pin', value: label, disabled: !!r.pinned,
      'data-key': r.rating_key, 'aria-label': (r.pinned ? 'Pinned: ' : 'Pin ') + r.title });
    b.addEventListener('click', function () { askThenPin(r, b); });
    return b;
  }
  /** A show or a season pins every episode, watched ones too, ahead of what anyone is watching: say so first. */
  function askThenPin(r, button) {
    if (r.kind !== 'show' && r.kind !== 'season') { pin(r, button); return; }
    var what = r.episodes != null ? 'all ' + r.episodes + ' episode' + (r.episodes === 1 ? '' : 's') + ' of ' + r.title
      : 'every episode of ' + r.title;
    PCR.confirmAsk('Pin ' + what + '?', 'Pinned files are cached ahead of what anyone is watching, watched episodes ' +
      'too, and stay on the pool until you unpin them. A large show can push people\'s next episodes back to the array.',
      function () { pin(r, button); });
  }
  function describe(r) {
    var parts = [KIND[r.kind] || r.kind, r.library];
    if (r.episodes != null) parts.push(r.episodes + ' episode' + (r.episodes === 1 ? '' : 's'));
    return parts.filter(Boolean).join(' \u00b7 ');
  }
  function resultRow(r) {
    var seasons = (r.seasons || []).map(function (s) {
      return h('li', { 'data-key': s.rating_key }, h('span', { dir: 'auto' }, s.title.replace(/^.* - /, '')),
        s.episodes != null ? h('span', { class: 'grey-text pcr-small' }, ' ' + s.episodes + ' episode' + (s.episodes === 1 ? '' : 's')) : null,
        ' ', pinButton(s));
    });
    return h('li', { 'data-key': r.rating_key },
      h('b', { dir: 'auto' }, r.title), ' ', h('span', { class: 'grey-text pcr-small' }, describe(r)), ' ', pinButton(r),
      seasons.length ? h('ul', { class: 'pcr-title-seasons', 'aria-label': 'Seasons of ' + r.title }, seasons) : null);
  }
  function search(e) {
    e.preventDefault();
    var q = $('pcr-title-q').value.trim(), box = $('pcr-title-results');
    if (!q) { $('pcr-title-q').focus(); return; }
    message($('pcr-title-msg'), 'Searching Plex...', 'busy');
    PCR.get('plex_search', { q: q }).then(function (doc) {
      if (!doc.ok) { message($('pcr-title-msg'), PCR.errorText(doc), 'err'); fill(box, null); return; }
      var list = doc.results || [];
      message($('pcr-title-msg'), list.length ? list.length + ' title(s) found.' : 'Nothing in the libraries PlexCache-R reads matches "' + q + '".', list.length ? 'ok' : 'busy');
      fill(box, list.length ? h('ul', { class: 'pcr-title-list' }, list.map(resultRow)) : null);
    });
  }
  function pin(r, button) {
    button.disabled = true;
    message($('pcr-title-msg'), 'Asking Plex about ' + r.title + '...', 'busy');
    PCR.post('pin_title', { key: r.rating_key }).then(function (doc) {
      if (!doc.ok) { button.disabled = false; message($('pcr-title-msg'), PCR.errorText(doc), 'err'); return; }
      r.pinned = true;
      button.value = 'Pinned';
      message($('pcr-title-msg'), doc.message || 'Pinned.', 'ok');
      PCR.files(true);
    });
  }
  function unpin(t, button) {
    button.disabled = true;
    PCR.post('unpin_title', { key: t.rating_key }).then(function (doc) {
      if (!doc.ok) { button.disabled = false; message($('pcr-title-msg'), PCR.errorText(doc), 'err'); return; }
      message($('pcr-title-msg'), 'Unpinned ' + t.title + ': the usual rules decide again at the next run.', 'ok');
      var shown = document.querySelector('#pcr-title-results input[data-key="' + t.rating_key + '"]');
      if (shown) { shown.disabled = false; shown.value = 'Pin'; }
      PCR.files(true);
    });
  }
  function renderPinned(doc) {
    var titles = (doc && doc.ok && doc.pinned_titles) || [], box = $('pcr-titles-pinned');
    fill(box, !titles.length ? null : [h('span', { class: 'pcr-small' }, 'Pinned titles: '),
      h('ul', { class: 'pcr-titles-pinned' }, titles.map(function (t) {
        var b = h('input', { type: 'button', value: 'Unpin', class: 'pcr-title-unpin', 'aria-label': 'Unpin ' + t.title });
        b.addEventListener('click', function () { unpin(t, b); });
        return h('li', { 'data-key': t.rating_key }, h('span', { dir: 'auto' }, t.title),
          h('span', { class: 'grey-text pcr-small' }, ' ' + (KIND[t.kind] || t.kind) + ', pinned ' + PCR.ago(t.pinned_at)), ' ', b);
      }))]);
  }

  function init() {
    var form = $('pcr-title-form');
    if (!form) return;
    form.addEventListener('submit', search);
    PCR.onFiles(renderPinned);
    PCR.whenShown($('pcr-pin-title'), function () { PCR.files().then(renderPinned); });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
