"""Live mode: seconds from "someone presses play" to "the next episode is on the pool".

Runs the real live loop (plexcache.live.serve) in a thread against the simulator and a sandbox tree,
starts playback sessions one after another and measures, for each, the time until the next episode
appears in the registry. Prints each measurement and the median. Not a test: no assertion on time.

    ./dev bench live_latency [--plays 5] [--poll 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from plexcache import config as cfg
from plexcache import engine, live
from plexcache.demo import default_scenario
from plexcache.sim import SimServer, load
from plexcache.sim.sandbox import build_tree

# Each play starts something whose next episode is not cached yet (earlier plays' look-ahead must not cover it).
PLAYS = [("bob", "Severance S01E01", "S01E02"), ("partner", "Slow Horses S01E01", "S01E02"),
         ("alice", "The Bear S01E01", "S01E02"), ("bob", "Severance S02E09", "S02E10")]


def cached_names(settings: cfg.Settings) -> set[str]:
    return {f["path"] for f in engine.list_files(settings)["files"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=int, default=len(PLAYS))
    parser.add_argument("--poll", type=int, default=2, help="live.poll_seconds")
    args = parser.parse_args()
    world = load(default_scenario())
    with tempfile.TemporaryDirectory() as tmp, SimServer(world) as sim:
        os.environ["PLEXCACHE_PLEX_REDIRECT"] = sim.url
        sandbox = build_tree(Path(tmp) / "root", world)
        document = sandbox.settings_dict(sim.url, sim.owner_token)
        document["live"] = {"enabled": True, "poll_seconds": args.poll}
        settings = cfg.from_mapping(document)
        engine.run_cycle(settings)
        stop = threading.Event()
        thread = threading.Thread(target=live.serve, args=(settings,), kwargs={"stop": stop}, daemon=True)
        thread.start()
        time.sleep(args.poll + live.SETTLE_SECONDS + 1)  # let the first poll settle
        latencies = []
        for user, ref, following in PLAYS[:args.plays]:
            show = ref.rsplit(" ", 1)[0]
            sim.add_session(user, ref)
            started = time.monotonic()
            while time.monotonic() - started < 120:
                if any(show in p and following in p for p in cached_names(settings)):
                    break
                time.sleep(0.1)
            latency = time.monotonic() - started
            latencies.append(latency)
            print(f"{user:>8} plays {ref:<22} -> {following} cached after {latency:5.1f} s")
        stop.set()
        thread.join(30)
    print(f"median {statistics.median(latencies):.1f} s, max {max(latencies):.1f} s "
          f"(poll every {args.poll} s + {live.SETTLE_SECONDS:.0f} s settle + one cycle)")


if __name__ == "__main__":
    main()
