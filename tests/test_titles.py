"""Pin by title: Plex's search endpoint (the simulator answering it as PMS does), pins of a movie, a show or a
season by rating key whether or not anything is cached, the planner's demand with the reason "pinned", and
bad input refused with nothing changed."""

from __future__ import annotations

import dataclasses

import pytest

from plexcache import engine, pinstore, titles
from plexcache.errors import PlexUnavailable, UsageError
from plexcache.state import StateStore
from test_engine import scenario, user  # noqa: F401  (the engine's world)


def keys(sim) -> dict[str, str]:
    items = sim.scenario.items
    top = {it.title: str(rk) for rk, it in items.items() if it.type in ("movie", "show")}
    severance = items[int(top["Severance"])]
    return {**top, "season 1": str(severance.children[0])}


def test_search_finds_movies_shows_and_their_seasons_in_few_requests(env):
    s, _sb, _sim, _now = env
    found = titles.search(s, "sever")
    show = next(r for r in found["results"] if r["kind"] == "show")
    assert show["title"] == "Severance (2022)" and show["library"] == "TV Shows" and not show["pinned"]
    assert [season["title"] for season in show["seasons"]] == ["Severance - Season 1"]
    assert [r["kind"] for r in found["results"]] == ["show"]   # its season is listed under it, not again
    assert show["seasons"][0]["episodes"] == 6
    # the server, its libraries, one search and the show's seasons: never a walk of a library
    assert found["plex_requests"] <= 4
    assert [r["title"] for r in titles.search(s, "arr")["results"]] == ["Arrival (2016)"]
    assert titles.search(s, "nothing like this")["results"] == []


def test_a_pinned_season_is_cached_by_the_next_run_and_stays(env):
    s, _sb, sim, now = env
    k = keys(sim)
    result = titles.pin(s, k["season 1"])
    assert result["changed"] and result["title"]["title"] == "Severance - Season 1"
    assert result["files"] == 6 and result["size"] > 0       # what the pin holds, as Plex lists it
    assert titles.search(s, "sever")["results"][0]["seasons"][0]["pinned"]
    report = engine.run_cycle(s, now=now)
    assert report.exit_code == 0, report.failures
    files = engine.list_files(s)["files"]
    episodes = [f for f in files if "Severance" in f["path"]]
    assert len(episodes) == 6        # watched ones too: the whole season is pinned
    e01 = next(f for f in episodes if "S01E01" in f["path"])
    assert [r["source"] for r in e01["reasons"]] == ["pinned"] and e01["leaves"] == "stays while pinned"
    assert engine.list_files(s)["pinned_titles"][0]["rating_key"] == k["season 1"]
    # unpinned, the watched episodes no one wants go back at the next run
    assert titles.pin(s, k["season 1"], on=False)["changed"]
    engine.run_cycle(s, now=now + 60)
    left = {f["path"] for f in engine.list_files(s)["files"]}
    assert user(s, "tv/Severance (2022)/Season 01/Severance (2022) - S01E01.mkv") not in left


def test_a_title_of_a_library_not_read_is_refused(env):
    s, _sb, sim, _now = env
    chosen = dataclasses.replace(s, plex=dataclasses.replace(s.plex, libraries=["Movies", "TV Shows"]))
    with pytest.raises(UsageError, match="library plexcache-r does not read"):
        titles.pin(chosen, keys(sim)["Metropolis"])
    assert titles.search(chosen, "metro")["results"] == []
    assert titles.search(s, "metro")["results"][0]["library"] == "Old Movies"
    assert pinstore.load(s) == {}


@pytest.mark.sim_errors_ok   # the unknown key's 404 is the point
def test_bad_keys_and_plex_down_are_refused_and_change_nothing(env):
    s, _sb, sim, _now = env
    k = keys(sim)
    store = pinstore._path(s)
    with pytest.raises(UsageError, match="no item with the rating key 999999"):
        titles.pin(s, "999999")
    with pytest.raises(UsageError, match="not a Plex rating key"):
        titles.pin(s, "../etc")
    episode = str(sim.scenario.items[int(k["season 1"])].children[0])
    with pytest.raises(UsageError, match="pin a movie, a show or a season"):
        titles.pin(s, episode)
    assert not store.exists()
    down = dataclasses.replace(s, plex=dataclasses.replace(s.plex, url="http://127.0.0.1:9"))
    with pytest.raises(PlexUnavailable, match="nothing was pinned"):
        titles.pin(down, k["Arrival"])
    with pytest.raises(PlexUnavailable):
        titles.search(down, "arr")
    assert not store.exists() and not StateStore(s).registry_path.exists()


def test_an_unreadable_pins_file_leaves_the_pins_unknown_and_says_what_to_do(env):
    """The pinned titles are a person's choice: never thrown away. Unreadable, a run treats their demand as
    unknown (nothing pinned goes back on their account) and names the file; `list` says what to do."""
    s, _sb, _sim, now = env
    store = pinstore._path(s)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text("{broken")
    report = engine.run_cycle(s, now=now)
    unknown = [u for u in report.to_json()["unknown"] if u["source"] == "pinned"]
    assert unknown and "pinned_titles.json is unreadable" in unknown[0]["error"]
    assert not any("internal error" in w for w in report.to_json()["warnings"])
    with pytest.raises(UsageError, match="remove it to forget the pinned titles"):
        engine.list_files(s)
    assert store.read_text() == "{broken"
