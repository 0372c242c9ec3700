"""Whether some process has a file open (a viewer playing it, an import still writing it), read from
/proc without touching the file's disk."""

from __future__ import annotations

import os
from collections.abc import Iterable


def open_paths(paths: Iterable[str]) -> set[str]:
    """Which of `paths` some process has open (best effort: scans /proc/*/fd; unreadable ones skipped).

    Candidates are fds whose target has the same file name (of the path or of what it resolves to);
    they match by device and inode, so a file opened through another directory (a container's bind
    mount) is seen too. A file read through /mnt/user is seen via shfs's own handle on the disk path.
    A hard link under another name is not seen.
    """
    wanted: dict[str, list[tuple[str, int, int]]] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        for name in {os.path.basename(path), os.path.basename(os.path.realpath(path))}:
            wanted.setdefault(name, []).append((path, st.st_dev, st.st_ino))
    found: set[str] = set()
    if not wanted:
        return found
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            _match_fd(f"{fd_dir}/{fd}", wanted, found)
    return found


def _match_fd(link: str, wanted: dict[str, list[tuple[str, int, int]]], found: set[str]) -> None:
    try:
        target = os.readlink(link)
    except OSError:
        return
    name = os.path.basename(target.removesuffix(" (deleted)"))
    candidates = wanted.get(name)
    if not candidates:
        return
    try:
        st = os.stat(link)
    except OSError:
        return
    for path, dev, ino in candidates:
        if st.st_dev == dev and st.st_ino == ino:
            found.add(path)


def is_open(path: str, *aliases: str) -> bool:
    """True if any process has `path` (or one of its aliases, e.g. its /mnt/user path) open."""
    return bool(open_paths((path, *aliases)))
