"""Waiting on things that happen on other threads (the websocket listener, a serving loop), in real time."""

from __future__ import annotations

import threading
from typing import Callable


def wait_for(condition: Callable[[], object], seconds: float = 10.0) -> bool:
    """Poll `condition` every 20 ms until it holds or `seconds` pass; its last answer, as a bool."""
    pause = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        pause.wait(0.02)
    return bool(condition())
