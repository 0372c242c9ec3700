"""Write-ahead journal of file operations: what the mover is about to do, and whether it has committed.

Layout: one directory, two small JSON files per operation, each created once and never rewritten:

    <dir>/<op_id>.intent.json   written (temp + fsync + rename + fsync dir) before any media file is touched
    <dir>/<op_id>.commit.json   written when every new copy is complete, verified and durable

An operation with an intent and no commit is rolled back by recovery; one with a commit is finished.
Both files are removed when the operation is done. Files are created, never replaced, so a crash leaves
either a complete record or a stray hidden temp file (ignored and cleaned), on any filesystem including the
FAT flash drive. An empty directory means nothing is in flight. Read it with `cat <dir>/*.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from plexcache.fsutil import fsync_dir

SCHEMA = 1
INTENT = ".intent.json"
COMMIT = ".commit.json"


@dataclass
class JournalEntry:
    """One operation found in the journal: its intent, and its commit record if it got that far."""

    op_id: str
    intent: dict[str, Any]
    commit: Optional[dict[str, Any]]
    error: Optional[str] = None  # set when a record cannot be read: it is kept for a human to look at

    @property
    def committed(self) -> bool:
        return self.commit is not None


class Journal:
    """The journal directory. Thread-safe: every operation owns its own files."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def begin(self, intent: dict[str, Any]) -> str:
        """Durably record an operation's intent; returns its new id. Call before touching any media file."""
        op_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)
        self._create(op_id + INTENT, {"schema": SCHEMA, "op_id": op_id, "at": time.time(), **intent})
        return op_id

    def commit(self, op_id: str, record: Optional[dict[str, Any]] = None) -> None:
        """Durably record that the operation passed its point of no return (roll forward from here)."""
        self._create(op_id + COMMIT, {"schema": SCHEMA, "op_id": op_id, "at": time.time(), **(record or {})})

    def finish(self, op_id: str) -> None:
        """Forget a finished (or fully rolled back) operation. The intent goes first: a commit record left
        alone by a crash here means 'finished' and is swept by pending(); the reverse order would make a
        finished operation look uncommitted and get rolled back."""
        for name in (op_id + INTENT, op_id + COMMIT):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.directory / name)
        with contextlib.suppress(FileNotFoundError):
            fsync_dir(self.directory)

    def pending(self) -> list[JournalEntry]:
        """Every operation that was begun and not finished, oldest first. Removes stray temp files."""
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        entries = []
        for name in names:
            path = self.directory / name
            if name.startswith(".") and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(path)  # a record whose creation was cut short: it never existed
                continue
            if name.endswith(COMMIT) and (name[: -len(COMMIT)] + INTENT) not in names:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # finish() was cut short between its two unlinks: the op is done
                continue
            if not name.endswith(INTENT):
                continue
            op_id = name[: -len(INTENT)]
            commit_path = self.directory / (op_id + COMMIT)
            try:
                intent = _read(path)
                commit = _read(commit_path) if commit_path.exists() else None
            except (OSError, ValueError) as exc:
                entries.append(JournalEntry(op_id, {}, None, f"journal record {path} is unreadable ({exc}); "
                                            "left in place: check the files it names by hand"))
                continue
            entries.append(JournalEntry(op_id, intent, commit))
        return entries

    def is_empty(self) -> bool:
        """True when no record at all is left (used by tests and `status`)."""
        try:
            return not [n for n in os.listdir(self.directory) if n.endswith(".json") or n.endswith(".tmp")]
        except FileNotFoundError:
            return True

    def _create(self, name: str, document: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")
        tmp = self.directory / f".{name}.{secrets.token_hex(3)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(tmp, self.directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_dir(self.directory)


def _read(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ValueError(f"journal record {path} has an unknown schema; was it written by a newer plexcache-r?")
    return document

