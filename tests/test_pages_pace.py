"""Each viewer's pace on the Cached files tab, against the real `plexcache-r` and the Plex simulator (Chromium,
Unraid's own template and local_prepend.php): nothing learned on a fresh install; after the first run, the
pace Plex's own history gives (the viewer, the show, episodes a day, how many are cached ahead and due), fastest
first, with the settings that bound it one click away; with pace off, one line saying so."""

from __future__ import annotations

import json

from pages_harness.browser import open_page, shot, tab
from pages_harness.fixtures import PAGE_MARKS, browser_fixture, real_fixture
from pages_harness.harness import Sandbox, Server
from realtime import ms


def world(text: str) -> str:
    """The partner watched The Bear over five evenings: two, one, one and one episode, the last yesterday."""
    return text.replace('{item: "The Bear S01E01-S01E05", at: 1d}',
                        '{item: "The Bear S01E01-S01E02", at: 5d}, {item: "The Bear S01E03", at: 4d}, '
                        '{item: "The Bear S01E04", at: 2d}, {item: "The Bear S01E05", at: 1d}')


pytestmark = PAGE_MARKS
browser = browser_fixture()
real = real_fixture("pace", world_text=world)


def files_tab(browser: object, server: Server) -> object:
    page = open_page(browser, server)
    tab(page, "files")
    page.wait_for_selector("#pcr-pace[data-state]", timeout=ms(30))
    return page


def test_the_pace_learned_at_the_first_run_is_shown_fastest_first(browser: object,
                                                                 real: tuple[Sandbox, Server]) -> None:
    box, server = real
    page = files_tab(browser, server)
    assert page.get_attribute("#pcr-pace", "data-state") == "empty"
    said = page.inner_text("#pcr-pace")
    assert "Nothing learned yet" in said and page.locator("#pcr-pace table").count() == 0, said
    shot(page, "pace-files-empty")
    page.close()

    assert box.cli_json("run")["exit_code"] == 0
    learned = box.cli_json("status")["pace"]
    bear = [p for p in learned if p["user"] == "partner" and "The Bear" in p["show"]]
    assert len(learned) >= 2 and len(bear) == 1, learned
    page = files_tab(browser, server)
    assert page.get_attribute("#pcr-pace", "data-state") == "learned"
    rows = page.locator("#pcr-pace tbody tr")
    assert rows.count() == len(learned)
    for i, p in enumerate(learned):    # fastest first, as status gives them
        cells = [rows.nth(i).locator("td").nth(c).inner_text() for c in range(5)]
        assert cells[0] == p["show"].split("/", 1)[1] and cells[1] == p["user"], (cells, p)
        assert cells[3:] == [str(p["ahead"]), str(p["due"])], (cells, p)
    per_day = [float(page.locator("#pcr-pace tbody tr").nth(i).get_attribute("data-per-day") or "nan")
               for i in range(rows.count())]
    assert per_day == sorted(per_day, reverse=True) == [p["episodes_per_day"] for p in learned]
    # five episodes over the six days since a day before the first view: in a week's words, not "0.8 a day"
    bear_row = page.locator("#pcr-pace tbody tr", has_text="The Bear")
    assert bear_row.locator("td").nth(2).inner_text() == "6 a week"
    fast = next(p for p in learned if p["episodes_per_day"] >= 1)
    fast_row = page.locator("#pcr-pace tbody tr", has_text=fast["show"].split("/", 1)[1])
    assert fast_row.locator("td").nth(2).inner_text() == f"{fast['episodes_per_day']:.1f}".removesuffix(".0") + " a day"
    said = page.inner_text("#pcr-pace")
    assert "learned from run to run" in said and "last 14 days" in said, said
    assert "at most 20" in said and "3 days" in said, said      # the settings' values, defaults here
    # the words at each scale, down to a viewer who stopped (nothing in the 14 days a pace is learned over)
    assert page.evaluate("[2, 4.26, 0.5, 1 / 14, 0.03, 0].map(PCR.pace.words)") == [
        "2 a day", "4.3 a day", "4 a week", "1 a week", "1 every 5 weeks", "none lately"]
    shot(page, "pace-files-white")
    page.click("#pcr-pace a[data-setting='demand.pace_days']")
    page.wait_for_function("document.activeElement && document.activeElement.dataset.key === 'demand.pace_days'",
                           timeout=ms(10))
    assert page.errors == []
    page.close()


def test_with_pace_off_the_tab_says_so_in_one_line(browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    box.cli_json("config", "set", "--merge", stdin=json.dumps({"demand": {"pace": False}}))
    try:
        page = files_tab(browser, server)
        assert page.get_attribute("#pcr-pace", "data-state") == "off"
        shot(page, "pace-files-off")
        said = page.inner_text("#pcr-pace-body")
        assert "is off" in said and page.locator("#pcr-pace table").count() == 0, said
        page.click("#pcr-pace a[data-setting='demand.pace']")
        page.wait_for_function("document.activeElement && document.activeElement.dataset.key === 'demand.pace'",
                               timeout=ms(10))
        assert page.errors == []
        page.close()
    finally:
        box.cli_json("config", "set", "--merge", stdin=json.dumps({"demand": {"pace": True}}))
