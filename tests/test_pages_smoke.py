"""The smoke set on the webGui releases other than the newest stable one (test_pages_browser.py runs
everything on that): inside each release's own page template and behind its local_prepend.php, every tab
renders without a script or PHP error, a setting is saved with the page's token and refused with a stale
one, Move back goes through that release's confirm dialog, and the Logs tab follows the log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pages_harness import webgui
from pages_harness.browser import TAB, confirm, open_page, open_settings, shot, tab
from pages_harness.fixtures import PAGE_MARKS, browser_fixture
from pages_harness.harness import Sandbox, Server, make_sandbox
from realtime import ms

pytestmark = PAGE_MARKS
browser = browser_fixture()
READY = {"dashboard": "#pcr-activity li b", "settings": "#pcr-settings [data-key='plex.url']:not([value=''])",
         "files": "#pcr-files-body tr[data-path]", "storage": "#pcr-by-library svg",
         "maintenance": "#pcr-findings .pcr-notice", "logs": "#pcr-log span"}


@pytest.fixture(scope="module", params=webgui.smoke_versions())
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Server]]:
    box = make_sandbox(tmp_path_factory.mktemp("smoke"), request.param)
    with Server(box) as server:
        yield box, server
    assert box.php_errors() == []


def test_every_tab_renders(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    page = open_page(browser, server)
    for name in TAB:
        tab(page, name)
        if name == "settings":
            page.wait_for_function("document.querySelector('[data-key=\"plex.url\"]').value !== ''")
        else:
            page.wait_for_selector(READY[name])
        shot(page, f"smoke-{box.version}-{name}")
    assert page.errors == [] and page.dialogs == []
    page.close()


def test_a_setting_is_saved_and_a_stale_token_refused(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    page = open_settings(browser, server, "demand.on_deck_items")
    field = '[data-key="demand.on_deck_items"]'
    page.fill(field, "6")
    page.click("#pcr-apply")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok")
    assert box.settings()["demand"]["on_deck_items"] == 6
    before = box.config.read_bytes()
    box.unraid.set_token("RESTARTED")   # as after a reboot: the page still holds the old token
    try:
        page.fill(field, "8")
        page.click("#pcr-apply")
        page.wait_for_selector("#pcr-settings-msg.pcr-err")
        assert "Reload the page" in page.inner_text("#pcr-settings-msg")
    finally:
        box.unraid.set_token(box.token)
    assert box.config.read_bytes() == before
    page.close()


def test_move_back_through_the_releases_confirm_dialog(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    page = open_page(browser, server)
    tab(page, "files")
    row = page.wait_for_selector("#pcr-files-body tr[data-path]")
    path = row.get_attribute("data-path")
    row.query_selector('[data-act="evict"]').click()
    confirm(page)
    page.wait_for_selector("#pcr-files-msg.pcr-ok")
    assert path not in [f["path"] for f in box.cli_json("list")["files"]]
    page.close()


def test_the_logs_tab_follows_the_log(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    log = box.path("log_dir") / "plexcache-r.log"
    page = open_page(browser, server)
    tab(page, "logs")
    page.wait_for_selector("#pcr-log span")
    log.parent.mkdir(parents=True, exist_ok=True)  # the install makes it; here no command may have run yet
    with log.open("a") as fh:
        fh.write("2026-01-01 10:00:00,000 ERROR   plexcache.mover: a line the tail must bring\n")
    page.wait_for_selector("#pcr-log .pcr-log-error:has-text('a line the tail must bring')", timeout=ms(30))
    assert page.errors == []
    page.close()
