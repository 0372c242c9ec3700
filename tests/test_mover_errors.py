"""Disk full and permission errors: a distinct CriticalIOError, the partial copy gone, the original untouched."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from plexcache.media import fastcopy, ops
from plexcache.media import mover as mv
from plexcache.media.mover import Mover
from plexcache.media.ops import CriticalIOError
from realtime import seconds
from test_mover_ops import SHOW, World


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path)


@pytest.fixture
def tiny_pool(tmp_path):
    """The pool is a 2 MiB tmpfs (needs root and mount rights)."""
    world = World(tmp_path)
    cache = tmp_path / "mnt/cache"
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(cache)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here to fill a pool for real ({proc.stderr.strip() or 'not root'})")
    (cache / "tv").mkdir()
    yield world
    subprocess.run(["umount", "-l", str(cache)], check=False)


def _assert_untouched(world: World, before: dict[str, str]) -> None:
    after = world.tree()
    assert {k: v for k, v in after.items() if k.startswith("mnt/disk")} == \
           {k: v for k, v in before.items() if k.startswith("mnt/disk")}
    assert not [k for k in after if k.startswith("mnt/cache") and k not in before]
    assert world.temps() == [] and world.journal.is_empty()


def test_full_pool_is_refused_before_copying(tiny_pool):
    world = tiny_pool
    video = f"{SHOW}/big.mkv"
    world.media(video, 3 * 1024 * 1024)
    before = world.tree()
    with pytest.raises(CriticalIOError) as err:
        Mover(world.journal).cache(world.cache_op(video, []))
    assert err.value.errno == errno.ENOSPC and "free" in str(err.value)
    _assert_untouched(world, before)


@pytest.mark.parametrize("verify", [False, True])
def test_pool_filling_up_during_the_copy_rolls_back_everything(tiny_pool, monkeypatch, verify):
    """The first file fits and is placed; the sidecar hits ENOSPC for real: both are removed."""
    world = tiny_pool
    monkeypatch.setattr(mv, "_check_free", lambda files, min_free: None)  # get past the pre-check
    video, big = f"{SHOW}/ep.mkv", f"{SHOW}/ep.sup"
    world.media(video, 600_000)
    world.media(big, 1_800_000)
    before = world.tree()
    with pytest.raises(CriticalIOError) as err:
        Mover(world.journal, verify=verify).cache(world.cache_op(video, [big]))
    assert err.value.errno == errno.ENOSPC and err.value.path.startswith(str(world.root / "mnt/cache"))
    assert "disk full" in str(err.value) and "original is untouched" in str(err.value)
    _assert_untouched(world, before)
    assert not os.path.exists(world.p(video))
    st = os.statvfs(world.root / "mnt/cache")
    assert st.f_bavail * st.f_frsize > 1_900_000  # nothing left behind taking space


def _fail_after(calls: int, err: int):
    state = {"n": 0}

    def hook(*_a, **_k):
        state["n"] += 1
        if state["n"] > calls:
            raise OSError(err, os.strerror(err))
        return None
    return hook


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EIO, errno.EROFS])
@pytest.mark.parametrize("path", ["kernel", "readwrite"])
def test_injected_write_error_is_critical_and_cleaned(world, monkeypatch, err, path):
    video, subs = world.episode(size=600_000)
    hook = _fail_after(3, err)
    if path == "kernel":
        real = fastcopy._copy_file_range_step
        monkeypatch.setattr(fastcopy, "_copy_file_range_step", lambda *a: hook() or real(*a))
    else:
        real_write = fastcopy._write
        monkeypatch.setattr(fastcopy, "_write", lambda *a: hook() or real_write(*a))
    before = world.tree()
    with pytest.raises(CriticalIOError) as caught:
        Mover(world.journal, verify=(path == "readwrite"), chunk_size=64 * 1024).cache(
            world.cache_op(video, subs))
    assert caught.value.errno == err and caught.value.path
    assert world.tree() == before and world.journal.is_empty()


def test_other_io_errors_fail_the_item_but_are_not_critical(world, monkeypatch):
    video, subs = world.episode()
    hook = _fail_after(0, errno.ENAMETOOLONG)
    real = fastcopy._copy_file_range_step
    monkeypatch.setattr(fastcopy, "_copy_file_range_step", lambda *a: hook() or real(*a))
    before = world.tree()
    with pytest.raises(ops.MoveFailed) as caught:
        Mover(world.journal).cache(world.cache_op(video, subs))
    assert not isinstance(caught.value, CriticalIOError) and caught.value.errno == errno.ENAMETOOLONG
    assert world.tree() == before


def test_error_while_moving_back_keeps_the_pool_copy(world, monkeypatch):
    video, subs = world.episode(size=600_000)
    Mover(world.journal, backups=False).cache(world.cache_op(video, subs))
    before = world.tree()
    real_write = fastcopy._write
    hook = _fail_after(2, errno.ENOSPC)
    monkeypatch.setattr(fastcopy, "_write", lambda *a: hook() or real_write(*a))
    with pytest.raises(CriticalIOError):
        Mover(world.journal, verify=True, chunk_size=64 * 1024).restore(
            world.restore_op(video, subs, backup_path=None))
    assert world.tree() == before and world.journal.is_empty()


_AS_NOBODY = r"""
import json, os, sys
from plexcache.media.journal import Journal
from plexcache.media.mover import Mover
from plexcache.media.ops import CacheOp, RestoreOp, MoveError
spec = json.loads(sys.argv[1])
os.setgroups([]); os.setgid(100); os.setuid(65534)
m = Mover(Journal(spec["journal"]), backups=spec["backups"])
try:
    op = CacheOp(*spec["args"]) if spec["kind"] == "cache" else RestoreOp(*spec["args"], backup_path=None)
    m.run(op)
    print(json.dumps({"ok": True}))
except MoveError as exc:
    print(json.dumps({"ok": False, "type": type(exc).__name__, "errno": getattr(exc, "errno", None),
                      "message": str(exc)}))
"""


@pytest.fixture
def open_world():
    """A world under a world-traversable temp dir (pytest's tmp_path is private to root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the nobody user")
    root = Path(tempfile.mkdtemp(prefix="plexcache-perm-"))
    os.chmod(root, 0o755)
    world = World(root)
    world.journal_dir.mkdir(parents=True)
    os.chown(world.journal_dir, 65534, 100)
    yield world
    shutil.rmtree(root, ignore_errors=True)


def _run_as_nobody(world: World, kind: str, args: list[str], backups: bool = True) -> dict:
    for dirpath, dirs, _files in os.walk(world.root):
        for d in dirs:
            os.chmod(os.path.join(dirpath, d), os.stat(os.path.join(dirpath, d)).st_mode | 0o555)
    spec = {"journal": str(world.journal_dir), "kind": kind, "args": args, "backups": backups}
    proc = subprocess.run([sys.executable, "-c", _AS_NOBODY, json.dumps(spec)], capture_output=True, text=True,
                          timeout=seconds(60))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_permission_denied_on_the_pool_as_an_unprivileged_user(open_world):
    world = open_world
    video, _subs = world.episode()
    for d in ("Show", SHOW):
        os.makedirs(world.p(d), exist_ok=True)  # root-owned 0755: nobody cannot create files in it
    before = world.tree()
    out = _run_as_nobody(world, "cache", [world.a(video), world.p(video)])
    assert out == {"ok": False, "type": "CriticalIOError", "errno": errno.EACCES,
                   "message": out["message"]} and "permission denied" in out["message"]
    assert world.tree() == before and world.journal.is_empty()


def test_permission_denied_renaming_the_original_rolls_back(open_world):
    """nobody may write the pool but not the array dir: the copy succeeds, retiring the original cannot."""
    world = open_world
    video, _ = world.episode(subs=())
    for d in ("Show", SHOW):
        os.makedirs(world.p(d), exist_ok=True)
        os.chown(world.p(d), 65534, 100)
    os.chmod(world.a(video), 0o644)
    before = world.tree()
    out = _run_as_nobody(world, "cache", [world.a(video), world.p(video)])
    assert out["ok"] is False and out["type"] == "CriticalIOError" and out["errno"] == errno.EACCES
    # past the commit the op is finished by recovery, or (here) it cannot be: both copies are kept
    tree = world.tree()
    assert tree[f"mnt/disk1/tv/{video}"] == before[f"mnt/disk1/tv/{video}"]
    results = Mover(world.journal).recover()  # as root now: finishes the op
    assert [r.outcome for r in results] == ["cached"]
    assert world.tree()[f"mnt/cache/tv/{video}"] == before[f"mnt/disk1/tv/{video}"]
    assert world.journal.is_empty()
