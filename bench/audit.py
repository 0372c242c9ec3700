"""Benchmark: the audit on N managed files (default 10,000) in a temporary sandbox Unraid tree.

Every managed file exists twice, like a real cache: a tiny pool copy and its NAME.plexcached backup on one of
four array disks (same size and mtime), plus a registry entry and an ignore-list line; the array also holds
N/2 ordinary (uncached) files. Prints the time and peak memory of a full audit (pools and every array disk
walked) and of the cheap audit a run can afford (no array disk touched), then of a full audit with a few
problems planted (they must all be found).

    .venv/bin/python bench/audit.py [--files 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from plexcache import config as cfg
from plexcache import exclusions
from plexcache.audit import audit
from plexcache.sim.sandbox import build_tree
from plexcache.sim.scenario import from_dict
from plexcache.state import Entry, Registry, StateStore

DISKS = 4
SCENARIO = {"users": [{"name": "admin", "kind": "owner", "id": 1, "token": "t"}],
            "unraid": {"disks": DISKS, "pools": ["cache"],
                       "shares": {"tv": {"useCache": "yes", "pool": "cache"},
                                  "movies": {"useCache": "yes", "pool": "cache"}},
                       "pathMap": {"/data/tv": "tv", "/data/movies": "movies"}},
            "libraries": []}


def build(root: Path, files: int) -> cfg.Settings:
    sb = build_tree(root, from_dict(SCENARIO))
    settings = cfg.from_mapping(sb.settings_dict("http://127.0.0.1:9", "t"))
    registry = Registry()
    when = 1_700_000_000
    for i in range(files):
        share = "tv" if i % 3 else "movies"
        rel = f"Show {i // 200:03d}/Season {i // 20 % 10 + 1:02d}/Show {i // 200:03d} - E{i:05d}.mkv"
        disk = f"disk{i % DISKS + 1}"
        pool_path = sb.mnt / "cache" / share / rel
        backup = sb.mnt / disk / share / (rel + ".plexcached")
        for path in (pool_path, backup):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * (i % 97))
            os.utime(path, (when, when))
        user_path = f"{settings.paths.user_root}/{share}/{rel}"
        registry.add(Entry(path=user_path, share=share, rel=rel, pool="cache", disk=disk, size=i % 97,
                           mtime=when, cached_at=when, backup=True,
                           recorded={user_path: {"size": i % 97, "mtime_ns": when * 10**9, "blake2b": None}}))
    for i in range(files // 2):
        plain = sb.mnt / f"disk{i % DISKS + 1}" / "movies" / f"Film {i:05d}" / f"Film {i:05d}.mkv"
        plain.parent.mkdir(parents=True, exist_ok=True)
        plain.write_bytes(b"")
    StateStore(settings).save_registry(registry)
    exclusions.write(settings, registry)
    return settings


def plant_problems(settings: cfg.Settings) -> int:
    """One of each kind the full audit must find; returns how many findings are expected."""
    mnt = Path(settings.paths.pool_root)
    first = next((mnt / "cache" / "tv").rglob("*.mkv"))
    with open(first, "ab") as handle:
        handle.write(b"changed")  # mismatch
    orphan = mnt / "disk1" / "movies" / "Film 00000" / "Film 00000.mkv"
    os.rename(orphan, str(orphan) + ".plexcached")  # orphaned
    lines = Path(settings.paths.exclusion_list).read_text().splitlines()
    Path(settings.paths.exclusion_list).write_text("\n".join(lines[1:]) + "\n")  # unprotected
    return 3


def measure(label: str, settings: cfg.Settings, cheap: bool) -> dict:
    """Time one audit (best of three, untraced), then trace one more for its peak Python heap."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        doc = audit(settings, cheap=cheap)
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    audit(settings, cheap=cheap)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<34} {min(times):7.3f} s (best of 3)   peak {peak / 2**20:5.1f} MiB Python heap   "
          f"{doc['files_seen']:>6} paths   {len(doc['findings'])} finding(s)")
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="build the tree here and leave it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="plexcache-bench-audit-"))
    try:
        started = time.perf_counter()
        settings = build(root / "root", args.files)
        print(f"built {args.files} managed files (+{args.files // 2} plain) on {DISKS} disks in "
              f"{time.perf_counter() - started:.1f} s under {root}")
        clean = measure("full audit (pools + every disk)", settings, cheap=False)
        measure("cheap audit (no array disk)", settings, cheap=True)
        expected = plant_problems(settings)
        found = measure("full audit with 3 planted problems", settings, cheap=False)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"max RSS of the whole process: {rss:.0f} MiB")
        ok = not clean["findings"] and len(found["findings"]) == expected
        print("findings as expected" if ok else f"UNEXPECTED findings: {found['summary']}")
        return 0 if ok else 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
