"""A .plexcached backup beside a live array copy is retired only when the bytes prove it a duplicate."""

from __future__ import annotations

import os
from pathlib import Path

from plexcache import backups


def pair(tmp_path: Path, flip: bool) -> tuple[str, str, dict]:
    """An array copy (Unraid's mover put it back, maybe damaged) and the backup, with the cached facts."""
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
    recorded = {"size": len(data), "mtime_ns": 1_700_000_000_000_000_000, "blake2b": None}
    return str(original), str(backup), recorded


def test_a_copy_damaged_in_place_never_costs_the_good_backup(tmp_path):
    original, backup, recorded = pair(tmp_path, flip=True)
    assert backups.settle(original, backup, recorded, dry_run=False) == backups.DIFFERENT
    assert os.path.exists(backup)


def test_an_identical_copy_retires_the_backup(tmp_path):
    original, backup, recorded = pair(tmp_path, flip=False)
    assert backups.settle(original, backup, recorded, dry_run=False) == backups.RETIRED
    assert not os.path.exists(backup) and os.path.exists(original)
