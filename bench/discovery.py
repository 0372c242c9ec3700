"""Benchmark: one full discovery against a large simulated Plex world.

Builds the world with plexcache.sim.generate (default: 20 users, 4 libraries, 100,000 episodes, 5,000 movies,
50 watchlist items per user), serves it from a separate process (so its memory and CPU do not count), runs
plexcache.plex.discover with every user kind and source switched on, and prints requests, wall time and
peak memory of the discovery.

    .venv/bin/python bench/discovery.py [--users 20] [--episodes 100000] [--movies 5000] [--watchlist 50]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections import Counter

SERVER = """
import json, sys, time
from plexcache.sim.generate import generate
from plexcache.sim.server import SimServer
args = json.loads(sys.argv[1])
t = time.perf_counter()
sim = SimServer(generate(**args))
url = sim.start()
print(json.dumps({"url": url, "token": sim.owner_token, "build_s": time.perf_counter() - t}), flush=True)
sys.stdin.read()  # serve until the parent closes our stdin
log = [f"{r.method} {r.host} {r.path}" for r in sim.requests]
print(json.dumps({"log": log}), flush=True)
sim.stop()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--libraries", type=int, default=4)
    ap.add_argument("--episodes", type=int, default=100_000)
    ap.add_argument("--movies", type=int, default=5_000)
    ap.add_argument("--watchlist", type=int, default=50)
    ap.add_argument("--no-tracemalloc", action="store_true", help="time without tracemalloc's overhead")
    opts = ap.parse_args()
    world = {"users": opts.users, "libraries": opts.libraries, "episodes": opts.episodes,
             "movies": opts.movies, "watchlist": opts.watchlist}
    proc = subprocess.Popen([sys.executable, "-c", SERVER, json.dumps(world)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        hello = json.loads(proc.stdout.readline())
        os.environ["PLEXCACHE_PLEX_REDIRECT"] = hello["url"]
        figures = measure(hello["url"], hello["token"], not opts.no_tracemalloc)
    finally:
        proc.stdin.close()
        tail = proc.stdout.readline()
        proc.wait(timeout=30)
    log = json.loads(tail)["log"] if tail else []
    report(world, hello, figures, log)


def measure(url: str, token: str, trace: bool) -> dict:
    from plexcache.config import from_mapping
    from plexcache.plex import discover

    settings = from_mapping({
        "plex": {"url": url, "token": token, "timeout": 120},
        "users": {"owner": {"on_deck": True, "watchlist": True},
                  "home": {"on_deck": True, "watchlist": True},
                  "friends": {"on_deck": True, "watchlist": False}}})
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    t = time.perf_counter()
    cpu = time.process_time()
    demand = discover(settings, now=time.time())
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    return {"demand": demand, "wall": wall, "cpu": cpu, "peak": peak, "rss_before": rss_before,
            "rss_after": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def report(world: dict, hello: dict, f: dict, log: list) -> None:
    demand = f["demand"]
    files = sum(len(i.plex_files) for i in demand.items.values())
    print(f"world: {world} (built in {hello['build_s']:.1f} s by the simulator process)")
    print(f"requests: {demand.requests} (simulator saw {len(log)})")
    kinds = Counter(" ".join(x.split()[:2]) + " " + _shape(x.split()[2]) for x in log)
    for kind, n in kinds.most_common():
        print(f"  {n:5d}  {kind}")
    print(f"wall time: {f['wall']:.2f} s (CPU in this process {f['cpu']:.2f} s)")
    if f["peak"] is not None:
        print(f"peak memory (tracemalloc): {f['peak'] / 2**20:.1f} MiB")
    print(f"max RSS: {f['rss_before'] / 1024:.0f} MiB before, {f['rss_after'] / 1024:.0f} MiB after")
    print(f"demand: {len(demand.items)} items, {files} files, {len(demand.users)} users, "
          f"{len(demand.unknown)} unknown")


def _shape(path: str) -> str:
    """/library/metadata/123/allLeaves -> /library/metadata/N/allLeaves and /library/metadata/1,2,3 ->
    /library/metadata/N,N,…, so the log groups by kind."""
    return "/".join("N" if p.isdigit() else "N,N,…" if p.replace(",", "").isdigit() else p
                    for p in path.split("/"))


if __name__ == "__main__":
    main()
