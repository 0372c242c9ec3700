"""The pages in headless Chromium, served by php -S through the harness, driving the plexcache-r CLI.

Covers: every tab loads without a script error (screenshots in $ARTIFACTS_DIR), a setting saved through
`config set`, a validation message next to its field, Run now with live progress to completion, Stop,
Move back from the files table, how live mode follows Plex, Plex PIN sign-in, 10,000 files paged
client-side, and a phone-width layout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pages_harness.browser import CHROMIUM, chromium, open_page, shot, tab
from pages_harness.harness import Sandbox, Server, make_sandbox

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Server]]:
    box = make_sandbox(tmp_path_factory.mktemp("pages"))
    box.extra_env.update({"PCR_FAKE_STEP": "0.3", "PCR_FAKE_LOGIN_WAIT": "1"})
    with Server(box) as server:
        yield box, server


def test_every_tab_loads_and_is_captured(browser: object, served: tuple[Sandbox, Server]) -> None:
    _, server = served
    for theme in ("black", "white"):
        page = open_page(browser, server, theme=theme)
        page.wait_for_selector("#pcr-count:not(:text('-'))")
        page.wait_for_selector("#pcr-plex .green-text")
        page.wait_for_selector("#pcr-activity li b")
        assert "Mover Tuning" in page.inner_text("#pcr-warnings")
        suffix = "" if theme == "white" else "-dark"
        shot(page, f"dashboard{suffix}")
        tab(page, "settings")
        page.wait_for_function("document.querySelector('[data-key=\"plex.url\"]').value !== ''")
        assert page.input_value('[data-key="plex.token"]') == "********"
        shot(page, f"settings{suffix}")
        tab(page, "files")
        page.wait_for_selector("#pcr-files-body tr[data-path]")
        shot(page, f"files{suffix}")
        if theme == "black":   # the dark theme is checked on the three busiest tabs
            assert page.errors == []
            page.close()
            continue
        tab(page, "storage")
        page.wait_for_selector("#pcr-by-library svg")
        page.wait_for_selector("#pcr-plays p")
        assert "live mode" in page.inner_text("#pcr-plays")  # plays are only counted while live mode runs
        shot(page, "storage")
        tab(page, "maintenance")
        page.wait_for_selector("#pcr-findings .pcr-notice")
        assert "All good" in page.inner_text("#pcr-findings")
        shot(page, "maintenance")
        tab(page, "logs")
        page.wait_for_selector("#pcr-log span")
        shot(page, "logs")
        assert page.errors == []
        assert "sandbox-secret-token" not in page.content()
        page.close()


def test_a_setting_is_saved_through_the_cli(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    page = open_page(browser, server)
    tab(page, "settings")
    field = '[data-key="demand.on_deck_items"]'
    page.wait_for_function(f"document.querySelector('{field}').value !== ''")
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
    problem = page.wait_for_selector('.pcr-problem[data-key="cache.min_free"]')
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
    page = open_page(browser, server)
    page.wait_for_selector("#pcr-count:not(:text('-'))")
    page.click("#pcr-run")
    page.wait_for_selector("#pcr-banner:not([hidden])")
    page.wait_for_function("document.getElementById('pcr-banner-file').textContent.indexOf('/mnt/user/') === 0")
    facts = page.inner_text(".pcr-banner-facts")
    assert re.search(r"\d+ / 6 files", facts) and "/s" in facts and "ETA" in facts
    shot(page, "dashboard-running")
    page.wait_for_selector("#pcr-run-msg.pcr-ok", timeout=30000)
    page.wait_for_selector("#pcr-banner", state="hidden")
    assert "6 cached" in page.inner_text("#pcr-last")
    assert len(box.cli_json("list")["files"]) == files_before + 6
    page.wait_for_function(f"document.getElementById('pcr-count').textContent === '{files_before + 6}'")
    page.close()


def test_stop_ends_a_run_after_the_current_file(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    slow = Path(box.settings()["paths"]["state_dir"]) / "fake-step"
    slow.parent.mkdir(parents=True, exist_ok=True)  # no run may have made the state folder yet
    slow.write_text("1.5")   # six files take 9 s: Stop lands while the run is in flight
    page = open_page(browser, server)
    page.click("#pcr-run")
    page.wait_for_selector("#pcr-banner:not([hidden])")
    page.click("#pcr-stop")
    slow.unlink()
    page.wait_for_selector("#pcr-run-msg.pcr-err", timeout=30000)
    assert "stopped" in page.inner_text("#pcr-run-msg")
    assert box.cli_json("status")["last_run"]["exit_code"] == 5
    assert "stopped on request" in page.inner_text("#pcr-last")
    page.close()


def test_dashboard_says_how_live_mode_follows_plex(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    state_file = Path(box.settings()["paths"]["volatile_dir"]) / "live.json"
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


def test_ten_thousand_files_are_paged_sorted_and_filtered(browser: object, tmp_path: Path) -> None:
    box = make_sandbox(tmp_path)
    box.extra_env["PCR_FAKE_FILES"] = "10000"
    with Server(box) as server:
        page = open_page(browser, server)
        tab(page, "files")
        page.wait_for_selector("#pcr-files-body tr[data-path]", timeout=30000)
        assert page.locator("#pcr-files-body tr").count() == 100
        assert "of 10000" in page.inner_text("#pcr-page-info")
        page.click('#pcr-files-table [data-sort="size"]')
        sizes = page.eval_on_selector_all("#pcr-files-body tr", "rows => rows.map(r => r.children[4].textContent)")
        assert sizes[0].endswith("GB")
        page.fill("#pcr-filter", "movie 0999")
        page.wait_for_function("document.getElementById('pcr-page-info').textContent.indexOf('filtered') >= 0")
        titles = page.eval_on_selector_all("#pcr-files-body tr", "rows => rows.map(r => r.children[1].textContent)")
        assert titles and all("movie" in t.lower() and "0999" in t for t in titles), "every word must match"
        page.click("#pcr-check-all")
        assert str(len(titles)) + " selected" == page.inner_text("#pcr-sel-info")
        page.close()


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
