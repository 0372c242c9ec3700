"""The read-only queries behind `status` and `list` (and the Dashboard's activity): what the state files,
the pool and the schedule say, read without Plex."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Protocol

from plexcache import __version__, pace, pinstore
from plexcache.config import Settings, parse_size
from plexcache.errors import UsageError
from plexcache.layout import PROGRESS_NAME, journal_dir, live_state_path
from plexcache.media.journal import Journal
from plexcache.planner import eviction_order
from plexcache.runctl import RunLock, live_pid
from plexcache.schedule import mover_tuning_status, next_run_time
from plexcache.state import Entry, StateStore
from plexcache.unraid import Unraid
from plexcache.words import human_bytes


def _pool_size_override(settings: Settings) -> Optional[int]:
    """cache.pool_size (when the setting exists): a fixed pool size, for ZFS datasets whose total floats."""
    text = getattr(settings.cache, "pool_size", "") or ""
    size = parse_size(text) if text else None
    return size.bytes if size and size.bytes else None


def list_files(settings: Settings, sort: str = "path", text: Optional[str] = None, *,
               filter: Optional[str] = None) -> dict[str, Any]:
    """`list --json`: the managed files, sorted by size|cached_at|title|path, filtered by path/title/user."""
    registry = StateStore(settings).load_registry()
    pinned = pinstore.listing(settings)
    needle = (text or filter or "").lower()
    entries = [e for e in registry.entries.values()
               if not needle or needle in e.path.lower() or needle in e.title.lower()
               or any(needle in u.lower() for u in e.users)]
    keys: dict[str, Callable[[Entry], Any]] = {"size": lambda e: (-e.size, e.path),
                                              "cached_at": lambda e: (-e.cached_at, e.path),
                                              "title": lambda e: (e.title.lower(), e.path), "path": lambda e: e.path}
    if sort not in keys:
        raise UsageError(f"--sort {sort!r}: use one of size, cached_at, title, path")
    ranks = eviction_order(registry, settings)
    now = time.time()
    return {"files": [{**e.list_document(), **future(e, ranks.get(e.path), settings, now)}
                      for e in sorted(entries, key=keys[sort])], "pinned_titles": pinned}




WHEN = "%a %H:%M"   # "Tue 14:00": within the next days, as the Files tab shows it
EPISODE_CODE = re.compile(r" - (S\d+E\d+) - ")


def future(entry: Entry, rank: Optional[int], settings: Settings, now: float) -> dict[str, Any]:
    """When and why a managed file will leave the pool, in words, and its place in the queue a shortage of room
    moves back (`eviction_rank`, 1 = first to go; None: a shortage never moves it). Pure: the registry's last
    known reasons, the settings and `now`; what a run decides may differ once Plex says something new."""
    retention_end = entry.cached_at + settings.cache.retention_hours * 3600
    if entry.pinned or any(r.source == "pinned" for r in entry.reasons):  # a pinned title: whoever else wants it
        leaves = "stays while pinned"
    elif entry.reasons:
        leaves = _when_watched(entry)
        if retention_end > now:
            leaves += f", and not before {time.strftime(WHEN, time.localtime(retention_end))} (retention)"
    elif not settings.cache.move_back_watched:
        leaves = "stays: no one wants it, but moving watched files back is off"
    elif retention_end > now:
        leaves = f"retention ends {time.strftime(WHEN, time.localtime(retention_end))}"
    else:
        leaves = "at the next run: no one wants it and its retention is over"
    if entry.disk is None and not entry.backup and not entry.pinned:
        leaves += " (released to the mover: it never came from the array)"
    doc: dict[str, Any] = {"leaves": leaves, "leaves_at": None, "eviction_rank": rank, "if_space_short": ""}
    if not entry.pinned and not entry.reasons and settings.cache.move_back_watched:
        doc["leaves_at"] = max(retention_end, now)
    if rank is not None and any(r.source == "pinned" for r in entry.reasons):
        doc["if_space_short"] = "goes only if the pinned titles outgrow the pool"  # pins are admitted first
    elif rank is not None:
        doc["if_space_short"] = "first to go if space runs short" if rank == 1 else \
            f"number {rank} to go if space runs short"
    return doc


def _when_watched(entry: Entry) -> str:
    """A wanted file leaves once its users are done with it: "when alice finishes S02E04"."""
    match = EPISODE_CODE.search(entry.title)
    what = match.group(1) if match else (entry.title or os.path.basename(entry.path))
    users = sorted({r.user for r in entry.reasons})
    who = users[0] if len(users) == 1 else f"{', '.join(users[:-1])} and {users[-1]}"
    if all(r.source == "watchlist" for r in entry.reasons):
        return f"when {who} {'watches' if len(users) == 1 else 'watch'} {what} or it leaves the watchlist"
    return f"when {who} {'finishes' if len(users) == 1 else 'finish'} {what}"


def status(settings: Settings) -> dict[str, Any]:
    """`status --json`: running or idle, progress, last run, cache usage, counts, warnings."""
    store = StateStore(settings)
    registry = store.registry_figures()
    running = RunLock(settings.paths.volatile_dir).held_by() is not None
    progress = _read_progress(settings) if running else None
    warnings = [{"code": "mover_tuning", "message": m} for m in _mover_tuning_problems(settings)]
    if not running:
        warnings += _unfinished_warnings(Journal(journal_dir(settings)))
    last_run = store.load_last_run()
    return {"state": "running" if running else "idle", "progress": progress, "last_run": last_run,
            # files the last run could not cache: a .plexcached beside them differs (`audit` settles them)
            "stray_backups": int((last_run or {}).get("stray_backups") or 0),
            "cache": cache_usage(settings, registry),
            "counts": {"files": len(registry), "pinned": registry.pinned_count(), "bytes": registry.managed_bytes()},
            "next_run": _next_run(settings), "live": _live_status(settings),
            "mover_tuning": _mover_tuning(settings), "plugin_version": __version__,
            "activity": activity(store.load_history().events, registry), "warnings": warnings,
            "pace": pace.summary(settings, time.time()) if settings.demand.pace else [],
            # what bounds those figures, for a page that shows them (and says when pace is off)
            "pace_settings": {"on": settings.demand.pace, "next_episodes": settings.demand.next_episodes,
                              "pace_days": settings.demand.pace_days}}


def _unfinished_warnings(journal: Journal) -> list[dict[str, str]]:
    """What the journal holds unfinished, for the Dashboard: a move back past its commit names its file
    (it is live on the array and still on the pool, e.g. the pool copy could not be removed); otherwise one
    warning says operations wait. Read only (no run holds the lock while this is asked)."""
    if not journal.has_unfinished():
        return []
    out = []
    for intent in journal.committed_intents():
        if intent.get("kind") == "restore":
            op = intent.get("op")
            op = op if isinstance(op, dict) else {}
            what = op.get("key") or op.get("array_path") or intent.get("op_id")
            out.append({"code": "unfinished_move_back", "message": f"{what} is in two places: its move back "
                        "to the array is complete but the pool copy is not removed yet (permission denied?); "
                        "the next run finishes it (or `plexcache-r recover`)"})
    if not out:
        out.append({"code": "interrupted", "message": "interrupted operations wait in the journal; the next "
                                                      "run repairs them (or run `plexcache-r recover`)"})
    return out


ACTIVITY_LIMIT = 50
EVENT_WORDS = {"cached": "Cached", "moved_back": "Moved back to the array", "released": "Released to the mover",
               "adopted": "Took over", "dropped": "Stopped managing", "upgraded": "Upgraded",
               "changed": "Replaced on the pool", "retired": "Removed a stale backup", "recovered": "Repaired",
               "skipped": "Skipped", "failed": "Failed"}


class RegistryView(Protocol):
    """What the read-only answers need of the registry: the full Registry or status's RegistryFigures."""

    def __len__(self) -> int: ...
    def get(self, path: str) -> Optional[Entry]: ...
    def managed_bytes(self, pool: Optional[str] = None) -> int: ...
    def pools(self) -> list[str]: ...


def activity(events: list[dict[str, Any]], registry: Optional[RegistryView] = None,
             limit: int = ACTIVITY_LIMIT) -> list[dict[str, Any]]:
    """`status.activity`: the newest history events first, each with a sentence for the Dashboard, the time
    its file was done, and what the registry knows of it (title, users, each user's reasons once)."""
    out = []
    for event in reversed(events[-limit:]):
        path = str(event.get("path", ""))
        kind = str(event.get("kind", ""))
        entry = registry.get(path) if registry is not None else None
        title = entry.title if entry is not None and entry.title else ""
        what = EVENT_WORDS.get(kind, kind.replace("_", " ").capitalize())
        words = f"{what} {title or os.path.basename(path) or path}"
        if event.get("size"):
            words += f" ({human_bytes(event['size'])})"
        if event.get("detail"):
            words += f": {event['detail']}"
        # at: the run's clock (its start); done_at: when this file was done (absent in older histories)
        out.append({"at": event.get("time", 0), "done_at": event.get("done_at"), "kind": kind, "path": path,
                    "title": title, "users": list(entry.users) if entry is not None else [],
                    "reasons": _reasons_once(entry) if entry is not None and kind == "cached" else [],
                    "size": event.get("size"), "detail": event.get("detail", ""), "message": words,
                    "run": event.get("run")})
    return out


def _reasons_once(entry: Entry) -> list[dict[str, str]]:
    """Each user's reasons for a file, a reason a user has several times (two shows' next episodes) once."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for reason in entry.reasons:
        seen.setdefault((reason.user, reason.source), {"user": reason.user, "source": reason.source})
    return list(seen.values())


def _read_progress(settings: Settings) -> Optional[dict[str, Any]]:
    try:
        document = json.loads((Path(settings.paths.volatile_dir) / PROGRESS_NAME).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _mover_tuning(settings: Settings) -> dict[str, Any]:
    try:
        return mover_tuning_status(settings)
    except OSError as exc:
        return {"problems": [f"cannot read Mover Tuning's settings: {exc.strerror}"]}


def _mover_tuning_problems(settings: Settings) -> list[str]:
    return list(_mover_tuning(settings).get("problems", []))


def _live_status(settings: Settings) -> dict[str, Any]:
    """Live mode's real state: its watcher's lock says whether it runs and as which process; its state file
    (written by the watcher) since when and what it sees."""
    pid = live_pid(settings)
    doc: dict[str, Any] = {"enabled": settings.live.enabled, "running": pid is not None, "pid": pid or None,
                           "since": None}
    try:
        doc["state"] = json.loads(live_state_path(settings).read_text()) if doc["running"] else None
    except (OSError, ValueError):
        doc["state"] = None
    if doc["state"]:
        doc["since"] = doc["state"].get("since")
    return doc


def _next_run(settings: Settings) -> Optional[float]:
    try:
        return next_run_time(settings)
    except (OSError, ValueError):
        return None


def cache_usage(settings: Settings, registry: RegistryView) -> dict[str, Any]:
    unraid = Unraid.load(settings)
    pools = registry.pools() or [s.pool for s in unraid.shares.values() if s.cacheable]
    pool = max(set(pools), key=pools.count) if pools else "cache"
    doc: dict[str, Any] = {"pool": pool, "total_bytes": 0, "used_bytes": 0, "free_bytes": 0,
                           "managed_bytes": registry.managed_bytes(pool), "limit_bytes": None, "floor_bytes": 0}
    try:
        space = unraid.pool_space(pool, _pool_size_override(settings))
    except OSError:
        return doc
    limit, floor = parse_size(settings.cache.size_limit), parse_size(settings.cache.min_free)
    doc.update(total_bytes=space.total, used_bytes=space.used, free_bytes=space.free,
               limit_bytes=limit.resolve(space.total) if limit else None,
               floor_bytes=floor.resolve(space.total) if floor else 0)
    return doc
