"""The pages in headless Chromium, inside Unraid's own page template (the newest stable webGui release),
every request through Unraid's local_prepend.php, driving the stand-in CLI. The other releases get the
smoke set in test_pages_smoke.py.

Covers: every tab in the light and the dark theme (screenshots in $ARTIFACTS_DIR), a setting saved, a
validation message next to its field, Run now with live progress, Stop, live mode's channel, Move back
from the table, Plex PIN sign-in, 10,000 files paged, sorted, filtered, then pinned and moved back whole,
file names made of markup shown as text on every tab that lists files, a stale csrf_token explained, the
Logs tab on a fresh install, a phone-width layout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pages_harness import webgui
from pages_harness.browser import confirm, open_page, open_settings, shot, tab
from pages_harness.fake_cli import HOSTILE, XSS
from pages_harness.fixtures import PAGE_MARKS, browser_fixture
from pages_harness.harness import Sandbox, Server, make_sandbox
from realtime import ms

pytestmark = PAGE_MARKS
browser = browser_fixture()
VERSION = webgui.NEWEST_STABLE


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Server]]:
    box = make_sandbox(tmp_path_factory.mktemp("pages"), VERSION)
    box.extra_env.update({"PCR_FAKE_STEP": "0.3", "PCR_FAKE_LOGIN_WAIT": "1"})
    with Server(box) as server:
        yield box, server
    assert box.php_errors() == []


def test_every_tab_in_both_themes_is_captured(browser: object, served: tuple[Sandbox, Server]) -> None:
    _, server = served
    for theme, suffix in (("white", ""), ("black", "-dark")):
        page = open_page(browser, server, theme=theme)
        page.wait_for_selector("#pcr-count:not(:text('-'))")
        page.wait_for_selector("#pcr-plex .green-text")
        page.wait_for_selector("#pcr-activity li b")
        assert "Mover Tuning" in page.inner_text("#pcr-warnings")
        shot(page, f"dashboard{suffix}")
        tab(page, "settings")
        page.wait_for_function("document.querySelector('[data-key=\"plex.url\"]').value !== ''")
        assert page.input_value('[data-key="plex.token"]') == "********"
        shot(page, f"settings{suffix}")
        tab(page, "files")
        page.wait_for_selector("#pcr-files-body tr[data-path]")
        shot(page, f"files{suffix}")
        tab(page, "storage")
        page.wait_for_selector("#pcr-by-library svg")
        page.wait_for_selector("#pcr-plays p")
        assert "live mode" in page.inner_text("#pcr-plays")  # plays are only counted while live mode runs
        shot(page, f"storage{suffix}")
        tab(page, "maintenance")
        page.wait_for_selector("#pcr-findings .pcr-notice")
        assert "All good" in page.inner_text("#pcr-findings")
        shot(page, f"maintenance{suffix}")
        tab(page, "logs")
        page.wait_for_selector("#pcr-log span")
        shot(page, f"logs{suffix}")
        assert page.errors == [] and page.dialogs == []
        assert "sandbox-secret-token" not in page.content()
        page.close()


def test_a_setting_is_saved_through_the_cli(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    page = open_settings(browser, server, "demand.on_deck_items")
    field = '[data-key="demand.on_deck_items"]'
    page.fill(field, "7")
    page.select_option('[data-key="schedule.mode"]', "interval")
    assert page.is_visible('[data-key="schedule.interval_hours"]')
    page.click("#pcr-apply")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok")
    saved = box.settings()
    assert saved["demand"]["on_deck_items"] == 7 and saved["schedule"]["mode"] == "interval"
    assert saved["plex"]["token"] == "sandbox-secret-token", "the masked token was kept"
    assert page.is_disabled("#pcr-apply")
    page.close()


def test_a_bad_value_shows_its_problem_next_to_the_field(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    before = box.config.read_bytes()
    page = open_page(browser, server)
    tab(page, "settings")
    page.wait_for_function("document.querySelector('[data-key=\"cache.min_free\"]').value !== ''")
    page.fill('[data-key="cache.min_free"]', "lots")
    page.click("#pcr-mappings .pcr-del-row")
    page.click('.pcr-add-row[data-for="pcr-mappings"]')
    page.fill('#pcr-mappings tbody tr:last-child [data-field="plex"]', "data/tv")
    page.fill('#pcr-mappings tbody tr:last-child [data-field="share"]', "/mnt/user/tv")
    page.click("#pcr-apply")
    problem = page.wait_for_selector('.pcr-problem[data-problem="cache.min_free"]')
    assert "expected a size" in problem.inner_text()
    dd = page.locator('dd:has([data-key="cache.min_free"])')
    assert dd.locator(".pcr-problem").count() == 1, "the message sits next to its field"
    assert "Nothing was saved" in page.inner_text("#pcr-settings-msg")
    shot(page, "settings-validation")
    assert box.config.read_bytes() == before
    page.close()


def test_run_now_shows_progress_until_done(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    files_before = len(box.cli_json("list")["files"])
    hold = box.path("state_dir") / "fake-hold"   # the run waits at its first file until the page has shown it
    hold.parent.mkdir(parents=True, exist_ok=True)
    hold.write_text("")
    page = open_page(browser, server)
    page.wait_for_selector("#pcr-count:not(:text('-'))")
    page.click("#pcr-run")
    page.wait_for_selector("#pcr-banner:not([hidden])")
    page.wait_for_function("document.getElementById('pcr-banner-file').textContent.indexOf('/mnt/user/') === 0")
    facts = page.inner_text(".pcr-banner-facts")
    assert re.search(r"\d+ / 6 files", facts) and "/s" in facts and "ETA" in facts
    shot(page, "dashboard-running")
    hold.unlink()
    page.wait_for_selector("#pcr-run-msg.pcr-ok", timeout=ms(60))
    page.wait_for_selector("#pcr-banner", state="hidden")
    page.wait_for_selector("#pcr-last:has-text('6 cached')")
    assert "1 file(s) could not be cached" in page.inner_text("#pcr-warnings")  # a stray backup beside it
    assert len(box.cli_json("list")["files"]) == files_before + 6
    page.wait_for_function(f"document.getElementById('pcr-count').textContent === '{files_before + 6}'")
    page.close()


def test_stop_ends_a_run_after_the_current_file(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    hold = box.path("state_dir") / "fake-hold"   # the run waits at its first file: Stop lands while it is in flight
    hold.parent.mkdir(parents=True, exist_ok=True)  # no run may have made the state folder yet
    hold.write_text("")
    page = open_page(browser, server)
    page.click("#pcr-run")
    page.wait_for_selector("#pcr-banner:not([hidden])")
    page.click("#pcr-stop")
    page.wait_for_selector("#pcr-run-msg.pcr-err", timeout=ms(60))
    assert "stopped" in page.inner_text("#pcr-run-msg")
    assert box.cli_json("status")["last_run"]["exit_code"] == 5
    page.wait_for_selector("#pcr-last:has-text('stopped on request')")   # the status poll after the job
    page.close()


def test_a_run_is_visible_on_every_tab_with_stop(browser: object, served: tuple[Sandbox, Server]) -> None:
    """Started on the Dashboard, a run shows on whichever tab is open, with its own Stop."""
    box, server = served
    hold = box.path("state_dir") / "fake-hold"   # the run waits at its first file until Stop
    hold.parent.mkdir(parents=True, exist_ok=True)
    hold.write_text("")
    page = open_page(browser, server)
    assert page.is_hidden("#pcr-runbar")
    page.click("#pcr-run")
    page.wait_for_selector("#pcr-banner:not([hidden])")
    assert page.is_hidden("#pcr-runbar"), "on the Dashboard its own banner shows the run"
    for name in ("settings", "files", "storage", "maintenance", "logs"):
        tab(page, name)
        page.wait_for_selector("#pcr-runbar:not([hidden])")
        page.wait_for_function("/\\d+%/.test(document.getElementById('pcr-runbar').textContent)")
    shot(page, "logs-while-running")
    page.click("#pcr-runbar-stop")
    page.wait_for_selector("#pcr-runbar", state="hidden", timeout=ms(60))
    assert box.cli_json("status")["last_run"]["exit_code"] == 5
    assert page.errors == []
    page.close()


def test_dashboard_says_how_live_mode_follows_plex(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    state_file = box.path("volatile_dir") / "live.json"
    state_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        for channel, words in (("notifications", "following Plex notifications"), ("polling", "polling Plex")):
            state_file.write_text(json.dumps({"channel": channel, "plays": 3, "plays_from_pool": 2,
                                              "since": 1_700_000_000, "sessions": [], "pending": []}))
            page = open_page(browser, server)
            page.wait_for_selector("#pcr-live .green-text")
            assert page.inner_text("#pcr-live") == f"running, {words}"
            page.close()
    finally:
        state_file.unlink(missing_ok=True)


def test_move_back_one_file_from_the_table(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    page = open_page(browser, server)
    tab(page, "files")
    row = page.wait_for_selector("#pcr-files-body tr[data-path]")
    path = row.get_attribute("data-path")
    row.query_selector('[data-act="evict"]').click()
    confirm(page)
    page.wait_for_selector("#pcr-files-msg.pcr-ok")
    assert "Moved back 1" in page.inner_text("#pcr-files-msg")
    assert path not in [f["path"] for f in box.cli_json("list")["files"]]
    page.wait_for_function("p => !document.querySelector(`#pcr-files-body tr[data-path=\"${p}\"]`)", arg=path)
    page.close()


def test_sign_in_with_a_plex_pin(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    page = open_page(browser, server)
    tab(page, "settings")
    page.click("#pcr-signin")
    page.wait_for_function("document.getElementById('pcr-pin-code').textContent === 'K4T9'")
    assert page.get_attribute("#pcr-pin-link", "href") == "https://plex.tv/link"
    page.wait_for_selector("#pcr-pin-state.pcr-ok")
    assert box.settings()["plex"]["token"] == "fake-token-signed-in"
    assert "fake-token-signed-in" not in page.content()
    page.close()


def test_a_stale_token_is_explained_and_changes_nothing(browser: object, served: tuple[Sandbox, Server]) -> None:
    """After a server restart Unraid has a new csrf_token; a page loaded before it is refused by Unraid."""
    box, server = served
    page = open_page(browser, server)
    tab(page, "settings")
    page.wait_for_function("document.querySelector('[data-key=\"demand.on_deck_items\"]').value !== ''")
    before = box.config.read_bytes()
    box.unraid.set_token("RESTARTED")
    try:
        page.fill('[data-key="demand.on_deck_items"]', "9")
        page.click("#pcr-apply")
        page.wait_for_selector("#pcr-settings-msg.pcr-err")
        assert "Reload the page" in page.inner_text("#pcr-settings-msg")
        assert box.config.read_bytes() == before
    finally:
        box.unraid.set_token(box.token)
    page.close()


def test_the_logs_tab_on_a_fresh_install(browser: object, tmp_path: Path) -> None:
    """The installer creates the log empty; the tab and its live tail must work on it."""
    box = make_sandbox(tmp_path, VERSION)
    log = box.path("log_dir") / "plexcache-r.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"")
    box.extra_env["PCR_FAKE_FILES"] = "0"
    (box.path("state_dir")).mkdir(parents=True)
    (box.path("state_dir") / "fake.json").write_text(json.dumps({"files": [], "last_run": None,
                                                                 "pool_total": 10**12, "pool_other": 10**11}))
    with Server(box) as server:
        page = open_page(browser, server)
        tab(page, "logs")
        page.wait_for_function("document.getElementById('pcr-log-info').textContent === 'The log is empty.'")
        assert "Nothing logged yet" in page.inner_text("#pcr-log")
        with log.open("a") as fh:
            fh.write("2026-01-01 10:00:00,000 INFO    plexcache.engine: the first line\n")
        page.wait_for_selector("#pcr-log .pcr-log-info", timeout=ms(30))   # the live tail polls every 3 s
        assert "the first line" in page.inner_text("#pcr-log")
        assert page.errors == []
        page.close()
    assert box.php_errors() == []


def test_ten_thousand_files_paged_filtered_then_pinned_and_moved_back_whole(browser: object, tmp_path: Path) -> None:
    box = make_sandbox(tmp_path, VERSION)
    box.extra_env["PCR_FAKE_FILES"] = "10000"
    with Server(box) as server:
        page = open_page(browser, server)
        tab(page, "files")
        page.wait_for_selector("#pcr-files-body tr[data-path]", timeout=ms(60))
        assert page.locator("#pcr-files-body tr").count() == 100
        assert "of 10000" in page.inner_text("#pcr-page-info")
        page.click('#pcr-files-table [data-sort="size"]')
        sizes = page.eval_on_selector_all("#pcr-files-body tr", "rows => rows.map(r => r.children[4].textContent)")
        assert sizes[0].endswith("GB")
        page.fill("#pcr-filter", "movie 0999")
        page.wait_for_function("document.getElementById('pcr-page-info').textContent.indexOf('filtered') >= 0")
        titles = page.eval_on_selector_all("#pcr-files-body tr", "rows => rows.map(r => r.children[1].textContent)")
        assert titles and all("movie" in t.lower() and "0999" in t for t in titles), "every word must match"
        page.fill("#pcr-filter", "")
        page.wait_for_function("document.getElementById('pcr-page-info').textContent.indexOf('filtered') < 0")
        page.click("#pcr-check-all")
        assert page.inner_text("#pcr-sel-info") == "100 selected"
        page.click("#pcr-select-all")
        assert page.inner_text("#pcr-sel-info") == "10000 selected"
        page.click("#pcr-bulk-pin")
        page.wait_for_selector("#pcr-files-msg.pcr-ok", timeout=ms(60))
        assert page.inner_text("#pcr-files-msg") == "Pinned 10000 file(s)."
        assert all(f["pinned"] for f in box.cli_json("list")["files"])
        page.click("#pcr-bulk-evict")
        confirm(page)
        page.wait_for_function("document.getElementById('pcr-files-msg').textContent.indexOf('Moved back') === 0",
                               timeout=ms(120))
        assert page.inner_text("#pcr-files-msg") == "Moved back 10000 file(s)."
        assert box.cli_json("list")["files"] == []
        page.wait_for_selector("#pcr-files-body :text('No files are cached yet.')")
        assert page.errors == []
        page.close()
    assert box.php_errors() == []


def test_file_names_made_of_markup_are_text_on_every_tab(browser: object, tmp_path: Path) -> None:
    """A file named <img src=x onerror=alert(1)>.mkv (and one with quotes and ampersands) is shown as
    text on the Dashboard, Cached files (with a show and a viewer of such names in Each viewer's pace),
    Storage, Maintenance and Logs tabs; nothing of it runs. Fix
    works on its finding."""
    box = make_sandbox(tmp_path, VERSION)
    box.extra_env["PCR_FAKE_HOSTILE"] = "1"
    made_of_names = ("document.querySelectorAll('img[src=x]').length + [...document.querySelectorAll('b, i')]"
                     ".filter(e => /^(alice|bob|more)$/.test(e.textContent)).length")
    with Server(box) as server:
        page = open_page(browser, server)
        page.wait_for_selector("#pcr-activity li b")
        shown = page.inner_text("#pcr-dashboard")
        assert f"{XSS}.mkv" in shown and HOSTILE[1][0] in shown and f"cannot read {HOSTILE[1][1]}" in shown
        tab(page, "files")
        page.wait_for_selector("#pcr-files-body tr[data-path]")
        cells = page.inner_text("#pcr-files-body")
        assert f"{XSS}.mkv" in cells and HOSTILE[1][1] in cells and "<i>alice</i>" in cells
        page.wait_for_selector("#pcr-pace tbody tr")
        pace = page.inner_text("#pcr-pace tbody")
        assert XSS in pace and "<i>bob</i>" in pace and "2.5 a day" in pace, pace
        tab(page, "storage")
        page.wait_for_selector("#pcr-largest tr")
        assert f"Films {XSS}" in page.inner_text("#pcr-by-library")
        tab(page, "maintenance")
        page.wait_for_selector('.pcr-finding[data-kind="orphaned"]')
        assert HOSTILE[1][0] in page.inner_text("#pcr-findings") and HOSTILE[0][1] in page.inner_text("#pcr-history")
        tab(page, "logs")
        page.wait_for_selector("#pcr-log .pcr-log-warning")
        assert HOSTILE[0][1] in page.inner_text("#pcr-log")
        shot(page, "hostile-names-logs")
        assert page.evaluate(made_of_names) == 0, "an element was made from a file name"
        tab(page, "maintenance")
        page.click('.pcr-fix[data-kind="orphaned"]')
        confirm(page)
        page.wait_for_selector("#pcr-audit-msg.pcr-ok:has-text('Fix')", timeout=ms(60))
        assert page.dialogs == [] and page.errors == [], "nothing of a file name may run"
        page.close()
    assert box.php_errors() == []


def test_phone_width_layout(browser: object, served: tuple[Sandbox, Server]) -> None:
    _, server = served
    page = open_page(browser, server, width=390, height=844)
    page.wait_for_selector("#pcr-count:not(:text('-'))")
    for name in ("dashboard", "settings", "files"):
        tab(page, name)
        page.wait_for_timeout(300)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} scrolls sideways on a phone by {overflow}px"
        shot(page, f"phone-{name}")
    page.close()
