"""Running many operations: lanes per disk, stop between files, halting on critical errors; run control."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from copyfaults import fail_copy_steps_after
from plexcache.errors import LockHeld
from plexcache.media import fastcopy, lanes
from plexcache.media.lanes import run_ops, schedule_by_disk
from plexcache.media.mover import Mover
from plexcache.media.ops import CacheOp
from plexcache.runctl import PHASES, ProgressWriter, RunLock, StopFlag
from test_mover_ops import World


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path, disks=3)


def _ops(world: World, per_disk: int = 2, disks: int = 3, size: int = 100_000) -> list[CacheOp]:
    ops = []
    for n in range(per_disk):
        for d in range(1, disks + 1):
            rel = f"M{d}-{n}/movie.mkv"
            world.media(rel, size, disk=d)
            ops.append(CacheOp(world.a(rel, d), world.p(rel), disk=f"disk{d}", key=f"/mnt/user/tv/{rel}"))
    return ops


def test_schedule_keeps_each_disk_in_one_lane_in_order(world):
    ops = _ops(world, per_disk=3)
    for workers in (1, 2, 3, 8):
        lanes = schedule_by_disk(ops, workers)
        assert len(lanes) == min(workers, 3)
        assert sorted(id(o) for lane in lanes for o in lane) == sorted(id(o) for o in ops)
        for disk in ("disk1", "disk2", "disk3"):
            holding = [lane for lane in lanes if any(o.disk == disk for o in lane)]
            assert len(holding) == 1
            assert [o for o in holding[0] if o.disk == disk] == [o for o in ops if o.disk == disk]


def test_schedule_derives_the_disk_from_the_device_when_not_given(world):
    world.media("a.mkv", 10)
    op = CacheOp(world.a("a.mkv"), world.p("a.mkv"))
    assert lanes.disk_of(op) == f"dev{os.stat(world.a('')).st_dev}"


def test_run_ops_copies_in_parallel_but_never_two_files_of_one_disk_at_once(world, monkeypatch):
    ops = _ops(world, per_disk=3)
    active: dict[str, int] = {}
    peak = {"disks": 0, "same_disk": 0}
    lock = threading.Lock()
    real_copy = fastcopy.copy_fd

    def observed(src, dst, size, **kw):
        disk = os.readlink(f"/proc/self/fd/{src}").split("/mnt/")[1].split("/")[0]
        with lock:
            active[disk] = active.get(disk, 0) + 1
            peak["same_disk"] = max(peak["same_disk"], active[disk])
            peak["disks"] = max(peak["disks"], sum(1 for v in active.values() if v))
        time.sleep(0.05)
        try:
            return real_copy(src, dst, size, **kw)
        finally:
            with lock:
                active[disk] -= 1

    monkeypatch.setattr(fastcopy, "copy_fd", observed)
    report = run_ops(ops, 3, Mover(world.journal))
    assert [r.outcome for r in report.results] == ["cached"] * len(ops)
    assert [r.op for r in report.results] == ops  # results in input order
    assert peak["same_disk"] == 1 and peak["disks"] >= 2
    assert not report.stopped and report.critical is None


def test_stop_is_honoured_between_files(world):
    ops = _ops(world, per_disk=3)
    stop = StopFlag(world.root / "volatile")
    done = []

    def progress_then_stop(label, d, total):
        if d == total:
            done.append(label)
            stop.request()  # asked while the first file copies: that file finishes, nothing else starts

    class Progress:
        def file_started(self, label): pass
        def file_done(self, label, size): pass
        on_bytes = staticmethod(progress_then_stop)

    report = run_ops(ops, 1, Mover(world.journal), stop=stop, progress=Progress())
    outcomes = [r.outcome for r in report.results]
    assert outcomes.count("cached") == 1 and outcomes.count("not_started") == len(ops) - 1
    assert report.stopped
    cached = next(r for r in report.results if r.outcome == "cached")
    assert os.path.exists(cached.op.pool_path)
    for r in report.results:
        if r.outcome == "not_started":
            assert os.path.exists(r.op.array_path) and not os.path.exists(r.op.pool_path)


def test_stop_lands_in_the_middle_of_a_large_file_and_undoes_its_copy(world, monkeypatch):
    monkeypatch.setattr(fastcopy, "PROGRESS_BYTES", 64 * 1024)
    ops = _ops(world, per_disk=1, disks=1, size=8 * 1024 * 1024)
    stop = StopFlag(world.root / "volatile")
    seen = []

    class Progress:
        def file_started(self, label): pass
        def file_done(self, label, size): pass

        @staticmethod
        def on_bytes(label, done, total):
            seen.append(done)
            if done < total:
                stop.request()  # asked while the file is still copying

    report = run_ops(ops, 1, Mover(world.journal, chunk_size=256 * 1024), stop=stop, progress=Progress())
    assert report.stopped and [r.outcome for r in report.results] == ["not_started"]
    op = ops[0]
    assert os.path.getsize(op.array_path) == 8 * 1024 * 1024 and not os.path.exists(op.pool_path)
    leftovers = [n for n in os.listdir(os.path.dirname(op.pool_path)) if n != "movie.mkv"] \
        if os.path.isdir(os.path.dirname(op.pool_path)) else []
    assert leftovers == [] and world.journal.is_empty()
    assert seen and min(seen) < 8 * 1024 * 1024


def test_a_critical_error_halts_every_lane_and_failures_do_not(world, monkeypatch):
    ops = _ops(world, per_disk=2)
    os.link(ops[0].array_path, ops[0].array_path + ".seed")  # refused: hard-linked
    fail_copy_steps_after(monkeypatch, 2, errno.ENOSPC)  # the pool fills up mid-copy
    report = run_ops(ops, 1, Mover(world.journal))
    outcomes = [r.outcome for r in report.results]
    assert outcomes[0] == "refused" and report.results[0].error.reason == "hardlinked"
    assert "critical" in outcomes and report.critical is not None and report.critical.errno == errno.ENOSPC
    after = outcomes[outcomes.index("critical") + 1:]
    assert after and set(after) == {"not_started"}
    assert not report.stopped
    assert world.temps() == [] and world.journal.is_empty()


def test_progress_file_has_the_documented_shape(tmp_path):
    pw = ProgressWriter(tmp_path, action="run", min_interval=0)
    pw.phase("copying")
    pw.totals(2, 300)
    pw.file_started("/mnt/user/tv/a.mkv")
    pw.on_bytes("/mnt/user/tv/a.mkv", 50, 100)
    doc = json.loads((tmp_path / "progress.json").read_text())
    assert set(doc) == {"schema", "pid", "started_at", "updated_at", "action", "phase", "files_done",
                        "files_total", "bytes_done", "bytes_total", "current_file", "rate_bps", "eta_seconds"}
    assert doc["schema"] == 1 and doc["pid"] == os.getpid() and doc["phase"] in PHASES
    assert (doc["bytes_done"], doc["bytes_total"], doc["files_total"]) == (50, 300, 2)
    assert doc["current_file"] == "/mnt/user/tv/a.mkv"
    pw.file_started("/mnt/user/tv/b.mkv")
    pw.on_bytes("/mnt/user/tv/b.mkv", 20, 200)
    pw.file_done("/mnt/user/tv/a.mkv", 100)
    doc = json.loads((tmp_path / "progress.json").read_text())
    assert (doc["bytes_done"], doc["files_done"]) == (120, 1)  # parallel files add up
    pw.close()
    assert not (tmp_path / "progress.json").exists()


def test_progress_writes_are_throttled(tmp_path):
    pw = ProgressWriter(tmp_path, min_interval=3600)
    pw.phase("copying")  # phase changes are written at once
    first = (tmp_path / "progress.json").read_text()
    for i in range(100):
        pw.on_bytes("x", i, 100)
    assert (tmp_path / "progress.json").read_text() == first
    pw.close(remove=False)
    assert json.loads((tmp_path / "progress.json").read_text())["bytes_done"] == 99


def test_run_lock_is_exclusive_names_the_holder_and_survives_release(tmp_path):
    first = RunLock(tmp_path)
    with first:
        assert first.held_by() == os.getpid()
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}") as err:
            RunLock(tmp_path).acquire()
        assert err.value.exit_code == 4
        assert RunLock(tmp_path).held_by() == os.getpid()
    assert RunLock(tmp_path).held_by() is None
    assert (tmp_path / "run.lock").exists()  # never unlinked: no flock/unlink race
    with RunLock(tmp_path):
        pass


def test_run_lock_held_by_another_process_and_freed_by_its_death(tmp_path):
    code = ("import signal,sys; from plexcache.runctl import RunLock; l=RunLock(sys.argv[1]); l.acquire(); "
            "print('locked', flush=True); signal.pause()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        with pytest.raises(LockHeld, match=f"pid {holder.pid}"):
            RunLock(tmp_path).acquire()
        assert RunLock(tmp_path).held_by() == holder.pid
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path):  # kill -9 drops the lock
        pass


def test_stop_flag(tmp_path):
    flag = StopFlag(tmp_path / "v")
    assert not flag.requested()
    flag.request()
    assert flag.requested() and StopFlag(tmp_path / "v").requested()
    flag.clear()
    flag.clear()
    assert not flag.requested()
