"""Crash points: named steps of the media operations where a test can kill the process (SIGKILL), to prove
recovery leaves no byte lost at every one of them. Unset in production: one dict lookup per step."""

from __future__ import annotations

import os
import signal
import threading

CRASH_ENV = "PLEXCACHE_CRASH_AT"
TRACE_ENV = "PLEXCACHE_CRASH_TRACE"

_crash_lock = threading.Lock()
_crash_counts: dict[str, int] = {}


def crash_point(step: str) -> None:
    """Test hook: PLEXCACHE_CRASH_AT=<step>[:<n>] SIGKILLs this process the n-th time (default 1st) `step`
    is reached. PLEXCACHE_CRASH_TRACE=<file> appends every step reached as `step:n` (tests enumerate the
    steps with it). Both unset in production: one dict lookup per step."""
    spec = os.environ.get(CRASH_ENV)
    trace = os.environ.get(TRACE_ENV)
    if not spec and not trace:
        return
    with _crash_lock:
        n = _crash_counts[step] = _crash_counts.get(step, 0) + 1
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{step}:{n}\n")
    if spec:
        name, _, count = spec.partition(":")
        if name == step and n == int(count or 1):
            os.kill(os.getpid(), signal.SIGKILL)
