"""Household replay: does plexcache-r keep the array asleep for a real household, and at what cost?

    .venv/bin/python bench/household/run.py [--household FILE] [--days N] [--seed N]
                                            [--policies no-tool,default,tuned,live,oracle] [--out DIR] [--no-chart]

Each simulated night the tool runs as it would before the mover: a real `engine.run_cycle` against the Plex
simulator (over HTTP, through plexapi) and a sandbox Unraid tree. Then the day's plays happen in the simulator
(positions, watched marks, new episodes landing, watchlist changes), each a HIT when its file is on the pool
when it starts, a MISS (the array disk holding it must be awake) otherwise. Every policy replays the same
scripted month (bench/household/model.py). Figures: table on stdout, results/<name>.md, .json and .png.

Sizes: the sandbox's files are `scale` times smaller than the household's (the real copy path writes every
byte, holes included), and the pool's size is simulated at the same scale; every figure is scaled back.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import model  # noqa: E402
from model import Household, MovieKey, Play, Release, WatchlistChange  # noqa: E402

GB = 1000**3


# ------------------------------------------------------------------ array disks: spin-ups and awake time


class Disks:
    """Each array disk spins up when read or written while asleep and sleeps `spin_down` seconds after its last
    access. A write to a data disk (a rename included) also writes parity."""

    PARITY = "parity"

    def __init__(self, spin_down: int) -> None:
        self.spin_down = spin_down
        self.awake_until: dict[str, float] = {}
        self.spinups = {"playback": 0, "tool": 0, "mover": 0}
        self.parity_spinups = {"playback": 0, "tool": 0, "mover": 0}  # of which parity (woken by writes)
        self.spinup_times: list[float] = []  # when each spin-up happened (the chart's per-day figures)
        self.awake_seconds = 0.0

    def access(self, disk: str, start: float, end: float, cause: str) -> bool:
        """Record a read of `disk` over [start, end]; True when it had to spin up."""
        until = self.awake_until.get(disk, -1.0)
        woke = start > until
        if woke:
            self.spinups[cause] += 1
            self.parity_spinups[cause] += disk == self.PARITY
            self.spinup_times.append(start)
            self.awake_seconds += end + self.spin_down - start
        else:
            self.awake_seconds += max(0.0, end + self.spin_down - until)
        self.awake_until[disk] = max(until, end + self.spin_down)
        return woke

    def write(self, disk: str, start: float, end: float, cause: str) -> None:
        self.access(disk, start, end, cause)
        self.access(self.PARITY, start, end, cause)

    def asleep(self, disk: str, now: float) -> bool:
        return now > self.awake_until.get(disk, -1.0)

    def disks_ini(self, names: list[str], now: float) -> str:
        """emhttp's /var/local/emhttp/disks.ini as Unraid writes it: one section per array device, with
        `spundown` 1 for a disk in standby (the only key the product reads; a few others for realism)."""
        lines = []
        for idx, name in enumerate([self.PARITY, *names]):
            lines += [f'["{name}"]', f'idx="{idx}"', f'name="{name}"',
                      f'type="{"Parity" if name == self.PARITY else "Data"}"', 'status="DISK_OK"',
                      f'spundown="{int(self.asleep(name, now))}"']
        return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ results


@dataclass
class Night:
    day: int
    bytes_written: int = 0  # real-world bytes (scaled back)
    requests: int = 0
    seconds: float = 0.0
    disks_touched: list[str] = field(default_factory=list)
    exit_code: int = 0


@dataclass
class Result:
    policy: str
    days: int
    plays: int = 0
    hits: int = 0
    predictable_plays: int = 0
    predictable_hits: int = 0
    predictable_waits: int = 0  # plays someone could have predicted that woke a disk (the viewer waited)
    nights: list[Night] = field(default_factory=list)
    peak_pool: int = 0  # bytes the tool holds on the pool at most (scaled back)
    spinups_playback: int = 0
    spinups_tool: int = 0
    spinups_mover: int = 0
    awake_hours: float = 0.0
    per_day_hits: list[float] = field(default_factory=list)
    per_day_spinups: list[int] = field(default_factory=list)
    misses_by_user: dict[str, int] = field(default_factory=dict)
    misses_by_cause: dict[str, int] = field(default_factory=dict)
    spinups_parity: dict[str, int] = field(default_factory=dict)  # of the spin-ups above, parity's, by cause
    wall_seconds: float = 0.0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.plays if self.plays else 0.0

    def summary(self, watts: float) -> dict[str, Any]:
        days = max(1, self.days)
        runs = [n for n in self.nights if n.seconds or n.requests]
        return {
            "policy": self.policy,
            "plays": self.plays,
            "hit_rate": round(self.hit_rate, 3),
            "hit_rate_predictable": round(self.predictable_hits / self.predictable_plays, 3)
            if self.predictable_plays else 0.0,
            "spinups_per_day": round((self.spinups_playback + self.spinups_tool + self.spinups_mover) / days, 2),
            "spinups_playback_per_day": round(self.spinups_playback / days, 2),
            "waits_predictable_per_day": round(self.predictable_waits / days, 2),
            "spinups_tool_per_day": round(self.spinups_tool / days, 2),
            "spinups_mover_per_day": round(self.spinups_mover / days, 2),
            "disk_hours_awake_per_day": round(self.awake_hours / days, 2),
            "kwh_per_year_awake": round(self.awake_hours / days * watts * 365 / 1000, 1),
            "gb_written_per_day": round(sum(n.bytes_written for n in self.nights) / GB / days, 1),
            "peak_pool_gb": round(self.peak_pool / GB, 1),
            "plex_requests_per_run": round(sum(n.requests for n in runs) / len(runs), 1) if runs else 0,
            "run_seconds_mean": round(sum(n.seconds for n in runs) / len(runs), 2) if runs else 0,
            "run_seconds_max": round(max((n.seconds for n in runs), default=0.0), 2),
            "failed_runs": sum(1 for n in self.nights if n.exit_code not in (0,)),
            "misses_by_user": self.misses_by_user,
            "parity_spinups_per_day": {k: round(v / days, 2) for k, v in self.spinups_parity.items()},
            "misses_by_cause": dict(sorted(self.misses_by_cause.items(), key=lambda kv: -kv[1])),
        }


# ------------------------------------------------------------------ the replay


class Replay:
    """One policy over the scripted month."""

    def __init__(self, h: Household, lib: model.Library, script: model.Script, policy: Policy) -> None:
        from plexcache.sim.scenario import from_dict
        from plexcache.sim.world import World

        self.h, self.lib, self.script, self.policy = h, lib, script, policy
        self.scenario = from_dict(model.scenario_document(h, lib, script), source="household")
        self.world = World(self.scenario)  # a policy with a simulator swaps in the server's world
        self.disks = Disks(int(h.server.get("spin_down_minutes", 30)) * 60)
        self.result = Result(policy.name, h.days)
        self.hdd_rate = float(h.server.get("hdd_mb_s", 200)) * 1e6
        self.future: list[Play] = script.plays()
        self.mover_at = model.clock_of(h.server.get("mover_at", "03:40"), "server.mover_at")
        # New episodes download to the pool (the shares are pool-first) and wait there for the nightly mover.
        self.downloads: dict[str, Any] = {}
        self.list_misses = False
        self.list_wakes = False

    # ---- looking things up in the world

    def part_of(self, key: model.Key) -> Any:
        """The (first) media part a key plays; None when it does not exist (yet)."""
        sc = self.world.sc
        if isinstance(key, MovieKey):
            it = next((i for i in sc.items.values() if i.type == "movie" and i.title == key.title), None)
            return (it.rk, it.parts()[0]) if it else None
        show = self._show(key.show)
        season = next((sc.items[c] for c in show.children if sc.items[c].index == key.season), None)
        if season is None:
            return None
        ep = next((sc.items[c] for c in season.children if sc.items[c].index == key.episode), None)
        return (ep.rk, ep.parts()[0]) if ep else None

    def _show(self, title: str) -> Any:
        cache = self.__dict__.setdefault("_shows", {})
        if title not in cache:
            cache[title] = next(i for i in self.world.sc.items.values() if i.type == "show" and i.title == title)
        return cache[title]

    # ---- the loop

    def run(self) -> Result:
        t0 = time.monotonic()
        self.policy.setup(self)
        try:
            nights = [self.h.start + d * 86400 + self.h.nightly_at for d in range(self.h.days)]
            events: list[tuple[int, int, Any]] = [(t, 0, ("night", d)) for d, t in enumerate(nights)]
            events += [(self.h.start + d * 86400 + self.mover_at, 0, ("mover", d)) for d in range(self.h.days)]
            for e in self.script.events:
                events.append((model.event_time(e), 1, e))
                if isinstance(e, Play):
                    events.append((e.end, 2, ("end", e)))
            events.sort(key=lambda x: (x[0], x[1]))
            day_hits: dict[int, list[int]] = {}
            for t, _, ev in events:
                self.advance_to(t)
                if isinstance(ev, tuple) and ev[0] == "night":
                    self.night(ev[1], t)
                elif isinstance(ev, tuple) and ev[0] == "mover":
                    self.mover(t)
                elif isinstance(ev, tuple) and ev[0] == "end":
                    self.end_play(ev[1])
                elif isinstance(ev, Play):
                    hit = self.start_play(ev)
                    day_hits.setdefault((t - self.h.start) // 86400, []).append(hit)
                elif isinstance(ev, Release):
                    self.release(ev)
                elif isinstance(ev, WatchlistChange):
                    self.watchlist(ev)
            self.result.per_day_hits = [sum(day_hits.get(d, [])) / len(day_hits[d]) if day_hits.get(d) else 1.0
                                        for d in range(self.h.days)]
        finally:
            self.policy.teardown(self)
        self.result.spinups_playback = self.disks.spinups["playback"]
        self.result.spinups_tool = self.disks.spinups["tool"]
        self.result.spinups_mover = self.disks.spinups["mover"]
        self.result.spinups_parity = dict(self.disks.parity_spinups)
        days = [int((t - self.h.start) // 86400) for t in self.disks.spinup_times]
        self.result.per_day_spinups = [days.count(d) for d in range(self.h.days)]
        self.result.awake_hours = self.disks.awake_seconds / 3600
        self.result.wall_seconds = time.monotonic() - t0
        return self.result

    def advance_to(self, t: int) -> None:
        if t > self.world.now:
            self.world.advance(t - self.world.now)

    def night(self, day: int, t: int) -> None:
        upcoming = [p for p in self.future if p.start >= t]
        self.future = upcoming
        night = self.policy.nightly(self, day, upcoming)
        self.tool_writes(night, t, "nightly run")
        self.result.nights.append(night)
        self.result.peak_pool = max(self.result.peak_pool, self.policy.pool_bytes(self))

    def tool_writes(self, night: Night, t: int, what: str) -> None:
        """The run read and renamed on each disk it touched (parity follows the rename); reading takes bytes /
        HDD rate, shared by the touched disks. With --wakes, each disk it woke is listed with what the run did."""
        asleep = [d for d in [*night.disks_touched, Disks.PARITY] if self.disks.asleep(d, t)]
        for disk in night.disks_touched:
            share = night.bytes_written / max(1, len(night.disks_touched))
            self.disks.write(disk, t, t + share / self.hdd_rate + 5, "tool")
        if self.list_wakes and asleep and night.disks_touched:
            day, clock = divmod(t - self.h.start, 86400)
            print(f"    wake day {day + 1} {clock // 3600:02d}:{clock % 3600 // 60:02d} {what}: {' '.join(asleep)}; "
                  f"{self.policy.describe_run()}", file=sys.stderr)

    def mover(self, t: int) -> None:
        """Unraid's mover: every download the tool does not hold (its ignore list) goes to its array disk."""
        for _, part in sorted(self.downloads.items()):
            if not self.policy.holds_download(self, part):
                self.policy.move_download(self, part)
                self.disks.write(part.disk, t, t + part.size * self.h.scale / self.hdd_rate, "mover")
        self.downloads.clear()

    def disks_ini(self) -> str:
        return self.disks.disks_ini([f"disk{i}" for i in range(1, self.h.disks + 1)], self.world.now)

    def start_play(self, p: Play) -> bool:
        found = self.part_of(p.key)
        if found is None:
            raise RuntimeError(f"script plays {p.key} before it exists")
        rk, part = found
        hit = part.file in self.downloads or self.policy.cached(self, part)
        woke = not hit and self.disks.access(part.disk, p.start, p.end, "playback")
        r = self.result
        r.predictable_waits += p.predictable and woke
        r.plays += 1
        r.hits += hit
        if p.predictable:
            r.predictable_plays += 1
            r.predictable_hits += hit
        if not hit:  # classed before the live hook below plans again with this file being played
            r.misses_by_user[p.user] = r.misses_by_user.get(p.user, 0) + 1
            cause = self.policy.miss_cause(self, p, part)
            r.misses_by_cause[cause] = r.misses_by_cause.get(cause, 0) + 1
            if self.list_misses:
                day, clock = divmod(p.start - self.h.start, 86400)
                print(f"    miss day {day + 1} {clock // 3600:02d}:{clock % 3600 // 60:02d} {p.user} {p.key} "
                      f"on {part.disk}: {cause}", file=sys.stderr)
        self.policy.on_play_start(self, p, rk)  # live-mode hook: reacts once playback (and the disk) started
        return hit

    def end_play(self, p: Play) -> None:
        rk, _ = self.part_of(p.key)
        if p.finish:
            self.world.set_watched(p.user, rk)
        else:
            self.world.set_offset(p.user, rk, p.offset_ms)
        self.policy.on_play_end(self, p, rk)

    def release(self, e: Release) -> None:
        new = self.world.add_episodes(f"{e.show}", e.season, e.count)
        for rk in new:
            part = self.world.sc.items[rk].parts()[0]
            self.downloads[part.file] = part
            self.policy.on_new_file(self, part)

    def watchlist(self, e: WatchlistChange) -> None:
        from plexcache.sim.scenario import WatchlistItem

        with self.world.lock:
            view = self.world.sc.views[e.user]
            if e.remove:
                view.watchlist = [w for w in view.watchlist if w.title != e.remove]
            if e.add:
                it = next(i for i in self.world.sc.items.values() if i.type == "movie" and i.title == e.add)
                view.watchlist.append(WatchlistItem(guid=it.guid, type="movie", title=it.title, year=it.year,
                                                    guids=list(it.guids), added_at=self.world.now, rk=it.rk))


# ------------------------------------------------------------------ policies


class Policy:
    name = "policy"

    def setup(self, replay: Replay) -> None:
        pass

    def teardown(self, replay: Replay) -> None:
        pass

    def nightly(self, replay: Replay, day: int, upcoming: list[Play]) -> Night:
        return Night(day)

    def cached(self, replay: Replay, part: Any) -> bool:
        return False

    def pool_bytes(self, replay: Replay) -> int:
        return 0

    def describe_run(self) -> str:
        """What the last run did, in a few words (the bench lists it for each disk a run woke)."""
        return ""

    def miss_cause(self, replay: Replay, play: Play, part: Any) -> str:
        """Why this play missed the pool, in a few words (the bench groups misses by it)."""
        return "not held" if play.predictable else "unpredictable play"

    # Live mode hooks: called as playback starts and ends; a live policy caches what comes next right away.
    def on_play_start(self, replay: Replay, play: Play, rk: int) -> None:
        pass

    def on_play_end(self, replay: Replay, play: Play, rk: int) -> None:
        pass

    def on_new_file(self, replay: Replay, part: Any) -> None:
        pass

    # The nightly mover: a download the policy holds stays on the pool, any other goes to its array disk.
    def holds_download(self, replay: Replay, part: Any) -> bool:
        return False

    def move_download(self, replay: Replay, part: Any) -> None:
        pass


class NoTool(Policy):
    name = "no tool"


class Oracle(Policy):
    """Knows every future play. Each night it keeps the files played soonest, as many as the same pool budget
    holds (Belady's rule), copying only those it does not hold yet. An upper bound for any nightly tool."""

    name = "oracle"

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held: dict[str, int] = {}  # file -> size (real bytes)

    def nightly(self, replay: Replay, day: int, upcoming: list[Play]) -> Night:
        night = Night(day)
        want: dict[str, tuple[int, Any]] = {}
        for p in upcoming:
            found = replay.part_of(p.key)
            if found is None:
                continue  # not downloaded yet: nobody can cache it tonight
            part = found[1]
            want.setdefault(part.file, (p.start, part))
        keep: dict[str, int] = {}
        used = 0
        for file, (_, part) in sorted(want.items(), key=lambda kv: kv[1][0]):
            size = part.size * replay.h.scale
            if used + size <= self.budget:
                keep[file] = size
                used += size
                if file not in self.held and file not in replay.downloads:  # a download is held where it is
                    night.bytes_written += size
                    night.disks_touched.append(part.disk)
        for file in self.held:
            if file not in keep:
                found = next((p for p in replay.scenario.all_parts() if p.file == file), None)
                if found is not None:
                    night.disks_touched.append(found.disk)  # the backup is renamed back
        night.disks_touched = sorted(set(night.disks_touched))
        self.held = keep
        return night

    def cached(self, replay: Replay, part: Any) -> bool:
        return part.file in self.held

    def pool_bytes(self, replay: Replay) -> int:
        return sum(self.held.values())

    def holds_download(self, replay: Replay, part: Any) -> bool:
        return part.file in self.held


class Peer(Policy):
    """PlexCache-R's policy as its defaults set it (../shared/reference/plexcache-r.md): each night, every
    user's On Deck and the next `number_episodes` (10) episodes after each On Deck episode, and the watchlist;
    a file nobody wants any more goes back once it has been cached `cache_retention_hours` (12); what is
    wanted is admitted in priority order (On Deck, then next episodes by distance, then the watchlist) into
    the same pool budget as the others, and what falls out is evicted. It does not read spin state: every
    copy reads its disk and renames the original (a write, so parity too), every move-back renames it back."""

    name = "PlexCache-R (peer)"

    def __init__(self, budget: int, next_n: int = 10, retention_hours: float = 12) -> None:
        self.budget, self.next_n, self.retention = budget, next_n, retention_hours * 3600
        self.held: dict[str, tuple[int, float, Any]] = {}  # file -> (real size, cached at, part)

    def _wanted(self, replay: Replay) -> list[Any]:
        world = replay.world
        deck, nxt, watch = [], [], []
        for user in world.sc.views:
            for rk in world.on_deck(user):
                it = world.sc.items[rk]
                deck.append((-(world.deck_viewed_at(user, rk) or 0), it.parts()[0]))
                if it.type == "episode":
                    eps, pos = world.show_position(it.grandparent, rk)
                    nxt += [(n, world.sc.items[e].parts()[0]) for n, e in enumerate(eps[pos + 1:pos + 1 + self.next_n])]
            watch += [world.sc.items[w.rk].parts()[0] for w in world.sc.views[user].watchlist
                      if w.rk in world.sc.items]
        ordered = [p for _, p in sorted(deck, key=lambda x: x[0])] + [p for _, p in sorted(nxt, key=lambda x: x[0])]
        seen: set[str] = set()
        return [p for p in ordered + watch if not (p.file in seen or seen.add(p.file))]  # type: ignore[func-returns-value]

    def nightly(self, replay: Replay, day: int, upcoming: list[Play]) -> Night:
        night = Night(day)
        now = float(replay.world.now)
        wanted = self._wanted(replay)
        keep: dict[str, tuple[int, float, Any]] = {}
        used = 0
        for file, (size, at, part) in self.held.items():  # retention: unwanted files stay 12 h
            if now - at < self.retention and file not in {p.file for p in wanted}:
                keep[file] = (size, at, part)
                used += size
        for part in wanted:
            size = part.size * replay.h.scale
            if part.file in keep or used + size > self.budget:
                continue
            old = self.held.get(part.file)
            keep[part.file] = old or (size, now, part)
            used += size
            if old is None and part.file not in replay.downloads:
                night.bytes_written += size
                night.disks_touched.append(part.disk)
        night.disks_touched += [part.disk for file, (_, _, part) in self.held.items() if file not in keep]
        night.disks_touched = sorted(set(night.disks_touched))
        self.held = keep
        return night

    def cached(self, replay: Replay, part: Any) -> bool:
        return part.file in self.held

    def pool_bytes(self, replay: Replay) -> int:
        return sum(size for size, _, _ in self.held.values())

    def holds_download(self, replay: Replay, part: Any) -> bool:
        return part.file in self.held


class PlexcacheR(Policy):
    """The real thing: engine.run_cycle each night against the simulator and a sandbox tree."""

    def __init__(self, name: str, overrides: dict[str, Any], workdir: Path) -> None:
        self.name = f"plexcache-r {name}"
        self.overrides = overrides
        self.workdir = workdir
        self.server: Any = None
        self.sb: Any = None
        self.settings: Any = None
        self._restore: list[Any] = []
        self.last_plan: dict[str, Any] = {}  # user-share path -> the last cycle's plan item

    def setup(self, replay: Replay) -> None:
        from plexcache import config as cfg
        from plexcache.sim.sandbox import build_tree
        from plexcache.sim.server import SimServer

        self.server = SimServer(replay.scenario)
        url = self.server.start()
        replay.world = self.server.world
        root = self.workdir / self.name.replace(" ", "-")
        shutil.rmtree(root, ignore_errors=True)
        self.sb = build_tree(root, replay.scenario)
        os.environ["PLEXCACHE_PLEX_REDIRECT"] = url
        doc = cfg.merge(self.sb.settings_dict(url, self.server.owner_token), {"log_level": "warning"})
        doc = cfg.merge(doc, self.overrides)
        self.settings = cfg.from_mapping(doc)
        self._simulate_pool_size(replay)

    def _simulate_pool_size(self, replay: Replay) -> None:
        """The sandbox pool lives on the host disk; report the household's pool size (scaled) instead."""
        from plexcache import unraid

        total = replay.h.pool_bytes // replay.h.scale
        other = replay.h.pool_other_bytes // replay.h.scale
        pool_dir = self.sb.disk("cache")
        original = unraid.Unraid.pool_space

        def pool_space(layout: Any, pool: str, total_override: Optional[int] = None) -> Any:
            used = other + _tree_bytes(pool_dir)
            return unraid.PoolSpace(pool, total, max(0, total - used), used)

        unraid.Unraid.pool_space = pool_space  # type: ignore[method-assign]
        self._restore.append(lambda: setattr(unraid.Unraid, "pool_space", original))

    def teardown(self, replay: Replay) -> None:
        for undo in self._restore:
            undo()
        if self.server is not None:
            self.server.stop()
        os.environ.pop("PLEXCACHE_PLEX_REDIRECT", None)

    def nightly(self, replay: Replay, day: int, upcoming: list[Play]) -> Night:
        from plexcache import engine

        return self.measured(replay, day, lambda: engine.run_cycle(self.settings, now=float(replay.world.now)))

    def measured(self, replay: Replay, day: int, cycle: Any) -> Night:
        """Run one cycle and measure it: Plex requests, seconds, bytes written to the pool, disks touched."""
        night = Night(day)
        pool_before = _tree_files(self.sb.disk("cache"))
        arrays_before = {d: _names(self.sb.disk(d)) for d in _disk_names(self.sb)}
        requests_before = len(self.server.requests)
        # Unraid keeps each array disk's spin state in emhttp's disks.ini; the product reads it from there.
        (self.sb.emhttp_dir / "disks.ini").write_text(replay.disks_ini())
        t0 = time.monotonic()
        report = cycle()
        plan = getattr(report, "plan", None)
        if plan is not None:
            self.last_plan = {item.path: item for item in plan.items}
        night.seconds = time.monotonic() - t0
        night.exit_code = int(getattr(report, "exit_code", 0) or 0)
        night.requests = len(self.server.requests) - requests_before
        pool_after = _tree_files(self.sb.disk("cache"))
        night.bytes_written = sum(size for path, size in pool_after.items()
                                  if pool_before.get(path) != size) * replay.h.scale
        night.disks_touched = sorted(d for d in arrays_before if _names(self.sb.disk(d)) != arrays_before[d])
        return night

    def cached(self, replay: Replay, part: Any) -> bool:
        path = self.sb.physical_path(part, "cache")
        try:
            return path.stat().st_size == part.size
        except OSError:
            return False

    def pool_bytes(self, replay: Replay) -> int:
        return _tree_bytes(self.sb.disk("cache")) * replay.h.scale

    def describe_run(self) -> str:
        """The last cycle's caches by their best reason, and its moves back."""
        counts: dict[str, int] = {}
        for item in self.last_plan.values():
            if item.action == "cache":
                best = min(item.reasons, key=lambda r: r.priority).source if item.reasons else "?"
                counts[best] = counts.get(best, 0) + 1
            elif item.action == "move_back":
                counts["moved back"] = counts.get("moved back", 0) + 1
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))

    def miss_cause(self, replay: Replay, play: Play, part: Any) -> str:
        """From the last cycle's plan: not wanted at all, skipped (and why), or cached and gone since."""
        path = str(self.sb.user_path(part.file))
        item = self.last_plan.get(path)
        if item is None and not play.predictable:
            return "unpredictable play"
        if item is None:
            show = os.path.dirname(os.path.dirname(path))  # SHARE/SHOW/Season N/file
            followed = any(p.startswith(show + "/") and any(r.user == play.user for r in i.reasons)
                           for p, i in self.last_plan.items())
            return "beyond the lookahead" if followed and isinstance(play.key, model.EpisodeKey) else "not predicted"
        if item.action == "skip":
            if "standby" in item.why:
                return "predicted, disk asleep"
            if "room" in item.why or "did not fit" in item.why:
                return "predicted, no room"
            return f"predicted, skipped: {item.why[:40]}"
        if item.action == "move_back":
            return "moved back by the last run"
        return "cached, then moved back"

    def on_new_file(self, replay: Replay, part: Any) -> None:
        from plexcache.sim.sandbox import write_media

        write_media(self.sb.physical_path(part, "cache"), part.size, part.file, replay.scenario.unraid.fill_limit)
        self.sb.refresh_user_view()

    def holds_download(self, replay: Replay, part: Any) -> bool:
        """Mover Tuning skips what the product's ignore list names."""
        pool_path = str(self.sb.physical_path(part, "cache"))
        try:
            listed = set(Path(self.settings.paths.exclusion_list).read_text().splitlines())
        except OSError:
            listed = set()
        return pool_path in listed or not os.path.exists(pool_path)

    def move_download(self, replay: Replay, part: Any) -> None:
        src, dst = self.sb.physical_path(part, "cache"), self.sb.physical_path(part)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)  # the sandbox's disks are one filesystem; the mover copies, same result
        self.sb.refresh_user_view()


class PlexcacheRLive(PlexcacheR):
    """plexcache-r with live mode: the real LiveWatcher follows the simulator's sessions during the day and
    runs an ordinary cycle when playback starts, moves on or stops, or new episodes land. Each of those
    events is handed to the watcher at once (`_react`), as Plex's notification channel would."""

    def setup(self, replay: Replay) -> None:
        from plexcache.live import LiveWatcher

        super().setup(replay)
        self.clock = [0.0]
        self.sessions: dict[tuple[str, int], str] = {}
        self.replay = replay
        self.watcher = LiveWatcher(self.settings, clock=lambda: self.clock[0], cycle=self._cycle)
        self.watcher.tick()

    def _cycle(self, settings: Any, **options: Any) -> Any:
        from plexcache import engine

        replay = self.replay
        report: dict[str, Any] = {}

        def cycle() -> Any:
            report["run"] = engine.run_cycle(settings, now=float(replay.world.now), **options)
            return report["run"]

        night = self.measured(replay, (replay.world.now - replay.h.start) // 86400, cycle)
        replay.tool_writes(night, replay.world.now, "live run")
        replay.result.nights.append(night)
        replay.result.peak_pool = max(replay.result.peak_pool, self.pool_bytes(replay))
        return report["run"]

    def _react(self) -> None:
        """One poll now, then wait out the settle time so the watcher runs its cycle."""
        from plexcache.live import SETTLE_SECONDS

        self.clock[0] = max(self.clock[0], self.watcher.state.next_poll)
        self.watcher.tick()
        self.clock[0] += SETTLE_SECONDS
        self.watcher.tick()

    def on_play_start(self, replay: Replay, play: Play, rk: int) -> None:
        self.sessions[(play.user, rk)] = self.server.add_session(play.user, rk)
        self._react()

    def on_play_end(self, replay: Replay, play: Play, rk: int) -> None:
        sid = self.sessions.pop((play.user, rk), None)
        if sid is not None:
            self.server.remove_session(sid)
        self._react()

    def on_new_file(self, replay: Replay, part: Any) -> None:
        super().on_new_file(replay, part)
        self.watcher.state.next_recent = 0.0
        self._react()


def _tree_files(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            try:
                out[p] = os.lstat(p).st_size
            except OSError:
                pass
    return out


def _tree_bytes(root: Path) -> int:
    return sum(_tree_files(root).values())


def _names(root: Path) -> frozenset[str]:
    return frozenset(os.path.relpath(p, root) for p in _tree_files(root))


def _disk_names(sb: Any) -> list[str]:
    return [f"disk{i}" for i in range(1, sb.scenario.unraid.disks + 1)]


# ------------------------------------------------------------------ reporting


COLUMNS = [("policy", "policy"), ("hit rate", "hit_rate"), ("hit rate (predictable)", "hit_rate_predictable"),
           ("viewer waits/day", "spinups_playback_per_day"), ("of them predictable", "waits_predictable_per_day"),
           ("spin-ups/day (all)", "spinups_per_day"),
           ("by the tool", "spinups_tool_per_day"), ("by the mover", "spinups_mover_per_day"),
           ("disk-hours awake/day", "disk_hours_awake_per_day"), ("GB written to pool/day", "gb_written_per_day"),
           ("peak pool GB", "peak_pool_gb"), ("Plex requests/run", "plex_requests_per_run"),
           ("run s (mean/max)", "run_seconds")]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(c for c, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = []
        for _, key in COLUMNS:
            if key == "run_seconds":
                cells.append(f"{r['run_seconds_mean']}/{r['run_seconds_max']}" if r["run_seconds_max"] else "-")
            elif key.startswith("hit_rate"):
                cells.append(f"{r[key] * 100:.0f}%")
            else:
                cells.append(str(r[key]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart(results: list[Result], rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Per policy: plays served from the pool and array spin-ups, day by day, with the month's figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 4.6))
    for res, row in zip(results, rows, strict=True):
        days = range(1, len(res.per_day_hits) + 1)
        axes[0].plot(days, [x * 100 for x in res.per_day_hits], label=f"{res.policy} ({row['hit_rate'] * 100:.0f} %)")
        axes[1].plot(days, res.per_day_spinups, label=f"{res.policy} ({row['spinups_per_day']} a day)")
    axes[0].set_ylabel("plays served from the pool that day (%)")
    axes[0].set_ylim(0, 105)
    axes[1].set_ylabel("array spin-ups that day (viewers, the tool, the mover)")
    for ax in axes:
        ax.set_xlabel("day")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def mean_rows(per_seed: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The table's figures averaged over seeds, policy by policy (same policies in the same order)."""
    out = []
    for rows in zip(*per_seed, strict=True):
        row: dict[str, Any] = {"policy": rows[0]["policy"]}
        for key, value in rows[0].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[key] = round(sum(r[key] for r in rows) / len(rows), 3 if key.startswith("hit_rate") else 2)
        out.append(row)
    return out


def replay_household(h: Household, policies: list[str], workdir: Path, list_misses: bool,
                     list_wakes: bool = False) -> Optional[list[Result]]:
    """Every policy over one household's scripted month; None for an unknown policy name."""
    lib = model.build_library(h)
    script = model.write_script(h, lib)
    from plexcache.config import parse_size

    floor = parse_size(str(h.policies.get("default", {}).get("cache", {}).get("min_free", "10%")))
    budget = h.pool_bytes - h.pool_other_bytes - (floor.resolve(h.pool_bytes) if floor else 0)
    results = []
    for name in policies:
        if name == "no-tool":
            policy: Policy = NoTool()
        elif name == "oracle":
            policy = Oracle(budget)
        elif name == "peer":
            policy = Peer(budget)
        elif name in h.policies:
            live = bool(h.policies[name].get("live", {}).get("enabled"))
            policy = (PlexcacheRLive if live else PlexcacheR)(name, h.policies[name], workdir)
        else:
            print(f"unknown policy {name!r} (no-tool, oracle, peer, {', '.join(h.policies)})", file=sys.stderr)
            return None
        replay = Replay(h, lib, script, policy)
        replay.list_misses = list_misses
        replay.list_wakes = list_wakes
        res = replay.run()
        results.append(res)
        print(f"  seed {h.seed}, {res.policy}: {res.plays} plays, {res.hits} hits, {res.wall_seconds:.1f} s; misses: "
              f"{res.summary(0)['misses_by_cause']}; parity spin-ups a day: {res.summary(0)['parity_spinups_per_day']}",
              file=sys.stderr)
    return results


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--household", default=str(HERE / "default.yaml"))
    ap.add_argument("--days", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--seeds", help="comma list of seeds: each is replayed, the table gives their mean")
    ap.add_argument("--policies", default="no-tool,peer,default,live,oracle",
                    help="comma list: no-tool, oracle, peer (PlexCache-R's defaults), and the names under "
                         "`policies:` in the household file")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--keep", help="keep the sandbox trees in this directory")
    ap.add_argument("--misses", action="store_true", help="list every play that missed the pool, and why")
    ap.add_argument("--wakes", action="store_true", help="list every disk the tool woke, and what that run did")
    args = ap.parse_args(argv)

    from plexcache.errors import UsageError

    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    # In memory where there is a tmpfs: the real copy path fsyncs every file, which a busy disk makes slow.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="plexcache-household-", dir=shm))
    per_seed: list[tuple[Household, list[Result]]] = []
    try:
        for seed in seeds:
            try:
                h = model.load_household(args.household, days=args.days, seed=seed)
            except UsageError as exc:
                print(f"household: {exc}", file=sys.stderr)
                return 2
            results = replay_household(h, policies, workdir, args.misses, args.wakes)
            if results is None:
                return 2
            per_seed.append((h, results))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    h, results = per_seed[0]
    watts = float(h.server.get("watts_awake", 5.0))
    all_rows = [[r.summary(watts) for r in res] for _, res in per_seed]
    rows = mean_rows(all_rows) if len(per_seed) > 1 else all_rows[0]
    n_plays = [res[0].plays if res else 0 for _, res in per_seed]
    lib = model.build_library(h)
    title = (f"{Path(h.source).stem}: {len(h.viewers)} users, {h.days} days, {'/'.join(map(str, n_plays))} plays, "
             f"{sum(sum(s.seasons.values()) for s in lib.shows)} episodes + {len(lib.movies)} movies, "
             f"pool {h.pool_bytes / GB:.0f} GB ({h.pool_other_bytes / GB:.0f} GB other), "
             f"seed{'s' if len(per_seed) > 1 else ''} {', '.join(str(hh.seed) for hh, _ in per_seed)}"
             f"{' (mean)' if len(per_seed) > 1 else ''}")
    text = table(rows)
    print(title)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(h.source).stem
    (out / f"{stem}.md").write_text(f"{title}\n\n{text}\n")
    (out / f"{stem}.json").write_text(json.dumps({
        "title": title, "rows": rows,
        "seeds": {str(hh.seed): {"rows": r, "nights": {x.policy: [asdict(n) for n in x.nights] for x in res}}
                  for (hh, res), r in zip(per_seed, all_rows, strict=True)}}, indent=1))
    if not args.no_chart:
        chart(results, all_rows[0], out / f"{stem}.png", f"{stem}, seed {h.seed}: day by day")
    return 0


if __name__ == "__main__":
    sys.exit(main())
