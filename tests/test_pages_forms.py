"""The Settings form never loses a value, never leaves the user stuck, and says what happened: in headless
Chromium inside Unraid's own template (the newest stable release, every request through its
local_prepend.php). The settings commands behind it are the real CLI's (the stand-in CLI hands them on), so
what is saved is what `config set` writes.

Covers: a Plex Home PIN kept through Apply (and changed when typed), the buttons that ask Plex after a
refused Apply, a problem note gone once its field is corrected, Default keeping what it says it keeps and
asking first, Stop's final message, sizes in decimal units as Unraid's Main tab shows them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pages_harness import webgui
from pages_harness.browser import confirm, open_page, open_settings, shot, tab
from pages_harness.fixtures import PAGE_MARKS, browser_fixture
from pages_harness.harness import Sandbox, Server, default_settings, make_sandbox
from realtime import ms

pytestmark = PAGE_MARKS
browser = browser_fixture()

OVERRIDES = [{"name": "alice", "on_deck": True, "watchlist": True, "pin": "1234"},
             {"name": "bob", "on_deck": True, "watchlist": False, "pin": "9876"}]
FIELD = '[data-key="demand.on_deck_items"]'


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[Sandbox, Server]]:
    settings = default_settings(tmp_path)
    settings["plex"]["libraries"] = ["TV Shows"]
    settings["users"] = {"overrides": OVERRIDES}
    box = make_sandbox(tmp_path, webgui.NEWEST_STABLE, settings=settings)
    box.extra_env.update({"PCR_FAKE_STEP": "0.3", "PCR_FAKE_CALLS": str(tmp_path / "calls.log")})
    with Server(box) as server:
        yield box, server
    assert box.php_errors() == []


def test_apply_keeps_each_users_plex_home_pin(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    page = open_settings(browser, server, "demand.on_deck_items")
    rows = page.locator("#pcr-overrides tbody tr")
    assert rows.count() == 2
    pins = rows.locator('[data-field="pin"]')
    assert pins.nth(0).get_attribute("type") == "password" and pins.nth(0).input_value() == "********"
    page.fill(FIELD, "7")
    page.click("#pcr-apply")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok")
    saved = box.settings()
    assert saved["demand"]["on_deck_items"] == 7
    assert [o["pin"] for o in saved["users"]["overrides"]] == ["1234", "9876"], "a PIN the form did not change stays"
    shot(page, "settings-user-pins")
    rows.nth(0).locator(".pcr-del-row").click()                # alice goes; bob's row keeps bob's PIN
    page.wait_for_function("document.querySelectorAll('#pcr-overrides tbody tr').length === 1")
    page.click("#pcr-apply")
    page.wait_for_function("document.getElementById('pcr-apply').disabled")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok")
    assert box.settings()["users"]["overrides"] == [OVERRIDES[1]]
    page.fill('#pcr-overrides tbody tr [data-field="pin"]', "4321")
    page.click("#pcr-apply")
    page.wait_for_function("document.getElementById('pcr-apply').disabled")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok")
    assert box.settings()["users"]["overrides"][0]["pin"] == "4321"
    assert "4321" not in page.content() and "9876" not in page.content()
    assert page.errors == []
    page.close()


def test_after_a_refused_apply_the_plex_buttons_answer(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    page = open_settings(browser, server, "demand.on_deck_items")
    page.fill('[data-key="cache.min_free"]', "lots")
    page.click("#pcr-apply")
    page.wait_for_selector('.pcr-problem[data-problem="cache.min_free"]')
    page.click("#pcr-load-libraries")
    page.wait_for_selector("#pcr-lib-msg.pcr-ok")
    assert "libraries" in page.inner_text("#pcr-lib-msg")
    page.click("#pcr-load-users")
    page.wait_for_selector("#pcr-user-msg.pcr-ok")
    page.fill('[data-key="cache.min_free"]', "10%")
    assert page.locator(".pcr-problem").count() == 0, "the note about the old value goes once it is corrected"
    assert page.locator(".pcr-invalid").count() == 0
    page.click("#pcr-apply")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok")
    assert box.settings()["cache"]["min_free"] == "10%"
    assert page.errors == []
    page.close()


def test_default_asks_then_keeps_what_it_says(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    before = box.config.read_bytes()
    page = open_settings(browser, server, "demand.on_deck_items")
    page.click("#pcr-default")
    page.wait_for_selector(".sweet-alert.visible")
    assert "Apply" in page.inner_text(".sweet-alert.visible"), "it asks first and says nothing is saved yet"
    confirm(page)
    page.wait_for_selector("#pcr-settings-msg:has-text('Defaults loaded')")
    assert page.locator("#pcr-mappings tbody tr").count() == 1
    assert page.locator("#pcr-overrides tbody tr").count() == 2
    assert page.is_checked('#pcr-libraries input[value="TV Shows"]')
    assert page.input_value('[data-key="plex.url"]') == "http://127.0.0.1:32400"
    assert box.config.read_bytes() == before, "nothing is saved before Apply"
    page.click("#pcr-apply")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok")
    saved = box.settings()
    assert saved["users"]["overrides"] == OVERRIDES and saved["plex"]["libraries"] == ["TV Shows"]
    assert saved["plex"]["path_mappings"][0]["share"] == "/mnt/user/tv"
    assert saved["plex"]["token"] == "sandbox-secret-token"
    assert page.errors == []
    page.close()


def test_stop_says_the_run_stopped(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    hold = box.path("state_dir") / "fake-hold"   # the run waits at its first file: Stop lands while it is in flight
    hold.parent.mkdir(parents=True, exist_ok=True)
    hold.write_text("")
    page = open_page(browser, server)
    page.click("#pcr-run")
    page.wait_for_selector("#pcr-banner:not([hidden])")
    page.click("#pcr-stop")
    page.wait_for_selector("#pcr-run-msg.pcr-err", timeout=ms(60))
    assert page.inner_text("#pcr-run-msg") == "Run stopped on request."
    help_text = page.text_content("#pcr-dashboard") or ""
    assert "after the file being copied" not in help_text and "the copy in flight is undone" in help_text
    page.close()


def test_sizes_are_decimal_as_on_unraids_main_tab(browser: object, served: tuple[Sandbox, Server]) -> None:
    _, server = served
    page = open_page(browser, server)
    page.wait_for_selector("#pcr-count:not(:text('-'))")
    shown = page.evaluate("[PCR.bytes(1e9), PCR.bytes(1.5e12), PCR.bytes(999), PCR.bytes(2500000)]")
    assert shown == ["1.00 GB", "1.50 TB", "999 B", "2.50 MB"]
    page.close()



def test_an_open_dashboard_during_a_run_reads_the_progress_file(browser: object,
                                                                 served: tuple[Sandbox, Server]) -> None:
    """The quick polls of a run read its progress file (PHP alone); plexcache-r is started only for the full
    status every ten seconds and when the run starts or ends, and never to find a path."""
    box, server = served
    calls = Path(box.extra_env["PCR_FAKE_CALLS"])
    slow = box.path("state_dir") / "fake-step"
    slow.parent.mkdir(parents=True, exist_ok=True)
    slow.write_text("1.5")
    page = open_page(browser, server)
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "action=progress" in r.url else None)
    page.wait_for_selector("#pcr-count:not(:text('-'))")
    # the page's own loading (the Settings tab reads the settings once) is over before counting starts
    page.wait_for_function("document.querySelector('[data-key=\"plex.url\"]').value !== ''")
    before = len(calls.read_text().splitlines())
    page.click("#pcr-run")
    page.wait_for_function("document.getElementById('pcr-banner-file').textContent.indexOf('/mnt/user/') === 0")
    page.wait_for_selector("#pcr-run-msg.pcr-ok", timeout=ms(60))
    page.wait_for_selector("#pcr-banner", state="hidden")
    started = calls.read_text().splitlines()[before:]
    statuses = started.count("status")
    assert polls, "the run's progress was followed"
    assert statuses < len(polls), (statuses, len(polls))
    assert not [c for c in started if c.startswith("config")], "no path is looked up by starting the CLI"
    page.close()


def test_opening_maintenance_wakes_no_disk(browser: object, served: tuple[Sandbox, Server]) -> None:
    """Opening the tab runs the quick checks only; a full check (every array disk) only on Check now,
    which says it spins the disks up."""
    box, server = served
    calls = Path(box.extra_env["PCR_FAKE_CALLS"])
    page = open_page(browser, server)
    page.wait_for_selector("#pcr-count:not(:text('-'))")
    before = len(calls.read_text().splitlines())
    tab(page, "maintenance")
    page.wait_for_selector("#pcr-audit-msg.pcr-ok")
    opened = calls.read_text().splitlines()[before:]
    assert "audit --cheap" in opened and "audit" not in opened, opened
    assert "spin" in page.get_attribute("#pcr-audit", "title") + page.inner_text("#pcr-maint")
    page.click("#pcr-audit")
    page.wait_for_selector("#pcr-audit-msg:has-text('Full check done')")
    assert "audit" in calls.read_text().splitlines()[before:]
    shot(page, "maintenance-quick-check")
    assert page.errors == []
    page.close()


def test_a_share_that_does_not_exist_is_saved_with_a_warning(browser: object, served: tuple[Sandbox, Server]) -> None:
    box, server = served
    page = open_settings(browser, server, "demand.on_deck_items")
    page.click('.pcr-add-row[data-for="pcr-mappings"]')
    page.fill('#pcr-mappings tbody tr:last-child [data-field="plex"]', "/data/films")
    page.fill('#pcr-mappings tbody tr:last-child [data-field="share"]', "/mnt/user/no-such-share")
    page.click("#pcr-apply")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok")
    assert box.settings()["plex"]["path_mappings"][-1]["share"] == "/mnt/user/no-such-share", "a warning, not a refusal"
    note = page.wait_for_selector('.pcr-problem[data-problem="plex.path_mappings[1].share"]')
    assert "does not exist" in note.inner_text()
    row = page.locator("#pcr-mappings tbody tr").nth(1)
    assert row.locator(".pcr-problem").count() == 1, "the warning sits next to its field"
    shot(page, "settings-share-warning")
    assert page.errors == []
    page.close()


def test_messages_name_fields_and_buttons_not_keys_and_commands(browser: object,
                                                                served: tuple[Sandbox, Server]) -> None:
    _, server = served
    page = open_settings(browser, server, "demand.on_deck_items")
    say = page.evaluate("""() => [
      PCR.say("cannot read Plex at http://x:32400: refused; check plex.url and plex.token " +
              "(run `plexcache-r plex login` for a new token)"),
      PCR.say("the sign-in PIN expired; start `plexcache-r plex login` again"),
      PCR.say("Tower (server) (server)"),
      PCR.jobSentence({exit_code: 6, error: 'the Unraid mover is running; try again when it is done'}, 'Run'),
      PCR.jobSentence({exit_code: 0, result: {message: 'dry run: would cache 3 and move back 0 file(s)'}}, 'Dry run'),
      PCR.jobSentence({exit_code: 5, error: 'CA Mover Tuning is not installed'}, 'Run')]""")
    assert say[0] == ('cannot read Plex at http://x:32400: refused; check "Plex server address" and "Plex token" '
                      '(use Sign in with Plex on the Settings tab for a new token)')
    assert say[1] == "the sign-in PIN expired; use Sign in with Plex on the Settings tab again"
    assert say[2] == "Tower (server)"
    assert say[3] == "Run not started: the Unraid mover is running; try again when it is done."
    assert say[4] == "Dry run finished: would cache 3 and move back 0 file(s)."
    assert say[5] == "Run stopped on request."
    for text in say:
        assert "`" not in text and "plexcache-r " not in text and "plex.url" not in text
    page.close()
