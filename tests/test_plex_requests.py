"""RULE 2: few requests. They grow with users and libraries, not with library size, On Deck shows or
watchlist length; nothing is fetched twice in a run; plexapi never re-fetches an object behind our back."""

from __future__ import annotations

import pytest

from plexcache import plex
from plexcache.plex import discover
from test_plex_support import OWNER, rating_key, settings_for, simulated, table, world

EVERYONE = {"users": {"owner": {"watchlist": True}, "home": {"on_deck": True, "watchlist": True},
                      "friends": {"on_deck": True}, "remote_watchlist_rss": True,
                      "rss_url": "https://rss.plex.tv/friends-feed"}}


def big_world(movies: int, seasons: int, watchlist: int, shows: int = 3) -> dict:
    """The household plus a large library; everyone's watchlist holds `watchlist` films and every added show."""
    data = world()
    data["libraries"][0]["movies"] += [{"title": f"Film {i}", "year": 2000 + i % 20} for i in range(movies)]
    data["libraries"][1]["shows"] += [{"title": f"Show {i}", "seasons": {s: 10 for s in range(1, seasons + 1)}}
                                      for i in range(shows)]
    listed = [f"Show {i}" for i in range(shows)] + [f"Film {i} ({2000 + i % 20})" for i in range(watchlist)]
    data["watchlists"] = {OWNER: ["Dune (2021)", *listed], "partner": listed, "alice": listed}
    return data


def run(monkeypatch, data: dict) -> tuple[int, dict[str, int]]:
    with simulated(monkeypatch, data) as sim:
        # A generous timeout: a big listing on a loaded test machine is slow, and this test counts requests.
        demand = discover(settings_for(sim, {**EVERYONE, "plex": {"timeout": 30}}), now=sim.world.now)
        assert demand.unknown == [] and sim.errors() == []
        assert demand.requests == len(sim.requests)
        kinds: dict[str, int] = {}
        for r in sim.requests:
            kinds[f"{r.method} {r.host}{r.path}"] = kinds.get(f"{r.method} {r.host}{r.path}", 0) + 1
        return demand.requests, kinds


def test_exact_requests_for_a_full_household(monkeypatch):
    total, kinds = run(monkeypatch, world(watchlists={OWNER: ["Dune (2021)", "Bluey"], "partner": ["Bluey"],
                                                      "alice": ["Heat"]}))
    # Per run: server, sections, accounts, sessions; plex.tv account, users, shared_servers; RSS.
    # Per user: one On Deck per library (3), a switch per home user, a watchlist per plex.tv user.
    # Per (user, library with an On Deck show): one listing of those shows' episodes. Per library: one
    # listing for watchlist matching. Per (user, library with a watchlisted show not read already): one
    # listing of that user's unwatched episodes of those shows. Per user with watchlisted movies: one
    # request for their watched state. Per user reading On Deck and movie library: one listing of the movies
    # they watched most recently (their favourites). (plexapi's `server.library` would add `/library`, which
    # says nothing discovery uses: the sections are read on their own.)
    assert kinds == {
        "GET pms/": 1, "GET pms/library/sections": 1, "GET pms/accounts": 1,
        "GET pms/status/sessions": 1,
        "GET plex.tv/api/v2/user": 1, "GET plex.tv/api/users/": 1,
        "GET plex.tv/api/servers/5f1c2a9e8b7d4c3f2a1b0c9d8e7f6a5b4c3d2e1f/shared_servers": 1,
        "POST plex.tv/api/home/users/1002/switch": 1, "POST plex.tv/api/home/users/1003/switch": 1,
        "GET rss.plex.tv/friends-feed": 1,
        "GET discover.provider.plex.tv/library/sections/watchlist/all": 3,  # owner, partner, kid
        "GET pms/library/sections/1/onDeck": 5, "GET pms/library/sections/2/onDeck": 5,
        "GET pms/library/sections/3/onDeck": 5,
        # Library 2: matching; admin: Severance (deck) and Bluey (watchlist); partner: Bluey and Severance
        # (deck; the watchlisted Bluey reuses it); the others have nothing of a show.
        # Library 1: matching, and each of the five users' recently watched movies.
        "GET pms/library/sections/1/all": 6, "GET pms/library/sections/2/all": 4,
        "GET pms/library/sections/3/all": 1,
        # Per user with watchlisted movies: their watched state, all movies in one request (admin: Dune;
        # alice: Heat, from the RSS feed).
        "GET pms/library/metadata/102": 1, "GET pms/library/metadata/103": 1,
    }
    assert total == 41


@pytest.mark.slow
def test_requests_do_not_grow_with_library_size_or_watchlist_length(monkeypatch):
    small, _ = run(monkeypatch, big_world(movies=5, seasons=1, watchlist=2, shows=1))
    large, _ = run(monkeypatch, big_world(movies=400, seasons=6, watchlist=150, shows=40))
    assert small == large


def test_a_watchlist_longer_than_one_address_reads_the_library_whole(monkeypatch):
    """Past MAX_IDS shows or movies, a listing of the library replaces the list of rating keys: one request
    per library, and the same demand (a movie the user has watched still drops off)."""
    data = big_world(movies=4, seasons=1, watchlist=4, shows=6)
    data["watch"] = {**data.get("watch", {}), "partner": {"watched": ["Film 0 (2000)"]}}
    with simulated(monkeypatch, data) as sim:
        by_ids = discover(settings_for(sim, EVERYONE), now=sim.world.now)
        monkeypatch.setattr(plex, "MAX_IDS", 2)
        sim.reset_log()
        whole = discover(settings_for(sim, EVERYONE), now=sim.world.now)
        shows = sim.find("/library/sections/2/all", user="alice")
        assert [(r.query.get("type"), "show.id" in r.query) for r in shows] == [("4", False)]
        # (the other listing of library 1 is of the user's recently watched movies: their favourites)
        movies = [r for r in sim.find("/library/sections/1/all", user="partner") if "sort" not in r.query]
        assert [(r.query.get("type"), r.query.get("unwatched")) for r in movies] == [("1", "0")]
        assert sim.count("/library/metadata/*", user="partner") == 0
    assert whole.unknown == [] and table(by_ids) == table(whole)
    assert sum(r.source == "watchlist" for i in whole.items.values() for r in i.reasons) >= 6
    film0 = [r.user for i in whole.items.values() if i.title == "Film 0" for r in i.reasons]
    assert "partner" not in film0 and OWNER in film0


def test_on_deck_shows_cost_one_listing_per_user_and_library(monkeypatch):
    one = world(watch={OWNER: {"watched": ["Severance S01E01"]}})
    two = world(watch={OWNER: {"watched": ["Severance S01E01", "Bluey S01E01"]}})
    with simulated(monkeypatch, one) as sim:
        a = discover(settings_for(sim), now=sim.world.now)
    with simulated(monkeypatch, two) as sim:
        b = discover(settings_for(sim), now=sim.world.now)
        listing = sim.find("/library/sections/2/all")
        assert [sorted(r.query["show.id"].split(",")) for r in listing] == [
            sorted([rating_key(sim, "Severance"), rating_key(sim, "Bluey")])]
        assert sim.count("/library/metadata/*/allLeaves") == 0
    assert a.requests == b.requests
    following = {i.title.split(" - ")[0] for i in b.items.values()
                 if any(r.user == OWNER and r.source == "next_episode" for r in i.reasons)}
    assert following == {"Severance", "Bluey"}


def test_no_plexapi_reloads(monkeypatch):
    """Every request discovery makes is one of the listing endpoints, never a per-item metadata fetch."""
    data = world(watchlists={OWNER: ["Dune (2021)", "Bluey", "Arrival"]},
                 sessions=[{"user": "alice", "item": "Heat"}, {"user": OWNER, "item": "Bluey S01E02"}])
    with simulated(monkeypatch, data) as sim:
        discover(settings_for(sim, EVERYONE), now=sim.world.now)
        fetched = sorted(r.path for r in sim.find("/library/metadata/*", host="pms"))
        # A playing episode's show, and the owner's watchlisted movies in one batch; a reload would be one
        # /library/metadata/<rk> per object.
        assert fetched == ["/library/metadata/102,101", "/library/metadata/117/allLeaves"]
        assert sim.count("*", host="metadata.provider.plex.tv") == 0
