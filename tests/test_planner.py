"""The planner's rules, one by one, on hand-made demand, registry and facts (no I/O)."""

from __future__ import annotations

from plexcache.config import Settings
from plexcache.demand import DemandItem, Reason, WantedFile
from plexcache.planner import CACHE, KEEP, MOVE_BACK, SKIP, FileStatus, PoolFacts, Situation, floor_band, plan
from plexcache.state import Entry, Registry

GB = 10**9  # sizes in settings are decimal, as Unraid shows them
NOW = 1_800_000_000.0


def settings(**cache) -> Settings:
    s = Settings()
    s.cache.min_free = "0"
    for key, value in cache.items():
        setattr(s.cache, key, value)
    return s


def wanted(name: str, source: str = "on_deck", user: str = "alice", kind: str = "episode", rank: int = 0,
           active: float = NOW - 60, share: str = "tv") -> WantedFile:
    rel = f"{name}/Season 01/{name}.mkv" if kind == "episode" else f"{name}/{name}.mkv"
    item = DemandItem(rating_key=name, title=name, kind=kind, library="TV", plex_files=(f"/data/{rel}",),
                      size=GB, reasons=[Reason(user, source, active, rank=rank)])
    return WantedFile(f"/mnt/user/{share}/{rel}", share, rel, f"/data/{rel}", item)


def episode(show: str, n: int, user: str = "alice", rank: int = 0) -> WantedFile:
    rel = f"{show}/Season 01/{show} - S01E{n:02d}.mkv"
    item = DemandItem(rating_key=f"{show}{n}", title=f"{show} {n}", kind="episode", library="TV",
                      plex_files=(f"/data/{rel}",), size=GB, reasons=[Reason(user, "next_episode", NOW, rank=rank)])
    return WantedFile(f"/mnt/user/tv/{rel}", "tv", rel, f"/data/{rel}", item)


def entry(path: str, size: int = GB, cached_at: float = NOW - 86400, users=("alice",), **kw) -> Entry:
    share, rel = path.split("/", 4)[3], path.split("/", 4)[4]
    return Entry(path=path, share=share, rel=rel, pool="cache", disk=kw.pop("disk", "disk1"), size=size,
                 cached_at=cached_at, users=list(users), backup=kw.pop("backup", True), **kw)


def facts(*paths: str, free: int = 100 * GB, total: int = 200 * GB, size: int = GB, on_pool=(), **kw) -> Situation:
    files = {p: FileStatus(p, size, "cache", on_pool=p in on_pool, on_array=p not in on_pool) for p in paths}
    return Situation(files=files, pools={"cache": PoolFacts("cache", total, free)}, **kw)


def actions(p, action: str) -> list[str]:
    return [i.path for i in p.of(action)]


def test_wanted_file_on_array_is_cached_with_its_reasons():
    w = wanted("A")
    p = plan([w], Registry(), facts(w.path), settings(), NOW)
    assert actions(p, CACHE) == [w.path]
    assert p.of(CACHE)[0].reasons[0].user == "alice"


def test_cached_and_still_wanted_is_kept():
    w = wanted("A")
    reg = Registry({w.path: entry(w.path)})
    p = plan([w], reg, facts(w.path, on_pool=[w.path]), settings(), NOW)
    assert actions(p, KEEP) == [w.path] and not p.has_actions


def test_unwanted_moves_back_after_retention_only():
    path = "/mnt/user/tv/Old/old.mkv"
    s = settings(retention_hours=12)
    fresh = Registry({path: entry(path, cached_at=NOW - 3600)})
    assert actions(plan([], fresh, facts(path), s, NOW), KEEP) == [path]
    old = Registry({path: entry(path, cached_at=NOW - 13 * 3600)})
    p = plan([], old, facts(path), s, NOW)
    assert actions(p, MOVE_BACK) == [path]
    assert "no longer wanted" in p.of(MOVE_BACK)[0].why


def test_move_back_watched_off_keeps_unwanted():
    path = "/mnt/user/tv/Old/old.mkv"
    p = plan([], Registry({path: entry(path)}), facts(path), settings(move_back_watched=False), NOW)
    assert actions(p, KEEP) == [path]


def test_pinned_and_playing_never_move_back():
    pinned, playing = "/mnt/user/tv/P/p.mkv", "/mnt/user/tv/Q/q.mkv"
    reg = Registry({pinned: entry(pinned, pinned=True), playing: entry(playing)})
    p = plan([], reg, facts(pinned, playing, playing=frozenset({playing})), settings(), NOW)
    assert sorted(actions(p, KEEP)) == sorted([pinned, playing])


def test_playing_file_is_not_cached():
    w = wanted("A", source="playing")
    p = plan([w], Registry(), facts(w.path, playing=frozenset({w.path})), settings(), NOW)
    assert actions(p, SKIP) == [w.path] and p.of(SKIP)[0].why == "being played"


def test_unknown_user_keeps_their_files_but_others_move_back():
    a, b = "/mnt/user/tv/A/a.mkv", "/mnt/user/tv/B/b.mkv"
    reg = Registry({a: entry(a, users=["alice"]), b: entry(b, users=["bob"])})
    p = plan([], reg, facts(a, b, unknown_users=frozenset({"alice"})), settings(), NOW)
    assert actions(p, KEEP) == [a] and actions(p, MOVE_BACK) == [b]
    assert "alice" in p.of(KEEP)[0].why


def test_server_unknown_moves_nothing_back_but_still_caches():
    a = "/mnt/user/tv/A/a.mkv"
    w = wanted("N")
    reg = Registry({a: entry(a, users=["bob"])})
    p = plan([w], reg, facts(a, w.path, server_unknown=True), settings(), NOW)
    assert actions(p, MOVE_BACK) == [] and actions(p, CACHE) == [w.path]


def test_floor_is_never_broken_and_highest_priority_goes_first():
    deck, wl = wanted("Deck", source="on_deck"), wanted("Watch", source="watchlist", kind="movie", share="movies")
    s = settings(min_free="10GB")
    p = plan([wl, deck], Registry(), facts(deck.path, wl.path, free=12 * GB), s, NOW)  # floor + band + 1 file
    assert actions(p, CACHE) == [deck.path] and actions(p, SKIP) == [wl.path]
    assert "cache.min_free" in p.of(SKIP)[0].why


def test_size_limit_moves_lowest_priority_back_for_a_higher_one():
    low = "/mnt/user/movies/W/W.mkv"
    reg = Registry({low: entry(low, reasons=[])})
    hi = wanted("Deck")
    low_w = wanted("W", source="watchlist", kind="movie", share="movies")
    s = settings(size_limit="1GB")
    p = plan([hi, low_w], reg, facts(hi.path, low, on_pool=[low]), s, NOW)
    assert actions(p, CACHE) == [hi.path] and actions(p, MOVE_BACK) == [low]


def test_eviction_none_never_moves_back_for_space():
    low = "/mnt/user/movies/W/W.mkv"
    low_w = wanted("W", source="watchlist", kind="movie", share="movies")
    hi = wanted("Deck")
    s = settings(size_limit="1GB", eviction="none")
    p = plan([hi, low_w], Registry({low: entry(low)}), facts(hi.path, low, on_pool=[low]), s, NOW)
    assert actions(p, MOVE_BACK) == [] and actions(p, SKIP) == [hi.path]


def test_age_mode_moves_oldest_back_first():
    old, new = "/mnt/user/tv/O/o.mkv", "/mnt/user/tv/N/n.mkv"
    reg = Registry({old: entry(old, cached_at=NOW - 9 * 86400), new: entry(new, cached_at=NOW - 86400)})
    s = settings(size_limit="1GB", eviction="age", move_back_watched=False)
    p = plan([], reg, facts(old, new, on_pool=[old, new]), s, NOW)
    assert actions(p, MOVE_BACK) == [old]


def test_no_gap_after_an_episode_that_does_not_fit():
    e1, e2, e3 = episode("Show", 1, rank=0), episode("Show", 2, rank=1), episode("Show", 3, rank=2)
    f = facts(e1.path, e2.path, e3.path, free=3 * GB)
    f.files[e2.path] = FileStatus(e2.path, 5 * GB, "cache", on_array=True)
    p = plan([e1, e2, e3], Registry(), f, settings(), NOW)
    assert actions(p, CACHE) == [e1.path]
    assert "earlier episode" in next(i.why for i in p.items if i.path == e3.path)


def test_not_cacheable_and_hardlinked_and_duplicate_are_skipped():
    a, b, c = wanted("A"), wanted("B"), wanted("C")
    f = facts(a.path, b.path, c.path)
    f.files[a.path] = FileStatus(a.path, GB, "", on_array=True, cacheable=False, why="share tv is array only")
    f.files[b.path] = FileStatus(b.path, GB, "cache", on_array=True, hardlinked=True)
    f.files[c.path] = FileStatus(c.path, GB, "cache", on_array=True, on_pool=True)
    p = plan([a, b, c], Registry(), f, settings(), NOW)
    why = {i.path: i.why for i in p.of(SKIP)}
    assert "array only" in why[a.path] and "hard-linked" in why[b.path] and "duplicate" in why[c.path]
    s = settings(hardlinks="copy")
    assert b.path in actions(plan([b], Registry(), f, s, NOW), CACHE)


def test_file_already_on_pool_is_adopted_and_released_when_unwanted():
    w = wanted("A")
    p = plan([w], Registry(), facts(w.path, on_pool=[w.path]), settings(), NOW)
    assert p.of(KEEP)[0].adopt and not p.has_actions
    reg = Registry({w.path: entry(w.path, disk=None, backup=False)})
    p = plan([], reg, facts(w.path, on_pool=[w.path]), settings(retention_hours=0), NOW)
    assert p.of(MOVE_BACK)[0].release


def test_plan_json_shapes():
    w = wanted("A")
    p = plan([w], Registry(), facts(w.path), settings(), NOW)
    doc = p.of(CACHE)[0].to_json()
    assert doc["action"] == "cache" and doc["size"] == GB and doc["reasons"][0]["source"] == "on_deck"
    assert p.summary() == {"cache": 1, "move_back": 0, "keep": 0, "skip": 0, "bytes_to_cache": GB,
                           "bytes_to_move_back": 0}


def test_add_only_moves_nothing_back_and_adds_only_what_fits():
    """Live mode: a watched file and a lower-priority one both stay; a new file is added only into free room."""
    watched = "/mnt/user/movies/Old/Old.mkv"
    low = "/mnt/user/movies/W/W.mkv"
    reg = Registry({watched: entry(watched, reasons=[], cached_at=NOW - 30 * 86400),
                    low: entry(low, reasons=[])})
    hi, fits_not = wanted("Deck"), wanted("Next", source="next_episode")
    low_w = wanted("W", source="watchlist", kind="movie", share="movies")
    s = settings(size_limit="3GB", retention_hours=0)
    full = plan([hi, fits_not, low_w], reg, facts(hi.path, fits_not.path, low, watched, on_pool=[low, watched]),
                s, NOW)
    assert watched in actions(full, MOVE_BACK) and actions(full, CACHE) == [hi.path, fits_not.path]
    live = plan([hi, fits_not, low_w], reg, facts(hi.path, fits_not.path, low, watched, on_pool=[low, watched]),
                s, NOW, add_only=True)
    assert actions(live, MOVE_BACK) == []
    assert actions(live, CACHE) == [hi.path] and actions(live, SKIP) == [fits_not.path]
    assert {watched, low} <= set(actions(live, KEEP))


def test_a_band_above_the_floor_stops_caching_and_moving_back_in_turn():
    """Free space hovering near the floor (other writes on the pool) must not cache and move back the same
    file run after run: new files leave floor + band free (1% of the pool, at most 1 GB); a cached file goes
    back only once the floor itself is broken."""
    deck = wanted("Deck")
    s = settings(min_free="10GB")
    assert floor_band(200 * GB) == GB and floor_band(50 * GB) == GB // 2
    near = plan([deck], Registry(), facts(deck.path, free=11 * GB + GB // 2), s, NOW)
    assert actions(near, SKIP) == [deck.path] and "too close to the free-space floor" in near.items[0].why
    assert actions(plan([deck], Registry(), facts(deck.path, free=12 * GB), s, NOW), CACHE) == [deck.path]
    cached = Registry({deck.path: entry(deck.path)})
    for free in (10 * GB + GB // 10, 10 * GB, 11 * GB):  # hovering: the cached file stays
        p = plan([deck], cached, facts(deck.path, free=free, on_pool=[deck.path]), s, NOW)
        assert actions(p, KEEP) == [deck.path], free
    broken = plan([deck], cached, facts(deck.path, free=9 * GB, on_pool=[deck.path]), s, NOW)
    assert actions(broken, MOVE_BACK) == [deck.path] and "cache.min_free" in broken.items[0].why


# ---- spin state: a disk in standby is woken only for what is due, and then for everything on it


def on_disks(f: Situation, **disk_of: str) -> Situation:
    """The same facts with each named path's original on the given disk."""
    import dataclasses

    files = {p: dataclasses.replace(ff, disk=disk_of.get(p, "disk1")) for p, ff in f.files.items()}
    return dataclasses.replace(f, files=files)


def test_a_sleeping_disk_is_not_woken_for_what_is_not_due():
    late = episode("Show", 9, rank=5)  # fifth next episode: not due before the next run
    p = plan([late], Registry(), on_disks(facts(late.path, asleep=frozenset({"disk1"}))), settings(), NOW)
    assert actions(p, SKIP) == [late.path]
    assert "disk1 is in standby" in p.of(SKIP)[0].why
    # awake, it is read like any other
    assert actions(plan([late], Registry(), on_disks(facts(late.path)), settings(), NOW), CACHE) == [late.path]
    # not spin-aware: the old rule
    p = plan([late], Registry(), on_disks(facts(late.path, asleep=frozenset({"disk1"}))),
             settings(spin_aware=False), NOW)
    assert actions(p, CACHE) == [late.path]


def test_a_due_file_wakes_its_disk_once_for_everything_wanted_from_it():
    deck = wanted("Now")  # On Deck: due
    late = episode("Show", 9, rank=5)
    other = episode("Other", 9, rank=5)
    f = on_disks(facts(deck.path, late.path, other.path, asleep=frozenset({"disk1", "disk2"})),
                 **{deck.path: "disk1", late.path: "disk1", other.path: "disk2"})
    p = plan([deck, late, other], Registry(), f, settings(), NOW)
    assert sorted(actions(p, CACHE)) == sorted([deck.path, late.path])
    assert actions(p, SKIP) == [other.path]


def test_due_episodes_setting_decides_what_wakes_a_disk():
    second = episode("Show", 3, rank=1)
    f = on_disks(facts(second.path, asleep=frozenset({"disk1"})))
    assert actions(plan([second], Registry(), f, settings(due_episodes=2), NOW), CACHE) == [second.path]
    assert actions(plan([second], Registry(), f, settings(due_episodes=1), NOW), SKIP) == [second.path]


def test_moving_back_waits_until_its_disk_is_awake_unless_room_is_needed():
    path = "/mnt/user/tv/Old/old.mkv"
    reg = Registry({path: entry(path, cached_at=NOW - 13 * 3600, disk="disk1")})
    asleep = facts(path, on_pool=[path], asleep=frozenset({"disk1"}))
    p = plan([], reg, asleep, settings(retention_hours=12), NOW)
    assert actions(p, KEEP) == [path] and "waits until disk1 is awake" in p.of(KEEP)[0].why
    awake = facts(path, on_pool=[path], asleep=frozenset({"disk2"}))
    assert actions(plan([], reg, awake, settings(retention_hours=12), NOW), MOVE_BACK) == [path]
    # the room is needed for something due: it goes back even so
    deck = wanted("New")
    f = on_disks(facts(path, deck.path, on_pool=[path], free=GB // 2, total=10 * GB, asleep=frozenset({"disk1"})),
                 **{deck.path: "disk2"})
    p = plan([deck], reg, f, settings(retention_hours=12), NOW)
    assert actions(p, MOVE_BACK) == [path] and actions(p, CACHE) == [deck.path]


def test_a_disk_woken_for_a_due_file_takes_its_waiting_move_backs_along():
    path = "/mnt/user/tv/Old/old.mkv"
    reg = Registry({path: entry(path, cached_at=NOW - 13 * 3600, disk="disk1")})
    deck = wanted("Now")
    f = on_disks(facts(path, deck.path, on_pool=[path], asleep=frozenset({"disk1"})))
    p = plan([deck], reg, f, settings(retention_hours=12), NOW)
    assert actions(p, MOVE_BACK) == [path] and actions(p, CACHE) == [deck.path]


def test_a_learned_pace_decides_which_next_episodes_are_due():
    fourth = episode("Show", 6, rank=3)
    f = on_disks(facts(fourth.path, asleep=frozenset({"disk1"})))
    assert actions(plan([fourth], Registry(), f, settings(due_episodes=2), NOW), SKIP) == [fourth.path]
    import dataclasses

    fast = dataclasses.replace(f, due_next={("alice", "tv/Show"): 5})  # five episodes a day
    assert actions(plan([fourth], Registry(), fast, settings(due_episodes=2), NOW), CACHE) == [fourth.path]


def test_a_favourite_wakes_its_disk_and_ranks_below_every_other_reason():
    """A movie watched again and again is due (the play that woke its disk is long over by the nightly run,
    so waiting for an awake disk would wait for ever); when room is short it is the first to give way."""
    fav = wanted("Fav", source="rewatch", kind="movie", share="movies")
    f = on_disks(facts(fav.path, asleep=frozenset({"disk1"})))
    assert actions(plan([fav], Registry(), f, settings(), NOW), CACHE) == [fav.path]
    listed = wanted("Listed", source="watchlist", kind="movie", share="movies", rank=7)
    room = facts(fav.path, listed.path, free=GB * 5 // 2, total=100 * GB)  # one fits above the band
    p = plan([fav, listed], Registry(), room, settings(min_free="0"), NOW)
    assert actions(p, CACHE) == [listed.path] and actions(p, SKIP) == [fav.path]


def test_the_top_of_a_watchlist_wakes_its_disk_only_while_parity_spins_anyway():
    """Caching renames the original on its disk (a write), so the first disk a run wakes wakes parity too:
    two spin-ups for a movie that may be picked. The top of a watchlist is read when the run writes anyway."""
    top = wanted("Top", source="watchlist", kind="movie", share="movies")
    deck = wanted("Deck")
    both = frozenset({"disk1", "disk2", "parity"})
    f = on_disks(facts(top.path, deck.path, asleep=both), **{top.path: "disk1", deck.path: "disk2"})
    assert actions(plan([top], Registry(), f, settings(), NOW), SKIP) == [top.path]
    assert sorted(actions(plan([top, deck], Registry(), f, settings(), NOW), CACHE)) == sorted([top.path, deck.path])
    awake_parity = on_disks(facts(top.path, asleep=frozenset({"disk1"})), **{top.path: "disk1"})
    assert actions(plan([top], Registry(), awake_parity, settings(), NOW), CACHE) == [top.path]


def test_a_sleeping_disk_is_woken_to_make_room_only_for_a_due_file():
    """Moving a file back wakes its disk and parity: worth it for what is due before the next run, not to
    swap in a file that could wait as well (it is cached when the room is there, or its turn comes)."""
    old = "/mnt/user/tv/Old/old.mkv"
    listed = "/mnt/user/movies/L/L.mkv"
    reg = Registry({old: entry(old, cached_at=NOW - 13 * 3600, disk="disk1"),
                    listed: entry(listed, reasons=[Reason("bob", "watchlist", NOW, rank=9)], disk="disk1")})
    later = episode("Show", 9, rank=6)  # far ahead: not due
    want_listed = wanted("L", source="watchlist", kind="movie", share="movies", rank=9, user="bob")
    f = on_disks(facts(old, listed, later.path, on_pool=[old, listed], free=GB // 2, total=10 * GB,
                       asleep=frozenset({"disk1"})), **{later.path: "disk2"})
    p = plan([later, want_listed], reg, f, settings(retention_hours=12, min_free="0"), NOW)
    assert actions(p, MOVE_BACK) == [] and actions(p, SKIP) == [later.path]
    assert sorted(actions(p, KEEP)) == sorted([old, listed])
    deck = wanted("Deck")
    f = on_disks(facts(old, listed, deck.path, on_pool=[old, listed], free=GB // 2, total=10 * GB,
                       asleep=frozenset({"disk1"})), **{deck.path: "disk2"})
    p = plan([deck, want_listed], reg, f, settings(retention_hours=12, min_free="0"), NOW)
    assert actions(p, MOVE_BACK) == [old] and actions(p, CACHE) == [deck.path]


def test_live_mode_wakes_a_disk_only_for_the_episode_after_the_one_playing():
    """A reaction to playback wakes a sleeping disk for the very next episode only: a viewer who stops before
    the cached ones run out cost nothing, and one who goes on is met by the reaction to the next episode."""
    second = episode("Show", 3, rank=1)
    first = episode("Show", 2, rank=0)
    f = on_disks(facts(second.path, asleep=frozenset({"disk1"})))
    assert actions(plan([second], Registry(), f, settings(due_episodes=2), NOW), CACHE) == [second.path]
    assert actions(plan([second], Registry(), f, settings(due_episodes=2), NOW, add_only=True), SKIP) == [second.path]
    both = on_disks(facts(first.path, second.path, asleep=frozenset({"disk1"})))
    live = plan([first, second], Registry(), both, settings(due_episodes=2), NOW, add_only=True)
    assert sorted(actions(live, CACHE)) == sorted([first.path, second.path])  # woken: everything on it comes
