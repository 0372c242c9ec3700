"""Durable state: the registry of managed files, a bounded activity history and the last run summary.

Each is one JSON file under paths.state_dir carrying "schema". They are loaded once at the start of a
command and saved at most once at its end, and only when their content changed (the flash drive wears).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from plexcache import runs
from plexcache.config import Settings
from plexcache.demand import Reason
from plexcache.fsutil import read_json, write_json_if_changed
from plexcache.layout import HISTORY_FILE, LAST_RUN_FILE, REGISTRY_FILE

SCHEMA = 1
HISTORY_LIMIT = 500


@dataclass
class Entry:
    """One managed file, keyed by its user-share path (/mnt/user/SHARE/REL)."""

    path: str
    share: str
    rel: str
    pool: str
    disk: Optional[str] = None  # array disk holding the backup / original (None: it never came from the array)
    size: int = 0
    mtime: float = 0.0
    cached_at: float = 0.0
    last_wanted_at: Optional[float] = None
    users: list[str] = field(default_factory=list)  # who wanted it when last known
    reasons: list[Reason] = field(default_factory=list)
    title: str = ""
    library: str = ""
    kind: str = ""
    pinned: bool = False
    sidecars: list[str] = field(default_factory=list)  # user-share paths of subtitles that travel with it
    backup: bool = False  # the array copy is kept as NAME.plexcached
    rating_key: str = ""
    # What each file (by user-share path) looked like when cached: {size, mtime_ns, blake2b}. Handed back
    # to the mover on move-back, so a backup is renamed back only over an unchanged pool copy.
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Pool folders that caching this file created: a move back removes them again once they are empty.
    made_dirs: list[str] = field(default_factory=list)
    # Pool copies (by user-share path) shown to be complete replacements of what was cached: Plex lists the
    # file with that size, or the user chose to keep it: {size, mtime_ns, by: plex|you}. Only over such a
    # copy does a move back retire the backup (docs/safety.md).
    confirmed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        # By hand rather than dataclasses.asdict: ten times faster, and a registry may hold 10,000 entries.
        data = {name: getattr(self, name) for name in _ENTRY_FIELDS}
        data["users"], data["sidecars"], data["made_dirs"] = list(self.users), list(self.sidecars), list(self.made_dirs)
        data["reasons"] = [r.to_json() for r in self.reasons]
        data["recorded"] = {k: dict(v) for k, v in self.recorded.items()}
        data["confirmed"] = {k: dict(v) for k, v in self.confirmed.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        # Copies, not the loaded document's own lists: the store compares against that document to skip
        # unchanged writes, so an entry changed in place must not change it too.
        # The same copies to_json makes, field by field (copy.deepcopy took a tenth of a no-op run's CPU).
        kwargs = {k: v for k, v in data.items() if k in _SCALAR_FIELDS}
        kwargs.update({k: list(data[k]) for k in _LIST_FIELDS if k in data})
        kwargs.update({k: {p: dict(f) for p, f in data[k].items()} for k in _MAP_FIELDS if k in data})
        kwargs["reasons"] = [Reason.from_json(r) for r in data.get("reasons", [])]
        return cls(**kwargs)

    def pool_path(self, pool_root: str) -> str:
        """Where the cached copy physically lives: POOL_ROOT/POOL/SHARE/REL."""
        return f"{pool_root.rstrip('/')}/{self.pool}/{self.share}/{self.rel}"

    def list_document(self) -> dict[str, Any]:
        """The shape `list --json` shows (docs/cli.md)."""
        return {"path": self.path, "share": self.share, "pool": self.pool, "disk": self.disk,
                "size": self.size, "cached_at": self.cached_at, "title": self.title,
                "library": self.library, "kind": self.kind, "users": list(self.users),
                "reasons": [r.to_json() for r in self.reasons], "pinned": self.pinned,
                "sidecars": list(self.sidecars)}


_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(Entry))
_LIST_FIELDS = ("users", "sidecars", "made_dirs")  # lists of strings
_MAP_FIELDS = ("recorded", "confirmed")  # path -> a flat record of numbers and strings
_SCALAR_FIELDS = frozenset(_ENTRY_FIELDS) - {*_LIST_FIELDS, *_MAP_FIELDS, "reasons"}


class Registry:
    """Every file plexcache-r has put on (or adopted onto) a pool, plus pins of files not cached yet."""

    def __init__(self, entries: Optional[dict[str, Entry]] = None, pins: Iterable[str] = ()) -> None:
        self.entries: dict[str, Entry] = dict(entries or {})
        self.pins: set[str] = set(pins)

    def __contains__(self, path: object) -> bool:
        return path in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, path: str) -> Optional[Entry]:
        return self.entries.get(path)

    def add(self, entry: Entry) -> None:
        if entry.path in self.pins:
            entry.pinned = True
        self.entries[entry.path] = entry

    def remove(self, path: str) -> Optional[Entry]:
        return self.entries.pop(path, None)

    def forget(self, user_path: str) -> bool:
        """Stop managing a path: its own entry, or its place in a video's sidecars. False if not managed."""
        if self.remove(user_path) is not None:
            return True
        for entry in self.entries.values():
            if user_path in entry.sidecars:
                entry.sidecars.remove(user_path)
                entry.recorded.pop(user_path, None)
                return True
        return False

    def by_rating_key(self) -> dict[str, list[Entry]]:
        out: dict[str, list[Entry]] = {}
        for entry in self.entries.values():
            if entry.rating_key:
                out.setdefault(entry.rating_key, []).append(entry)
        return out

    def managed_bytes(self, pool: Optional[str] = None) -> int:
        return sum(e.size for e in self.entries.values() if pool is None or e.pool == pool)

    def pools(self) -> list[str]:
        """The pool of each entry (one per entry: the most common is the one the Dashboard shows)."""
        return [e.pool for e in self.entries.values()]

    def pinned_count(self) -> int:
        return sum(1 for e in self.entries.values() if e.pinned)

    def copy(self) -> Registry:
        return Registry({p: dataclasses.replace(e, users=list(e.users), reasons=list(e.reasons),
                                                sidecars=list(e.sidecars), recorded=dict(e.recorded))
                         for p, e in self.entries.items()}, self.pins)

    def to_document(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "pins": sorted(self.pins),
                "files": {p: self.entries[p].to_json() for p in sorted(self.entries)}}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Registry:
        files = doc.get("files") or {}
        return cls({p: Entry.from_json(d) for p, d in files.items()}, doc.get("pins") or [])


class RegistryFigures:
    """What `status` shows of the registry, read from its document without building an Entry per file (a
    poll every few seconds over 10,000 files): counts, bytes and pools; an Entry only for the paths asked."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.files: dict[str, dict[str, Any]] = doc.get("files") or {}

    def __len__(self) -> int:
        return len(self.files)

    def get(self, path: str) -> Optional[Entry]:
        data = self.files.get(path)
        return Entry.from_json(data) if data is not None else None

    def managed_bytes(self, pool: Optional[str] = None) -> int:
        return sum(int(d.get("size") or 0) for d in self.files.values() if pool is None or d.get("pool") == pool)

    def pools(self) -> list[str]:
        return [str(d.get("pool", "")) for d in self.files.values()]

    def pinned_count(self) -> int:
        return sum(1 for d in self.files.values() if d.get("pinned"))


class ActivityHistory:
    """The last HISTORY_LIMIT events (cached, moved back, failed, adopted, dropped), newest last."""

    def __init__(self, events: Optional[list[dict[str, Any]]] = None, limit: int = HISTORY_LIMIT) -> None:
        self.limit = limit
        self.events: list[dict[str, Any]] = list(events or [])[-limit:]

    def add(self, kind: str, path: str, when: Optional[float] = None, **detail: Any) -> None:
        # time: the run's clock (all of one run's events share it); done_at: when this file was done
        event = {"time": time.time() if when is None else when, "kind": kind, "path": path, "done_at": time.time()}
        if runs.current():  # the run that did it: the Dashboard ties an event to its run and its log lines
            event["run"] = runs.current()
        event.update({k: v for k, v in detail.items() if v is not None})
        self.events.append(event)
        del self.events[:-self.limit]

    def to_document(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "events": self.events}


class StateStore:
    """Loads and saves the three state files under paths.state_dir."""

    def __init__(self, settings: Settings) -> None:
        self.dir = Path(settings.paths.state_dir)
        self._loaded: dict[Path, dict[str, Any]] = {}  # documents as read, to skip rewriting them unchanged

    def _read(self, path: Path) -> dict[str, Any]:
        doc = read_json(path, SCHEMA)
        if path.exists():
            self._loaded[path] = doc
        return doc

    def _write(self, path: Path, doc: dict[str, Any]) -> bool:
        # Comparing the documents is far cheaper than serialising 10,000 entries to compare bytes.
        if self._loaded.get(path) == doc:
            return False
        written = write_json_if_changed(path, doc)
        self._loaded[path] = doc
        return written

    @property
    def registry_path(self) -> Path:
        return self.dir / REGISTRY_FILE

    @property
    def history_path(self) -> Path:
        return self.dir / HISTORY_FILE

    @property
    def last_run_path(self) -> Path:
        return self.dir / LAST_RUN_FILE

    def load_registry(self) -> Registry:
        return Registry.from_document(self._read(self.registry_path))

    def registry_figures(self) -> RegistryFigures:
        """The registry as `status` reads it (read only: nothing here is saved back)."""
        return RegistryFigures(read_json(self.registry_path, SCHEMA))

    def save_registry(self, registry: Registry) -> bool:
        return self._write(self.registry_path, registry.to_document())

    def load_history(self) -> ActivityHistory:
        return ActivityHistory(self._read(self.history_path).get("events") or [])

    def save_history(self, history: ActivityHistory) -> bool:
        return self._write(self.history_path, history.to_document())

    def load_last_run(self) -> Optional[dict[str, Any]]:
        return self._read(self.last_run_path).get("last_run")

    def save_last_run(self, summary: dict[str, Any]) -> bool:
        return self._write(self.last_run_path, {"schema": SCHEMA, "last_run": summary})
