"""The persistent maintenance history: every audit fix and import, what it touched, when, and how it ended.

One JSON file under paths.state_dir (`maintenance.json`, carrying "schema"), bounded to the newest
HISTORY_LIMIT records and written once per maintenance command, only when it changed (the flash drive
wears). `audit --json` shows it under "history".
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from plexcache.config import Settings
from plexcache.errors import UsageError
from plexcache.fsutil import read_json, write_json_if_changed

SCHEMA = 1
FILE_NAME = "maintenance.json"
HISTORY_LIMIT = 200
PATHS_KEPT = 20  # a record names at most this many paths; the count says how many there were


def history_path(settings: Settings) -> Path:
    return Path(settings.paths.state_dir) / FILE_NAME


class MaintenanceHistory:
    """Newest last. Each record: {time, action, fix, result, message, paths, count}."""

    def __init__(self, records: Optional[list[dict[str, Any]]] = None, limit: int = HISTORY_LIMIT) -> None:
        self.limit = limit
        self.records: list[dict[str, Any]] = list(records or [])[-limit:]

    @classmethod
    def load(cls, settings: Settings) -> MaintenanceHistory:
        return cls(read_json(history_path(settings), SCHEMA).get("records") or [])

    def add(self, action: str, result: str, message: str, *, fix: str = "",
            paths: Optional[list[str]] = None, when: Optional[float] = None) -> dict[str, Any]:
        """Record one maintenance step. `result` is ok | failed | skipped | stopped | dry-run."""
        paths = list(paths or [])
        record = {"time": time.time() if when is None else when, "action": action, "fix": fix,
                  "result": result, "message": message, "paths": paths[:PATHS_KEPT], "count": len(paths)}
        self.records.append(record)
        del self.records[:-self.limit]
        return record

    def to_document(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "records": self.records}

    def save(self, settings: Settings) -> bool:
        return write_json_if_changed(history_path(settings), self.to_document())


def load_records(settings: Settings) -> list[dict[str, Any]]:
    """The history for display; an unreadable file shows as empty rather than failing the audit."""
    try:
        return MaintenanceHistory.load(settings).records
    except (OSError, ValueError, UsageError):  # a damaged history must never block a health check
        return []
