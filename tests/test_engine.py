"""The engine end to end: the simulated Plex over HTTP, a sandbox Unraid tree, the real mover."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from plexcache import config, engine, layout
from plexcache.errors import EnvironmentRefuses, LockHeld, UsageError
from plexcache.media.journal import Journal
from plexcache.runctl import RunLock, StopFlag
from plexcache.sim.scenario import from_dict
from plexcache.state import StateStore
from realtime import seconds

WORLD = """
now: 2026-01-15T20:00:00Z
users:
  - {name: admin, kind: owner, id: 1001, token: tok-admin}
  - {name: alice, kind: friend, id: 2001, token: tok-alice, pmsToken: pms-alice}
unraid:
  disks: 2
  pools: [cache]
  shares:
    movies: {useCache: "yes", pool: cache}
    tv: {useCache: "yes", pool: cache}
    old: {useCache: "no"}
  pathMap:
    /data/movies: movies
    /data/tv: tv
    /data/old: old
libraries:
  - id: 1
    type: movie
    title: Movies
    locations: [/data/movies]
    defaultSize: 300K
    movies:
      - {title: Arrival, year: 2016, guids: [imdb://tt2543164], disk: disk1, subtitles: [en.srt]}
      - {title: Dune, year: 2021, guids: [imdb://tt1160419], disk: disk2}
      - {title: Heat, year: 1995, guids: [imdb://tt0113277], disk: disk1}
  - id: 2
    type: show
    title: TV Shows
    locations: [/data/tv]
    defaultSize: 200K
    shows:
      - title: Severance
        year: 2022
        guids: [tvdb://371980]
        seasons: {1: 6}
        disk: disk2
  - id: 3
    type: movie
    title: Old Movies
    locations: [/data/old]
    defaultSize: 100K
    movies:
      - {title: Metropolis, year: 1927, guids: [imdb://tt0017136], disk: disk1}
watch:
  admin:
    watched: [{item: "Severance S01E01-S01E02", at: 1d}]  # one evening: no pace yet, next_episodes holds
    progress: {"Arrival": {offset: 40m, at: 2h}, "Metropolis": {offset: 10m, at: 3h}}
    onDeck: auto
  alice:
    progress: {"Dune": {offset: 1h10m, at: 5h}}
sessions:
  - {user: alice, item: Heat, offset: 12m}
"""

ARRIVAL = "movies/Arrival (2016)/Arrival (2016).mkv"
DUNE = "movies/Dune (2021)/Dune (2021).mkv"
E04 = "tv/Severance (2022)/Season 01/Severance (2022) - S01E04.mkv"
E05 = "tv/Severance (2022)/Season 01/Severance (2022) - S01E05.mkv"


@pytest.fixture
def scenario():
    return from_dict(yaml.safe_load(WORLD), source="test_engine")


def user(settings, rel: str) -> str:
    return f"{settings.paths.user_root}/{rel}"


def on_pool(sb, rel: str) -> Path:
    return sb.mnt / "cache" / rel


def on_disk(sb, disk: str, rel: str) -> Path:
    return sb.mnt / disk / rel


def run(settings, now, **kw):
    return engine.run_cycle(settings, now=now, **kw)


def registry(settings):
    return StateStore(settings).load_registry()


# ---------------------------------------------------------------- the main cycle


def test_first_run_caches_what_is_wanted_with_backups_and_exclusions(env):
    s, sb, _sim, now = env
    report = run(s, now)
    assert report.exit_code == 0, report.failures
    reg = registry(s)
    assert user(s, ARRIVAL) in reg and user(s, DUNE) in reg and user(s, E04) in reg and user(s, E05) in reg
    assert on_pool(sb, ARRIVAL).is_file()
    assert on_disk(sb, "disk1", ARRIVAL + ".plexcached").is_file()
    assert not on_disk(sb, "disk1", ARRIVAL).exists()
    arrival = reg.get(user(s, ARRIVAL))
    assert arrival.disk == "disk1" and arrival.backup and arrival.users == ["admin"]
    assert arrival.reasons[0].source == "on_deck"
    assert arrival.sidecars == [user(s, "movies/Arrival (2016)/Arrival (2016).en.srt")]
    assert reg.get(user(s, DUNE)).users == ["alice"]
    lines = Path(s.paths.exclusion_list).read_text().splitlines()
    assert str(on_pool(sb, ARRIVAL)) in lines
    assert str(on_pool(sb, "movies/Arrival (2016)/Arrival (2016).en.srt")) in lines
    assert all(line.startswith(str(sb.mnt / "cache") + "/") for line in lines)


class TestPlexHistory:
    """A viewer's pace is known from the first run: Plex's own history of the show stands in for the runs
    that did not happen yet."""

    @pytest.fixture
    def scenario(self):
        world = yaml.safe_load(WORLD)
        world["watch"]["admin"]["watched"] = [{"item": "Severance S01E01", "at": "6d"},
                                              {"item": "Severance S01E02", "at": "4d"}]
        return from_dict(world, source="test_engine history")

    def test_a_slow_viewer_gets_one_episode_ahead_at_the_first_run(self, env):
        s, _sb, _sim, now = env
        assert run(s, now).exit_code == 0
        reg = registry(s)
        # two episodes in a week: one ahead, where a viewer with no history gets next_episodes (2)
        assert user(s, E04) in reg and user(s, E05) not in reg
        tracks = json.loads((Path(s.paths.state_dir) / "pace.json").read_text())["tracks"]
        assert [(t["user"], len(t["watched"])) for t in tracks] == [("admin", 2)]


def test_second_run_does_nothing_and_says_so(env):
    s, _sb, _sim, now = env
    run(s, now)
    store = StateStore(s)
    before = {p: p.stat().st_mtime_ns for p in (store.registry_path, store.history_path,
                                                Path(s.paths.exclusion_list))}
    second = run(s, now + 60)
    assert second.exit_code == 0 and second.cached == 0 and second.moved_back == 0
    assert second.message.startswith("nothing to do")
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_playing_file_is_not_touched_and_array_only_share_is_skipped(env):
    s, sb, _sim, now = env
    report = run(s, now)
    why = {a["path"]: a.get("why", "") for a in report.to_json()["actions"]}
    assert why[user(s, "movies/Heat (1995)/Heat (1995).mkv")] == "being played"
    assert on_disk(sb, "disk1", "movies/Heat (1995)/Heat (1995).mkv").is_file()
    assert "array only" in why[user(s, "old/Metropolis (1927)/Metropolis (1927).mkv")]


def test_watched_file_moves_back_with_its_backup_renamed(env):
    s, sb, sim, now = env
    run(s, now)
    sim.set_watched("admin", "Arrival (2016)")
    report = run(s, now + 60)
    assert report.exit_code == 0 and report.moved_back == 1, report.to_json()
    assert on_disk(sb, "disk1", ARRIVAL).is_file() and not on_disk(sb, "disk1", ARRIVAL + ".plexcached").exists()
    assert not on_pool(sb, ARRIVAL).exists()
    assert on_disk(sb, "disk1", "movies/Arrival (2016)/Arrival (2016).en.srt").is_file()
    assert user(s, ARRIVAL) not in registry(s)
    assert str(on_pool(sb, ARRIVAL)) not in Path(s.paths.exclusion_list).read_text()


def test_a_watchlisted_movie_moves_back_once_its_user_has_watched_it(env, scenario):
    """Arrival is the owner's On Deck and on their watchlist; once watched to the end, neither wants it."""
    s, sb, sim, now = env
    arrival = next(i for i in scenario.items.values() if i.title == "Arrival")
    added = requests.put(f"{sim.tv_url('discover.provider.plex.tv')}/actions/addToWatchlist",
                         params={"ratingKey": arrival.plex_id}, headers={"X-Plex-Token": sim.owner_token})
    assert added.status_code == 200
    run(s, now)
    assert {r.source for r in registry(s).get(user(s, ARRIVAL)).reasons} == {"on_deck", "watchlist"}
    sim.set_watched("admin", "Arrival (2016)")
    report = run(s, now + 60)
    assert report.moved_back == 1 and not on_pool(sb, ARRIVAL).exists(), report.to_json()
    assert on_disk(sb, "disk1", ARRIVAL).is_file()


def test_folders_made_on_the_pool_go_when_their_last_file_moves_back(env):
    s, sb, sim, now = env
    run(s, now)
    show = on_pool(sb, E04).parent.parent
    assert on_pool(sb, E04).is_file() and on_pool(sb, E05).is_file()
    sim.set_watched("admin", "Severance (2022)")  # nothing of the show is wanted any more
    report = run(s, now + 60)
    assert report.moved_back >= 2 and not on_pool(sb, E05).exists()
    assert not show.exists(), "the season and show folders plexcache-r created are removed again"
    assert (sb.mnt / "cache" / "tv").is_dir(), "the share's own folder stays"


def test_retention_keeps_an_unwanted_file_for_a_while(env):
    s, sb, sim, now = env
    s.cache.retention_hours = 12
    run(s, now)
    sim.set_watched("admin", "Arrival (2016)")
    report = run(s, now + 3600)
    assert report.moved_back == 0 and on_pool(sb, ARRIVAL).is_file()
    assert run(s, now + 13 * 3600).moved_back == 1


@pytest.mark.sim_errors_ok
def test_plex_unreadable_moves_nothing_back_and_exits_3(env):
    s, sb, sim, now = env
    run(s, now)
    sim.set_watched("admin", "Arrival (2016)")
    sim.inject("/library/*", 500)
    sim.inject("/status/*", 500)
    sim.inject("/", 500)
    report = run(s, now + 60)
    assert report.exit_code == 3 and report.moved_back == 0
    assert on_pool(sb, ARRIVAL).is_file() and user(s, ARRIVAL) in registry(s)
    assert "nothing was moved back" in report.message


@pytest.mark.sim_errors_ok
def test_a_user_whose_demand_is_unknown_keeps_their_files(env):
    s, sb, sim, now = env
    run(s, now)
    s.demand.next_episodes = 0  # admin's E04/E05 are no longer wanted
    sim.set_offset("alice", "Dune (2021)", 0)  # and alice's Dune would not be either...
    sim.inject("*", 500, token="pms-alice")  # ...but her demand cannot be read
    report = run(s, now + 60)
    assert any(u["scope"] == "alice" for u in report.unknown)
    assert user(s, DUNE) in registry(s) and on_pool(sb, DUNE).is_file()
    assert report.moved_back == 2 and not on_pool(sb, E04).exists()


@pytest.mark.sim_errors_ok
def test_unreadable_user_list_keeps_friends_files_but_trusts_the_owner(env):
    s, sb, sim, now = env
    run(s, now)
    s.demand.next_episodes = 0  # the owner's E04/E05 are no longer wanted: they go back
    sim.set_offset("alice", "Dune (2021)", 0)  # alice's Dune would go too, were her demand known
    sim.inject("/api/users*", 503, host="plex.tv")  # plex.tv cannot list the friends
    report = run(s, now + 60)
    assert [u["scope"] for u in report.unknown] == ["(other users)"] and report.exit_code == 0
    assert user(s, DUNE) in registry(s) and on_pool(sb, DUNE).is_file()
    assert report.moved_back == 2 and not on_pool(sb, E04).exists()


def test_pinned_file_is_cached_and_never_moved_back(env):
    s, sb, _sim, now = env
    heat_old = user(s, "old/Metropolis (1927)/Metropolis (1927).mkv")
    e06 = user(s, "tv/Severance (2022)/Season 01/Severance (2022) - S01E06.mkv")
    assert engine.pin(s, [e06]) == [e06]
    run(s, now)
    assert on_pool(sb, "tv/Severance (2022)/Season 01/Severance (2022) - S01E06.mkv").is_file()
    assert registry(s).get(e06).pinned
    s.demand.next_episodes = 0
    run(s, now + 60)
    assert e06 in registry(s)
    assert engine.pin(s, [e06], on=False) == [e06]
    assert run(s, now + 120).moved_back == 1
    with pytest.raises(UsageError):
        engine.pin(s, ["/elsewhere/x.mkv"])
    assert heat_old not in registry(s)


def test_dry_run_moves_nothing_and_writes_only_the_last_run(env):
    s, sb, _sim, now = env
    report = run(s, now, dry_run=True)
    assert report.exit_code == 0 and report.dry_run and report.cached == 0
    assert report.plan.summary()["cache"] == 5
    assert not on_pool(sb, ARRIVAL).exists() and on_disk(sb, "disk1", ARRIVAL).is_file()
    store = StateStore(s)
    assert not store.registry_path.exists() and not Path(s.paths.exclusion_list).exists()
    assert store.load_last_run()["dry_run"] is True


def test_plan_document_changes_nothing(env):
    s, sb, _sim, now = env
    doc = engine.plan_document(s, now=now)
    assert doc["dry_run"] is True and doc["exit_code"] == 0
    assert {"actions", "unknown", "unmapped", "summary"} <= set(doc)
    assert doc["summary"]["cache"] == 5
    cache = [a for a in doc["actions"] if a["action"] == "cache"]
    assert all(a["reasons"] and a["title"] for a in cache)
    assert not StateStore(s).last_run_path.exists() and not on_pool(sb, ARRIVAL).exists()


def test_plan_document_names_each_files_disk_and_the_space_before_and_after(env):
    s, sb, _sim, now = env
    doc = engine.plan_document(s, now=now)
    cache = [a for a in doc["actions"] if a["action"] == "cache"]
    for a in cache:
        assert (sb.mnt / a["disk"] / a["path"][len(s.paths.user_root) + 1:]).is_file()
    space = doc["space"]
    assert space["pool"] == "cache" and space["managed_before"] == 0
    assert space["free_before"] - space["free_after"] == doc["summary"]["bytes_to_cache"] == space["managed_after"]


# ---------------------------------------------------------------- refusals


def test_mover_running_refuses_with_exit_6(env):
    s, sb, _sim, now = env
    sb.set_mover_running()
    with pytest.raises(EnvironmentRefuses) as err:
        run(s, now)
    assert err.value.exit_code == 6 and "mover" in str(err.value)
    assert not on_pool(sb, ARRIVAL).exists()
    run(s, now, before_mover=True)  # the mover's own hook may run while it waits
    assert on_pool(sb, ARRIVAL).exists()


@pytest.mark.parametrize("keys, words", [({"mdResync": "1", "mdResyncPos": "12"}, "parity"),
                                         ({"mdState": "STOPPED"}, "not started")])
def test_parity_check_or_stopped_array_refuses(env, keys, words):
    s, sb, _sim, now = env
    sb.set_var(**keys)
    with pytest.raises(EnvironmentRefuses, match=words):
        run(s, now)


def test_lock_held_refuses_with_exit_4(env):
    s, _sb, _sim, now = env
    with RunLock(s.paths.volatile_dir), pytest.raises(LockHeld) as err:
        run(s, now)
    assert err.value.exit_code == 4


def test_stop_request_ends_the_run_with_exit_5(env):
    s, sb, _sim, now = env

    def on_progress(doc):
        if doc.get("phase") == "copying":
            StopFlag(s.paths.volatile_dir).request()

    report = run(s, now, on_progress=on_progress)
    assert report.exit_code == 5 and report.cached == 0
    assert on_disk(sb, "disk1", ARRIVAL).is_file()
    assert run(s, now + 60).cached == 5  # the next run carries on


# ---------------------------------------------------------------- outside changes


def test_upgrade_with_a_new_name_adopts_the_new_file_and_never_restores_the_old(env, scenario):
    s, sb, sim, now = env
    run(s, now)
    old_pool = on_pool(sb, DUNE)
    new_rel = "movies/Dune (2021)/Dune (2021) [1080p].mkv"
    old_pool.unlink()  # Radarr replaced the file through /mnt/user: the new one lands on the pool
    on_pool(sb, new_rel).write_bytes(b"x" * 400_000)
    dune = next(i for i in scenario.items.values() if i.title == "Dune")
    part = dune.parts()[0]
    part.file, part.size = "/data/" + new_rel, 400_000
    sim.world._reindex()
    report = run(s, now + 60)
    reg = registry(s)
    assert user(s, DUNE) not in reg and user(s, new_rel) in reg
    assert reg.get(user(s, new_rel)).disk is None
    assert not on_disk(sb, "disk2", DUNE).exists()  # the old backup was not restored over anything
    assert not on_disk(sb, "disk2", DUNE + ".plexcached").exists(), report.warnings  # retired: new one complete
    assert str(on_pool(sb, new_rel)) in Path(s.paths.exclusion_list).read_text()
    events = StateStore(s).load_history().events
    assert any(e["kind"] == "retired" for e in events) and any(e["kind"] == "upgraded" for e in events)


def test_upgrade_still_being_written_keeps_the_old_backup(env, scenario):
    s, sb, sim, now = env
    run(s, now)
    new_rel = "movies/Dune (2021)/Dune (2021) [1080p].mkv"
    on_pool(sb, DUNE).unlink()
    on_pool(sb, new_rel).write_bytes(b"x" * 1000)  # Plex already knows it at 400,000 bytes: not complete yet
    part = next(i for i in scenario.items.values() if i.title == "Dune").parts()[0]
    part.file, part.size = "/data/" + new_rel, 400_000
    sim.world._reindex()
    report = run(s, now + 60)
    assert on_disk(sb, "disk2", DUNE + ".plexcached").is_file()
    assert any("stale backup" in w for w in report.warnings)


def test_file_deleted_by_the_user_is_dropped_and_never_recreated(env):
    s, sb, _sim, now = env
    run(s, now)
    on_pool(sb, ARRIVAL).unlink()
    report = run(s, now + 60)
    assert user(s, ARRIVAL) not in registry(s)
    assert not on_disk(sb, "disk1", ARRIVAL).exists() and not on_pool(sb, ARRIVAL).exists()
    events = StateStore(s).load_history().events
    assert any(e["kind"] == "dropped" and e["path"] == user(s, ARRIVAL) for e in events)
    skipped = {a["path"]: a.get("why") for a in report.to_json()["actions"] if a["action"] == "skip"}
    assert "not found" in skipped[user(s, ARRIVAL)]


def test_file_already_on_the_pool_is_adopted(env):
    s, sb, _sim, now = env
    arrival_disk = on_disk(sb, "disk1", ARRIVAL)
    on_pool(sb, ARRIVAL).parent.mkdir(parents=True, exist_ok=True)
    arrival_disk.rename(on_pool(sb, ARRIVAL))  # e.g. a download that never left the pool
    report = run(s, now)
    entry = registry(s).get(user(s, ARRIVAL))
    assert entry is not None and entry.disk is None and report.exit_code == 0
    assert not arrival_disk.exists()


def test_a_file_adopted_from_the_pool_takes_its_subtitles_with_it(env):
    """Adopted ("already on the pool"), a video's subtitles beside it are managed with it: recorded, on the
    ignore list, and moved back with it, never left for the mover to split from their video."""
    s, sb, _sim, now = env
    arrival_disk = on_disk(sb, "disk1", ARRIVAL)
    pool_video = on_pool(sb, ARRIVAL)
    pool_video.parent.mkdir(parents=True, exist_ok=True)
    arrival_disk.rename(pool_video)
    subtitle = pool_video.with_name(pool_video.stem + ".en.srt")
    subtitle.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    run(s, now)
    entry = registry(s).get(user(s, ARRIVAL))
    sub_user = user(s, ARRIVAL)[: -len(".mkv")] + ".en.srt"
    assert entry is not None and entry.sidecars == [sub_user]


def test_hard_linked_file_is_skipped(env):
    s, sb, _sim, now = env
    os.link(on_disk(sb, "disk2", DUNE), sb.root / "seeding.mkv")
    report = run(s, now)
    skipped = {a["path"]: a.get("why", "") for a in report.to_json()["actions"] if a["action"] == "skip"}
    assert "hard-linked" in skipped[user(s, DUNE)]
    assert on_disk(sb, "disk2", DUNE).is_file()


def test_created_pool_dirs_follow_the_array_dirs_owner_and_mode(env):
    s, sb, _sim, now = env
    src_dir = on_disk(sb, "disk2", "tv/Severance (2022)/Season 01")
    os.chmod(src_dir, 0o775)
    run(s, now)
    made = on_pool(sb, "tv/Severance (2022)/Season 01")
    assert made.is_dir()
    st_src, st_new = src_dir.stat(), made.stat()
    assert (st_new.st_uid, st_new.st_gid) == (st_src.st_uid, st_src.st_gid)
    assert st_new.st_mode & 0o7777 == 0o775


def test_files_about_to_be_cached_are_protected_with_their_subtitles_before_copying(env):
    """A mover that starts mid-run must already skip what this run is copying, subtitles included."""
    s, sb, _, now = env
    cycle = engine.Cycle(s, now=now)
    wanted = cycle.discover()
    cycle.reconcile(wanted)
    cycle.protect_planned(cycle.plan(wanted))
    listed = Path(s.paths.exclusion_list).read_text().splitlines()
    assert str(on_pool(sb, ARRIVAL)) in listed
    assert str(on_pool(sb, "movies/Arrival (2016)/Arrival (2016).en.srt")) in listed


def test_manual_exclusions_come_first(env):
    s, _sb, _sim, now = env
    Path(s.paths.manual_exclusions).write_text("# mine\n/mnt/cache/appdata/keep\n\n")
    run(s, now)
    lines = Path(s.paths.exclusion_list).read_text().splitlines()
    assert lines[0] == "/mnt/cache/appdata/keep" and len(lines) == len(set(lines))


# ---------------------------------------------------------------- evict, list, status, notify


def test_evict_all_leaves_no_trace(env):
    s, sb, _sim, now = env
    run(s, now)
    report = engine.evict(s, None, now=now + 60)
    assert report.exit_code == 0 and report.moved_back == 5, report.failures
    assert len(registry(s)) == 0 and Path(s.paths.exclusion_list).read_text() == ""
    assert on_disk(sb, "disk1", ARRIVAL).is_file() and not list((sb.mnt / "cache").rglob("*.mkv"))
    assert not list(sb.mnt.rglob("*.plexcached"))
    with pytest.raises(UsageError):
        engine.evict(s, [user(s, ARRIVAL)])


def test_list_and_status_documents(env):
    s, _sb, _sim, now = env
    run(s, now)
    files = engine.list_files(s, sort="size")["files"]
    assert len(files) == 5 and files[0]["size"] >= files[-1]["size"]
    assert set(files[0]) >= {"path", "share", "pool", "disk", "size", "cached_at", "title", "library", "kind",
                             "users", "reasons", "pinned", "sidecars"}
    only = engine.list_files(s, text="alice")["files"]
    assert [f["path"] for f in only] == [user(s, DUNE)]
    st = engine.status(s)
    assert st["state"] == "idle" and st["counts"]["files"] == 5
    assert st["last_run"]["cached"] == 5 and st["cache"]["pool"] == "cache"
    assert st["cache"]["managed_bytes"] == st["counts"]["bytes"] > 0
    json.dumps(st)


def test_a_run_that_did_something_notifies_unraid(env):
    s, sb, _sim, now = env
    run(s, now)
    calls = sb.notifications()
    assert calls and any("-s" in c and "plexcache-r run finished" in c for c in calls)
    run(s, now + 60)
    assert len(sb.notifications()) == len(calls)  # a run that did nothing stays quiet


def test_file_cached_by_an_interrupted_run_is_taken_back_with_its_backup(env):
    s, sb, sim, now = env
    run(s, now)
    store = StateStore(s)
    reg = store.load_registry()
    reg.remove(user(s, ARRIVAL))  # as if the run died after the copy, before recording it
    store.save_registry(reg)
    run(s, now + 60)
    entry = registry(s).get(user(s, ARRIVAL))
    assert entry is not None and entry.disk == "disk1" and entry.backup
    sim.set_watched("admin", "Arrival (2016)")
    assert run(s, now + 120).moved_back == 1
    assert on_disk(sb, "disk1", ARRIVAL).is_file() and not on_disk(sb, "disk1", ARRIVAL + ".plexcached").exists()


def test_a_pool_that_is_not_mounted_keeps_its_entries(env):
    s, sb, sim, now = env
    run(s, now)
    (sb.mnt / "cache").rename(sb.mnt / "cache-away")
    sim.set_watched("admin", "Arrival (2016)")
    report = run(s, now + 60)
    assert report.moved_back == 0 and len(registry(s)) == 5
    (sb.mnt / "cache-away").rename(sb.mnt / "cache")
    assert run(s, now + 120).moved_back == 1


def test_a_run_killed_mid_copy_is_repaired_by_the_next_one(env, tmp_path):
    s, sb, _sim, now = env
    settings_file = tmp_path / "settings.yaml"
    config.save(s, settings_file)
    code = ("import sys; from pathlib import Path; from plexcache import config, engine; "
            f"engine.run_cycle(config.load(Path({str(settings_file)!r})), now={now})")
    env_vars = dict(os.environ, PLEXCACHE_CRASH_AT="cache.retired:2")
    killed = subprocess.run([sys.executable, "-c", code], env=env_vars, capture_output=True, timeout=seconds(120))
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    report = run(s, now + 60)
    assert report.exit_code == 0, report.to_json()
    reg = registry(s)
    assert len(reg) == 5
    events = StateStore(s).load_history().events
    assert any(e["kind"] == "recovered" for e in events)  # the op killed after its commit was finished
    for entry in reg.entries.values():
        assert os.path.isfile(entry.pool_path(s.paths.pool_root))
        assert not os.path.exists(os.path.join(str(sb.mnt / entry.disk), entry.share, entry.rel))
    assert not list(sb.mnt.rglob("*.plexcache-tmp"))


def test_a_file_that_fails_gives_exit_1_and_an_error_notification(env):
    s, sb, _sim, now = env

    def on_progress(doc):
        if doc.get("phase") == "copying" and on_disk(sb, "disk2", DUNE).exists():
            on_disk(sb, "disk2", DUNE).unlink()  # gone between planning and copying

    report = run(s, now, on_progress=on_progress)
    assert report.exit_code == 1 and report.failed == 1 and report.cached == 4
    assert report.failures[0].startswith(user(s, DUNE))
    assert user(s, DUNE) not in registry(s)
    calls = sb.notifications()
    assert any("PlexCache-R errors" in c for c in calls) and any("-i" in c and "alert" in c for c in calls)


# ---------------------------------------------------------------- the log file


@pytest.fixture
def logfile(env):
    """Logging configured the way the CLI does it; the handlers are taken off again afterwards."""
    import logging

    from plexcache import logsetup

    s = env[0]
    root = logging.getLogger()
    level = root.level
    logsetup.configure(s)
    yield Path(s.paths.log_dir) / logsetup.LOG_NAME
    for handler in [h for h in root.handlers if getattr(h, "_plexcache", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def test_a_run_logs_its_start_end_and_every_file(env, logfile):
    s, _sb, sim, now = env
    run(s, now)
    sim.set_watched("admin", "Arrival (2016)")
    run(s, now + 60)
    text = logfile.read_text()
    lines = text.splitlines()
    assert sum("INFO" in line and "engine: run started" in line for line in lines) == 2
    finished = [line for line in lines if "engine: run finished in" in line]
    assert len(finished) == 2 and "cached 5 (" in finished[0] and "moved back 1 (" in finished[1]
    cached = [line for line in lines if "INFO" in line and f"cached: {user(s, ARRIVAL)} (" in line]
    assert len(cached) == 1 and "KB)" in cached[0] and "admin: On Deck" in cached[0]
    assert any(f"moved back to the array: {user(s, ARRIVAL)} (" in line for line in lines)
    heat = user(s, "movies/Heat (1995)/Heat (1995).mkv")
    assert any(f"skipped: {heat} (" in line and "being played" in line for line in lines)
    assert sim.owner_token not in text and "pms-alice" not in text


def test_a_failed_file_is_logged_with_why(env, logfile):
    s, sb, _sim, now = env

    def on_progress(doc):
        if doc.get("phase") == "copying" and on_disk(sb, "disk2", DUNE).exists():
            on_disk(sb, "disk2", DUNE).unlink()

    run(s, now, on_progress=on_progress)
    failed = [line for line in logfile.read_text().splitlines() if f"failed: {user(s, DUNE)}: " in line]
    assert len(failed) == 1 and "WARNING" in failed[0]


def test_status_shows_the_newest_activity_first(env):
    s, _sb, sim, now = env
    run(s, now)
    sim.set_watched("admin", "Arrival (2016)")
    run(s, now + 60)
    feed = engine.status(s)["activity"]
    assert len(feed) == 6 and set(feed[0]) == {"at", "done_at", "kind", "path", "title", "users", "reasons", "size",
                                               "detail", "message", "run"}
    assert feed[0]["kind"] == "moved_back" and feed[0]["path"] == user(s, ARRIVAL) and feed[0]["at"] == now + 60
    assert feed[0]["message"] == "Moved back to the array Arrival (2016).mkv (307.2 KB)"
    assert [e["at"] for e in feed] == sorted((e["at"] for e in feed), reverse=True)
    assert {e["kind"] for e in feed[1:]} == {"cached"} and feed[1]["message"].startswith("Cached ")
    json.dumps(feed)


def test_status_activity_holds_the_newest_fifty(env):
    s = env[0]
    store = StateStore(s)
    history = store.load_history()
    for i in range(70):
        history.add("dropped", f"/mnt/user/movies/m{i}.mkv", 1000.0 + i, detail="deleted outside plexcache-r")
    store.save_history(history)
    feed = engine.status(s)["activity"]
    assert len(feed) == 50 and feed[0]["path"].endswith("/m69.mkv") and feed[-1]["path"].endswith("/m20.mkv")
    assert feed[0]["message"] == "Stopped managing m69.mkv: deleted outside plexcache-r"


# ---------------------------------------------------------------- a mover without our ignore list


SRT = "movies/Arrival (2016)/Arrival (2016).en.srt"


def rogue_move(sb, rel: str, disk: str, change: bytes = b"") -> None:
    """What Unraid's mover does without plexcache-r's ignore list: the pool copy goes to an array disk of
    its choosing (times kept), whatever backup sits on another disk."""
    import shutil

    dest = on_disk(sb, disk, rel)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(on_pool(sb, rel), dest)
    on_pool(sb, rel).unlink()
    if change:
        with open(dest, "r+b") as handle:
            handle.write(change)
        st = on_disk(sb, disk, rel + ".plexcached").stat() if on_disk(sb, disk, rel + ".plexcached").exists() \
            else None
        if st is not None:
            os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))


def copies(sb, rel: str) -> tuple[list[str], list[str]]:
    """(live copies, backups) of rel anywhere in the sandbox, by mount name."""
    mounts = sorted(p for p in sb.mnt.iterdir() if p.name != "user")
    live = [m.name for m in mounts if (m / rel).is_file()]
    kept = [m.name for m in mounts if (m / (rel + ".plexcached")).is_file()]
    return live, kept


def test_a_file_the_mover_put_on_another_disk_keeps_one_copy_and_is_cached_again(env):
    s, sb, _sim, now = env
    run(s, now)
    original = on_disk(sb, "disk1", ARRIVAL + ".plexcached").read_bytes()
    rogue_move(sb, ARRIVAL, "disk2")
    rogue_move(sb, SRT, "disk2")
    report = run(s, now + 60)
    assert report.exit_code == 0 and report.cached == 1, report.to_json()
    assert copies(sb, ARRIVAL) == (["cache"], ["disk2"]) and copies(sb, SRT) == (["cache"], ["disk2"])
    assert on_pool(sb, ARRIVAL).read_bytes() == original
    assert registry(s).get(user(s, ARRIVAL)).disk == "disk2"
    assert any("moved back to the array by something else" in w for w in report.warnings)
    retired = [e["path"] for e in StateStore(s).load_history().events if e["kind"] == "retired"]
    assert sorted(retired) == sorted([str(on_disk(sb, "disk1", ARRIVAL + ".plexcached")),
                                      str(on_disk(sb, "disk1", SRT + ".plexcached"))])


def test_a_file_the_mover_put_back_that_is_no_longer_wanted_leaves_no_backup(env):
    s, sb, sim, now = env
    run(s, now)
    rogue_move(sb, ARRIVAL, "disk2")
    rogue_move(sb, SRT, "disk1")  # onto the disk that holds its backup
    sim.set_watched("admin", "Arrival (2016)")
    report = run(s, now + 60)
    assert report.exit_code == 0 and report.cached == 0
    assert copies(sb, ARRIVAL) == (["disk2"], []) and copies(sb, SRT) == (["disk1"], [])
    assert user(s, ARRIVAL) not in registry(s)


def test_a_copy_the_mover_put_back_that_differs_from_the_backup_keeps_both(env):
    s, sb, _sim, now = env
    run(s, now)
    rogue_move(sb, ARRIVAL, "disk2", change=b"damaged")  # same size, same mtime, other bytes
    report = run(s, now + 60)
    assert copies(sb, ARRIVAL) == (["disk2"], ["disk1"])  # nothing removed, nothing cached again
    assert any("not provably identical" in w and "audit" in w for w in report.warnings), report.warnings
    why = {a["path"]: a.get("why", "") for a in report.to_json()["actions"]}
    assert "not provably identical" in why[user(s, ARRIVAL)] and "audit" in why[user(s, ARRIVAL)]
    assert user(s, ARRIVAL) not in registry(s)


def test_a_stray_backup_on_another_disk_is_recognised_before_caching(env):
    s, sb, _sim, now = env
    import shutil

    stray = on_disk(sb, "disk1", DUNE + ".plexcached")  # Dune lives on disk2
    stray.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(on_disk(sb, "disk2", DUNE), stray)
    report = run(s, now)
    assert report.exit_code == 0 and user(s, DUNE) in registry(s)
    assert copies(sb, DUNE) == (["cache"], ["disk2"])


def test_a_stray_backup_that_differs_refuses_to_cache(env):
    s, sb, _sim, now = env
    stray = on_disk(sb, "disk2", DUNE + ".plexcached")  # next to the original, other content
    stray.write_bytes(b"an older release")
    report = run(s, now)
    assert user(s, DUNE) not in registry(s) and report.exit_code == 0
    assert copies(sb, DUNE) == (["disk2"], ["disk2"])
    skipped = {a["path"]: a.get("why", "") for a in report.to_json()["actions"] if a["action"] == "skip"}
    assert "not provably identical" in skipped[user(s, DUNE)]
    assert run(s, now, dry_run=True).plan.summary()["cache"] == 0


# ---------------------------------------------------------------- killed right after an op finished


def _killed_run(s, now, tmp_path, crash_at: str) -> None:
    settings_file = tmp_path / "settings.yaml"
    config.save(s, settings_file)
    code = ("from pathlib import Path; from plexcache import config, engine; "
            f"engine.run_cycle(config.load(Path({str(settings_file)!r})), now={now})")
    killed = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PLEXCACHE_CRASH_AT=crash_at),
                            capture_output=True, timeout=seconds(120))
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]


def cli_recover(tmp_path) -> dict:
    """`plexcache-r --json recover`, as the plugin (or a user) runs it after a crash."""
    done = subprocess.run([sys.executable, "-m", "plexcache", "--config", str(tmp_path / "settings.yaml"), "--json",
                           "recover"], capture_output=True, timeout=seconds(120))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return json.loads(done.stdout)


def assert_registry_matches_the_pool(s, sb) -> None:
    """Every media file on the pool is managed and on the ignore list; every managed file is on the pool."""
    reg = registry(s)
    ignore = set(Path(s.paths.exclusion_list).read_text().splitlines())
    on_the_pool = {str(p) for p in (sb.mnt / "cache").rglob("*") if p.is_file()}
    managed = {e.pool_path(s.paths.pool_root) for e in reg.entries.values()}
    managed |= {str(sb.mnt / "cache" / side[len(s.paths.user_root) + 1:]) for e in reg.entries.values()
                for side in e.sidecars}
    assert on_the_pool == managed, (on_the_pool ^ managed)
    assert managed <= ignore, managed - ignore
    for entry in reg.entries.values():
        assert not os.path.exists(os.path.join(str(sb.mnt / entry.disk), entry.share, entry.rel))
    journal = Journal(layout.journal_dir(s))
    assert journal.is_empty() and not journal.has_done()  # repaired, recorded, then checkpointed


@pytest.mark.slow
@pytest.mark.parametrize("recover_with", ["recover", "run"])
def test_a_run_killed_right_after_caching_a_file_keeps_it_managed(env, tmp_path, recover_with):
    s, sb, sim, now = env
    _killed_run(s, now, tmp_path, "cache.done:1")
    assert list((sb.mnt / "cache").rglob("*.mkv"))  # a file was cached completely before the kill
    assert len(registry(s)) == 0  # ...and the registry was not saved yet
    if recover_with == "recover":
        doc = cli_recover(tmp_path)
        assert {r["outcome"] for r in doc["recovered"]} <= {"cached", "rolled_back"} and doc["recovered"]
    else:
        s.demand.next_episodes = 0  # ...and may not be wanted any more by the next run
        sim.set_watched("admin", "Arrival (2016)")
        sim.set_offset("alice", "Dune (2021)", 0)
        run(s, now + 60)
    assert_registry_matches_the_pool(s, sb)


@pytest.mark.slow
@pytest.mark.parametrize("recover_with", ["recover", "run"])
def test_a_run_killed_right_after_moving_a_file_back_forgets_it(env, tmp_path, recover_with):
    s, sb, sim, now = env
    run(s, now)
    s.demand.next_episodes = 0
    sim.set_watched("admin", "Arrival (2016)")  # three files to move back
    _killed_run(s, now + 60, tmp_path, "restore.done:1")
    assert len(registry(s)) == 5  # the kill came before the registry was saved
    if recover_with == "recover":
        assert any(r["outcome"] == "restored" for r in cli_recover(tmp_path)["recovered"])
    else:
        report = run(s, now + 120)
        assert not any("by something else" in w for w in report.warnings), report.warnings
    assert_registry_matches_the_pool(s, sb)


def test_a_subtitle_the_mover_put_back_alone_is_no_longer_managed(env):
    s, sb, _sim, now = env
    run(s, now)
    rogue_move(sb, SRT, "disk2")  # the video stays on the pool
    report = run(s, now + 60)
    assert report.exit_code == 0, report.failures
    assert copies(sb, SRT) == (["disk2"], []) and copies(sb, ARRIVAL) == (["cache"], ["disk1"])
    assert registry(s).get(user(s, ARRIVAL)).sidecars == []
    assert str(on_pool(sb, SRT)) not in Path(s.paths.exclusion_list).read_text().splitlines()
    assert engine.evict(s, [user(s, ARRIVAL)], now=now + 120).moved_back == 1
    assert copies(sb, ARRIVAL) == (["disk1"], []) and copies(sb, SRT) == (["disk2"], [])


def test_a_subtitle_left_on_the_pool_after_its_video_was_moved_goes_back_too(env):
    s, sb, _sim, now = env
    run(s, now)
    rogue_move(sb, ARRIVAL, "disk2")  # the subtitle stays on the pool, its backup on disk1
    report = run(s, now + 60)
    assert report.exit_code == 0, report.failures
    assert copies(sb, SRT) == (["disk1"], [])
    assert copies(sb, ARRIVAL) == (["cache"], ["disk2"])  # cached again, from where the mover put it
    assert_registry_matches_the_pool(s, sb)
