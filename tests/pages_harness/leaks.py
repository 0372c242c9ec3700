"""What the page harness started, found again: every process it starts carries PCR_HARNESS=<this test
process's marker> and PCR_HARNESS_SERVER=<its server> in its environment (php -S, its workers, the CLI
calls and the detached jobs they start, even those in process groups of their own: `timeout` makes one,
a job's `setsid` a session), so whatever outlives its server or test is found, named and killed."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

MARKER = "PCR_HARNESS"
SERVER_MARKER = "PCR_HARNESS_SERVER"
_SESSION = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def session_marker() -> str:
    return _SESSION


def environ_of(pid: object) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def survivors(marker: str = "") -> list[tuple[int, str]]:
    """(pid, command line) of every live process this test process's harness started (or, given a
    marker, those of one server: the value of SERVER_MARKER it set)."""
    needle = f"{SERVER_MARKER}={marker}".encode() if marker else f"{MARKER}={_SESSION}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and needle in environ_of(entry.name).split(b"\0"):
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                found.append((int(entry.name), cmd))
    return found


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies awaiting their parent's wait do not count)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def kill_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.02)


def kill_survivors(marker: str = "") -> list[str]:
    """Kill every survivor's process group (all, or one server's); their command lines, for a message."""
    found = survivors(marker)
    for pid, _ in found:
        try:
            kill_group(os.getpgid(pid), grace=2.0)
        except ProcessLookupError:
            pass
    return [f"{pid}: {cmd}" for pid, cmd in found]
