"""Running many operations at once: one lane per array disk (a spinning disk copies fastest one file at a
time), lanes in parallel, a stop or a critical error halting them all between files."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from plexcache.media.fs import existing_ancestor, lstat_or_none
from plexcache.media.mover import Mover
from plexcache.media.ops import (
    CacheOp,
    CopyStopped,
    CriticalIOError,
    MoveFailed,
    MoveRefused,
    Op,
    OpResult,
    OpsOutcome,
    ProgressFn,
    ProgressSink,
    StopSignal,
)


def disk_of(op: Op) -> str:
    """The array disk an op reads from or writes to: op.disk, else the device number of its array dir."""
    if op.disk:
        return op.disk
    try:
        return f"dev{os.stat(existing_ancestor(os.path.dirname(op.array_path))).st_dev}"
    except OSError:
        return "unknown"


def _op_bytes(op: Op) -> int:
    path = op.array_path if isinstance(op, CacheOp) else op.pool_path
    st = lstat_or_none(path)
    return st.st_size if st else 0


def schedule_by_disk(ops: Sequence[Op], workers: int) -> list[list[Op]]:
    """Split ops into at most `workers` lanes, run in parallel, each lane one op after another.

    All ops of one array disk share a lane (a spinning disk copies fastest one file at a time), in their
    given order (the planner's priority). Disks go to the least-loaded lane by bytes, biggest disk first.
    """
    return [[op for _i, op in lane] for lane in _lanes(list(enumerate(ops)), workers)]


def _lanes(items: list[tuple[int, Op]], workers: int) -> list[list[tuple[int, Op]]]:
    by_disk: dict[str, list[tuple[int, Op]]] = {}
    for item in items:
        by_disk.setdefault(disk_of(item[1]), []).append(item)
    weights = {d: sum(_op_bytes(op) for _i, op in q) for d, q in by_disk.items()}
    lanes: list[list[tuple[int, Op]]] = [[] for _ in range(max(1, min(workers, len(by_disk))))]
    loads = [0] * len(lanes)
    for disk in sorted(by_disk, key=lambda d: -weights[d]):
        i = loads.index(min(loads))
        lanes[i].extend(by_disk[disk])
        loads[i] += weights[disk]
    return [lane for lane in lanes if lane]


class _Halt:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.critical: Optional[CriticalIOError] = None
        self.stopped = False


def run_ops(ops: Sequence[Op], workers: int, mover: Mover, stop: Optional[StopSignal] = None,
            progress: Optional[ProgressSink] = None) -> OpsOutcome:
    """Run ops with schedule_by_disk lanes, one thread per lane.

    stop: a runctl.StopFlag (anything with requested()), checked before each op: once set, the remaining
    ops end as not_started and OpsOutcome.stopped is True (the caller raises StopRequested). A
    CriticalIOError halts every lane the same way (OpsOutcome.critical). progress: a runctl.ProgressWriter.
    Never raises for a single op's failure: each OpResult says what happened.
    """
    results: dict[int, OpResult] = {}
    halt = _Halt()

    def lane_worker(lane: list[tuple[int, Op]]) -> None:
        for i, op in lane:
            results[i] = _run_one(op, mover, stop, progress, halt)

    lanes = _lanes(list(enumerate(ops)), workers)
    with ThreadPoolExecutor(max_workers=max(1, len(lanes)), thread_name_prefix="plexcache-lane") as pool:
        for future in [pool.submit(lane_worker, lane) for lane in lanes]:
            future.result()
    return OpsOutcome([results[i] for i in range(len(ops))], halt.stopped, halt.critical)


def _run_one(op: Op, mover: Mover, stop: Optional[StopSignal], progress: Optional[ProgressSink],
             halt: _Halt) -> OpResult:
    if not halt.event.is_set() and stop is not None and stop.requested():
        halt.stopped = True
        halt.event.set()
    if halt.event.is_set():
        return OpResult(op, "not_started")
    if progress is not None:
        progress.file_started(op.label)
    started = time.monotonic()
    try:
        result = mover.run(op, _stoppable(op, stop, progress.on_bytes if progress is not None else None))
    except CopyStopped:
        halt.stopped = True
        halt.event.set()
        result = OpResult(op, "not_started")
    except MoveRefused as exc:
        result = OpResult(op, "refused", error=exc)
    except CriticalIOError as exc:
        halt.critical = halt.critical or exc
        halt.event.set()
        result = OpResult(op, "critical", error=exc)
    except MoveFailed as exc:
        result = OpResult(op, "failed", error=exc)
    except OSError as exc:  # e.g. a planning stat that failed: report, keep going
        result = OpResult(op, "failed", error=MoveFailed(str(exc), op.array_path, exc.errno))
    result.seconds = time.monotonic() - started
    if progress is not None:
        progress.file_done(op.label, _op_bytes_done(result))
    return result


def _stoppable(op: Op, stop: Optional[StopSignal], progress: Optional[ProgressFn]) -> Optional[ProgressFn]:
    """The progress callback, which also ends the copy when a stop is asked for (it is called every ~10 MB
    or second of copying, so a stop lands within seconds even in the middle of a large file)."""
    if stop is None:
        return progress

    def report(label: str, done: int, total: int) -> None:
        if stop.requested():
            raise CopyStopped(f"stopped on request while copying {label}; the partial copy was removed",
                              op.array_path)
        if progress is not None:
            progress(label, done, total)

    return report


def _op_bytes_done(result: OpResult) -> int:
    return sum(f.facts.size for f in result.files)
