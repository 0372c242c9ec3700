"""A .plexcached backup beside a live array copy is retired only when the bytes prove it a duplicate."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from plexcache import backups
from test_engine import ARRIVAL, on_disk, registry, rogue_move, run, scenario, user  # noqa: F401 - env's fixture


def pair(tmp_path: Path, flip: bool) -> tuple[str, str]:
    """An array copy (Unraid's mover put it back, maybe damaged) and the backup, with equal sizes and times."""
    data = bytes(range(256)) * 400
    original, backup = tmp_path / "disk2/E01.mkv", tmp_path / "disk1/E01.mkv.plexcached"
    for path in (original, backup):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    if flip:  # damaged in place on the pool before the mover carried it: size and mtime unchanged
        with open(original, "r+b") as f:
            f.seek(1234)
            f.write(b"\xff")
        os.utime(original, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    return str(original), str(backup)


def test_a_copy_damaged_in_place_never_costs_the_good_backup(tmp_path):
    original, backup = pair(tmp_path, flip=True)
    assert backups.settle(original, backup, dry_run=False) == backups.DIFFERENT
    assert os.path.exists(backup)


def test_an_identical_copy_retires_the_backup(tmp_path):
    original, backup = pair(tmp_path, flip=False)
    assert backups.settle(original, backup, dry_run=False) == backups.RETIRED
    assert not os.path.exists(backup) and os.path.exists(original)


def _immutable(folder: Path) -> bool:
    """chattr +i (root, and a filesystem that has it); False where it cannot be done here."""
    return subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0


def test_a_backup_in_a_folder_that_refuses_changes_is_kept_without_an_error(tmp_path):
    """EPERM (an immutable folder, a read-only share) on the unlink: both copies stay, the caller hears
    KEPT and goes on with the other files instead of stopping the whole run."""
    original, backup = pair(tmp_path, flip=False)
    folder = Path(backup).parent
    if not _immutable(folder):
        pytest.skip("chattr +i is not available here")
    try:
        assert backups.settle(original, backup, dry_run=False) == backups.KEPT
        assert os.path.exists(backup) and os.path.exists(original)
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)


def test_a_run_goes_on_when_a_stray_backup_cannot_be_removed(env):
    """Unraid's mover put a cached file back on another disk; its backup's folder refuses changes. The run
    keeps the backup (with a warning), forgets the entry and finishes with its books saved."""
    s, sb, _sim, now = env
    run(s, now)
    rogue_move(sb, ARRIVAL, "disk2")
    folder = on_disk(sb, "disk1", ARRIVAL).parent
    if not _immutable(folder):
        pytest.skip("chattr +i is not available here")
    try:
        report = run(s, now + 60)
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    assert on_disk(sb, "disk1", ARRIVAL + ".plexcached").exists() and on_disk(sb, "disk2", ARRIVAL).exists()
    assert any("could not be removed" in w for w in report.warnings), report.warnings
    assert user(s, ARRIVAL) not in registry(s)  # the run saved its books: the file is live on disk2 now
