"""What a kill or Unraid's mover leaves behind is repaired without deleting a file that is not the mover's own:
temp copies carried to another disk, newer files written at a name recovery would clean up, a cached file
moved to another array disk before its move back, empty folders of a rolled-back copy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from plexcache.media import mover as mv
from plexcache.media.mover import Mover
from plexcache.media.ops import MoveRefused
from test_crash_mover import KILLED, Case, run_driver
from test_mover_ops import World, _bytes


def roots(world: World, disks: int = 2) -> list[str]:
    return [str(world.root / f"mnt/disk{n}") for n in range(1, disks + 1)] + [str(world.root / "mnt/cache")]


def killed_at(case: Case, where: Path, crash: str) -> tuple[World, dict]:
    world, spec = case.setup(where)
    (world.root / "mnt/disk2/tv").mkdir(parents=True)
    result = run_driver(spec, crash=crash)
    assert result.returncode == KILLED, result.stderr
    return world, spec


def newer_file(path: str) -> bytes:
    """Sonarr/Radarr/Bazarr writing a newer file at the name (a new inode, other bytes, now as mtime)."""
    data = _bytes(123_457, 77)
    tmp = path + ".part"
    Path(tmp).write_bytes(data)
    os.rename(tmp, path)
    return data


def test_a_temp_copy_carried_to_another_disk_is_found_and_removed(tmp_path):
    case = Case("cache", "cache", backups=True, verify=False, sidecars=False)
    world, spec = killed_at(case, tmp_path, "cache.chunk:1")
    tmp = Path(spec["op"]["pool_path"]).with_name(".Show - S01E01.mkv.plexcache-tmp")
    assert tmp.exists()
    carried = world.root / "mnt/disk2/tv" / tmp.relative_to(world.root / "mnt/cache/tv")
    carried.parent.mkdir(parents=True)
    shutil.move(tmp, carried)  # Unraid's mover: the unopened partial goes to the array before recovery
    assert [r.outcome for r in mv.recover(world.journal, roots(world))] == ["rolled_back"]
    assert not carried.exists()
    assert os.path.getsize(spec["op"]["array_path"]) == case.size


def test_a_complete_temp_copy_is_kept_while_it_may_be_the_only_copy(tmp_path):
    case = Case("cache", "cache", backups=True, verify=False, sidecars=False)
    world, spec = killed_at(case, tmp_path, "cache.verified:1")
    tmp = Path(spec["op"]["pool_path"]).with_name(".Show - S01E01.mkv.plexcache-tmp")
    os.unlink(spec["op"]["array_path"])  # something else deleted the original meanwhile
    mv.recover(world.journal, roots(world))
    assert tmp.exists() and tmp.stat().st_size == case.size


def test_rollback_leaves_a_newer_file_written_at_the_pool_name(tmp_path, caplog):
    case = Case("cache", "cache", backups=True, verify=False, sidecars=False)
    world, spec = killed_at(case, tmp_path, "cache.placed:1")
    newer = newer_file(spec["op"]["pool_path"])
    original = Path(spec["op"]["array_path"]).read_bytes()
    outcomes = [r.outcome for r in mv.recover(world.journal, roots(world))]
    assert Path(spec["op"]["pool_path"]).read_bytes() == newer, outcomes
    assert Path(spec["op"]["array_path"]).read_bytes() == original
    assert world.journal.is_empty()
    assert any(r.levelname == "WARNING" and spec["op"]["pool_path"] in r.getMessage() for r in caplog.records)


def test_finishing_a_move_back_leaves_a_newer_pool_file(tmp_path, caplog):
    case = Case("restore", "restore", backups=True, verify=False, sidecars=False, upgrade=True)
    world, spec = killed_at(case, tmp_path, "restore.committed:1")
    newer = newer_file(spec["op"]["pool_path"])
    outcomes = [r.outcome for r in mv.recover(world.journal, roots(world))]
    assert Path(spec["op"]["pool_path"]).read_bytes() == newer, outcomes
    assert os.path.getsize(spec["op"]["array_path"]) == 2 * 64 * 1024 + 7  # the moved-back upgrade
    assert outcomes != ["restored"]  # not reported as a clean move back: the registry must not forget it
    assert any(r.levelname == "WARNING" and spec["op"]["pool_path"] in r.getMessage() for r in caplog.records)


def test_move_back_of_a_file_the_mover_carried_to_another_disk_makes_no_second_live_copy(tmp_path):
    world = World(tmp_path, disks=2)
    video, _ = world.episode(subs=())
    cached = Mover(world.journal).cache(world.cache_op(video, []))
    world.journal.checkpoint()
    # Unraid's mover, ignoring the ignore list, puts the pool copy on disk2 during the run
    Path(world.a(video, 2)).parent.mkdir(parents=True)
    shutil.move(world.p(video), world.a(video, 2))
    op = world.restore_op(video, [], recorded={f.pool_path: f.facts for f in cached.files})
    with pytest.raises(MoveRefused) as err:
        Mover(world.journal, roots=roots(world)).restore(op)
    assert err.value.reason == "elsewhere"
    assert not os.path.exists(world.a(video)) and os.path.exists(world.a(video) + ".plexcached")
    assert os.path.exists(world.a(video, 2)) and world.journal.is_empty()


def test_move_back_notices_the_pool_copy_carried_away_after_planning(tmp_path, monkeypatch):
    world = World(tmp_path, disks=2)
    video, _ = world.episode(subs=())
    cached = Mover(world.journal).cache(world.cache_op(video, []))
    Path(world.a(video, 2)).parent.mkdir(parents=True)
    real_place = Mover._place

    def mover_runs_first(self, kind, f):
        if os.path.exists(world.p(video)):
            shutil.move(world.p(video), world.a(video, 2))
        real_place(self, kind, f)

    monkeypatch.setattr(Mover, "_place", mover_runs_first)
    op = world.restore_op(video, [], recorded={f.pool_path: f.facts for f in cached.files})
    with pytest.raises(MoveRefused):
        Mover(world.journal, roots=roots(world)).restore(op)
    live = [p for p in (world.a(video), world.a(video, 2), world.p(video)) if os.path.exists(p)]
    assert live == [world.a(video, 2)]


def test_a_rolled_back_copy_removes_the_empty_folders_it_made(tmp_path, monkeypatch):
    world = World(tmp_path)
    video, _ = world.episode(subs=())
    real_copy = mv.fastcopy.copy_fd

    def copy_then_append(src, dst, size, **kw):
        n = real_copy(src, dst, size, **kw)
        with open(world.a(video), "ab") as handle:
            handle.write(b"more")  # still being written: the copy is refused and rolled back
        return n

    monkeypatch.setattr(mv.fastcopy, "copy_fd", copy_then_append)
    with pytest.raises(MoveRefused):
        Mover(world.journal).cache(world.cache_op(video, []))
    assert not os.path.exists(world.p("Show")), "the show folder the copy made is left empty on the pool"
    assert os.path.isdir(world.p(""))  # the share's own folder stays
