"""drop_redundant: removing (or renaming into a backup) a copy made redundant by an identical one, for
`audit --fix delete-redundant`. Real files; a real process holds a file open for the open check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plexcache.layout import COPY_MTIME_SLACK_NS
from plexcache.media import mover as mv
from plexcache.media import tidy
from test_mover_ops import SHOW, World


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path)


def twins(world: World, name: str = "E01", size: int = 50_000) -> tuple[str, str]:
    """An array original and an identical pool copy (same bytes, same times)."""
    video, _ = world.episode(name=name, size=size, subs=())
    original, pool = world.a(video), world.p(video)
    os.makedirs(os.path.dirname(pool), exist_ok=True)
    shutil.copy2(original, pool)
    return original, pool


def test_drops_the_redundant_copy_and_keeps_the_other(world):
    original, pool = twins(world)
    data = Path(pool).read_bytes()
    assert tidy.drop_redundant(pool, original)
    assert not os.path.exists(pool) and Path(original).read_bytes() == data


@pytest.mark.parametrize("verify", [False, True])
def test_turns_an_original_into_the_backup_of_its_pool_copy(world, verify):
    original, pool = twins(world)
    backup = original + mv.BACKUP_SUFFIX
    assert tidy.drop_redundant(original, pool, verify=verify, rename_to=backup)
    assert not os.path.exists(original) and os.path.exists(backup) and os.path.exists(pool)


def test_never_renames_over_an_existing_file(world):
    original, pool = twins(world)
    backup = world.media(f"{SHOW}/Show - S01E01.mkv.plexcached", 10)
    assert not tidy.drop_redundant(original, pool, rename_to=backup)
    assert os.path.getsize(backup) == 10 and os.path.exists(original) and os.path.exists(pool)


def _differ_in_size(world: World, a: str, b: str) -> None:
    with open(a, "ab") as handle:
        handle.write(b"x")
    st = os.stat(b)
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))


def _differ_in_mtime(world: World, a: str, b: str) -> None:
    st = os.stat(b)
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + COPY_MTIME_SLACK_NS + 1))


def _hard_link(world: World, a: str, b: str) -> None:
    os.unlink(a)
    os.link(b, a)


def _symlink(world: World, a: str, b: str) -> None:
    os.unlink(a)
    os.symlink(b, a)


def _gone(world: World, a: str, b: str) -> None:
    os.unlink(b)


@pytest.mark.parametrize("spoil", [_differ_in_size, _differ_in_mtime, _hard_link, _symlink, _gone],
                         ids=lambda f: f.__name__.strip("_"))
def test_refuses_anything_but_two_identical_separate_files(world, spoil):
    original, pool = twins(world)
    spoil(world, pool, original)
    before = {p: os.path.lexists(p) for p in (original, pool)}
    assert not tidy.drop_redundant(pool, original)
    assert {p: os.path.lexists(p) for p in (original, pool)} == before


def test_mtime_within_the_slack_counts_as_the_same(world):
    """Copies made by other tools may keep the mtime only to the second."""
    original, pool = twins(world)
    st = os.stat(original)
    os.utime(pool, ns=(st.st_atime_ns, st.st_mtime_ns - st.st_mtime_ns % 1_000_000_000))
    assert tidy.drop_redundant(pool, original)


def test_verify_catches_same_size_and_time_but_other_bytes(world):
    original, pool = twins(world)
    st = os.stat(pool)
    with open(pool, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\xff\x00\xff")
    os.utime(pool, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not tidy.drop_redundant(pool, original, verify=True)
    assert os.path.exists(pool)
    assert tidy.drop_redundant(pool, original)  # without verify, size and time are what is compared


@pytest.mark.parametrize("held", ["path", "keep"])
def test_refuses_while_either_copy_is_open(world, held):
    original, pool = twins(world)
    target = pool if held == "path" else original
    holder = subprocess.Popen([sys.executable, "-c", "import signal,sys; f=open(sys.argv[1],'rb'); "
                               "print('ready', flush=True); signal.pause()", target], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"ready"
        assert not tidy.drop_redundant(pool, original)
        assert os.path.exists(pool)
    finally:
        holder.kill()
        holder.wait()


def test_permission_error_answers_false_and_keeps_both(world, monkeypatch):
    original, pool = twins(world)

    def refuse(path, *a, **k):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(mv.os, "unlink", refuse)
    assert not tidy.drop_redundant(pool, original)
    monkeypatch.undo()
    assert os.path.exists(pool) and os.path.exists(original)
