"""Property tests: the planner's invariants hold for any demand, registry, space and policy."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from plexcache.config import Settings, parse_size
from plexcache.demand import DemandItem, Reason, WantedFile
from plexcache.planner import CACHE, KEEP, MOVE_BACK, FileStatus, PoolFacts, Situation, plan
from plexcache.state import Entry, Registry

pytestmark = pytest.mark.slow   # real cycles, many subprocesses or many examples

MB = 1024**2
NOW = 1_800_000_000.0
USERS = ["alice", "bob", "carol"]
SOURCES = ["playing", "on_deck", "next_episode", "watchlist", "pinned"]


@st.composite
def worlds(draw):
    n = draw(st.integers(0, 12))
    files = []
    for i in range(n):
        show = draw(st.sampled_from(["A", "B", "C"]))
        kind = draw(st.sampled_from(["episode", "movie"]))
        rel = f"{show}/S01/{show}{i}.mkv" if kind == "episode" else f"M{i}/M{i}.mkv"
        share = "tv" if kind == "episode" else "movies"
        files.append({
            "path": f"/mnt/user/{share}/{rel}", "share": share, "rel": rel, "kind": kind,
            "size": draw(st.integers(1, 10)) * MB,
            "cached": draw(st.booleans()),
            "released": draw(st.booleans()) and draw(st.booleans()),
            "pinned": draw(st.booleans()) and draw(st.booleans()),
            "cached_hours_ago": draw(st.sampled_from([0, 1, 11, 13, 100])),
            "owners": draw(st.lists(st.sampled_from(USERS), max_size=2, unique=True)),
            "reasons": draw(st.lists(st.tuples(st.sampled_from(USERS), st.sampled_from(SOURCES[1:4]),
                                               st.integers(0, 5), st.integers(0, 3)), max_size=2)),
            "playing": draw(st.booleans()) and draw(st.booleans()),
            "hardlinked": draw(st.booleans()) and draw(st.booleans()),
        })
    policy = {
        "min_free": draw(st.sampled_from(["0", "5MB", "20MB", "10%"])),
        "size_limit": draw(st.sampled_from(["", "10MB", "30MB", "50%"])),
        "eviction": draw(st.sampled_from(["priority", "age", "none"])),
        "retention_hours": draw(st.sampled_from([0.0, 12.0])),
        "move_back_watched": draw(st.booleans()),
    }
    total = draw(st.integers(40, 120)) * MB
    cached_bytes = sum(f["size"] for f in files if f["cached"])
    other = draw(st.integers(0, 40)) * MB
    free = max(0, total - cached_bytes - other)
    unknown = frozenset(draw(st.lists(st.sampled_from(USERS), max_size=2, unique=True)))
    server_unknown = draw(st.booleans()) and draw(st.booleans())
    return files, policy, total, free, unknown, server_unknown


def build(world):
    files, policy, total, free, unknown, server_unknown = world
    s = Settings()
    for key, value in policy.items():
        setattr(s.cache, key, value)
    registry, wanted, facts_files, playing = Registry(), [], {}, set()
    for f in files:
        reasons = [Reason(u, src, NOW - 60 * r, rank=r) for u, src, r, _ in f["reasons"]]
        if f["playing"]:
            reasons.append(Reason(USERS[0], "playing", NOW))
            playing.add(f["path"])
        if reasons:
            item = DemandItem(f["path"], f["rel"], f["kind"], "Lib", (f["path"],), f["size"], reasons)
            wanted.append(WantedFile(f["path"], f["share"], f["rel"], f["path"], item))
        if f["cached"]:
            registry.add(Entry(f["path"], f["share"], f["rel"], "cache", None if f["released"] else "disk1",
                               f["size"], cached_at=NOW - 3600 * f["cached_hours_ago"], users=list(f["owners"]),
                               pinned=f["pinned"], backup=not f["released"]))
        facts_files[f["path"]] = FileStatus(f["path"], f["size"], "cache", on_pool=f["cached"],
                                           on_array=not f["cached"], hardlinked=f["hardlinked"])
    facts = Situation(facts_files, {"cache": PoolFacts("cache", total, free)}, frozenset(playing), unknown,
                  server_unknown)
    return wanted, registry, facts, s


def apply(p, registry, facts):
    """What the engine does with a plan when every operation succeeds."""
    registry = registry.copy()
    files = dict(facts.files)
    free = facts.pools["cache"].free
    for item in p.items:
        f = files[item.path]
        if item.action == CACHE:
            registry.add(Entry(item.path, item.wanted.share, item.wanted.rel, "cache", "disk1", item.size,
                               cached_at=NOW, users=sorted({r.user for r in item.reasons}), backup=True))
            files[item.path] = dataclasses.replace(f, on_pool=True, on_array=False)
            free -= item.size
        elif item.action == MOVE_BACK:
            registry.remove(item.path)
            if not item.release:
                files[item.path] = dataclasses.replace(f, on_pool=False, on_array=True)
                free += item.size
        elif item.action == KEEP and item.adopt:
            registry.add(Entry(item.path, item.wanted.share, item.wanted.rel, "cache", None, item.size,
                               cached_at=NOW, backup=False))
    pool = facts.pools["cache"]
    return registry, dataclasses.replace(facts, files=files, pools={"cache": PoolFacts("cache", pool.total, free)})


SETTINGS = hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(worlds())
def test_caching_never_breaks_the_floor_or_the_limit(world):
    wanted, registry, facts, s = build(world)
    p = plan(wanted, registry, facts, s, NOW)
    cached = p.of(CACHE)
    if not cached:
        return
    pool = facts.pools["cache"]
    freed = sum(i.size for i in p.of(MOVE_BACK) if not i.release)
    free_after = pool.free + freed - sum(i.size for i in cached)
    floor = parse_size(s.cache.min_free).resolve(pool.total)
    assert free_after >= floor
    limit = parse_size(s.cache.size_limit)
    if limit:
        moved = {i.path for i in p.of(MOVE_BACK)}
        managed_after = (sum(e.size for e in registry.entries.values() if e.path not in moved)
                         + sum(i.size for i in cached) + sum(i.size for i in p.of(KEEP) if i.adopt))
        assert managed_after <= limit.resolve(pool.total)


@SETTINGS
@given(worlds())
def test_unknown_demand_never_moves_its_files_back(world):
    wanted, registry, facts, s = build(world)
    p = plan(wanted, registry, facts, s, NOW)
    for item in p.of(MOVE_BACK):
        assert not facts.server_unknown
        assert not set(registry.get(item.path).users) & facts.unknown_users


@SETTINGS
@given(worlds())
def test_played_files_never_move_and_pinned_never_go_back(world):
    wanted, registry, facts, s = build(world)
    p = plan(wanted, registry, facts, s, NOW)
    for item in p.items:
        if item.path in facts.playing:
            assert item.action not in (CACHE, MOVE_BACK)
    for item in p.of(MOVE_BACK):
        assert not registry.get(item.path).pinned


def _episode(n: int, size_mb: int, cached: bool, reasons: list, **flags: bool) -> dict:
    """One file of show A for a hand-written world (the shape worlds() draws)."""
    return {"path": f"/mnt/user/tv/A/S01/A{n}.mkv", "share": "tv", "rel": f"A/S01/A{n}.mkv", "kind": "episode",
            "size": size_mb * MB, "cached": cached, "released": False, "pinned": False, "cached_hours_ago": 1,
            "owners": [], "reasons": reasons, "playing": flags.get("playing", False),
            "hardlinked": flags.get("hardlinked", False)}


DECK = [("alice", "on_deck", 0, 0)]
POLICY = {"min_free": "0", "size_limit": "", "eviction": "priority", "retention_hours": 0.0,
          "move_back_watched": False}
# Age mode: two wanted files cached at the same time, one over the limit; the one moved back must not
# return the next run as the newest and push the other out.
SAME_AGE = ([_episode(0, 10, True, DECK), _episode(1, 1, True, DECK)],
            {**POLICY, "size_limit": "10MB", "eviction": "age"}, 40 * MB, 29 * MB, frozenset(), False)
# A hard-linked cached episode moved back for space is skipped from the array afterwards: it must not keep
# later episodes out in the first plan only.
HARD_LINKED = ([_episode(0, 10, False, DECK), _episode(1, 1, False, [("alice", "on_deck", 1, 0)]),
                _episode(3, 9, True, [], playing=True), _episode(7, 6, False, DECK),
                _episode(8, 7, True, DECK, hardlinked=True), _episode(9, 9, True, [], playing=True)],
               POLICY, 40 * MB, 15 * MB, frozenset(), False)


@SETTINGS
@given(worlds())
@example(world=SAME_AGE)
@example(world=HARD_LINKED)
def test_planning_again_after_applying_the_plan_does_nothing(world):
    wanted, registry, facts, s = build(world)
    first = plan(wanted, registry, facts, s, NOW)
    registry2, facts2 = apply(first, registry, facts)
    second = plan(wanted, registry2, facts2, s, NOW)
    assert [(i.action, i.path) for i in second.items if i.action in (CACHE, MOVE_BACK)] == []


@SETTINGS
@given(worlds())
def test_every_item_says_why(world):
    wanted, registry, facts, s = build(world)
    for item in plan(wanted, registry, facts, s, NOW).items:
        assert item.reasons or item.why
