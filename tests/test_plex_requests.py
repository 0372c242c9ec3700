"""RULE 2: few requests. They grow with users, libraries and distinct On Deck shows, not with library size
or watchlist length; nothing is fetched twice in a run; plexapi never re-fetches an object behind our back."""

from __future__ import annotations

from plexcache.plex import discover
from test_plex_support import OWNER, settings_for, simulated, world

EVERYONE = {"users": {"owner": {"watchlist": True}, "home": {"on_deck": True, "watchlist": True},
                      "friends": {"on_deck": True}, "remote_watchlist_rss": True,
                      "rss_url": "https://rss.plex.tv/friends-feed"}}


def big_world(movies: int, seasons: int, watchlist: int) -> dict:
    data = world()
    data["libraries"][0]["movies"] += [{"title": f"Film {i}", "year": 2000 + i % 20} for i in range(movies)]
    data["libraries"][1]["shows"] += [{"title": f"Show {i}", "seasons": {s: 10 for s in range(1, seasons + 1)}}
                                      for i in range(3)]
    films = [f"Film {i} ({2000 + i % 20})" for i in range(watchlist)]
    data["watchlists"] = {OWNER: ["Dune (2021)", *films], "partner": films, "alice": films}
    return data


def run(monkeypatch, data: dict) -> tuple[int, dict[str, int]]:
    with simulated(monkeypatch, data) as sim:
        demand = discover(settings_for(sim, EVERYONE), now=sim.world.now)
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
    # Per (user, show): one episode list. Per library: one listing for watchlist matching.
    assert kinds == {
        "GET pms/": 1, "GET pms/library": 1, "GET pms/library/sections": 1, "GET pms/accounts": 1,
        "GET pms/status/sessions": 1,
        "GET plex.tv/api/v2/user": 1, "GET plex.tv/api/users/": 1,
        "GET plex.tv/api/servers/5f1c2a9e8b7d4c3f2a1b0c9d8e7f6a5b4c3d2e1f/shared_servers": 1,
        "POST plex.tv/api/home/users/1002/switch": 1, "POST plex.tv/api/home/users/1003/switch": 1,
        "GET rss.plex.tv/friends-feed": 1,
        "GET discover.provider.plex.tv/library/sections/watchlist/all": 3,  # owner, partner, kid
        "GET pms/library/sections/1/onDeck": 5, "GET pms/library/sections/2/onDeck": 5,
        "GET pms/library/sections/3/onDeck": 5,
        "GET pms/library/sections/1/all": 1, "GET pms/library/sections/2/all": 1,
        "GET pms/library/sections/3/all": 1,
        # admin: Severance (deck) + Bluey (watchlist); partner: Bluey (deck and watchlist, one request)
        # and Severance (deck); the others have nothing of a show.
        "GET pms/library/metadata/104/allLeaves": 2, "GET pms/library/metadata/117/allLeaves": 2,
    }
    assert total == 36


def test_requests_do_not_grow_with_library_size_or_watchlist_length(monkeypatch):
    small, _ = run(monkeypatch, big_world(movies=5, seasons=1, watchlist=2))
    large, _ = run(monkeypatch, big_world(movies=400, seasons=6, watchlist=150))
    assert small == large


def test_each_distinct_on_deck_show_costs_one_request_per_user(monkeypatch):
    one = world(watch={OWNER: {"watched": ["Severance S01E01"]}})
    two = world(watch={OWNER: {"watched": ["Severance S01E01", "Bluey S01E01"]}})
    with simulated(monkeypatch, one) as sim:
        a = discover(settings_for(sim), now=sim.world.now).requests
    with simulated(monkeypatch, two) as sim:
        b = discover(settings_for(sim), now=sim.world.now).requests
        assert sim.count("/library/metadata/*/allLeaves") == 2
    assert b == a + 1


def test_no_plexapi_reloads(monkeypatch):
    """Every request discovery makes is one of the listing endpoints, never a per-item metadata fetch."""
    data = world(watchlists={OWNER: ["Dune (2021)", "Bluey", "Arrival"]},
                 sessions=[{"user": "alice", "item": "Heat"}, {"user": OWNER, "item": "Bluey S01E02"}])
    with simulated(monkeypatch, data) as sim:
        discover(settings_for(sim, EVERYONE), now=sim.world.now)
        fetched = [r.path for r in sim.find("/library/metadata/*", host="pms")]
        assert fetched and all(p.endswith("/allLeaves") for p in fetched)  # a reload: /library/metadata/<rk>
        assert sim.count("*", host="metadata.provider.plex.tv") == 0
