"""Write-ahead journal of file operations: what the mover is about to do, whether it has committed, and
which finished operations the caller has not yet recorded (checkpointed) in its own state.

Layout: one directory, up to four small JSON files per operation, each created once and never rewritten:

    <dir>/<op_id>.intent.json   written (temp + fsync + rename + fsync dir) before any media file is touched
    <dir>/<op_id>.placed.json   written once every new copy is complete under its temp name, before any is
                                renamed to its real name: what each file at a real name will be (device,
                                inode, size, mtime), so recovery removes only what is provably its own
    <dir>/<op_id>.commit.json   written when every new copy is complete, verified and durable
    <dir>/<op_id>.done.json     written when the operation is finished (its outcome)

An operation with an intent and no done record is *unfinished*: recovery rolls it back (no commit) or
finishes it (commit). A *done* operation needs no repair; its records stay until the caller has saved what
the operation changed (the engine's registry, written once per run to spare the flash drive) and calls
`checkpoint()`. Until then `recover()` reports it again, exactly as if it had just finished it, so a run
killed between an operation and the registry save loses no bookkeeping.

Files are created, never replaced, so a crash leaves either a complete record or a stray hidden temp file
(ignored and cleaned), on any filesystem including the FAT flash drive. Read it with `cat <dir>/*.json`.
"""

from __future__ import annotations

import contextlib
import errno
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
PLACED = ".placed.json"
COMMIT = ".commit.json"
DONE = ".done.json"
_SUFFIXES = (INTENT, PLACED, COMMIT, DONE)


@dataclass
class JournalEntry:
    """One operation found in the journal: its intent, its commit and done records if it got that far."""

    op_id: str
    intent: dict[str, Any]
    commit: Optional[dict[str, Any]]
    error: Optional[str] = None  # set when a record cannot be read: it is kept for a human to look at
    done: Optional[dict[str, Any]] = None  # {"outcome", "detail"} once finished, until checkpoint()
    placed: Optional[dict[str, Any]] = None  # {"files": [{"path", "dev", "ino", "size", "mtime_ns"}]}

    @property
    def committed(self) -> bool:
        return self.commit is not None

    @property
    def finished(self) -> bool:
        return self.done is not None


class Journal:
    """The journal directory. Thread-safe: every operation owns its own files.

    Three views of it: `pending()` / `has_unfinished()` / `is_empty()` are about unfinished operations (what
    recovery must repair; what `audit` calls "interrupted"); `finished()` / `has_done()` about done
    operations waiting for `checkpoint()`; `entries()` is both.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    # writing -------------------------------------------------------------------------------------

    def begin(self, intent: dict[str, Any]) -> str:
        """Durably record an operation's intent; returns its new id. Call before touching any media file."""
        op_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)
        self._create(op_id + INTENT, {"schema": SCHEMA, "op_id": op_id, "at": time.time(), **intent})
        return op_id

    def place(self, op_id: str, files: list[dict[str, Any]]) -> None:
        """Durably record what the operation is about to put at real names (identity of each new file), so
        recovery can tell its own files from ones another program wrote at the same names since."""
        self._create(op_id + PLACED, {"schema": SCHEMA, "op_id": op_id, "at": time.time(), "files": files})

    def commit(self, op_id: str, record: Optional[dict[str, Any]] = None) -> None:
        """Durably record that the operation passed its point of no return (roll forward from here)."""
        self._create(op_id + COMMIT, {"schema": SCHEMA, "op_id": op_id, "at": time.time(), **(record or {})})

    def mark_done(self, op_id: str, outcome: str, detail: str = "") -> None:
        """Durably record that the operation is finished with `outcome` (cached, restored, mixed). Its
        records stay, reported by recover(), until checkpoint()."""
        self._create(op_id + DONE, {"schema": SCHEMA, "op_id": op_id, "at": time.time(), "outcome": outcome,
                                    "detail": detail})

    def finish(self, op_id: str) -> None:
        """Forget an operation at once (a roll back: it changed nothing the caller records). The intent
        goes first: a commit or done record left alone by a crash here is swept by the next read; the
        reverse order would make a finished operation look uncommitted and get rolled back."""
        self._remove(op_id)
        with contextlib.suppress(FileNotFoundError):
            fsync_dir(self.directory)

    def checkpoint(self) -> int:
        """Remove every done operation's records; returns how many. Call it right after the caller's own
        state (registry) that records those operations is durably saved. Unfinished operations stay."""
        done = [name[: -len(DONE)] for name in self._names() if name.endswith(DONE)]
        for op_id in done:
            self._remove(op_id)
        if done:
            with contextlib.suppress(FileNotFoundError):
                fsync_dir(self.directory)
        return len(done)

    # reading -------------------------------------------------------------------------------------

    def entries(self) -> list[JournalEntry]:
        """Every operation in the journal, done or not, in the order they began. Removes stray temp files
        and records orphaned by a cut-short finish()/checkpoint()."""
        names = self._names()
        present = set(names)
        entries = []
        for name in names:
            path = self.directory / name
            if name.startswith(".") and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(path)  # a record whose creation was cut short: it never existed
                continue
            tail = next((s for s in (PLACED, COMMIT, DONE) if name.endswith(s)), None)
            if tail is not None and (name[: -len(tail)] + INTENT) not in present:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # finish()/checkpoint() was cut short after the intent went: forgotten
                continue
            if name.endswith(INTENT):
                entries.append(self._entry(name[: -len(INTENT)], present))
        # begin order (the intent's clock time; ids of one second are random otherwise): a caller that
        # re-applies done operations must apply two operations on one file in the order they happened
        return sorted(entries, key=lambda e: (_at(e.intent), e.op_id))

    def pending(self) -> list[JournalEntry]:
        """Every operation that was begun and is not finished (what recovery repairs), oldest first.
        Done operations waiting for checkpoint() are not pending."""
        return [e for e in self.entries() if not e.finished]

    def finished(self) -> list[JournalEntry]:
        """Every done operation not yet checkpointed, oldest first."""
        return [e for e in self.entries() if e.finished]

    def has_unfinished(self) -> bool:
        """True when an operation was begun and not finished (cheap: names only, nothing is read)."""
        names = set(self._names())
        return any(n.endswith(INTENT) and n[: -len(INTENT)] + DONE not in names for n in names)

    def committed_intents(self) -> list[dict[str, Any]]:
        """The intents of unfinished operations past their commit (recovery finishes them), read only:
        unlike entries() nothing is swept, so a reader without the run lock (status) never races a run."""
        names = set(self._names())
        out = []
        for name in sorted(names):
            op_id = name[: -len(INTENT)]
            if name.endswith(INTENT) and op_id + COMMIT in names and op_id + DONE not in names:
                with contextlib.suppress(OSError, ValueError):
                    out.append(_read(self.directory / name))
        return out

    def has_done(self) -> bool:
        """True when done operations wait for checkpoint()."""
        return any(n.endswith(DONE) for n in self._names())

    def is_empty(self) -> bool:
        """True when nothing is in flight: no unfinished operation (= not has_unfinished()). Done records
        waiting for checkpoint() need no repair and do not count; has_done() tells about them."""
        return not self.has_unfinished()

    # internals -----------------------------------------------------------------------------------

    def _names(self) -> list[str]:
        try:
            return sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []

    def _entry(self, op_id: str, present: set[str]) -> JournalEntry:
        path = self.directory / (op_id + INTENT)
        try:
            intent = _read(path)
            commit = _read(self.directory / (op_id + COMMIT)) if op_id + COMMIT in present else None
            done = _read(self.directory / (op_id + DONE)) if op_id + DONE in present else None
            placed = _read(self.directory / (op_id + PLACED)) if op_id + PLACED in present else None
        except FileNotFoundError:
            # checkpoint() in another process removed it meanwhile (only with the run lock broken)
            return JournalEntry(op_id, {}, None, f"journal record {path} vanished while being read")
        except (OSError, ValueError) as exc:
            return JournalEntry(op_id, {}, None, f"journal record {path} is unreadable ({exc}); left in place: "
                                "check the files it names by hand")
        return JournalEntry(op_id, intent, commit, done=done, placed=placed)

    def _remove(self, op_id: str) -> None:
        for suffix in _SUFFIXES:  # intent first (see finish())
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.directory / (op_id + suffix))

    def _create(self, name: str, document: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if (self.directory / name).exists():
            # write-once: never replace a record (one op's records are written by the one thread running it)
            raise FileExistsError(errno.EEXIST, "journal record exists already", str(self.directory / name))
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


def _at(intent: dict[str, Any]) -> float:
    at = intent.get("at")
    return float(at) if isinstance(at, (int, float)) else 0.0


def _read(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ValueError(f"journal record {path} has an unknown schema; was it written by a newer plexcache-r?")
    return document
