"""The pages against the real `plexcache-r` and the Plex simulator (Chromium, Unraid's own template and
local_prepend.php): controls that do what they say, activity in the user's words, findings that can be
acted on, files that read right in any language, and a form a keyboard and a screen reader can use.

Covers: Apply starts and stops live mode and the Dashboard shows its real state; Recent activity with
titles, users, reasons and each file's finish time; Pin and Unpin told apart, a pinned file's reason, search
without accents, right-to-left names; every settings control named, the files table sorted from the keyboard,
the section index and Apply in reach.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pages_harness.browser import confirm, open_page, open_settings, shot, tab
from pages_harness.fixtures import PAGE_MARKS, browser_fixture, real_fixture
from pages_harness.harness import Sandbox, Server
from pages_harness.realworld import a_cached_file, cached_files
from realtime import ms

pytestmark = PAGE_MARKS
browser = browser_fixture()

LIVE = '[data-key="live.enabled"]'
RTL = "\u05d7\u05d5\u05dc\u05d9\u05ea"   # Dune, in Hebrew


def world(text: str) -> str:
    """Titles in other scripts: one with an accent, one written right to left."""
    return text.replace("Arrival", "Amélie").replace("Dune", RTL)


real = real_fixture("items", world_text=world)


def apply(page: object) -> str:
    page.click("#pcr-apply")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok", timeout=ms(60))
    return page.inner_text("#pcr-settings-msg")


def live_running(box: Sandbox) -> bool:
    return bool(box.cli_json("status")["live"]["running"])


def test_apply_starts_and_stops_live_mode(browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    page = open_settings(browser, server)
    page.select_option(LIVE, "true")
    assert "Live mode is on" in apply(page)
    assert box.settings()["live"]["enabled"] is True
    tab(page, "dashboard")
    page.wait_for_selector("#pcr-live .green-text", timeout=ms(60))   # running, as status reads its lock
    assert live_running(box)
    shot(page, "items-live-running")
    tab(page, "settings")
    page.select_option(LIVE, "false")
    assert "Live mode is off" in apply(page)
    assert not live_running(box)
    tab(page, "dashboard")
    page.wait_for_function("document.getElementById('pcr-live').textContent === 'disabled'", timeout=ms(60))
    assert page.errors == []
    page.close()


def test_every_settings_control_has_a_name_a_screen_reader_reads(browser: object,
                                                                 real: tuple[Sandbox, Server]) -> None:
    """Every control of the form, rows included, named as a screen reader names it."""
    box, server = real
    page = open_settings(browser, server)
    page.click("#pcr-adv-toggle")
    if not page.locator("#pcr-overrides tbody tr").count():
        page.click('.pcr-add-row[data-for="pcr-overrides"]')
    controls = page.locator("#pcr-settings input:not([type=button]):not([type=hidden]), #pcr-settings select, "
                            "#pcr-settings [role=group]")
    unnamed = []
    for i in range(controls.count()):
        control = controls.nth(i)
        name = control.evaluate("el => el.getAttribute('aria-label') || (el.labels && el.labels[0] && "
                                "el.labels[0].textContent) || (el.getAttribute('aria-labelledby') && "
                                "document.getElementById(el.getAttribute('aria-labelledby')).textContent) || ''")
        if not name.strip():
            unnamed.append(control.evaluate("el => el.outerHTML.slice(0, 120)"))
    assert not unnamed, unnamed
    # Playwright finds a control by its accessible name (label, aria-label, aria-labelledby): every setting's
    # control answers to its label in the schema
    keys = box.cli_json("config", "schema")["keys"]
    for key in page.eval_on_selector_all("#pcr-settings [data-key]", "els => els.map(e => e.dataset.key)"):
        named = page.get_by_label(keys[key]["label"], exact=True)
        assert named.count() >= 1 and key in named.evaluate_all("els => els.map(e => e.dataset.key)"), key
    assert page.get_by_label("Plex Home PIN", exact=True).count() >= 1
    page.close()


def test_settings_has_a_section_index_and_apply_in_reach(browser: object, real: tuple[Sandbox, Server]) -> None:
    _, server = real
    page = open_settings(browser, server)
    page.fill('[data-key="demand.next_episodes"]', "3")       # something to apply
    page.click('#pcr-settings-index a[data-to="pcr-s-schedule"]')
    page.wait_for_function("Math.abs(document.getElementById('pcr-s-schedule').getBoundingClientRect().top) < 200")
    apply_box = page.locator("#pcr-apply").bounding_box()
    assert apply_box is not None and 0 <= apply_box["y"] <= page.viewport_size["height"], "Apply stays on screen"
    shot(page, "items-settings-index")
    page.locator("#pcr-settings-index a").first.focus()    # the first stop of the form
    where = ("document.activeElement.dataset.to || document.activeElement.id || "
             "document.activeElement.tagName + ':' + document.activeElement.textContent.slice(0, 20)")
    visited = [page.evaluate(where)]
    while visited[-1] != "pcr-apply" and len(visited) < 64:
        page.keyboard.press("Tab")
        visited.append(page.evaluate(where))
    assert len(visited) < 12, f"Apply is {len(visited)} Tab presses from the top of the form: {visited}"
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement.id === 'pcr-apply'")
    page.close()


def test_the_files_table_sorts_from_the_keyboard(browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    if not box.cli_json("list")["files"]:
        box.cli_json("run")
    page = open_page(browser, server)
    tab(page, "files")
    page.wait_for_selector("#pcr-files-body tr[data-path]")
    header = page.locator('#pcr-files-table [data-sort="size"]')
    assert header.get_attribute("tabindex") == "0" or header.locator("button").count() == 1
    header.focus() if header.get_attribute("tabindex") == "0" else header.locator("button").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#pcr-files-table [data-sort=\"size\"]')"
                           ".getAttribute('aria-sort') !== 'none'")
    first = page.get_attribute('#pcr-files-table [data-sort="size"]', "aria-sort")
    page.keyboard.press(" ")
    page.wait_for_function("document.querySelector('#pcr-files-table [data-sort=\"size\"]')"
                           f".getAttribute('aria-sort') !== '{first}'")
    page.close()


def test_recent_activity_names_titles_users_and_reasons_at_each_files_time(browser: object,
                                                                           real: tuple[Sandbox, Server]) -> None:
    box, server = real
    cached_files(box)
    status = box.cli_json("status")
    started = status["last_run"]["started_at"]
    cached = [a for a in status["activity"] if a["kind"] == "cached"]
    assert cached and all(a["title"] and a["users"] and a["reasons"] for a in cached)
    assert all(a["done_at"] > started for a in cached), "each file's own time, not the run's start"
    page = open_page(browser, server)
    page.wait_for_selector('#pcr-activity li[data-kind="cached"]')
    first = page.locator('#pcr-activity li[data-kind="cached"]').first
    text = first.inner_text()
    newest = cached[0]
    assert newest["title"] in text and f"for {newest['users'][0]}" in text
    words = box.cli_json("config", "schema")["vocabulary"]["reasons"]
    assert words[newest["reasons"][0]["source"]] in text
    assert first.locator(".pcr-when").get_attribute("title") == page.evaluate(f"PCR.when({newest['done_at']})")
    for line in page.locator('#pcr-activity li[data-kind="cached"]').all_inner_texts():
        for group in re.findall(r"\(([^()]*)\)", line.split(" for ", 1)[-1]):
            reasons = [r.strip() for r in group.split(",")]
            assert len(reasons) == len(set(reasons)), f"a reason shown twice for one user: {line}"
    shot(page, "items-activity")
    assert page.errors == []
    page.close()


def test_pin_and_unpin_differ_and_a_pinned_file_says_why(browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    target = next(f for f in cached_files(box) if f["reasons"] and not f["pinned"])
    page = open_page(browser, server)
    tab(page, "files")
    row = page.locator(f'#pcr-files-body tr[data-path="{target["path"]}"]')
    row.wait_for()
    why = row.locator("td").nth(3).inner_text()
    pin = row.locator(".pcr-act[data-act=pin]")
    pin_look = pin.evaluate("a => [getComputedStyle(a).color, a.innerHTML]")
    pin.click()
    page.wait_for_selector(f'#pcr-files-body tr[data-path="{target["path"]}"] .pcr-act[data-act=unpin]')
    unpin = row.locator(".pcr-act[data-act=unpin]")
    unpin_look = unpin.evaluate("a => [getComputedStyle(a).color, a.innerHTML]")
    assert pin_look[0] != unpin_look[0] and pin_look[1] != unpin_look[1], "Pin and Unpin look the same"
    assert unpin.get_attribute("title") != pin.get_attribute("title") if pin.count() else True
    reason = row.locator("td").nth(3).inner_text()
    assert reason.startswith("Pinned") and why in reason, f"{reason!r} no longer says {why!r}"
    shot(page, "items-pinned")
    unpin.click()
    page.wait_for_selector(f'#pcr-files-body tr[data-path="{target["path"]}"] .pcr-act[data-act=pin]')
    assert page.errors == []
    page.close()


def test_search_ignores_accents_and_names_keep_their_direction(browser: object,
                                                              real: tuple[Sandbox, Server]) -> None:
    box, server = real
    titles = {f["title"]: f for f in cached_files(box)}
    assert "Amélie" in titles and RTL in titles, sorted(titles)
    page = open_page(browser, server)
    tab(page, "files")
    page.wait_for_selector("#pcr-files-body tr[data-path]")
    page.fill("#pcr-filter", "amelie")
    page.wait_for_function("document.querySelectorAll('#pcr-files-body tr[data-path]').length === "
                           f"{sum(1 for f in titles.values() if 'Amélie' in f['title'] or 'Amélie' in f['path'])}")
    assert "Amélie" in page.inner_text("#pcr-files-body")
    page.fill("#pcr-filter", "")
    name = page.locator(f'#pcr-files-body tr[data-path="{titles[RTL]["path"]}"] .pcr-title span').first
    name.wait_for()
    assert name.evaluate("el => getComputedStyle(el).direction") == "rtl"
    latin = page.locator(f'#pcr-files-body tr[data-path="{titles["Amélie"]["path"]}"] .pcr-title span').first
    assert latin.evaluate("el => getComputedStyle(el).direction") == "ltr"
    shot(page, "items-files-rtl")
    page.close()


def test_maintenance_groups_alike_findings_shows_copies_and_keeps_a_fixs_result(
        browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    rel, backup, other = a_cached_file(box)
    paths = box.settings()["paths"]
    second = other / f"{rel}.plexcached"
    second.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(backup, second)                      # a second backup on another disk: a duplicate
    ignore = Path(paths["exclusion_list"])
    kept = ignore.read_bytes()
    ignore.unlink()                                      # every cached file unprotected: alike findings
    try:
        unprotected = [f for f in box.cli_json("audit")["findings"] if f["kind"] == "unprotected"]
        assert len(unprotected) > 1
        page = open_page(browser, server)
        tab(page, "maintenance")
        page.click("#pcr-audit")                         # the full check reads the array disks
        group = page.wait_for_selector('.pcr-finding[data-kind="unprotected"]', timeout=ms(60))
        assert page.locator('.pcr-finding[data-kind="unprotected"] li.pcr-alike').count() == 1
        assert f"\u00d7{len(unprotected)}" in group.inner_text()
        dup = page.wait_for_selector('.pcr-finding[data-kind="duplicate"]')
        copies = dup.inner_text()
        assert str(backup) in copies and str(second) in copies, "both copies shown"
        shot(page, "items-maintenance-findings")
        page.click('.pcr-fix[data-kind="unprotected"]')
        confirm(page)
        page.wait_for_selector("#pcr-fix-result li", timeout=ms(60))
        page.wait_for_function("!document.getElementById('pcr-audit').disabled", timeout=ms(60))
        result = page.inner_text("#pcr-fix-result")
        assert f"Protect: {len(unprotected)} done" in result, result
        assert not page.locator('.pcr-finding[data-kind="unprotected"]').count()
        shot(page, "items-maintenance-fixed")
        assert page.errors == []
        page.close()
    finally:
        second.unlink(missing_ok=True)
        if not ignore.exists():
            ignore.write_bytes(kept)
