"""A stand-in for `plexcache-r` that answers with the JSON documents of docs/cli.md.

The page tests drive the web UI through it while the engine commands are still being built. Settings
commands (`config show|set|defaults`) are the real CLI, called in-process, so validation messages and
secret masking are the product's own. Everything else keeps a small world in PATHS.state_dir/fake.json:
managed files, the last run, pins. `run` copies nothing: it walks a plan slowly, writing progress.json,
honouring the stop flag and the lock, and appends to the log like the real one.
Environment: PCR_FAKE_FILES=N seeds N managed files (default 12); PCR_FAKE_STEP=seconds per file
(STATE_DIR/fake-step, when present, overrides it for the next runs); PCR_FAKE_STATUS_WAIT=seconds makes
`status` slow; STATE_DIR/fake-hold, while present, holds a run at its first file (a test that must see a run in
flight removes it once it has); PCR_FAKE_CALLS=FILE appends each command's first two words to FILE;
PCR_FAKE_HOSTILE=1 adds files whose names are markup (HOSTILE below), which also appear in the log, an audit
finding and a warning.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from plexcache import config as cfg
from plexcache.cli import main as real_main

GB = 1024 ** 3
XSS = "<img src=x onerror=alert(1)>"
HOSTILE = [  # title, path: what a page must show as text
    (f"{XSS}.mkv", f"/mnt/user/movies/{XSS}/{XSS}.mkv"),
    ('Tom & Jerry\'s "Best" <Bits>', '/mnt/user/tv/Tom & Jerry\'s "Best"/S01E01 & <b>more</b>.mkv'),
]
USERS = ["alice", "bob", "carol", "dave"]
SOURCES = ["on_deck", "next_episode", "watchlist", "playing"]


def emit(doc: dict[str, Any], code: int = 0) -> NoReturn:
    print(json.dumps({"schema": 1, "ok": code in (0, 1), **doc}, indent=1))
    sys.exit(code)


def fail(message: str, code: int) -> NoReturn:
    print(f"plexcache-r: {message}", file=sys.stderr)
    print(json.dumps({"schema": 1, "ok": False, "error": message, "exit_code": code}))
    sys.exit(code)


class World:
    def __init__(self, settings: cfg.Settings) -> None:
        self.settings = settings
        self.state_dir = Path(settings.paths.state_dir)
        self.vol = Path(settings.paths.volatile_dir)
        self.log_file = Path(settings.paths.log_dir) / "plexcache-r.log"
        self.file = self.state_dir / "fake.json"
        for d in (self.state_dir, self.vol, self.log_file.parent):
            d.mkdir(parents=True, exist_ok=True)
        self.data = json.loads(self.file.read_text()) if self.file.exists() else self.seed()

    def seed(self) -> dict[str, Any]:
        count = int(os.environ.get("PCR_FAKE_FILES", "12"))
        rng = random.Random(7)
        now = time.time()
        files = [self.make_file(i, rng, now) for i in range(count)]
        data = {"files": files, "last_run": None, "pool_total": 1000 * GB, "pool_other": 310 * GB}
        self.log("INFO", f"sandbox created with {count} managed files")
        if os.environ.get("PCR_FAKE_HOSTILE") == "1":
            for i, (title, path) in enumerate(HOSTILE):
                f = self.make_file(count + i, rng, now - 10 * i)
                f.update(title=title, path=path, library=f"Films {XSS}", users=[f"<i>{USERS[i]}</i>"], cached_at=now)
                files.append(f)
                self.log("WARNING", f"cached {path}")
        self.file.write_text(json.dumps(data))
        return data

    @staticmethod
    def make_file(i: int, rng: random.Random, now: float) -> dict[str, Any]:
        movie = i % 3 == 0
        user = USERS[i % len(USERS)]
        if movie:
            title, share, lib = f"Movie {i:05d} ({2000 + i % 24})", "movies", "Movies"
            path = f"/mnt/user/movies/{title}/{title}.mkv"
        else:
            show, ep = f"Show {i // 10:04d}", i % 10 + 1
            title, share, lib = f"{show} - S01E{ep:02d} - Episode {ep}", "tv", "TV Shows"
            path = f"/mnt/user/tv/{show}/Season 01/{show} - S01E{ep:02d}.mkv"
        source = SOURCES[i % len(SOURCES)]
        users = [user] + ([USERS[(i + 1) % 4]] if i % 7 == 0 else [])
        return {"path": path, "share": share, "pool": "cache", "disk": f"disk{i % 4 + 1}",
                "size": int(rng.uniform(0.4, 12 if movie else 3) * GB), "cached_at": now - rng.uniform(60, 30 * 86400),
                "title": title, "library": lib, "kind": "movie" if movie else "episode", "users": users,
                "reasons": [{"user": u, "source": source, "last_active": now - 3600, "detail": None, "rank": 0}
                            for u in users], "pinned": False, "sidecars": []}

    def save(self) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.file)

    def log(self, level: str, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S") + ",000"
        with self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {level:<7} plexcache.fake: {text}\n")

    def running_pid(self) -> int:
        try:
            pid = int((self.vol / "lock").read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return 0

    def status(self) -> dict[str, Any]:
        files = self.data["files"]
        managed = sum(f["size"] for f in files)
        total, other = self.data["pool_total"], self.data["pool_other"]
        running = self.running_pid()
        progress = None
        if running and (self.vol / "progress.json").exists():
            progress = json.loads((self.vol / "progress.json").read_text())
        s = self.settings
        warnings = [{"code": "mover_tuning_missing",
                     "message": "CA Mover Tuning is not installed: the mover will move cached files back "
                                "to the array."}]
        if os.environ.get("PCR_FAKE_HOSTILE") == "1":
            warnings.append({"code": f"x{XSS}", "message": f"cannot read {HOSTILE[1][1]} {XSS}"})
        pace = []
        if os.environ.get("PCR_FAKE_HOSTILE") == "1":
            pace = [{"user": "<i>bob</i>", "show": f"tv/{XSS}", "episodes_per_day": 2.5, "ahead": 8, "due": 3}]
        if not s.plex.path_mappings:
            warnings.append({"code": "unmapped_paths", "message": "No path mappings: Plex paths under /data cannot be "
                             "translated to shares. Add them in Settings."})
        return {"state": "running" if running else "idle", "progress": progress, "last_run": self.data["last_run"],
                "stray_backups": int((self.data["last_run"] or {}).get("stray_backups") or 0),
                "cache": {"pool": "cache", "total_bytes": total, "used_bytes": other + managed,
                          "free_bytes": total - other - managed, "managed_bytes": managed,
                          "limit_bytes": int(total * 0.6), "floor_bytes": int(total * 0.1)},
                "counts": {"files": len(files), "pinned": sum(1 for f in files if f["pinned"]), "bytes": managed},
                "next_run": time.time() + 3 * 3600 if s.schedule.mode != "off" else None,
                "live": self.live(), "warnings": warnings, "pace": pace if s.demand.pace else [],
                "pace_settings": {"on": s.demand.pace, "next_episodes": s.demand.next_episodes,
                                  "pace_days": s.demand.pace_days}}

    def live(self) -> dict:
        """As the product reads it: the watcher's state file in the volatile folder while it runs."""
        state_file = self.vol / "live.json"
        if not state_file.exists():
            return {"enabled": self.settings.live.enabled, "running": False}
        return {"enabled": True, "running": True, "state": json.loads(state_file.read_text())}


def cmd_run(w: World, dry: bool) -> NoReturn:
    if w.running_pid():
        fail(f"another run holds the lock (pid {w.running_pid()}); wait for it or run `plexcache-r stop`", 4)
    (w.vol / "stop").unlink(missing_ok=True)
    (w.vol / "lock").write_text(str(os.getpid()))
    # the real run's lock: an exclusive flock on run.lock for as long as it runs (closed on exit)
    run_lock = os.open(w.vol / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(run_lock, fcntl.LOCK_EX)
    slow = w.state_dir / "fake-step"   # a test that must catch a run in flight makes it slower
    step = float(slow.read_text() if slow.exists() else os.environ.get("PCR_FAKE_STEP", "0.5"))
    rng, now = random.Random(), time.time()
    base = len(w.data["files"]) + 1000
    plan = [World.make_file(base + i, rng, now) for i in range(6)]
    total = sum(f["size"] for f in plan)
    done_bytes, cached, code = 0, [], 0
    w.log("INFO", f"run started{' (dry run)' if dry else ''}: {len(plan)} files to cache")
    # like the real run, whose warnings reach stderr before its result reaches stdout
    print("plexcache-r: CA Mover Tuning is not installed: the mover will move cached files back", file=sys.stderr)
    try:
        for i, f in enumerate(plan):
            if (w.vol / "stop").exists():
                code = 5
                w.log("WARNING", "stop requested: ending after the current file")
                break
            prog = {"schema": 1, "pid": os.getpid(), "started_at": now, "updated_at": time.time(), "action": "run",
                    "phase": "copying", "files_done": i, "files_total": len(plan), "bytes_done": done_bytes,
                    "bytes_total": total, "current_file": f["path"], "rate_bps": 180 * 1024 ** 2,
                    "eta_seconds": (len(plan) - i) * step}
            (w.vol / "progress.json").write_text(json.dumps(prog))
            while i == 0 and (w.state_dir / "fake-hold").exists() and not (w.vol / "stop").exists():
                time.sleep(0.05)
            time.sleep(step)
            done_bytes += f["size"]
            f["cached_at"] = time.time()
            cached.append(f)
            w.log("INFO", f"cached {f['path']}")
        if not dry:
            w.data["files"].extend(cached)
        summary = {"started_at": now, "finished_at": time.time(), "exit_code": code, "dry_run": dry,
                   "cached": len(cached), "moved_back": 0, "failed": 0, "bytes_cached": sum(f["size"] for f in cached),
                   "bytes_moved_back": 0, "skipped": 0, "plex_requests": 12, "unknown": [], "warnings": [],
                   "stray_backups": 1,  # one wanted file has a backup beside it that differs: not cached
                   "message": "stopped on request" if code == 5 else "done"}
        w.data["last_run"] = summary
        w.save()
        w.log("INFO", f"run finished: {len(cached)} cached")
    finally:
        for name in ("lock", "progress.json", "stop"):
            (w.vol / name).unlink(missing_ok=True)
    emit({**summary, "actions": []}, code)


def cmd_paths(w: World, args: list[str]) -> tuple[list[str], bool]:
    """PATH arguments and, like the real CLI, --paths-from FILE|- (lines, or NUL-separated with --null)."""
    off = "--off" in args
    paths = [a for a in args if a not in ("--off", "--", "--null")]
    if "--paths-from" in paths:
        source = paths.pop(paths.index("--paths-from") + 1)
        paths.remove("--paths-from")
        data = sys.stdin.read() if source == "-" else Path(source).read_text()
        paths += [p for p in (data.split("\0") if "--null" in args else data.splitlines()) if p]
    known = {f["path"] for f in w.data["files"]}
    for p in paths:
        if p not in known:
            fail(f"not a managed file: {p} (see `plexcache-r list`)", 2)
    return paths, off


def main() -> None:
    argv = sys.argv[1:]
    config_path, rest = None, []
    i = 0
    while i < len(argv):
        if argv[i] == "--config":
            config_path = argv[i + 1]
            i += 2
            continue
        if argv[i] != "--json":
            rest.append(argv[i])
        i += 1
    calls = os.environ.get("PCR_FAKE_CALLS")   # a test counting what the pages start
    if calls:
        with open(calls, "a", encoding="utf-8") as fh:
            fh.write(" ".join(rest[:2]) + "\n")
    if rest[:1] == ["config"]:
        real_main(argv)
        return
    try:
        settings = cfg.load(cfg.config_path(config_path))
    except cfg.SettingsError as exc:
        fail(str(exc), 2)
    w = World(settings)
    cmd, args = (rest[0] if rest else ""), rest[1:]
    if cmd == "status":
        time.sleep(float(os.environ.get("PCR_FAKE_STATUS_WAIT", "0")))   # a CLI call still running
        emit(w.status())
    if cmd == "list":
        emit({"files": sorted(w.data["files"], key=lambda f: f["path"])})
    if cmd == "run":
        cmd_run(w, "--dry-run" in args)
    if cmd == "stop":
        running = bool(w.running_pid())
        if running:
            (w.vol / "stop").write_text("1")
        emit({"running": running})
    if cmd == "evict":
        paths, _ = cmd_paths(w, args)
        gone = set(paths)
        w.data["files"] = [f for f in w.data["files"] if f["path"] not in gone]
        w.save()
        for p in paths:
            w.log("INFO", f"moved back {p}")
        emit({"moved_back": len(paths), "failed": 0, "message": f"moved back {len(paths)} file(s)"})
    if cmd == "pin":
        paths, off = cmd_paths(w, args)
        chosen = set(paths)
        changed = [f["path"] for f in w.data["files"] if f["path"] in chosen and f["pinned"] == off]
        for f in w.data["files"]:
            if f["path"] in chosen:
                f["pinned"] = not off
        w.save()
        emit({"changed": changed})
    if cmd == "setup":
        emit(setup_document(w))
    if cmd == "plan":
        emit(plan_document(w))
    if cmd == "plex":
        plex(w, args)
    if cmd == "audit":
        emit(audit_document())
    if cmd == "schedule":
        emit({"message": "Schedule applied."})
    fail(f"the stand-in does not know {cmd!r}", 2)


def setup_document(w: World) -> dict[str, Any]:
    """A server set up long ago: the real checklist's steps, every one done (the real judgement is tested
    against the real CLI)."""
    from plexcache.readiness import SetupFacts, checklist

    doc = checklist(w.settings, SetupFacts(ran_before=True, mover_tuning={"problems": []}))
    for step in doc["steps"]:
        step["state"] = "done"
    doc.update(ready=True, missing=[], complete=True, plex_checked=True,
               plex={"ok": True, "server": {"name": "tower", "version": "1.41.0"}, "owner": "admin", "libraries": 3})
    return doc


def plan_document(w: World) -> dict[str, Any]:
    """Six files to cache, one left out, and the space they take (the shape of `plan --json`)."""
    rng = random.Random(7)
    files = [World.make_file(len(w.data["files"]) + 2000 + i, rng, time.time()) for i in range(6)]
    actions = [{"action": "cache", "path": f["path"], "size": f["size"], "title": f["title"], "disk": f["disk"],
                "users": f["users"], "reasons": f["reasons"]} for f in files]
    actions.append({"action": "skip", "path": "/mnt/user/tv/Big/Big - S01E01.mkv", "size": 90 * 10**9,
                    "title": "Big - S01E01", "why": "does not fit: the pool would fall below its free-space floor"})
    total = sum(f["size"] for f in files)
    free = w.data["pool_total"] - w.data["pool_other"] - sum(f["size"] for f in w.data["files"])
    return {"dry_run": True, "actions": actions, "unknown": [], "unmapped": [], "filtered": [], "exit_code": 0,
            "summary": {"cache": 6, "move_back": 0, "keep": 0, "skip": 1, "bytes_to_cache": total,
                        "bytes_to_move_back": 0},
            "space": {"pool": "cache", "total_bytes": w.data["pool_total"], "free_before": free,
                      "free_after": free - total, "managed_before": 0, "managed_after": total,
                      "floor_bytes": 0, "limit_bytes": None}}


def audit_document() -> dict[str, Any]:
    """No findings, or with PCR_FAKE_HOSTILE=1 one per hostile file (and a history entry naming it)."""
    if os.environ.get("PCR_FAKE_HOSTILE") != "1":
        return {"findings": [], "summary": {}, "fixes": [], "history": [], "message": ""}
    findings = [{"kind": "orphaned", "path": f"{path}.plexcached", "fix": "restore",
                 "message": f"backup without its cached copy: {title}"} for title, path in HOSTILE]
    history = [{"at": time.time() - 60, "action": "audit", "fix": "protect", "result": "ok",
                "message": f"protected {HOSTILE[0][1]}"}]
    return {"findings": findings, "summary": {"orphaned": len(findings)}, "fixes": [], "history": history,
            "message": ""}


def plex(w: World, args: list[str]) -> NoReturn:
    sub = args[0] if args else ""
    if sub == "test":
        if not w.settings.plex.token:
            fail("no Plex token: sign in on the Settings page or paste a token", 3)
        emit({"server": {"name": "Tower Plex", "version": "1.41.3", "machine_identifier": "sim"},
              "owner": "alice", "libraries": 3})
    if sub == "libraries":
        emit({"libraries": [{"id": "1", "title": "Movies", "type": "movie", "locations": ["/data/movies"]},
                            {"id": "2", "title": "TV Shows", "type": "show", "locations": ["/data/tv"]},
                            {"id": "3", "title": "Music", "type": "artist", "locations": ["/data/music"]}]})
    if sub == "users":
        emit({"users": [{"name": n, "kind": k, "id": str(i)} for i, (n, k) in
                        enumerate([("alice", "owner"), ("bob", "home"), ("carol", "managed"), ("dave", "friend")])]})
    if sub == "login":
        pending = w.vol / "pin.json"
        if "--start" in args:
            pending.write_text(json.dumps({"started": time.time()}))
            emit({"code": "K4T9", "link": "https://plex.tv/link", "expires_at": time.time() + 600})
        if "--poll" in args:
            if not pending.exists():
                fail("no sign-in is waiting; start one with `plexcache-r plex login --start`", 2)
            wait = float(os.environ.get("PCR_FAKE_LOGIN_WAIT", "2"))
            if time.time() - json.loads(pending.read_text())["started"] < wait:
                emit({"signed_in": False})
            path = cfg.config_path(None if "--config" not in sys.argv else sys.argv[sys.argv.index("--config") + 1])
            data = cfg.merge(cfg.to_mapping(cfg.load(path)), {"plex": {"token": "fake-token-signed-in"}})
            cfg.save(cfg.from_mapping(data), path)
            pending.unlink()
            emit({"signed_in": True})
        fail("the stand-in only knows plex login --start and --poll", 2)
    fail(f"unknown plex command {sub!r}", 2)


if __name__ == "__main__":
    main()
