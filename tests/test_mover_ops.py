"""Cache and move-back operations on a small real Unraid-like tree (no mocks: real files, real renames)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plexcache import layout
from plexcache.media import lanes, openfiles, tidy
from plexcache.media import mover as mv
from plexcache.media.journal import Journal
from plexcache.media.mover import Mover
from plexcache.media.ops import CacheOp, MoveFailed, MoveRefused, RecordedCopy, RestoreOp
from realtime import wait_for

SHOW = "Show/Season 01"


class World:
    """/mnt/disk1/tv and /mnt/cache/tv under a temp root, plus a journal dir. Helpers to hash the tree."""

    def __init__(self, root: Path, disks: int = 1) -> None:
        self.root = root
        for n in range(1, disks + 1):
            (root / f"mnt/disk{n}/tv").mkdir(parents=True)
        (root / "mnt/cache/tv").mkdir(parents=True)
        self.journal_dir = root / "state/journal"
        self.journal = Journal(self.journal_dir)

    def a(self, rel: str, disk: int = 1) -> str:
        return str(self.root / f"mnt/disk{disk}/tv" / rel)

    def p(self, rel: str) -> str:
        return str(self.root / "mnt/cache/tv" / rel)

    def media(self, rel: str, size: int = 200_000, disk: int = 1, seed: int = 0) -> str:
        path = Path(self.a(rel, disk))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_bytes(size, seed or hash(rel) & 0xFFFF))
        return str(path)

    def episode(self, name: str = "E01", size: int = 200_000, subs: tuple[str, ...] = ("en", "fr"),
                disk: int = 1) -> tuple[str, list[str]]:
        """A video and its sidecar subtitles; returns relative paths (video, [sidecars])."""
        video = f"{SHOW}/Show - S01{name}.mkv"
        self.media(video, size, disk)
        sidecars = []
        for lang in subs:
            rel = f"{SHOW}/Show - S01{name}.{lang}.srt"
            self.media(rel, 3_000 + len(lang), disk)
            sidecars.append(rel)
        return video, sidecars

    def cache_op(self, video: str, sidecars: list[str], disk: int = 1, **kw) -> CacheOp:
        return CacheOp(self.a(video, disk), self.p(video), [(self.a(s, disk), self.p(s)) for s in sidecars], **kw)

    def restore_op(self, video: str, sidecars: list[str], disk: int = 1, **kw) -> RestoreOp:
        return RestoreOp(self.p(video), self.a(video, disk), sidecars=[(self.p(s), self.a(s, disk))
                                                                       for s in sidecars], **kw)

    def tree(self) -> dict[str, str]:
        """Every file under mnt/ (relative path -> blake2b), directories excluded."""
        out = {}
        for dirpath, _dirs, files in os.walk(self.root / "mnt"):
            for name in files:
                full = Path(dirpath) / name
                out[str(full.relative_to(self.root))] = hashlib.blake2b(full.read_bytes()).hexdigest()
        return out

    def dirs(self) -> set[str]:
        return {str(Path(d).relative_to(self.root)) for d, _s, _f in os.walk(self.root / "mnt")}

    def temps(self) -> list[str]:
        return [k for k in self.tree() if k.endswith(layout.TMP_SUFFIX)]


def _bytes(size: int, seed: int) -> bytes:
    block = hashlib.blake2b(seed.to_bytes(4, "little")).digest() * 2048  # 128 KiB pattern, seed-dependent
    reps = size // len(block) + 1
    data = bytearray((block * reps)[:size])
    for i in range(0, size, 4096):  # make every page distinct so misplaced chunks are caught
        data[i: i + 4] = (i // 4096).to_bytes(4, "little")
    return bytes(data)


def moved(tree: dict[str, str], src: str, dst: str) -> dict[str, str]:
    """The tree after renaming src to dst (paths relative to the root)."""
    out = dict(tree)
    out[dst] = out.pop(src)
    return out


def rel(world: World, path: str) -> str:
    return str(Path(path).relative_to(world.root))


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path)


# ----------------------------------------------------------------------------------- cache

@pytest.mark.parametrize("verify", [False, True])
def test_cache_with_backups_moves_video_and_sidecars_and_keeps_backups(world, verify):
    video, subs = world.episode()
    before = world.tree()
    result = Mover(world.journal, verify=verify, chunk_size=64 * 1024).cache(world.cache_op(video, subs))
    assert result.outcome == "cached" and len(result.files) == 3
    expected = dict(before)
    for r in (video, *subs):
        src = rel(world, world.a(r))
        expected[rel(world, world.p(r))] = before[src]
        expected[src + ".plexcached"] = expected.pop(src)
    assert world.tree() == expected
    assert world.journal.is_empty()
    main = result.files[0]
    assert main.backup_path == world.a(video) + ".plexcached" and main.pool_path == world.p(video)
    assert main.facts.size == 200_000 and main.facts.mtime_ns == os.stat(main.pool_path).st_mtime_ns
    assert (main.facts.blake2b is not None) == verify
    assert result.bytes_copied == sum(f.facts.size for f in result.files)


def test_cache_without_backups_removes_the_array_original(world):
    video, subs = world.episode()
    before = world.tree()
    result = Mover(world.journal, backups=False).cache(world.cache_op(video, subs))
    assert all(f.backup_path is None for f in result.files)
    expected = {rel(world, world.p(r)): before[rel(world, world.a(r))] for r in (video, *subs)}
    assert world.tree() == expected


def test_cache_preserves_mode_owner_times_and_xattrs(world):
    video, _ = world.episode(subs=())
    src = world.a(video)
    os.chown(src, 99, 100)
    os.chmod(src, 0o640)
    os.utime(src, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    try:
        os.setxattr(src, "user.plexcache.test", b"hello")
        xattrs = True
    except OSError:
        xattrs = False
    Mover(world.journal).cache(world.cache_op(video, []))
    st = os.stat(world.p(video))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (99, 100, 0o640)
    assert st.st_mtime_ns == 1_500_000_000_987_654_321
    if xattrs:
        assert os.getxattr(world.p(video), "user.plexcache.test") == b"hello"


def test_new_pool_directories_take_owner_and_mode_of_their_array_counterparts(world):
    video, subs = world.episode()
    show, season = Path(world.a("Show")), Path(world.a(SHOW))
    os.chown(show, 99, 100)
    os.chmod(show, 0o775)
    os.chown(season, 1000, 1001)
    os.chmod(season, 0o750)
    Mover(world.journal).cache(world.cache_op(video, subs))
    for array_dir, pool_dir in ((show, world.p("Show")), (season, world.p(SHOW))):
        a, p = os.stat(array_dir), os.stat(pool_dir)
        assert (p.st_uid, p.st_gid, p.st_mode & 0o7777) == (a.st_uid, a.st_gid, a.st_mode & 0o7777)


def test_the_shares_top_level_dir_is_never_created(world):
    video, _ = world.episode(subs=())
    os.rmdir(world.root / "mnt/cache/tv")
    before = world.tree()
    with pytest.raises(MoveRefused) as err:
        Mover(world.journal).cache(world.cache_op(video, []))
    assert err.value.reason == "no_share_dir"
    assert world.tree() == before and world.journal.is_empty()
    assert not (world.root / "mnt/cache/tv").exists()


@pytest.mark.parametrize("case", ["hardlinked", "target_exists", "backup_exists", "size_mismatch",
                                  "source_missing", "not_a_file"])
def test_cache_refusals_touch_nothing(world, case):
    video, subs = world.episode()
    op = world.cache_op(video, subs)
    if case == "hardlinked":
        os.link(world.a(subs[0]), world.a("other.srt"))
    elif case == "target_exists":
        Path(world.p(SHOW)).mkdir(parents=True)
        Path(world.p(video)).write_bytes(b"partial")
    elif case == "backup_exists":
        Path(world.a(video) + ".plexcached").write_bytes(b"older")
    elif case == "size_mismatch":
        op = world.cache_op(video, subs, expected_size=123)
    elif case == "source_missing":
        os.unlink(world.a(subs[1]))
    elif case == "not_a_file":
        os.unlink(world.a(video))
        os.symlink("/etc/hostname", world.a(video))
    before, dirs = world.tree(), world.dirs()
    with pytest.raises(MoveRefused) as err:
        Mover(world.journal).cache(op)
    assert err.value.reason == case
    assert world.tree() == before and world.dirs() == dirs and world.journal.is_empty()


def test_hardlinked_file_is_copied_when_allowed_and_the_other_link_survives(world):
    video, _ = world.episode(subs=())
    os.link(world.a(video), world.a("seeding.mkv"))
    digest = world.tree()[rel(world, world.a(video))]
    Mover(world.journal, allow_hardlinked=True).cache(world.cache_op(video, []))
    tree = world.tree()
    assert tree[rel(world, world.p(video))] == digest
    assert tree[rel(world, world.a("seeding.mkv"))] == digest
    assert tree[rel(world, world.a(video)) + ".plexcached"] == digest


def test_existing_pool_file_is_never_adopted_even_if_it_looks_complete(world):
    """W1: a file already at the pool path (e.g. a truncated copy) is not taken for the cached file."""
    video, _ = world.episode(subs=())
    Path(world.p(SHOW)).mkdir(parents=True)
    Path(world.p(video)).write_bytes(Path(world.a(video)).read_bytes()[:50_000])
    with pytest.raises(MoveRefused):
        Mover(world.journal).cache(world.cache_op(video, []))
    assert os.path.getsize(world.a(video)) == 200_000  # the original is untouched and not renamed


def test_source_changing_during_the_copy_is_refused_and_cleaned(world, monkeypatch):
    video, _ = world.episode(subs=())
    real_copy = mv.fastcopy.copy_fd

    def copy_then_append(src, dst, size, **kw):
        n = real_copy(src, dst, size, **kw)
        with open(world.a(video), "ab") as handle:
            handle.write(b"more")  # Sonarr still writing the file
        return n

    monkeypatch.setattr(mv.fastcopy, "copy_fd", copy_then_append)
    with pytest.raises(MoveRefused) as err:
        Mover(world.journal).cache(world.cache_op(video, []))
    assert err.value.reason == "changed"
    assert world.temps() == [] and not os.path.exists(world.p(video)) and world.journal.is_empty()
    assert os.path.getsize(world.a(video)) == 200_004


def test_verify_catches_a_corrupted_copy_and_keeps_the_original(world, monkeypatch):
    video, subs = world.episode()
    real_copy = mv.fastcopy.copy_fd

    def corrupting(src, dst, size, **kw):
        n = real_copy(src, dst, size, **kw)
        os.pwrite(dst, b"\xff", size // 2)  # a flipped byte on the way to the disk
        return n

    monkeypatch.setattr(mv.fastcopy, "copy_fd", corrupting)
    before = world.tree()
    with pytest.raises(MoveFailed, match="differs from the original"):
        Mover(world.journal, verify=True).cache(world.cache_op(video, subs))
    assert world.tree() == before and world.journal.is_empty()


def test_short_copy_is_caught_by_the_size_check_without_verify(world, monkeypatch):
    video, _ = world.episode(subs=())
    real_copy = mv.fastcopy.copy_fd
    monkeypatch.setattr(mv.fastcopy, "copy_fd", lambda s, d, size, **kw: real_copy(s, d, size - 10, **kw) + 10)
    before = world.tree()
    with pytest.raises(MoveFailed, match="instead of"):
        Mover(world.journal).cache(world.cache_op(video, []))
    assert world.tree() == before


def test_progress_is_reported_for_the_whole_op_and_ends_at_the_total(world, monkeypatch):
    video, subs = world.episode(size=30 * 1024 * 1024)
    seen = []
    monkeypatch.setattr(mv.fastcopy, "PROGRESS_SECONDS", 3600)  # only the byte rule, whatever the speed
    Mover(world.journal, chunk_size=1024 * 1024).cache(
        world.cache_op(video, subs, key="/mnt/user/tv/x.mkv"), progress=lambda *a: seen.append(a))
    total = 30 * 1024 * 1024 + 3_002 + 3_002
    assert {label for label, _d, _t in seen} == {"/mnt/user/tv/x.mkv"}
    assert all(t == total for _l, _d, t in seen)
    done = [d for _l, d, _t in seen]
    assert done == sorted(done) and done[-1] == total
    assert 3 <= len(seen) <= 8  # throttled to ~10 MiB steps, not once per 1 MiB chunk


def test_long_names_use_a_hashed_temp_name_and_refuse_an_impossible_backup_name(world):
    name = "x" * 250 + ".mkv"
    world.media(name, 1000)
    with pytest.raises(MoveRefused) as err:  # name + ".plexcached" would not fit in 255 bytes
        Mover(world.journal).cache(CacheOp(world.a(name), world.p(name)))
    assert err.value.reason == "name_too_long" and world.journal.is_empty()
    Mover(world.journal, backups=False).cache(CacheOp(world.a(name), world.p(name)))
    assert os.path.getsize(world.p(name)) == 1000 and world.temps() == []
    Mover(world.journal).restore(RestoreOp(world.p(name), world.a(name), backup_path=None))
    assert os.path.getsize(world.a(name)) == 1000 and not os.path.exists(world.p(name))


# ---------------------------------------------------------------------------------- restore

def _cached(world, backups=True, verify=False):
    video, subs = world.episode()
    before = world.tree()
    result = Mover(world.journal, backups=backups, verify=verify).cache(world.cache_op(video, subs))
    recorded = {f.pool_path: f.facts for f in result.files}
    return video, subs, before, recorded


@pytest.mark.parametrize("with_record", [True, False])
def test_restore_renames_the_intact_backup_back(world, with_record):
    video, subs, before, recorded = _cached(world)
    backup_ino = os.stat(world.a(video) + ".plexcached").st_ino
    result = Mover(world.journal).restore(world.restore_op(video, subs, recorded=recorded if with_record else {}))
    assert result.outcome == "restored" and [f.how for f in result.files] == ["rename"] * 3
    assert result.bytes_copied == 0
    assert world.tree() == before and world.journal.is_empty()
    assert os.stat(world.a(video)).st_ino == backup_ino  # renamed, not copied


def _confirmed(path: str) -> dict:
    st = os.stat(path)
    return {path: RecordedCopy(st.st_size, st.st_mtime_ns)}


def test_restore_after_an_upgrade_copies_the_new_file_back_and_retires_the_old_backup(world):
    """Sonarr/Radarr replaced the pool copy, and it was shown complete (Plex lists it with its size): the
    stale backup is never renamed over it, and it is retired once the new file is on the array."""
    video, subs, before, recorded = _cached(world)
    upgraded = _bytes(250_000, 77)
    Path(world.p(video)).write_bytes(upgraded)
    op = dataclasses.replace(world.restore_op(video, subs, recorded=recorded), confirmed=_confirmed(world.p(video)))
    result = Mover(world.journal).restore(op)
    assert [f.how for f in result.files] == ["copy", "rename", "rename"]
    expected = dict(before)
    expected[rel(world, world.a(video))] = hashlib.blake2b(upgraded).hexdigest()
    assert world.tree() == expected


@pytest.mark.parametrize("with_record", [True, False])
def test_restore_refuses_a_changed_pool_copy_nothing_shows_complete(world, with_record):
    """A truncated pool copy looks like an upgrade (the seed's W1 chain): without a confirmation that it is
    a complete file, nothing is touched and both copies stay."""
    video, subs, _before, recorded = _cached(world)
    Path(world.p(video)).write_bytes(Path(world.p(video)).read_bytes()[:70_000])
    tree = world.tree()
    with pytest.raises(MoveRefused) as caught:
        Mover(world.journal).restore(world.restore_op(video, subs, recorded=recorded if with_record else {}))
    assert caught.value.reason == "mismatch"
    assert world.tree() == tree and world.journal.is_empty()


def test_restore_keep_original_renames_the_backup_back_and_drops_the_pool_copy(world):
    video, subs, before, recorded = _cached(world)
    Path(world.p(video)).write_bytes(Path(world.p(video)).read_bytes()[:70_000])
    op = dataclasses.replace(world.restore_op(video, subs, recorded=recorded), keep_original=(world.p(video),))
    result = Mover(world.journal).restore(op)
    assert [f.how for f in result.files] == ["rename"] * 3
    assert world.tree() == before


def test_restore_same_size_change_is_detected_by_mtime(world):
    video, subs, _before, recorded = _cached(world)
    data = bytearray(Path(world.p(video)).read_bytes())
    data[0] ^= 1
    Path(world.p(video)).write_bytes(bytes(data))  # same size, new mtime
    with pytest.raises(MoveRefused):
        Mover(world.journal).restore(world.restore_op(video, subs, recorded=recorded))
    op = dataclasses.replace(world.restore_op(video, subs, recorded=recorded), confirmed=_confirmed(world.p(video)))
    Mover(world.journal).restore(op)
    assert Path(world.a(video)).read_bytes() == bytes(data)


def test_restore_with_a_damaged_backup_copies_the_pool_file_back(world):
    video, subs, before, recorded = _cached(world)
    with open(world.a(video) + ".plexcached", "r+b") as handle:
        handle.truncate(1000)  # the backup is not what was recorded
    result = Mover(world.journal).restore(world.restore_op(video, subs, recorded=recorded))
    assert result.files[0].how == "copy"
    assert world.tree() == before


def test_restore_without_backups_copies_back_the_careful_way(world):
    video, subs, before, recorded = _cached(world, backups=False)
    result = Mover(world.journal, verify=True).restore(
        world.restore_op(video, subs, recorded=recorded, backup_path=None))
    assert [f.how for f in result.files] == ["copy"] * 3
    assert world.tree() == before
    st = os.stat(world.a(video))
    assert st.st_mtime_ns == recorded[world.p(video)].mtime_ns


def test_restore_recreates_missing_array_dirs_with_pool_owner(world):
    video, subs, before, _recorded = _cached(world, backups=False)
    for s in (video, *subs):
        assert not os.path.exists(world.a(s))
    os.rmdir(world.a(SHOW))
    os.rmdir(world.a("Show"))
    os.chown(world.p("Show"), 99, 100)
    os.chown(world.p(SHOW), 99, 100)
    Mover(world.journal).restore(world.restore_op(video, subs, backup_path=None))
    assert world.tree() == before
    st = os.stat(world.a(SHOW))
    assert (st.st_uid, st.st_gid) == (99, 100)


def test_restore_when_the_pool_copy_is_gone_puts_the_backup_back(world):
    video, subs, before, recorded = _cached(world)
    os.unlink(world.p(video))
    Mover(world.journal).restore(world.restore_op(video, subs, recorded=recorded))
    assert world.tree() == before


def test_restore_refuses_to_overwrite_a_file_on_the_array(world):
    """W2 guard: whatever is at the array path, it is not overwritten and the pool copy is kept."""
    video, subs, _before, recorded = _cached(world)
    Path(world.a(video)).write_bytes(b"truncated copy from another tool")
    snapshot = world.tree()
    with pytest.raises(MoveRefused) as err:
        Mover(world.journal).restore(world.restore_op(video, subs, recorded=recorded))
    assert err.value.reason == "target_exists"
    assert world.tree() == snapshot and world.journal.is_empty()


def test_restore_with_nothing_left_is_refused_as_lost(world):
    video, subs, _before, _recorded = _cached(world, backups=False)
    os.unlink(world.p(video))
    with pytest.raises(MoveRefused) as err:
        Mover(world.journal).restore(world.restore_op(video, subs, backup_path=None))
    assert err.value.reason == "lost"


def test_restore_ignores_a_backup_when_told_there_are_none(world):
    video, subs, before, _recorded = _cached(world, backups=False)
    Path(world.a(video) + ".plexcached").write_bytes(b"someone else's file")
    Mover(world.journal).restore(world.restore_op(video, subs, backup_path=None))
    assert Path(world.a(video) + ".plexcached").read_bytes() == b"someone else's file"
    assert world.tree()[rel(world, world.a(video))] == before[rel(world, world.a(video))]


def test_cache_restore_cycles_are_lossless(world):
    video, subs = world.episode()
    before = world.tree()
    m = Mover(world.journal, verify=True)
    for backups in (True, False, True):
        m.backups = backups
        result = m.cache(world.cache_op(video, subs))
        recorded = {f.pool_path: f.facts for f in result.files}
        m.restore(world.restore_op(video, subs, recorded=recorded, backup_path="auto" if backups else None))
        assert world.tree() == before


def test_op_round_trips_through_its_journal_form():
    op = RestoreOp("/mnt/cache/a", "/mnt/disk1/a", sidecars=[("/mnt/cache/a.srt", "/mnt/disk1/a.srt")],
                   recorded={"/mnt/cache/a": RecordedCopy(1, 2, "h")}, key="k", disk="disk1")
    assert mv._op_from_json({"kind": "restore", "op": mv._op_to_json(op)}) == op
    cop = CacheOp("/mnt/disk1/a", "/mnt/cache/a", [("/mnt/disk1/s", "/mnt/cache/s")], 5, "k", None)
    assert mv._op_from_json({"kind": "cache", "op": mv._op_to_json(cop)}) == cop


# ----------------------------------------------------------------------------- open files

def test_is_open_sees_a_file_held_open_by_another_process(world):
    video, _ = world.episode(subs=())
    path = world.a(video)
    assert not openfiles.is_open(path)
    holder = subprocess.Popen([sys.executable, "-c", "import signal,sys; f=open(sys.argv[1],'rb'); "
                               "print('ready', flush=True); signal.pause()", path], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"ready"
        assert openfiles.is_open(path)
        link = world.a("alias.mkv")
        os.symlink(path, link)  # another name for the same file still matches (by device and inode)
        assert openfiles.open_paths([link, world.a(SHOW + "/nope.mkv")]) == {link}
    finally:
        holder.kill()
        holder.wait()
    assert wait_for(lambda: not openfiles.is_open(path))


# ------------------------------------------------------------------------ stale backups, helpers

def test_retire_stale_backup_only_when_the_new_file_is_complete(world):
    old = world.media(f"{SHOW}/Show - S01E01 720p.mkv.plexcached", 5000)
    new = world.media(f"{SHOW}/Show - S01E01 1080p.mkv", 9000)
    assert not tidy.retire_stale_backup(old, new, 8000)           # new file not complete yet
    assert not tidy.retire_stale_backup(new, new, 9000)           # not a backup name
    assert not tidy.retire_stale_backup(old, world.a("nope"), 1)  # no new file
    os.link(old, world.a("same.mkv"))
    assert not tidy.retire_stale_backup(old, world.a("same.mkv"), 5000)  # the backup itself
    assert os.path.exists(old)
    assert tidy.retire_stale_backup(old, new, 9000)
    assert not os.path.exists(old) and os.path.getsize(new) == 9000


def test_journal_dir_follows_the_state_dir():
    class Paths:
        state_dir = "/boot/config/plugins/plexcache-r/state"

    class Settings:
        paths = Paths()

    assert layout.journal_dir(Settings()) == "/boot/config/plugins/plexcache-r/state/journal"


def test_run_ops_accepts_the_same_op_twice_and_refuses_the_second(world):
    video, subs = world.episode()
    op = world.cache_op(video, subs)
    report = lanes.run_ops([op, op], 2, Mover(world.journal))
    assert [r.outcome for r in report.results] == ["cached", "refused"]
    assert report.results[1].error.reason in ("target_exists", "backup_exists", "source_missing")
