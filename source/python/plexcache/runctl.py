"""Run control in the volatile directory: one run at a time (lock), stop requests, and progress.json."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Optional

from plexcache.errors import LockHeld
from plexcache.fsutil import atomic_write_bytes, remove_own_file
from plexcache.layout import LIVE_LOCK_NAME, LOCK_NAME, PROGRESS_NAME, RECORD_LOCK_NAME, STOP_NAME

PROGRESS_SCHEMA = 1
PHASES = ("recovering", "discovering", "planning", "copying", "finishing")


class ProcessLock:
    """An exclusive flock on a file in the volatile directory, holding the holder's pid for messages and status.

    The lock file is never deleted: deleting it would let a second holder lock a new file while the first
    still holds the old one. The kernel drops the lock when the process dies, even on kill -9.
    """

    holder = "another process"
    advice = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming the pid of the run that has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = self.holder_pid()
            who = f"pid {pid}" if pid else "another process"
            raise LockHeld(f"{self.holder} ({who}) holds {self.path}; {self.advice}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def holder_pid(self) -> Optional[int]:
        """The pid written by the current holder (None if unknown)."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def held_by(self) -> Optional[int]:
        """Pid of the run holding the lock (0 if held but the pid is unknown), or None when nobody holds it.

        For `status`: does not take the lock for longer than a probe.
        """
        if self._fd is not None:
            return os.getpid()
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self.holder_pid() or 0
        finally:
            os.close(fd)
        return None

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.release()


class RunLock(ProcessLock):
    """One run at a time: run, evict, recover, import and audit fixes all take it."""

    holder = "another plexcache-r run"
    advice = "wait for it to finish or ask it to end with `plexcache-r stop`"

    def __init__(self, volatile_dir: str | os.PathLike[str]) -> None:
        super().__init__(Path(volatile_dir) / LOCK_NAME)


class LiveLock(ProcessLock):
    """One live watcher at a time; `status` asks it whether live mode is running."""

    holder = "live mode"
    advice = "it is already running (scripts/live status)"

    def __init__(self, volatile_dir: str | os.PathLike[str]) -> None:
        super().__init__(Path(volatile_dir) / LIVE_LOCK_NAME)


class RecordLock:
    """A short exclusive flock, waited for, around a read-change-write of a record two processes may change
    (the run history: a run ends while live mode counts a play)."""

    def __init__(self, volatile_dir: str | os.PathLike[str]) -> None:
        self.path = Path(volatile_dir) / RECORD_LOCK_NAME
        self._fd: Optional[int] = None

    def __enter__(self) -> RecordLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class StopFlag:
    """`<volatile_dir>/stop`: `plexcache-r stop` creates it; the run checks it between files.

    The run clears it right after taking the lock, so a stop asked while idle does not end the next run.
    """

    def __init__(self, volatile_dir: str | os.PathLike[str]) -> None:
        self.path = Path(volatile_dir) / STOP_NAME

    def request(self) -> None:
        atomic_write_bytes(self.path, f"{os.getpid()} {time.time():.0f}\n".encode())

    def requested(self) -> bool:
        return self.path.exists()

    def clear(self) -> None:
        remove_own_file(self.path)


class ProgressWriter:
    """Keeps `<volatile_dir>/progress.json` up to date (shape: docs/cli.md, "progress.json").

    Thread-safe. Writes are atomic and throttled to one per `min_interval` seconds, except phase changes
    and close(), which are written at once. `on_bytes` has the mover's progress-callback signature, so
    parallel copies add up into one bytes_done.
    """

    def __init__(self, volatile_dir: str | os.PathLike[str], action: str = "run",
                 min_interval: float = 1.0) -> None:
        self.path = Path(volatile_dir) / PROGRESS_NAME
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._last_write = 0.0
        self._in_flight: dict[str, int] = {}
        self._finished_bytes = 0
        now = time.time()
        self.doc: dict[str, Any] = {
            "schema": PROGRESS_SCHEMA, "pid": os.getpid(), "started_at": int(now), "updated_at": int(now),
            "action": action, "phase": "recovering", "files_done": 0, "files_total": 0, "bytes_done": 0,
            "bytes_total": 0, "current_file": None, "rate_bps": 0, "eta_seconds": None}
        self._copy_started: Optional[float] = None

    def phase(self, name: str) -> None:
        """Enter a phase (one of PHASES); written at once."""
        with self._lock:
            self.doc["phase"] = name
            self._write(force=True)

    def totals(self, files_total: int, bytes_total: int) -> None:
        with self._lock:
            self.doc["files_total"], self.doc["bytes_total"] = files_total, bytes_total
            self._write(force=True)

    def file_started(self, label: str) -> None:
        with self._lock:
            if self._copy_started is None:
                self._copy_started = time.monotonic()
            self._in_flight[label] = 0
            self.doc["current_file"] = label
            self._write()

    def on_bytes(self, label: str, done: int, total: int) -> None:
        """Progress of one file: `done` of `total` bytes copied so far."""
        with self._lock:
            self._in_flight[label] = done
            self._write()

    def file_done(self, label: str, size: int) -> None:
        """A file (or whole operation) finished, successfully or not: count it and its bytes."""
        with self._lock:
            self._in_flight.pop(label, None)
            self._finished_bytes += size
            self.doc["files_done"] += 1
            self._write()

    def close(self, remove: bool = True) -> None:
        """End of the run: remove progress.json (status then reads the last-run summary instead)."""
        with self._lock:
            if remove:
                remove_own_file(self.path)
            else:
                self._write(force=True)

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval:
            return
        self._last_write = now
        done = self._finished_bytes + sum(self._in_flight.values())
        self.doc["bytes_done"] = done
        self.doc["updated_at"] = int(time.time())
        if self._copy_started is not None and now > self._copy_started:
            rate = done / (now - self._copy_started)
            self.doc["rate_bps"] = int(rate)
            left = max(0, self.doc["bytes_total"] - done)
            self.doc["eta_seconds"] = int(left / rate) if rate > 0 else None
        data = (json.dumps(self.doc, sort_keys=True) + "\n").encode()
        with contextlib.suppress(OSError):  # progress is a convenience: never fail a run over it
            atomic_write_bytes(self.path, data)


def live_running(settings: Any) -> bool:
    """True while a live watcher holds its lock (for status and the Dashboard)."""
    return live_pid(settings) is not None


def live_pid(settings: Any) -> Optional[int]:
    """The pid of the live watcher holding its lock (0 if its pid is unknown), None when none runs."""
    return LiveLock(settings.paths.volatile_dir).held_by()
