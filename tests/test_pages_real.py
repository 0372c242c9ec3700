"""The pages against the real `plexcache-r` and the Plex simulator: a sandbox Unraid tree built from the
demo scenario (file sizes scaled from G to M so copies take a second), the page served inside Unraid's own
template (the newest stable webGui release, every request through its local_prepend.php), and Chromium
pressing the buttons. Run now caches real (sparse) files; Move back returns one; settings are
written by `config set`; the health check and the log are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pages_harness.browser import confirm, open_page, shot, tab
from pages_harness.fixtures import PAGE_MARKS, browser_fixture, real_fixture
from pages_harness.harness import Sandbox, Server
from realtime import ms

pytestmark = PAGE_MARKS
browser = browser_fixture()
real = real_fixture("real")


def test_run_now_then_browse_every_tab(browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    page = open_page(browser, server)
    page.wait_for_selector("#pcr-plex .green-text")
    assert "tower" in page.inner_text("#pcr-plex")
    page.wait_for_function("document.getElementById('pcr-count').textContent === '0'")
    page.click("#pcr-run")
    page.wait_for_selector("#pcr-run-msg.pcr-ok", timeout=ms(60))
    cached = len(box.cli_json("list")["files"])
    assert cached > 0 and f"Run finished: cached {cached}" in page.inner_text("#pcr-run-msg")
    # the count and the last run come from one status answer, but an answer read while the run
    # was finishing has the new count and no last run yet: wait for the settled one
    page.wait_for_function(f"document.getElementById('pcr-count').textContent === '{cached}' && "
                           f"document.getElementById('pcr-last').textContent.includes('{cached} cached')")
    assert "Mover Tuning" not in page.inner_text("#pcr-warnings")
    shot(page, "real-dashboard")
    tab(page, "files")
    page.wait_for_selector("#pcr-files-body tr[data-path]")
    assert page.locator("#pcr-files-body tr[data-path]").count() == cached
    shot(page, "real-files")
    tab(page, "storage")
    page.wait_for_selector("#pcr-by-user svg")
    shot(page, "real-storage")
    Path(box.settings()["paths"]["exclusion_list"]).unlink()   # the mover would now move cached files back
    tab(page, "maintenance")
    finding = page.wait_for_selector('.pcr-finding[data-kind="unprotected"]', timeout=ms(30))
    assert f"({cached})" in finding.inner_text() or "Unprotected" in finding.inner_text()
    shot(page, "real-maintenance-findings")
    page.click('.pcr-fix[data-kind="unprotected"]')
    confirm(page)
    page.wait_for_selector("#pcr-findings .pcr-good", timeout=ms(30))
    assert Path(box.settings()["paths"]["exclusion_list"]).exists()
    page.wait_for_selector("#pcr-history td:has-text('protect')")
    shot(page, "real-maintenance")
    tab(page, "logs")
    page.wait_for_function("document.getElementById('pcr-log-info').textContent !== ''")
    shot(page, "real-logs")
    assert page.errors == []
    page.close()


def test_move_back_and_settings_through_the_real_cli(browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    if not box.cli_json("list")["files"]:  # run on its own (or on another worker): cache something first
        box.cli_json("run")
    assert box.cli_json("list")["files"]
    page = open_page(browser, server)
    tab(page, "files")
    page.wait_for_selector("#pcr-files-body tr[data-path]")
    path = page.get_attribute("#pcr-files-body tr[data-path]", "data-path")
    page.click(f'#pcr-files-body tr[data-path="{path}"] [data-act="evict"]')
    confirm(page)
    page.wait_for_selector("#pcr-files-msg.pcr-ok", timeout=ms(30))
    assert path not in [f["path"] for f in box.cli_json("list")["files"]]
    tab(page, "settings")
    page.wait_for_function("document.querySelector('[data-key=\"plex.url\"]').value !== ''")
    token = box.settings()["plex"]["token"]
    assert page.input_value('[data-key="plex.token"]') == "********"
    page.fill('[data-key="demand.next_episodes"]', "2")
    page.click("#pcr-apply")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok")
    saved = box.settings()
    assert saved["demand"]["next_episodes"] == 2 and saved["plex"]["token"] == token
    shot(page, "real-settings")
    page.click("#pcr-signin")
    page.wait_for_function("/^[0-9A-F]{4}$/.test(document.getElementById('pcr-pin-code').textContent)")
    code = page.inner_text("#pcr-pin-code")
    world = box.plex.world  # type: ignore[attr-defined]
    pin = next(p for p in world.pins.values() if p["code"] == code)
    world.authorise_pin(pin["id"], "partner")   # the code is entered at plex.tv/link (by the partner)
    page.wait_for_selector("#pcr-pin-state.pcr-ok", timeout=ms(20))
    assert box.settings()["plex"]["token"] == world.sc.users["partner"].token
    assert world.sc.users["partner"].token not in page.content()
    page.close()


def test_a_bad_value_in_the_settings_file_blocks_nothing(browser: object, real: tuple[Sandbox, Server]) -> None:
    """One bad value must not blank the tabs (files on the pool must stay reachable) nor stop the form
    from correcting it: the form shows the file's values with the bad one marked, Apply checks the result."""
    box, server = real
    if not box.cli_json("list")["files"]:
        box.cli_json("run")
    cached = len(box.cli_json("list")["files"])
    good = box.config.read_text()
    box.config.write_text(re.sub(r"(?m)^  min_free: .*$", "  min_free: lots", good))
    try:
        page = open_page(browser, server)
        page.wait_for_function(f"document.getElementById('pcr-count').textContent === '{cached}'")
        assert "cache.min_free" in page.inner_text("#pcr-warnings")
        tab(page, "files")
        page.wait_for_selector("#pcr-files-body tr[data-path]")
        assert page.locator("#pcr-files-body tr[data-path]").count() == cached
        tab(page, "settings")
        page.wait_for_selector('.pcr-problem[data-problem="cache.min_free"]')
        assert page.input_value('[data-key="cache.min_free"]') == "lots"
        assert page.input_value('[data-key="plex.url"]') == box.plex.url   # type: ignore[attr-defined]
        shot(page, "real-settings-bad-file")
        page.fill('[data-key="cache.min_free"]', "1MB")
        page.click("#pcr-apply")
        page.wait_for_selector("#pcr-settings-msg.pcr-ok")
        assert box.settings()["cache"]["min_free"] == "1MB"
        assert box.settings()["plex"]["token"] == yaml.safe_load(good)["plex"]["token"]
        assert page.errors == []
        page.close()
    finally:
        box.config.write_text(good)


def test_test_connection_tries_what_is_typed(browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    before = box.config.read_bytes()
    page = open_page(browser, server)
    tab(page, "settings")
    page.wait_for_function("document.querySelector('[data-key=\"plex.url\"]').value !== ''")
    page.fill('[data-key="plex.url"]', "http://127.0.0.1:9")   # nothing listens there
    page.click("#pcr-test")
    page.wait_for_selector("#pcr-test-msg.pcr-err", timeout=60000)
    page.fill('[data-key="plex.url"]', box.plex.url)   # type: ignore[attr-defined]
    page.click("#pcr-test")
    page.wait_for_selector("#pcr-test-msg.pcr-ok", timeout=60000)
    assert "tower" in page.inner_text("#pcr-test-msg").lower()
    assert box.config.read_bytes() == before, "testing saves nothing"
    assert page.errors == []
    page.close()
