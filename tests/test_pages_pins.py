"""Pin by search on the Cached files tab against the real `plexcache-r` and the Plex simulator (Chromium,
Unraid's own template and local_prepend.php): Plex's titles found as the user types them, a season pinned
before anything of it is cached, the next run caching it with the reason "pinned", Unpin, and a bad key refused
with nothing changed."""

from __future__ import annotations

import re

from pages_harness.browser import confirm, open_page, shot, tab
from pages_harness.fixtures import PAGE_MARKS, browser_fixture, real_fixture
from pages_harness.harness import Sandbox, Server
from realtime import ms

pytestmark = PAGE_MARKS
browser = browser_fixture()
real = real_fixture("pins")


def search(page: object, text: str) -> None:
    page.fill("#pcr-title-q", text)
    page.click("#pcr-title-go")
    page.wait_for_function("/found|Nothing|annot/.test(document.getElementById('pcr-title-msg').textContent)",
                           timeout=ms(30))


def test_a_season_found_by_search_is_pinned_and_cached_by_the_next_run(browser: object,
                                                                      real: tuple[Sandbox, Server]) -> None:
    box, server = real
    assert box.cli_json("list")["files"] == []
    page = open_page(browser, server)
    tab(page, "files")
    page.wait_for_selector("#pcr-title-q")
    search(page, "bear")
    show = page.locator("#pcr-title-results .pcr-title-list > li").first
    assert "The Bear (2022)" in show.inner_text() and "TV Shows" in show.inner_text()
    season = show.locator(".pcr-title-seasons > li", has_text="Season 2")
    assert "10 episodes" in season.inner_text()
    shot(page, "pins-search")
    season.locator("input.pcr-title-pin").click()      # a season or a show: asked first, with what it holds
    page.wait_for_selector(".sweet-alert.visible", timeout=ms(10))
    asked = page.inner_text(".sweet-alert.visible")
    assert "all 10 episodes of The Bear - Season 2" in asked and "ahead of what" in asked, asked
    page.click(".sweet-alert.visible button.cancel")
    page.wait_for_selector(".sweet-alert.visible", state="detached", timeout=ms(10))
    assert box.cli_json("list")["pinned_titles"] == []     # cancelled: nothing pinned
    season.locator("input.pcr-title-pin").click()
    confirm(page)
    page.wait_for_selector("#pcr-title-msg.pcr-ok", timeout=ms(30))
    said = page.inner_text("#pcr-title-msg")
    assert "the next run caches it, as far as the pool has room" in said
    assert re.search(r"\(10 files, [0-9.]+ [kMGT]?B\)", said), said   # what the pin holds, in Unraid's units
    assert season.locator("input.pcr-title-pin").get_attribute("value") == "Pinned"
    page.wait_for_selector("#pcr-titles-pinned li", timeout=ms(30))
    assert "The Bear - Season 2" in page.inner_text("#pcr-titles-pinned")
    assert box.cli_json("list")["files"] == []        # pinned before anything is cached
    page.close()

    run = box.cli_json("run")
    assert run["exit_code"] == 0
    pinned = [f for f in box.cli_json("list")["files"] if any(r["source"] == "pinned" for r in f["reasons"])]
    assert len(pinned) == 10 and all("The Bear" in f["path"] and "Season 02" in f["path"] for f in pinned)

    for theme in ("white", "black"):
        page = open_page(browser, server, theme=theme)
        tab(page, "files")
        page.wait_for_selector("#pcr-files-body tr[data-path]", timeout=ms(30))
        page.select_option("#pcr-filter-reason", "pinned")
        rows = page.locator("#pcr-files-body tr[data-path]")
        assert rows.count() == 10
        assert "stays while pinned" in rows.first.inner_text()
        page.wait_for_selector("#pcr-titles-pinned li")
        search(page, "the bear")
        shot(page, f"pins-files-{theme}")
        page.close()

    page = open_page(browser, server)
    tab(page, "files")
    page.wait_for_selector("#pcr-titles-pinned li", timeout=ms(30))
    page.click("#pcr-titles-pinned input.pcr-title-unpin")
    page.wait_for_selector("#pcr-title-msg.pcr-ok", timeout=ms(30))
    assert "Unpinned The Bear - Season 2" in page.inner_text("#pcr-title-msg")
    page.wait_for_function("!document.querySelector('#pcr-titles-pinned li')", timeout=ms(30))
    assert box.cli_json("list")["pinned_titles"] == []
    assert page.errors == []
    page.close()


def test_a_bad_key_is_refused_and_nothing_changes(browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    before = box.cli_json("list")["pinned_titles"]
    page = open_page(browser, server)
    tab(page, "files")
    page.wait_for_selector("#pcr-title-q")
    for key, words in (("99999999", "no item with the rating key"), ("1; rm -rf /", "rating key of a movie")):
        answer = page.evaluate("key => PCR.post('pin_title', {key: key})", key)
        assert answer["ok"] is False and words in answer["error"], answer
    for q in ("", "a\nb", "x" * 201):
        answer = page.evaluate("q => PCR.get('plex_search', {q: q})", q)
        assert answer["ok"] is False and "search for a title" in answer["error"], answer
    assert page.evaluate("() => PCR.get('pin_title', {key: '1'})")["ok"] is False    # GET changes nothing
    search(page, "zzzz nothing")
    assert "Nothing in the libraries PlexCache-R reads matches" in page.inner_text("#pcr-title-msg")
    assert box.cli_json("list")["pinned_titles"] == before
    assert page.errors == []
    page.close()
