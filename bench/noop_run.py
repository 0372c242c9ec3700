"""Benchmark: a run that has nothing to do, with 10,000 managed files, and `list --json` over them.

Builds a sandbox Unraid tree and a small simulated Plex, caches the few wanted files with a real run, then
adds N synthetic managed files (tiny pool copies with .plexcached backups spread over the disks) to the
registry, and times: the no-op run (recover, discover over HTTP, reconcile every entry against the disks,
plan, no writes), `list --json`, and `status --json`. Prints the figures. The simulator serves from a process
of its own, so the CPU figures are the product's alone.

    .venv/bin/python bench/noop_run.py [--files 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from plexcache import config, engine
from plexcache.sim.sandbox import build_tree
from plexcache.sim.scenario import from_dict
from plexcache.state import Entry, StateStore

WORLD = """
now: 2026-01-15T20:00:00Z
users:
  - {name: admin, kind: owner, id: 1001, token: tok-admin}
unraid:
  disks: 4
  pools: [cache]
  shares:
    movies: {useCache: "yes", pool: cache}
    tv: {useCache: "yes", pool: cache}
  pathMap: {/data/movies: movies, /data/tv: tv}
libraries:
  - {id: 1, type: movie, title: Movies, locations: [/data/movies], defaultSize: 100K,
     movies: [{title: Arrival, year: 2016, guids: [imdb://tt2543164], disk: disk1}]}
  - id: 2
    type: show
    title: TV Shows
    locations: [/data/tv]
    defaultSize: 100K
    shows: [{title: Severance, year: 2022, guids: [tvdb://371980], seasons: {1: 9}, disk: disk2}]
watch:
  admin:
    watched: ["Severance S01E01-S01E02"]
    progress: {"Arrival": {offset: 40m, at: 2h}}
"""


def populate(settings: config.Settings, sandbox_mnt: Path, count: int, now: float) -> None:
    """Add `count` managed files: a tiny pool copy and a .plexcached backup on one of the disks."""
    store = StateStore(settings)
    registry = store.load_registry()
    for i in range(count):
        rel = f"Bench Show {i // 100:03d}/Season 01/Bench Show {i // 100:03d} - S01E{i % 100:02d}.mkv"
        disk = f"disk{1 + i % 4}"
        for path in (sandbox_mnt / "cache" / "tv" / rel, sandbox_mnt / disk / "tv" / (rel + ".plexcached")):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
        st = os.stat(sandbox_mnt / "cache" / "tv" / rel)
        user_path = f"{settings.paths.user_root}/tv/{rel}"
        registry.add(Entry(path=user_path, share="tv", rel=rel, pool="cache", disk=disk, size=st.st_size,
                           mtime=st.st_mtime, cached_at=now - 3600, last_wanted_at=now - 3600, users=["admin"],
                           title=f"Bench {i}", library="TV Shows", kind="episode", backup=True,
                           recorded={user_path: {"size": 1, "mtime_ns": st.st_mtime_ns, "blake2b": None}}))
    store.save_registry(registry)


@contextlib.contextmanager
def simulator(world: Path) -> Iterator[str]:
    """`plexcache-r sim serve` in a process of its own; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "plexcache", "sim", "serve", "--world", str(world)],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        if " at http" not in first:
            raise RuntimeError(f"the simulator did not start: {first!r}")
        yield first.rsplit(" at ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait()


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall time and median CPU time of `repeat` calls (CPU time is steadier on a busy machine)."""
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scenario = from_dict(yaml.safe_load(WORLD), source="bench")
    with tempfile.TemporaryDirectory(prefix="plexcache-bench-") as tmp:
        sandbox = build_tree(Path(tmp) / "root", scenario)
        world = Path(tmp) / "world.yaml"
        world.write_text(WORLD, encoding="utf-8")
        with simulator(world) as url:
            os.environ["PLEXCACHE_PLEX_REDIRECT"] = url
            doc = sandbox.settings_dict(url, "tok-admin")
            doc["cache"] = {"retention_hours": 87600, "min_free": "0"}
            settings = config.from_mapping(doc)
            now = float(scenario.now)
            first = engine.run_cycle(settings, now=now)
            started = time.perf_counter()
            populate(settings, sandbox.mnt, args.files, now)
            build_s = time.perf_counter() - started
            engine.run_cycle(settings, now=now + 1)  # settle: registry and exclusion list now final
            store = StateStore(settings)
            stamp = store.registry_path.stat().st_mtime_ns
            run_s, run_cpu, report = timed(lambda: engine.run_cycle(settings, now=now + 2), args.repeat)
            assert report.cached == report.moved_back == 0, report.to_json()
            assert store.registry_path.stat().st_mtime_ns == stamp, "a no-op run rewrote the registry"
            list_s, list_cpu, listed = timed(lambda: json.dumps(engine.list_files(settings)), args.repeat)
            status_s, status_cpu, _ = timed(lambda: json.dumps(engine.status(settings)), args.repeat)
            managed = len(store.load_registry())
    print(f"managed files:            {managed} (first run cached {first.cached}; setup {build_s:.1f} s)")
    print(f"no-op run:                {run_s * 1000:.0f} ms wall, {run_cpu * 1000:.0f} ms CPU (median of "
          f"{args.repeat}); {report.plex_requests} Plex requests; message: {report.message}")
    print(f"list --json:              {list_s * 1000:.0f} ms wall, {list_cpu * 1000:.0f} ms CPU, "
          f"{len(listed) / 1e6:.1f} MB of JSON")
    print(f"status --json:            {status_s * 1000:.0f} ms wall, {status_cpu * 1000:.0f} ms CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
