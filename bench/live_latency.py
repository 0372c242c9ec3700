"""Live mode: seconds from "someone presses play" to "the next episode is on the pool".

Runs the real live loop (plexcache.live.serve) in a thread against the simulator and a sandbox tree,
starts playback sessions one after another and measures, for each, the time until the next episode
appears in the registry. Prints each measurement and the median. Not a test: no assertion on time.
By default the watcher follows Plex's notification channel (the websocket); `--polling` turns it off so
only the poll at `--poll` seconds can see a play.

    ./dev bench live_latency [--plays 4] [--poll 15] [--polling]
"""

from __future__ import annotations

import argparse
import json
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


def seen_by_watcher(settings: cfg.Settings, reason: str) -> bool:
    """Has the watcher queued this play (in its pending reasons, or already in a cycle)?"""
    try:
        state = json.loads(live.state_path(settings).read_text())
    except (OSError, ValueError):
        return False
    why = " ".join(state.get("pending") or []) + " " + ((state.get("last_cycle") or {}).get("why") or "")
    return reason in why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=int, default=len(PLAYS))
    parser.add_argument("--poll", type=int, default=15, help="live.poll_seconds (15 is the default setting)")
    parser.add_argument("--polling", action="store_true", help="turn Plex's notification channel off")
    args = parser.parse_args()
    world = load(default_scenario())
    with tempfile.TemporaryDirectory() as tmp, SimServer(world) as sim:
        os.environ["PLEXCACHE_PLEX_REDIRECT"] = sim.url
        sandbox = build_tree(Path(tmp) / "root", world)
        document = sandbox.settings_dict(sim.url, sim.owner_token)
        document["live"] = {"enabled": True, "poll_seconds": args.poll, "notifications": not args.polling}
        settings = cfg.from_mapping(document)
        engine.run_cycle(settings)
        stop = threading.Event()
        thread = threading.Thread(target=live.serve, args=(settings,), kwargs={"stop": stop}, daemon=True)
        thread.start()
        time.sleep(args.poll + live.SETTLE_SECONDS + 1)  # let the first poll settle
        latencies: list[float] = []
        queued: list[float] = []
        for user, ref, following in PLAYS[:args.plays]:
            show = ref.rsplit(" ", 1)[0]
            sim.add_session(user, ref)
            started = time.monotonic()
            queued_at = None
            while time.monotonic() - started < 120:
                if queued_at is None and seen_by_watcher(settings, f"{user} started {ref}"):
                    queued_at = time.monotonic() - started
                if any(show in p and following in p for p in cached_names(settings)):
                    break
                time.sleep(0.05)
            latency = time.monotonic() - started
            latencies.append(latency)
            queued.append(queued_at if queued_at is not None else latency)
            print(f"{user:>8} plays {ref:<22} -> queued after {queued[-1]:5.2f} s, "
                  f"{following} cached after {latency:5.1f} s")
        stop.set()
        thread.join(30)
    seen = f"a poll every {args.poll} s" if args.polling else "Plex's notification"
    print(f"queued: median {statistics.median(queued):.2f} s, max {max(queued):.2f} s ({seen})")
    print(f"on the pool: median {statistics.median(latencies):.1f} s, max {max(latencies):.1f} s "
          f"({seen} + {live.SETTLE_SECONDS:.0f} s settle + one cycle)")


if __name__ == "__main__":
    main()
