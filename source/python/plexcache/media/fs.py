"""The filesystem steps the media modules share: a rename that never replaces, a stat that answers None
for a missing file, the nearest existing directory."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any, Optional


def lstat_or_none(path: Optional[str]) -> Optional[os.stat_result]:
    if path is None:
        return None
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def existing_ancestor(path: str) -> str:
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path



_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_libc: Any = None


def rename_noreplace(src: str, dst: str) -> None:
    """rename(2) that fails with FileExistsError instead of replacing an existing target."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.renameat2  # noqa: B018 - probe: glibc >= 2.28
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        rc = _libc.renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), src, None, dst)
    if os.path.lexists(dst):  # filesystem without RENAME_NOREPLACE: check, then rename
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)
