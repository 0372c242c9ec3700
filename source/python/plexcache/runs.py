"""Runs: the id each media-moving command carries (in last_run.json, the activity events, the log lines and the
run history alike), and the bounded history of runs with the daily figures the Dashboard draws: the pool
space cached files used and the plays served from the pool or from the array (docs/cli.md, "history").

Read by `history` without plexapi or the engine; written once at the end of each run, always through fsutil
(temporary file, fsync, rename) and under a short lock, because the run and live mode may both write it. The
state dir is on the flash, so the plays live mode sees wait in the volatile dir (`plays.json`) until the next run
(or live mode stopping) folds them in; `history` shows them at once. A reboot before that loses only those
counts. Each waiting play carries an id, and the history remembers the ids it folded last, in the same write:
a kill after that write and before plays.json goes leaves plays that the next fold knows and skips.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from plexcache.config import Settings
from plexcache.fsutil import read_advisory_json, remove_own_file, write_json_if_changed
from plexcache.layout import PENDING_PLAYS_NAME, RUNS_FILE
from plexcache.media.crash import crash_point
from plexcache.runctl import RecordLock

SCHEMA = 1
KEEP_RUNS = 500          # runs kept, newest last
KEEP_DAYS = 90           # days kept, for runs and daily figures alike
KEEP_PENDING = 10_000    # plays waiting for the next run (a bound, never reached by a household)
DAY = "%Y-%m-%d"         # the local day a figure belongs to

_current: Optional[str] = None
_issued: set[str] = set()


def new_id(started: float, pid: Optional[int] = None) -> str:
    """"20261206-153854-4242": the local start time and the process; live mode's later runs in the same
    second get ".2", ".3" (one process never repeats an id)."""
    base = time.strftime("%Y%m%d-%H%M%S", time.localtime(started)) + f"-{os.getpid() if pid is None else pid}"
    run_id, n = base, 1
    while run_id in _issued:
        n += 1
        run_id = f"{base}.{n}"
    _issued.add(run_id)
    return run_id


def begin(started: float) -> str:
    """A new run starts in this process: its id tags the log lines and events until end()."""
    global _current
    _current = new_id(started)
    return _current


def end() -> None:
    global _current
    _current = None


def current() -> Optional[str]:
    """The id of the run this process is in, or None outside a run."""
    return _current


class RunTag(logging.Filter):
    """Puts `run` on each log record: the run's id inside a run, else the process id (the Logs tab's run
    filter takes either: a process id shows every line that process wrote)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.run = _current or str(record.process)
        return True


# ------------------------------------------------------------------ the history file


def _path(settings: Settings) -> Path:
    return Path(settings.paths.state_dir) / RUNS_FILE


def _lock(settings: Settings) -> RecordLock:
    return RecordLock(settings.paths.volatile_dir)


def load(settings: Settings) -> dict[str, Any]:
    doc = read_advisory_json(_path(settings), SCHEMA)
    runs = doc.get("runs")
    days = doc.get("days")
    folded = doc.get("folded")
    return {"schema": SCHEMA, "runs": runs if isinstance(runs, list) else [],
            "days": days if isinstance(days, dict) else {},
            "folded": [i for i in folded if isinstance(i, str)] if isinstance(folded, list) else []}


def _pending_path(settings: Settings) -> Path:
    return Path(settings.paths.volatile_dir) / PENDING_PLAYS_NAME


def _pending(settings: Settings) -> list[dict[str, Any]]:
    """The plays seen since the history was last written: [{"id", "at": seconds, "pool": bool}] (plays
    counted before ids were given have none)."""
    plays = read_advisory_json(_pending_path(settings), SCHEMA).get("plays")
    return [p for p in plays if isinstance(p, dict)] if isinstance(plays, list) else []


@contextmanager
def _changing(settings: Settings) -> Iterator[dict[str, Any]]:
    """Read, change and write the history under its lock (a run and live mode may write at once); the plays
    waiting in the volatile dir are folded in first, and their file goes once they are on the flash."""
    with _lock(settings):
        doc = load(settings)
        pending = _pending(settings)
        _add_plays(doc, pending)
        # the ids go to the flash in the same write as the counts: if plays.json outlives it, its plays are
        # known (it holds only these, and plays counted after them)
        doc["folded"] = [p["id"] for p in pending if isinstance(p.get("id"), str)]
        yield doc
        _trim(doc, time.time())
        write_json_if_changed(_path(settings), doc)
        crash_point("runs.folded")
        remove_own_file(_pending_path(settings))


def _add_plays(doc: dict[str, Any], pending: list[dict[str, Any]]) -> None:
    """Count the waiting plays the history has not folded in already."""
    folded = set(doc["folded"])
    for play in pending:
        if play.get("id") not in folded:
            _add_play(doc, float(play.get("at") or 0), bool(play.get("pool")))


def _trim(doc: dict[str, Any], now: float) -> None:
    oldest = now - KEEP_DAYS * 86400
    doc["runs"] = [r for r in doc["runs"] if float(r.get("started_at") or 0) >= oldest][-KEEP_RUNS:]
    first_day = time.strftime(DAY, time.localtime(oldest))
    doc["days"] = {d: v for d, v in sorted(doc["days"].items()) if d >= first_day}


def _day(doc: dict[str, Any], when: float) -> dict[str, Any]:
    day: dict[str, Any] = doc["days"].setdefault(time.strftime(DAY, time.localtime(when)), {})
    return day


def _add_play(doc: dict[str, Any], when: float, from_pool: bool) -> None:
    """One play: counted for its day, and for the latest run started before it ("plays since")."""
    day = _day(doc, when)
    key = "plays_pool" if from_pool else "plays_array"
    day[key] = int(day.get(key) or 0) + 1
    if doc["runs"] and float(doc["runs"][-1].get("started_at") or 0) <= when:
        last = doc["runs"][-1]
        last["plays"] = int(last.get("plays") or 0) + 1
        last["plays_from_pool"] = int(last.get("plays_from_pool") or 0) + from_pool


def record(settings: Settings, run: dict[str, Any]) -> None:
    """Add one finished run (its id, kind, times, exit code, counts, bytes, and the bytes cached files use on
    the pool after it, `managed_bytes`, null when unknown). Never fails the run: the history is a record."""
    run = {**run, "plays": 0, "plays_from_pool": 0}
    try:
        with _changing(settings) as doc:
            doc["runs"].append(run)
            if run.get("managed_bytes") is not None and not run.get("dry_run"):
                _day(doc, float(run.get("finished_at") or time.time()))["managed_bytes"] = run["managed_bytes"]
    except OSError as exc:
        logging.getLogger(__name__).warning("could not record the run in the history: %s", exc)


def count_play(settings: Settings, from_pool: bool, when: Optional[float] = None) -> None:
    """A playback started (seen by live mode): kept in the volatile dir until the history is next written."""
    when = time.time() if when is None else when
    try:
        with _lock(settings):
            play = {"id": secrets.token_hex(8), "at": when, "pool": from_pool}
            plays = [*_pending(settings), play][-KEEP_PENDING:]
            write_json_if_changed(_pending_path(settings), {"schema": SCHEMA, "plays": plays})
    except OSError as exc:
        logging.getLogger(__name__).warning("could not count a play in the history: %s", exc)


def flush(settings: Settings) -> None:
    """Fold the waiting plays into the history now (live mode stopping: the array is about to stop)."""
    if not _pending_path(settings).exists():
        return
    try:
        with _changing(settings):
            pass
    except OSError as exc:
        logging.getLogger(__name__).warning("could not write the plays into the history: %s", exc)


def document(settings: Settings, days: int = 30, limit: int = 50, now: Optional[float] = None) -> dict[str, Any]:
    """`history --json`: the newest runs first, and one figure a day for the last `days` days (oldest first).
    A day without a run carries the pool figure of the day before it (cached files stay until a run moves
    them); a day before the first figure has none (null)."""
    now = time.time() if now is None else now
    doc = load(settings)
    _add_plays(doc, _pending(settings))
    known = doc["days"]
    out, carried = [], None
    # noon of each day: a step of 24 hours from noon never lands on another day across a clock change
    noon = time.mktime((*time.localtime(now)[:3], 12, 0, 0, 0, 0, -1))
    first = noon - (days - 1) * 86400
    for day, figures in sorted(known.items()):
        if day < time.strftime(DAY, time.localtime(first)) and figures.get("managed_bytes") is not None:
            carried = figures["managed_bytes"]
    for i in range(days):
        day = time.strftime(DAY, time.localtime(first + i * 86400))
        figures = known.get(day, {})
        if figures.get("managed_bytes") is not None:
            carried = figures["managed_bytes"]
        out.append({"day": day, "managed_bytes": carried, "plays_pool": int(figures.get("plays_pool") or 0),
                    "plays_array": int(figures.get("plays_array") or 0)})
    return {"runs": list(reversed(doc["runs"][-limit:])), "days": out, "runs_kept": len(doc["runs"]),
            "keep": {"runs": KEEP_RUNS, "days": KEEP_DAYS}}
