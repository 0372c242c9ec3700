"""Real time in the tests: every wait and every hang guard is a base figure times one scale factor.

A base figure is what the step needs on an idle machine with room to spare; `seconds()` multiplies it by
PLEXCACHE_TEST_TIME_SCALE (default 4: the whole suite beside `stress --cpu 4` on 2 cores holds with it).
A correctness wait polls for its condition (`wait_for`) and returns as soon as it holds, so a large
scale costs nothing while the tests pass; it only decides how long a broken test takes to say so.
Raise it on a slower machine; a value below 1 shortens the hang guards when hunting a hang.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

SCALE_ENV = "PLEXCACHE_TEST_TIME_SCALE"
DEFAULT_SCALE = 4.0
POLL = 0.02


def scale() -> float:
    """The factor from PLEXCACHE_TEST_TIME_SCALE; a value that is not a positive number is refused."""
    raw = os.environ.get(SCALE_ENV, "")
    if not raw:
        return DEFAULT_SCALE
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(f"{SCALE_ENV}={raw!r}: give a positive number (default {DEFAULT_SCALE:g})")
    return value


def seconds(base: float) -> float:
    """`base` seconds, scaled: for subprocess, HTTP and join timeouts, and deadlines."""
    return base * scale()


def ms(base_seconds: float) -> int:
    """`base_seconds`, scaled, in milliseconds: for Playwright's timeouts."""
    return int(seconds(base_seconds) * 1000)


def wait_for(condition: Callable[[], object], base: float = 10.0) -> bool:
    """Poll `condition` every 20 ms until it holds or `base` seconds (scaled) pass; its last answer, as a
    bool. The deadline is on the monotonic clock, so a loaded machine's slow polls do not stretch it."""
    pause = threading.Event()
    deadline = time.monotonic() + seconds(base)
    while time.monotonic() < deadline:
        if condition():
            return True
        pause.wait(POLL)
    return bool(condition())
