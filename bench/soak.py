"""Fault soak: hundreds of real `plexcache-r run`s under abuse, and the no-loss invariants checked after each.

    .venv/bin/python bench/soak.py [--runs 300] [--seed 1] [--no-tmpfs] [--keep DIR] [--json FILE] [--spawn]

One world (a small household whose media files all hold real, hashable bytes) is served by the Plex simulator
in this process; every run is a real CLI process (`plexcache-r --config ... --json run`), forked from this
one (which imported the CLI once) unless --spawn starts a new Python for each. Before each run the
household moves on (episodes watched, positions, playback sessions appearing and ending) and one or more
faults are drawn:

  kill      SIGKILL the run after a random delay
  crash     PLEXCACHE_CRASH_AT=<step>[:n]: the mover kills itself at a named step (the steps are traced first)
  plex      the simulator answers a random endpoint with 401/500/timeout/truncated/garbage/dropped connection
  enospc    the pool (a tmpfs, when mount works) is filled so that little room is left
  eperm     a random array or pool folder is made immutable (chattr +i) for the run
  mover     a stand-in for Unraid's mover moves every pool file not on the ignore list and not open (temp
            copies included) to any array disk with room, before or while the run goes
  session   a playback session appears on a cached or about-to-be-cached file
  rogue     the mover ignores the ignore list (CA Mover Tuning not set up) and moves cached files to the
            array behind the tool's back, before or while the run goes; a later run must sort it out
  damage    harm from outside, only where another complete copy of the bytes exists: a pool copy truncated
            or a byte flipped in place (size and mtime kept), a backup deleted, a pool copy deleted, a temp
            copy moved to the array, the registry file truncated (the user then runs `audit --fix sync`, as
            the run's message says), a second .plexcached of the same file on another disk

After each run: `plexcache-r recover`, then the invariants: every media file exists exactly once as a live
copy with its original bytes, plus at most one intact .plexcached backup; the registry, the ignore list and
the disks agree; and the bytes of every file the world ever wrote still exist somewhere (nothing deleted was
the last copy). A file the soak damaged may be left in another state only if `audit` reports it; so may a
second live copy or a leftover temp copy. Everything is drawn from --seed; a violation prints the seed and
run number to reproduce.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

FAULTS = ("kill", "crash", "plex", "enospc", "eperm", "mover", "session", "rogue", "damage")
DAMAGE = ("truncate", "flip", "del_backup", "del_pool", "temp_to_array", "registry", "second_backup")
PLEX_FAULTS: tuple[Any, ...] = (401, 500, 503, "timeout", "truncated", "garbage", "drop")
PLEX_PATHS = ("/", "/library/sections", "/library/sections/*/onDeck", "/library/metadata/*", "/status/sessions",
              "/library/metadata/*/allLeaves", "/api/v2/*", "/api/*", "*")
RESTORE_STEPS = ("restore.journaled", "restore.dirs", "restore.chunk", "restore.copied", "restore.verified",
                 "restore.placed", "restore.renamed", "restore.retired", "restore.removed", "restore.committed",
                 "restore.done", "undo.step")
BACKUP = ".plexcached"
# what the CLI's commands import (lazily, inside the command): loaded once before the first fork
PRELOAD = ("plexcache.cli", "plexcache.engine", "plexcache.audit", "plexcache.plex", "plexcache.media.mover")
POOL_MB = 48


# ------------------------------------------------------------------ the world


def world_document(seed: int) -> dict[str, Any]:
    """Five users, four shows, a dozen movies; every file small enough to hold real bytes."""
    rng = random.Random(f"soak-world-{seed}")
    shows = [{"title": t, "year": 2010 + i, "seasons": {1: rng.randint(5, 9), 2: rng.randint(3, 8)},
              "size": f"{rng.randint(200, 900)}K", "subtitles": ["en.srt"] if i % 2 else []}
             for i, t in enumerate(["Harbor Lights", "Iron Valley", "Paper Moon", "Signal Fire"])]
    movies = [{"title": f"Movie {i:02d}", "year": 1990 + i, "size": f"{rng.randint(300, 3000)}K",
               **({"subtitles": ["en.srt", "fr.srt"]} if i % 3 == 0 else {})} for i in range(12)]
    return {
        "now": "2026-03-01T20:00:00Z",
        "users": [{"name": "owner", "kind": "owner", "id": 1}, {"name": "pat", "kind": "home", "id": 2},
                  {"name": "kid", "kind": "managed", "id": 3}, {"name": "fran", "kind": "friend", "id": 4},
                  {"name": "gil", "kind": "friend", "id": 5}],
        "unraid": {"disks": 3, "pools": ["cache"], "fillLimit": "8M",
                   "shares": {"tv": {"useCache": "yes", "pool": "cache"},
                              "movies": {"useCache": "yes", "pool": "cache"}},
                   "pathMap": {"/data/tv": "tv", "/data/movies": "movies"}},
        "libraries": [{"id": 1, "type": "show", "title": "TV", "locations": ["/data/tv"], "shows": shows},
                      {"id": 2, "type": "movie", "title": "Movies", "locations": ["/data/movies"],
                       "movies": movies}],
        "watch": {"owner": {"watched": ["Harbor Lights S01E01-S01E02"]},
                  "pat": {"watched": ["Iron Valley S01E01"], "progress": {"Movie 03": "20m"}},
                  "fran": {"watched": ["Paper Moon S01E01-S01E03"]}},
        "watchlists": {"owner": ["Movie 05", "Movie 07"], "pat": ["Movie 08"]},
    }


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ results


@dataclass
class Stats:
    runs: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    killed: int = 0
    crashed_at: dict[str, int] = field(default_factory=dict)
    recover_failures: int = 0
    violations: list[str] = field(default_factory=list)  # loss, damage, two live copies, books disagreeing
    duplicates: list[str] = field(default_factory=list)  # an extra identical backup left behind (no loss)
    leftovers: list[str] = field(default_factory=list)  # temp files still on disk after recover (no data loss)
    cached_seen_max: int = 0
    moved_by_mover: int = 0
    damage: dict[str, int] = field(default_factory=dict)  # damage done from outside, by kind
    reported: list[str] = field(default_factory=list)  # abnormal states `audit` reports (allowed)
    seconds: float = 0.0

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# ------------------------------------------------------------------ the soak


class Soak:
    def __init__(self, seed: int, workdir: Path, use_tmpfs: bool = True, verbose: bool = False,
                 spawn: bool = False) -> None:
        from plexcache import config as cfg
        from plexcache.sim.sandbox import build_tree
        from plexcache.sim.scenario import from_dict
        from plexcache.sim.server import SimServer

        self.seed, self.workdir, self.verbose, self.spawn = seed, workdir, verbose, spawn
        if not spawn:  # once, here: every CLI call is a fork of this process
            for module in PRELOAD:
                importlib.import_module(module)
        self.rng = random.Random(seed)
        self.scenario = from_dict(world_document(seed), source="soak")
        self.sim = SimServer(self.scenario, timeout_sleep=1.0)
        self.url = self.sim.start()
        self.sb = build_tree(workdir / "root", self.scenario)
        self.sb.set_mover_tuning()  # set up as the Dashboard asks, so `run` may move files; the rogue fault
        # below is a mover ignoring that list anyway
        self.pool = self.sb.disk("cache")
        self.tmpfs = use_tmpfs and _mount_tmpfs(self.pool, POOL_MB)
        self.disks = [self.sb.disk(f"disk{i}") for i in range(1, self.scenario.unraid.disks + 1)]
        backups = self.rng.random() < 0.8  # mostly the default; sometimes the no-backup path
        doc = cfg.merge(self.sb.settings_dict(self.url, self.sim.owner_token), {
            "plex": {"timeout": 2},
            "users": {"friends": {"on_deck": True, "watchlist": False}},
            "demand": {"next_episodes": 3, "days_to_monitor": 0},  # the CLI runs on wall-clock time
            "cache": {"retention_hours": 0, "backups": backups, "min_free": "2MB",
                      "verify": self.rng.random() < 0.3},
            "log_level": "warning"})
        self.settings = cfg.from_mapping(doc)
        self.config = workdir / "settings.yaml"
        cfg.save(self.settings, self.config)
        self.manifest = self._manifest()
        self.env = {**os.environ, "PLEXCACHE_PLEX_REDIRECT": self.url}
        for k in ("PLEXCACHE_CRASH_AT", "PLEXCACHE_CRASH_TRACE"):
            self.env.pop(k, None)
        self.stats = Stats()
        self.immutable: list[Path] = []
        self._seen: set[str] = set()
        self.damaged: set[str] = set()  # share/rel of files the soak harmed (their state may differ, reported)
        self.books_damaged = False  # the registry was truncated: rebuilt by audit --fix sync, from the disks
        # a mover ignoring the ignore list went on after a run ended: the books are compared again only after
        # a later run that ran to its end (a killed or crashed one cannot have sorted them out)
        self.books_pending = False
        self.steps = self._trace_steps()

    # ---- setup helpers

    def _manifest(self) -> dict[str, str]:
        """share/rel -> sha256 of every media file and sidecar, as built."""
        out = {}
        for disk in self.disks:
            for p in _files(disk):
                out[str(p.relative_to(disk))] = sha(p)
        return out

    def _trace_steps(self) -> list[str]:
        """One clean run with PLEXCACHE_CRASH_TRACE: the crash steps a run passes, each as step:n."""
        trace = self.workdir / "trace.txt"
        self._cli("run", extra_env={"PLEXCACHE_CRASH_TRACE": str(trace)})
        self.check("trace run")
        steps = trace.read_text().split() if trace.exists() else []
        trace.unlink(missing_ok=True)
        self._churn(force=True)
        # A first run only caches; the move-back and undo steps are named in the media package's crash_point calls.
        names = {s.partition(":")[0] for s in steps} | set(RESTORE_STEPS)
        return sorted(names)

    def close(self) -> None:
        self._release_immutable()
        self.sim.stop()
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.pool)], check=False)

    # ---- running the CLI

    def _cli(self, *args: str, extra_env: Optional[dict[str, str]] = None, kill_after: Optional[float] = None,
             timeout: float = 120) -> tuple[Optional[int], str, str]:
        env = dict(self.env, **(extra_env or {}))
        argv = ["--config", str(self.config), "--json", *args]
        if not self.spawn:
            return self._forked(argv, env, kill_after, timeout)
        cmd = [sys.executable, "-m", "plexcache", *argv]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if kill_after is not None:
            try:
                out, err = proc.communicate(timeout=kill_after)
                return proc.returncode, out, err
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                out, err = proc.communicate()
                self.stats.killed += 1
                return None, out, err
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err

    def _forked(self, argv: list[str], env: dict[str, str], kill_after: Optional[float],
                timeout: float) -> tuple[Optional[int], str, str]:
        """The CLI as a forked child of this process, which imported plexcache.cli once: the same code, the
        same environment and a process of its own (SIGKILLed exactly like a subprocess), without paying
        Python's start-up and the plexapi import on every call (most of a run's time at this scale)."""
        out_path, err_path = self.workdir / "cli.out", self.workdir / "cli.err"
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child never returns: whatever happens, it ends in os._exit
            _child_main(argv, env, out_path, err_path)
        code = _wait_child(pid, kill_after if kill_after is not None else timeout)
        if code is None and kill_after is None:
            raise subprocess.TimeoutExpired(["plexcache-r", *argv], timeout)
        if code is None:
            self.stats.killed += 1
        return code, out_path.read_text(errors="replace"), err_path.read_text(errors="replace")

    # ---- one iteration

    def iteration(self, n: int) -> None:
        rng = random.Random(f"{self.seed}-{n}")
        self._churn(rng=rng)
        faults = [f for f in FAULTS if rng.random() < 0.35] or [rng.choice(FAULTS)]
        if "rogue" in faults:
            faults = ["rogue", *(f for f in faults if f in ("session", "mover", "damage"))]
        for f in faults:
            self.stats.count(self.stats.faults, f)
        env: dict[str, str] = {}
        kill_after = None
        mover_thread = None
        try:
            if "plex" in faults:
                for _ in range(rng.randint(1, 3)):
                    self.sim.inject(rng.choice(PLEX_PATHS), rng.choice(PLEX_FAULTS), times=rng.choice([1, 2, None]))
            if "crash" in faults:
                env["PLEXCACHE_CRASH_AT"] = f"{rng.choice(self.steps)}:{rng.randint(1, 3)}"
            if "kill" in faults:
                kill_after = rng.uniform(0.05, 2.5)
            if "enospc" in faults:
                self._fill_pool(rng)
            if "eperm" in faults:
                self._make_immutable(rng)
            if "session" in faults:
                self._session(rng)
            if "damage" in faults:
                self._damage(rng, n)
            if "rogue" in faults or "mover" in faults:
                honour = "rogue" not in faults
                if rng.random() < 0.5:
                    self.mover_pass(honour, rng)
                else:
                    mover_thread = threading.Thread(target=self._mover_during,
                                                    args=(rng.uniform(0.1, 1.5), honour, random.Random(rng.random())))
                    mover_thread.start()
            code, _, err = self._cli("run", extra_env=env, kill_after=kill_after)
            if mover_thread is not None:
                mover_thread.join()
            if not self._registry_readable():
                self._cli("audit", "--fix", "sync")  # what the run's message tells the user to do
            if code is None:
                self.stats.count(self.stats.exit_codes, "killed")
            elif code == -9 and env.get("PLEXCACHE_CRASH_AT"):
                self.stats.count(self.stats.crashed_at, env["PLEXCACHE_CRASH_AT"])
                self.stats.count(self.stats.exit_codes, "crashed")
            else:
                self.stats.count(self.stats.exit_codes, str(code))
                if "Traceback" in err or "unexpected error" in err:  # an exception nothing handled
                    self.violate(n, f"run ended on an unhandled error: {err.strip().splitlines()[-1]}")
        finally:
            self._release_immutable()
            self._drain_pool()
            self.sim.clear_faults()
        self.stats.runs += 1
        if code is not None and code >= 0:  # the run went to its end
            self.books_pending = False
        if "rogue" in faults and mover_thread is not None:
            self.books_pending = True
        code, _, err = self._cli("recover")
        if code != 0:
            self.stats.recover_failures += 1
            self.violate(n, f"recover exited {code}: {err.strip()[-200:]}")
        crash = f" {env['PLEXCACHE_CRASH_AT']}" if "crash" in faults else ""
        self.check(f"run {n} ({', '.join(faults)}{crash})", n, not self.books_pending)

    def finish(self) -> None:
        """One last check after the mover has had its way with everything left. When a mover that ignores
        the list moved files during the last run that went to its end, the books learn it at the next run:
        that run happens first, as the next scheduled one would."""
        self.mover_pass()
        self._cli("recover")
        if self.books_pending:
            self._cli("run")
        self.check("final", None)

    def _released(self) -> set[str]:
        """share/rel of files whose latest event is "released": a cached file that never came from an array
        disk (no backup, no disk recorded) is handed to Unraid's mover on its move back, by design; it stays
        on the pool, unlisted, until the mover takes it."""
        from plexcache.state import StateStore

        latest: dict[str, str] = {}
        for event in StateStore(self.settings).load_history().events:
            latest[str(event.get("path", ""))] = str(event.get("kind", ""))
        root = self.settings.paths.user_root.rstrip("/") + "/"
        videos = {p[len(root):] for p, kind in latest.items() if kind == "released" and p.startswith(root)}
        return videos.union(*(self._sidecars_of(rel) for rel in videos))  # released with their video

    def _registry_readable(self) -> bool:
        from plexcache.errors import UsageError
        from plexcache.state import StateStore

        try:
            StateStore(self.settings).load_registry()
        except UsageError:
            return False
        return True

    def _churn(self, rng: Optional[random.Random] = None, force: bool = False) -> None:
        """The household moves on: episodes watched, positions set, sessions end, watchlists change."""
        rng = rng or self.rng
        w = self.sim.world
        users = list(self.scenario.users)
        self.sim.remove_session()  # yesterday's sessions are over
        for _ in range(rng.randint(1, 4)):
            user = rng.choice(users)
            item = rng.choice([it for it in self.scenario.items.values() if it.type in ("episode", "movie")])
            try:
                if rng.random() < 0.7:
                    w.set_watched(user, item.rk)
                else:
                    w.set_offset(user, item.rk, rng.randint(1, max(2, item.duration - 1)))
            except ValueError:
                pass
        if rng.random() < 0.2:
            w.advance("1d")

    def _session(self, rng: random.Random) -> None:
        items = [it for it in self.scenario.items.values() if it.type in ("episode", "movie")]
        cached = [it for it in items if any(self.sb.physical_path(p, "cache").exists() for p in it.parts())]
        item = rng.choice(cached or items)
        self.sim.add_session(rng.choice(list(self.scenario.users)), item.rk, offset="3m")

    def _fill_pool(self, rng: random.Random) -> None:
        """Leave only a little room on the pool (a tmpfs: writes then really fail with ENOSPC)."""
        free = shutil.disk_usage(self.pool).free
        if not self.tmpfs or free < 1 << 20:
            return
        leave = rng.choice([0, 64 << 10, 512 << 10, 2 << 20, 4 << 20])
        filler = self.pool / ".soak-filler"
        with open(filler, "wb") as f:
            try:
                f.write(b"\0" * max(0, free - leave))
            except OSError:
                pass

    def _drain_pool(self) -> None:
        (self.pool / ".soak-filler").unlink(missing_ok=True)

    def _make_immutable(self, rng: random.Random) -> None:
        dirs = [Path(d) for root in [*self.disks, self.pool] for d, _, _ in os.walk(root)
                if Path(d) != root]
        for d in rng.sample(dirs, min(len(dirs), rng.randint(1, 3))):
            if subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0:
                self.immutable.append(d)

    def _release_immutable(self) -> None:
        for d in self.immutable:
            subprocess.run(["chattr", "-i", str(d)], capture_output=True)
        self.immutable = []

    # ---- the stand-in for Unraid's mover

    def _ignored(self) -> set[str]:
        try:
            return {line.strip() for line in Path(self.settings.paths.exclusion_list).read_text().splitlines()}
        except OSError:
            return set()

    def mover_pass(self, honour_ignore_list: bool = True, rng: Optional[random.Random] = None) -> int:
        """Move every pool file not on the ignore list to the array, as Unraid's mover (with CA Mover Tuning's
        ignore file) does for a cache:yes share: any file nobody has open, temp copies included, to any disk
        with room (its allocation method, not the disk the file came from); a file that exists already at
        that path on the chosen disk is skipped. Copy-then-delete across filesystems, like the real one."""
        from plexcache.media.openfiles import is_open

        rng = rng or self.rng
        ignored = self._ignored() if honour_ignore_list else set()
        moved = 0
        for p in _files(self.pool):
            if str(p) in ignored or p.name == ".soak-filler" or is_open(str(p)):
                continue
            rel = p.relative_to(self.pool)
            try:
                size = p.stat().st_size
                roomy = [d for d in self.disks if shutil.disk_usage(d).free > size + (1 << 20)]
                dest = rng.choice(roomy) / rel if roomy else None
                if dest is None or dest.exists():
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, dest)
                p.unlink()
                moved += 1
            except OSError:
                continue
        self.stats.moved_by_mover += moved
        return moved

    def _mover_during(self, delay: float, honour_ignore_list: bool, rng: random.Random) -> None:
        time.sleep(delay)
        self.mover_pass(honour_ignore_list, rng)

    # ---- damage from outside

    def _damage(self, rng: random.Random, n: int) -> None:
        """One kind of harm, done only where another complete copy of the same bytes exists."""
        kind = rng.choice(DAMAGE)
        try:
            done = getattr(self, f"_damage_{kind}")(rng)
        except OSError:  # e.g. the folder was made immutable for this run: no harm done this time
            done = None
        if done:
            self.stats.count(self.stats.damage, kind)
            if self.verbose:
                print(f"  damage run {n}: {kind} {done}", file=sys.stderr)

    def _intact(self) -> list[tuple[str, Optional[Path], list[Path]]]:
        """(rel, intact pool copy or None, intact backups) of every file with at least one intact copy."""
        out = []
        for rel, digest in self.manifest.items():
            pool = self.pool / rel
            backups = [d / (rel + BACKUP) for d in self.disks if (d / (rel + BACKUP)).is_file()]
            out.append((rel, pool if pool.is_file() and sha(pool) == digest else None,
                        [b for b in backups if sha(b) == digest]))
        return out

    def _harm(self, rng: random.Random, need_pool: bool, need_backup: bool) -> Optional[tuple[str, Path, Path]]:
        both = [(rel, pool, backups) for rel, pool, backups in self._intact()
                if (pool is not None or not need_pool) and (backups or not need_backup)]
        if not both:
            return None
        rel, pool, backups = rng.choice(both)
        self.damaged.add(rel)
        self.damaged.update(self._sidecars_of(rel))  # they leave the books with their video
        return rel, pool or self.pool / rel, (backups or [self.pool / rel])[0]

    def _sidecars_of(self, rel: str) -> list[str]:
        """The subtitles that travel with a video (same folder, named after it)."""
        stem = os.path.splitext(rel)[0] + "."
        return [r for r in self.manifest if r != rel and r.startswith(stem)]

    def _damage_truncate(self, rng: random.Random) -> Optional[str]:
        target = self._harm(rng, need_pool=True, need_backup=True)
        if target is None:
            return None
        with open(target[1], "r+b") as f:
            f.truncate(rng.randint(0, max(0, target[1].stat().st_size - 1)))
        return str(target[1])

    def _damage_flip(self, rng: random.Random) -> Optional[str]:
        target = self._harm(rng, need_pool=True, need_backup=True)
        if target is None:
            return None
        st = target[1].stat()
        with open(target[1], "r+b") as f:
            f.seek(rng.randrange(st.st_size))
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
        os.utime(target[1], ns=(st.st_atime_ns, st.st_mtime_ns))  # in place: size and mtime as they were
        return str(target[1])

    def _damage_del_backup(self, rng: random.Random) -> Optional[str]:
        target = self._harm(rng, need_pool=True, need_backup=True)
        if target is None:
            return None
        target[2].unlink()
        return str(target[2])

    def _damage_del_pool(self, rng: random.Random) -> Optional[str]:
        target = self._harm(rng, need_pool=True, need_backup=True)
        if target is None:
            return None
        target[1].unlink()
        return str(target[1])

    def _damage_second_backup(self, rng: random.Random) -> Optional[str]:
        target = self._harm(rng, need_pool=False, need_backup=True)
        if target is None:
            return None
        backup = target[2]
        others = [d for d in self.disks if not str(backup).startswith(str(d) + os.sep)]
        dest = rng.choice(others) / (target[0] + BACKUP)
        if dest.exists():
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(backup, dest)
        return str(dest)

    def _damage_temp_to_array(self, rng: random.Random) -> Optional[str]:
        temps = [p for p in _files(self.pool) if p.name.endswith(".plexcache-tmp")]
        if not temps:
            return None
        p = rng.choice(temps)
        dest = rng.choice(self.disks) / p.relative_to(self.pool)
        if dest.exists():
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(p), str(dest))
        return str(dest)

    def _damage_registry(self, rng: random.Random) -> Optional[str]:
        from plexcache.state import StateStore

        path = StateStore(self.settings).registry_path
        if not path.exists() or path.stat().st_size < 2:
            return None
        with open(path, "r+b") as f:
            f.truncate(rng.randrange(1, path.stat().st_size))
        self.books_damaged = True
        return str(path)

    # ---- the invariants

    def violate(self, n: Optional[int], text: str, kind: str = "violation") -> None:
        """Record a problem once (a state that persists is not counted again on every later run)."""
        problem = text.split(": ", 1)[-1]
        if problem in self._seen:
            return
        self._seen.add(problem)
        where = f"seed {self.seed} run {n}" if n is not None else f"seed {self.seed}"
        (self.stats.duplicates if kind == "duplicate" else self.stats.violations).append(f"{where}: {text}")
        print(f"{kind.upper()} {where}: {text}", file=sys.stderr)

    def check(self, label: str, n: Optional[int] = None, books: bool = True) -> None:
        from plexcache.errors import UsageError
        from plexcache.state import StateStore

        pool_files = {str(p.relative_to(self.pool)): p for p in _files(self.pool) if p.name != ".soak-filler"}
        disk_files = [{str(p.relative_to(d)): p for p in _files(d)} for d in self.disks]
        hashes = {p: sha(p) for m in [pool_files, *disk_files] for p in m.values()}
        anywhere = set(hashes.values())
        reported = _Reported(self)
        for rel, digest in self.manifest.items():
            if digest not in anywhere:
                self.violate(n, f"{label}: {rel}: LOST: its bytes exist nowhere any more")
            live = [m[rel] for m in [pool_files, *disk_files] if rel in m]
            backups = [m[rel + BACKUP] for m in disk_files if rel + BACKUP in m]
            # a file the soak damaged may hold the harm (undetectable without hashing, e.g. a flipped byte)
            # as long as its original bytes are still at one of its own places (live or backup)
            damaged = rel in self.damaged and digest in {hashes[p] for p in live + backups}
            if len(live) != 1 and not ((len(live) > 1 or rel in self.damaged) and reported(rel)):
                self.violate(n, f"{label}: {rel}: {len(live)} live copies ({[str(p) for p in live]})")
            for p in live:
                if hashes[p] != digest and not damaged:
                    self.violate(n, f"{label}: {rel}: live copy {p} has changed content")
            if len(backups) > 1 and not reported(rel):
                self.violate(n, f"{label}: {rel}: {len(backups)} backups", "duplicate")
            for b in backups:
                if hashes[b] != digest and not damaged:
                    self.violate(n, f"{label}: {rel}: backup {b} has changed content")
                if rel not in pool_files and not reported(rel):
                    # a backup only makes sense while the live copy is on the pool (issue #63 upstream)
                    self.violate(n, f"{label}: {rel}: backup {b} while the live copy is on the array",
                                 "duplicate")
        known = set(self.manifest) | {r + BACKUP for r in self.manifest}
        for m in [pool_files, *disk_files]:
            for rel, p in m.items():
                if rel not in known:
                    self.stats.leftovers.append(f"seed {self.seed} run {n}: {p}")
                    owner = _temp_owner(rel)
                    if owner is None or not reported(owner):
                        self.violate(n, f"{label}: {p}: a leftover file the audit does not report")
        if not books:
            return
        # registry <-> pool <-> ignore list
        try:
            registry = StateStore(self.settings).load_registry()
        except UsageError:
            return  # truncated by the soak and not rebuilt yet (the run refused, saying how): nothing to compare
        pool_root = self.settings.paths.pool_root
        registered = set()
        for entry in registry.entries.values():
            for user_path in (entry.path, *entry.sidecars):
                rel = user_path[len(self.settings.paths.user_root.rstrip("/")) + 1:]
                registered.add(rel)
                if rel not in pool_files and not ((rel in self.damaged or self.books_damaged) and reported(rel)):
                    self.violate(n, f"{label}: registry lists {rel} but it is not on the pool")
            if Path(entry.pool_path(pool_root)).name != Path(entry.rel).name:
                self.violate(n, f"{label}: registry entry {entry.path} has a strange pool path")
        released = self._released()
        for rel in pool_files:
            if rel in self.manifest and rel not in registered and rel not in released \
                    and not ((rel in self.damaged or self.books_damaged) and reported(rel)):
                self.violate(n, f"{label}: {rel} is on the pool but not in the registry (the mover may take it)")
        ignored = self._ignored()
        expected = {str(self.pool / rel) for rel in registered if rel in pool_files or rel not in self.damaged}
        if expected - ignored:
            self.violate(n, f"{label}: on the pool and registered but not on the ignore list: "
                            f"{sorted(expected - ignored)[:3]}")
        # a damaged file whose pool copy is gone stays listed while its backup waits to be renamed back
        gone = {str(self.pool / rel) for rel in self.damaged if rel not in pool_files}
        stale = {line for line in ignored - expected - gone if line}
        if stale:
            self.violate(n, f"{label}: ignore list names files that are not managed: {sorted(stale)[:3]}")
        self.stats.cached_seen_max = max(self.stats.cached_seen_max, len(registered))


class _Reported:
    """Whether `plexcache-r audit` reports a file (share/rel): it is run at most once per check, and only
    when an abnormal state needs it."""

    def __init__(self, soak: Soak) -> None:
        self.soak = soak
        self.paths: Optional[set[str]] = None

    def __call__(self, rel: str) -> bool:
        if self.paths is None:
            from plexcache.audit import audit

            doc = audit(self.soak.settings)
            self.paths = {p for f in doc["findings"] for p in (f["path"], *f["paths"])}
        user = f"{self.soak.settings.paths.user_root.rstrip('/')}/{rel}"
        if user in self.paths or any(p.endswith("/" + rel) or p.endswith("/" + rel + BACKUP) for p in self.paths):
            self.soak.stats.reported.append(f"seed {self.soak.seed}: {rel}")
            return True
        return False


def _child_main(argv: list[str], env: dict[str, str], out_path: Path, err_path: Path) -> None:
    """In a forked child: run `plexcache-r ARGV` with ENV and its output in the two files, then exit with
    the code a separate process would have."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as a new process has it, not the soak's handler
        os.environ.clear()
        os.environ.update(env)
        for fd, path in ((1, out_path), (2, err_path)):
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(handle, fd)
            os.close(handle)
        from plexcache.cli import main as cli_main

        try:
            cli_main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
    except BaseException:  # the child must reach os._exit whatever happened
        import traceback

        traceback.print_exc()
    finally:
        try:
            logging.shutdown()  # what the interpreter's exit would have flushed
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _wait_child(pid: int, deadline_s: float) -> Optional[int]:
    """Wait for a forked child: its exit code (-N for a signal, as subprocess says), or None once it was
    SIGKILLed after deadline_s."""
    deadline = time.monotonic() + deadline_s
    pause = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def _temp_owner(rel: str) -> Optional[str]:
    """share/dir/.NAME.plexcache-tmp -> share/dir/NAME (the file a temp copy belongs to)."""
    head, name = os.path.split(rel)
    if name.startswith(".") and name.endswith(".plexcache-tmp"):
        return os.path.join(head, name[1: -len(".plexcache-tmp")])
    return None


def _files(root: Path) -> list[Path]:
    out = []
    for d, _, names in os.walk(root):
        out.extend(Path(d) / n for n in names)
    return out


def _mount_tmpfs(path: Path, mb: int) -> bool:
    """Put the pool on a small tmpfs (root only) so a full pool really fails writes with ENOSPC."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    saved = path.with_name(path.name + ".seed")
    shutil.move(str(path), str(saved))
    path.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}M,mode=0777", "tmpfs", str(path)],
                        capture_output=True).returncode == 0
    for item in saved.iterdir():
        shutil.move(str(item), str(path / item.name))
    saved.rmdir()
    return ok


def soak(runs: int, seed: int, workdir: Path, use_tmpfs: bool = True, sessions: int = 0,
         verbose: bool = False, spawn: bool = False) -> Stats:
    """`runs` fault runs, in worlds of about `sessions` runs each (a fresh world per session, seed+k)."""
    per_world = sessions or max(20, runs)
    total = Stats()
    t0 = time.monotonic()
    done = 0
    k = 0
    while done < runs:
        wd = workdir / f"world-{seed}-{k}"
        wd.mkdir(parents=True, exist_ok=True)
        s = Soak(seed * 1000 + k, wd, use_tmpfs, verbose, spawn)
        try:
            for n in range(min(per_world, runs - done)):
                s.iteration(n)
                if verbose:
                    print(f"  world {k} run {n}: {s.stats.exit_codes}", file=sys.stderr)
            s.finish()
        finally:
            s.close()
        _merge(total, s.stats)
        done += s.stats.runs
        k += 1
        # a line per world, so that a soak stopped early still says how far it got
        print(f"soak: seed {seed}: {done} runs in {k} world(s), {len(total.violations)} violation(s), "
              f"{time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    total.seconds = time.monotonic() - t0
    return total


def _scratch() -> Optional[str]:
    """/dev/shm when it is a writable tmpfs (the disks' fsyncs cost nothing there), else the default."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _merge(total: Stats, s: Stats) -> None:
    for name in ("runs", "killed", "recover_failures", "moved_by_mover"):
        setattr(total, name, getattr(total, name) + getattr(s, name))
    total.reported += s.reported
    for name in ("faults", "exit_codes", "crashed_at", "damage"):
        for k, v in getattr(s, name).items():
            getattr(total, name)[k] = getattr(total, name).get(k, 0) + v
    total.violations += s.violations
    total.duplicates += s.duplicates
    total.leftovers += s.leftovers
    total.cached_seen_max = max(total.cached_seen_max, s.cached_seen_max)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-world", type=int, default=50, help="runs before a fresh world is drawn")
    ap.add_argument("--no-tmpfs", action="store_true", help="do not mount a tmpfs pool (no real ENOSPC)")
    ap.add_argument("--spawn", action="store_true",
                    help="start a new Python process for every CLI call (slower) instead of forking this one")
    ap.add_argument("--keep", help="work in this directory and keep it")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--no-rogue", action="store_true", help="leave out the mover that ignores the ignore list")
    args = ap.parse_args(argv)
    # `kill` (SIGTERM) unmounts the pools and removes the scratch folder, as the end of a soak does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.no_rogue:
        global FAULTS
        FAULTS = tuple(f for f in FAULTS if f != "rogue")
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="plexcache-soak-", dir=_scratch()))
    try:
        stats = soak(args.runs, args.seed, workdir, not args.no_tmpfs, args.per_world, args.verbose, args.spawn)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    doc = stats.to_json()
    print(json.dumps({k: v for k, v in doc.items() if k not in ("leftovers", "reported")}, indent=1))
    print(f"runs {stats.runs}, faults {sum(stats.faults.values())}, violations {len(stats.violations)}, "
          f"duplicate backups left {len(stats.duplicates)}, "
          f"leftover temp files {len(stats.leftovers)}, {stats.seconds:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    if stats.violations:
        print(f"FAILED: reproduce with --seed {args.seed} --runs {args.runs} --per-world {args.per_world}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
