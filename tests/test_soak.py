"""A CI-sized fault soak (bench/soak.py has the full one): real CLI runs killed, crashed at mover steps, with
Plex flapping, a full pool, immutable folders, the mover moving files underneath and sessions appearing;
after each, `recover` and the no-loss invariants. A failure names the seed and run to reproduce with
`.venv/bin/python bench/soak.py --seed S --runs N`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import soak

pytestmark = pytest.mark.soak

RUNS = 14


@pytest.mark.slow
@pytest.mark.parametrize("seed", [20261125])
def test_soak_leaves_every_file_whole_and_the_books_straight(tmp_path, seed):
    stats = soak.soak(RUNS, seed, tmp_path, use_tmpfs=True, sessions=RUNS)
    assert stats.runs == RUNS
    assert sum(stats.faults.values()) >= RUNS
    assert stats.violations == [], "\n".join(stats.violations[:10])
    assert stats.recover_failures == 0


def test_soak_invariant_check_catches_a_lost_file(tmp_path):
    """The checker itself can fail: delete a media file and corrupt another, and it must say so."""
    s = soak.Soak(7, tmp_path, use_tmpfs=False)
    try:
        rels = sorted(s.manifest)
        victims = []
        for rel in rels:
            for disk in s.disks:
                if (disk / rel).exists() and len(victims) < 2:
                    victims.append(disk / rel)
        victims[0].unlink()
        victims[1].write_bytes(b"not the original")
        s.check("sabotage")
        text = "\n".join(s.stats.violations)
        assert "0 live copies" in text and "changed content" in text
    finally:
        s.close()
