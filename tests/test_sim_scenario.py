"""Scenario loading: expansion of the compact form, references, On Deck rules, validation errors."""

from __future__ import annotations

import copy

import pytest
import yaml

from plexcache.errors import UsageError
from plexcache.sim.generate import generate, generate_dict
from plexcache.sim.scenario import from_dict, load, parse_duration, parse_size, parse_time, resolve_ref
from plexcache.sim.world import World

BASE = {
    "now": "2026-01-15T20:00:00Z",
    "users": [{"name": "admin", "kind": "owner", "id": 1}, {"name": "al", "kind": "friend", "id": 2}],
    "unraid": {"disks": 2, "pools": ["cache"], "shares": {"tv": {"useCache": "yes", "pool": "cache"},
                                                         "movies": {}},
               "pathMap": {"/data/tv": "tv", "/data/movies": "movies"}},
    "libraries": [
        {"id": 1, "type": "movie", "title": "Movies", "locations": ["/data/movies"],
         "movies": [{"title": "M", "year": 2000, "size": "1G"}]},
        {"id": 2, "type": "show", "title": "TV", "locations": ["/data/tv"],
         "shows": [{"title": "S", "year": 2010, "seasons": {1: 3, 2: 2}, "specials": 1,
                    "episodes": {"S01E02": {"size": "2G", "disk": "disk2", "parts": 2}}}]},
    ],
}


def world(**changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    return from_dict(data, source="t.yaml")


def test_parsers():
    assert parse_size("1.5G") == 1536 * 1024**2 and parse_size("700K") == 700 * 1024 and parse_size(12) == 12
    assert parse_duration("1h30m") == 5400 and parse_duration("2d") == 172800
    assert parse_time("3h", 10_000) == 10_000 - 10800
    assert parse_time("2026-01-15T20:00:00Z", 0) == 1768507200
    with pytest.raises(ValueError):
        parse_size("big")
    with pytest.raises(ValueError):
        parse_duration("3 hours")


def test_expansion_of_compact_show():
    sc = world()
    show = sc.items[sc.titles["s"][0]]
    seasons = [sc.items[s] for s in show.children]
    assert [s.index for s in seasons] == [0, 1, 2]
    assert [len(s.children) for s in seasons] == [1, 3, 2]
    e2 = sc.items[seasons[1].children[1]]
    files = [p.file for p in e2.parts()]
    assert files == ["/data/tv/S (2010)/Season 01/S (2010) - S01E02 - pt1.mkv",
                     "/data/tv/S (2010)/Season 01/S (2010) - S01E02 - pt2.mkv"]
    assert {p.disk for p in e2.parts()} == {"disk2"} and all(p.size == 2 * 1024**3 for p in e2.parts())
    assert sc.unraid.to_share(files[0]) == ("tv", "S (2010)/Season 01/S (2010) - S01E02 - pt1.mkv")


def test_references():
    sc = world()
    assert len(resolve_ref(sc, "S")) == 6
    assert len(resolve_ref(sc, "S S01")) == 3
    assert len(resolve_ref(sc, "S S01E02-S02E01")) == 3
    assert resolve_ref(sc, "M (2000)") == resolve_ref(sc, "M")
    with pytest.raises(ValueError, match="no movie or show"):
        resolve_ref(sc, "Nope")


def test_auto_on_deck_rules():
    sc = world(watch={"admin": {"watched": [{"item": "S S01E01-S01E03", "at": "2d"}],
                                "progress": {"M": {"offset": "30m", "at": "1h"}}}})
    w = World(sc)
    deck = w.on_deck("admin")
    # in-progress movie (1h ago) first, then the next episode after the last watched one, skipping specials
    assert [sc.items[rk].title for rk in deck] == ["M", "Episode 1"]
    nxt = sc.items[deck[1]]
    assert sc.items[nxt.parent].index == 2
    w.set_watched("admin", "S S02E01-S02E02")
    assert [sc.items[rk].type for rk in w.on_deck("admin")] == ["movie"]  # show finished
    assert w.on_deck("al") == []


def test_added_at_defaults_count_back_from_now_once():
    """A library's default (90 days) reaches its movies, shows and episodes as a time, not as an age read twice
    (which put every item in 1970); an item's own addedAt still wins."""
    libs = copy.deepcopy(BASE["libraries"])
    libs[0]["movies"].append({"title": "New", "addedAt": "2d"})
    libs[1]["addedAt"] = "2025-12-01T00:00:00Z"
    sc = world(libraries=libs)
    added = {it.title: it.added_at for it in sc.items.values() if it.type in ("movie", "show")}
    assert added == {"M": sc.now - 90 * 86400, "New": sc.now - 2 * 86400, "S": 1764547200}
    assert {it.added_at for it in sc.items.values() if it.type == "episode"} == {1764547200}


def test_on_deck_entries_carry_when_their_show_was_last_watched():
    """A next episode was never viewed itself; Plex's On Deck still gives it lastViewedAt (the community spec's
    recorded example): the time its show was last watched, which is what orders On Deck."""
    sc = world(watch={"admin": {"watched": [{"item": "S S01E01-S01E02", "at": "2d"}],
                                "progress": {"M": {"offset": "30m", "at": "1h"}}},
                      "al": {"onDeck": ["S S02E02"]}})
    w = World(sc)
    movie, nxt = w.on_deck("admin")
    assert sc.items[nxt].index == 3 and w.state("admin", nxt) is None
    assert w.deck_viewed_at("admin", nxt) == sc.now - 2 * 86400
    assert w.deck_viewed_at("admin", movie) == sc.now - 3600
    assert w.deck_viewed_at("al", w.on_deck("al")[0]) is None  # an explicit entry with no history: none


def test_generate_is_deterministic_and_sized():
    a = generate_dict(users=4, libraries=2, episodes=230, movies=30, watchlist=6)
    assert a == generate_dict(users=4, libraries=2, episodes=230, movies=30, watchlist=6)
    sc = generate(users=4, libraries=2, episodes=230, movies=30, watchlist=6)
    assert sum(1 for it in sc.items.values() if it.type == "episode") == 230
    assert sum(1 for it in sc.items.values() if it.type == "movie") == 30
    assert len(sc.users) == 4 and all(len(v.watchlist) == 6 for v in sc.views.values())
    assert yaml.safe_load(yaml.safe_dump(a)) == a  # can be written out for a subprocess `sim serve`


def test_demo_loads():
    from pathlib import Path
    sc = load(Path(__file__).resolve().parents[1] / "source/python/plexcache/sim/scenarios/demo.yaml")
    assert sc.owner.name == "admin" and len(sc.users) == 5 and len(sc.rss) == 2


BAD = [
    ({"users": []}, "users: exactly one user must have kind: owner"),
    ({"users": [{"name": "a", "kind": "owner"}, {"name": "a"}]}, "users[1].name: duplicate user"),
    ({"users": [{"name": "a", "kind": "boss"}]}, "users[0].kind: must be one of"),
    ({"users": [{"name": "a", "kind": "owner", "pin": "1"}]}, "users[0].pin: only home and managed"),
    ({"unraid": {"disks": 0}}, "unraid.disks: must be between 1 and 28"),
    ({"unraid": {"shares": {"tv": {"useCache": "maybe"}}}}, "unraid.shares.tv.useCache: must be one of"),
    ({"unraid": {"pools": ["cache"], "shares": {"tv": {"pool": "ssd"}}}}, "unraid.shares.tv.pool: unknown pool"),
    ({"unraid": {"shares": {}, "pathMap": {"/data": "nope"}}}, "unraid.pathMap./data: unknown share"),
    ({"libraries": [{"type": "music", "locations": ["/x"]}]}, "libraries[0].type: must be movie or show"),
    ({"libraries": [{"type": "movie"}]}, "libraries[0].locations: needs at least one absolute"),
    ({"libraries": [{"type": "movie", "locations": ["/data/movies"], "movies": [{"title": "X", "size": "huge"}]}]},
     "libraries[0].movies[0].media[0].parts[0].size: not a size"),
    ({"libraries": [{"type": "movie", "locations": ["/data/movies"],
                     "movies": [{"title": "X", "file": "/elsewhere/x.mkv"}]}]},
     "libraries[0].movies[0].media[0].parts[0].file: '/elsewhere/x.mkv' is not under"),
    ({"libraries": [{"type": "movie", "locations": ["/data/movies"], "movies": [{"title": "X", "disk": "disk9"}]}]},
     "parts[0].disk: unknown disk or pool"),
    ({"libraries": [{"type": "show", "locations": ["/data/tv"],
                     "shows": [{"title": "S", "seasons": {1: 2}, "episodes": {"S01E05": {}}}]}]},
     "libraries[0].shows[0].episodes.S01E05: no such episode"),
    ({"libraries": [{"type": "movie", "locations": ["/data/movies"], "movies": [{"title": "X", "colour": 1}]}]},
     "libraries[0].movies[0].colour: unknown key"),
    ({"watch": {"zed": {}}}, "watch.zed: unknown user"),
    ({"watch": {"admin": {"watched": ["Nope S01E01"]}}}, "watch.admin.watched[0]: no show titled"),
    ({"watch": {"admin": {"progress": {"M": "9h"}}}}, "watch.admin.progress.M.offset: offset is past"),
    ({"watch": {"admin": {"watched": [{"item": "M", "at": float("inf")}]}}}, "watch.admin.watched[0].at: not a"),
    ({"watch": {"admin": {"watched": [{"item": "M", "count": float("inf")}]}}},
     "watch.admin.watched[0].count: expected a whole number"),
    ({"watchlists": {"admin": [{"title": "Z", "type": "album"}]}}, "watchlists.admin[0].type: must be movie or show"),
    ({"sessions": [{"user": "admin", "item": "S S01"}]}, "sessions[0].item: a session plays one"),
    ({"rss": {"own": "has space"}}, "rss.own: feed id"),
    ({"colour": 1}, "(top).colour: unknown key"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_validation_errors_name_file_and_key(change, message):
    data = copy.deepcopy(BASE)
    for k, v in change.items():
        if k == "unraid" and v is not None:
            data["unraid"] = {**data["unraid"], **v}
        else:
            data[k] = v
    with pytest.raises(UsageError) as exc:
        from_dict(data, source="t.yaml")
    text = str(exc.value)
    assert text.startswith("t.yaml: ") and message in text and "\n" not in text


def test_yaml_errors(tmp_path):
    bad = tmp_path / "w.yaml"
    bad.write_text("users: [\n")
    with pytest.raises(UsageError, match=r"w.yaml: line \d+: not valid YAML"):
        load(bad)
    with pytest.raises(UsageError, match="cannot read scenario"):
        load(tmp_path / "missing.yaml")


def test_now_defaults_to_real_time():
    import time
    data = copy.deepcopy(BASE)
    del data["now"]
    sc = from_dict(data)
    assert abs(sc.now - time.time()) < 60
