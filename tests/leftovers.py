"""What a test leaves running: threads of this process and processes it started, found, named and ended.

Threads count when they are not daemons: a daemon thread cannot keep the process alive, and the simulator's
server serves each keep-alive connection on one until its client lets go (plexapi's pooled sessions).

A process counts when it descends from this test process, or when it left that tree (a double fork, a
`setsid` job reparented to init) but carries the page harness's marker in its environment (pages_harness/
leaks.py). Processes are told apart by pid and start time, so a reused pid is never taken for an old one.
A process whose parent (or any ancestor) was already running when the test began belongs to that
long-lived owner, not to the test: a module fixture's Chromium opens renderers as pages open, `php -S`
replaces its workers. Likewise a thread pool's idle worker (the event loop's executor under Playwright)
belongs to the pool. Neither is the test's leak, and neither is killed.
Leftover processes are killed by whole process group, except that a process sharing this test process's
own group is killed alone (with its descendants), never the group that holds pytest.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from pages_harness import leaks
from realtime import wait_for


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    start: int   # clock ticks after boot: with the pid, it names one process for good
    state: str

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)


@dataclass(frozen=True)
class Snapshot:
    threads: frozenset[threading.Thread]
    procs: frozenset[tuple[int, int]]


def _read_proc(pid: str) -> Proc | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return Proc(int(pid), int(fields[1]), int(fields[2]), int(fields[19]), fields[0])


def _all_procs() -> list[Proc]:
    found = (_read_proc(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [p for p in found if p is not None]


def _mine(procs: list[Proc], since: int) -> list[Proc]:
    """Live processes descending from this one, and marked harness processes started after `since`."""
    me = os.getpid()
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    found: dict[int, Proc] = {}
    todo = [me]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child.pid] = child
            todo.append(child.pid)
    marker = f"{leaks.MARKER}={leaks.session_marker()}".encode()
    for p in procs:
        if p.pid not in found and p.pid != me and p.start >= since and marker in leaks.environ_of(p.pid):
            found[p.pid] = p
    return [p for p in found.values() if p.state not in ("Z", "X")]


def _own_start() -> int:
    own = _read_proc(str(os.getpid()))
    return own.start if own else 0


_SINCE = _own_start()


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.is_alive() and not t.daemon and not _pool_worker(t)]


def _pool_worker(thread: threading.Thread) -> bool:
    """An executor's worker: it waits for work and lives as long as its pool's owner."""
    target = getattr(thread, "_target", None)
    return getattr(target, "__module__", "") == "concurrent.futures.thread"


def snapshot() -> Snapshot:
    return Snapshot(frozenset(_threads()),
                    frozenset(p.key for p in _mine(_all_procs(), _SINCE)))


def _new(before: Snapshot) -> tuple[list[threading.Thread], list[Proc]]:
    threads = [t for t in _threads() if t not in before.threads]
    procs = _all_procs()
    by_pid = {p.pid: p for p in procs}
    new = [p for p in _mine(procs, _SINCE) if p.key not in before.procs and not _owned_by(p, before, by_pid)]
    return threads, new


def _owned_by(proc: Proc, before: Snapshot, by_pid: dict[int, Proc]) -> bool:
    """Whether an ancestor of `proc` (below this test process) was running when `before` was taken."""
    me, seen = os.getpid(), set()
    parent = by_pid.get(proc.ppid)
    while parent is not None and parent.pid not in (me, 1) and parent.pid not in seen:
        if parent.key in before.procs:
            return True
        seen.add(parent.pid)
        parent = by_pid.get(parent.ppid)
    return False


def _describe(proc: Proc) -> str:
    try:
        cmd = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmd = "?"
    return f"process {proc.pid} (group {proc.pgid}): {cmd.strip()[:300]}"


def _kill(procs: list[Proc]) -> None:
    own_group = os.getpgid(0)
    for proc in procs:
        if proc.pgid != own_group:
            leaks.kill_group(proc.pgid, grace=2.0)
            continue
        try:
            os.kill(proc.pid, signal.SIGKILL)   # in pytest's own group: this one alone (descendants are listed too)
        except ProcessLookupError:
            pass


def left_since(before: Snapshot, grace: float = 1.0) -> list[str]:
    """What started after `before` and still runs `grace` seconds (scaled) later, described; the processes
    among it are killed. Threads ending and processes exiting right now get the grace to finish."""
    if wait_for(lambda: _new(before) == ([], []), grace):
        return []
    threads, procs = _new(before)
    described = [_describe(p) for p in procs]
    _kill(procs)
    return [f"thread {t.name!r} (running {_target(t)})"
            for t in threads] + described


def _target(thread: threading.Thread) -> str:
    target = getattr(thread, "_target", None)
    return getattr(target, "__qualname__", repr(target)) if target is not None else type(thread).__qualname__
