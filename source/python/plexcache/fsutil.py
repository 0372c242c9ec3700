"""The program's own files (settings, state, schedule, sign-in): atomic writes (temp + fsync + rename),
removal, and schema-checked JSON reads. Media never goes through here: the mover moves it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from plexcache.errors import UsageError

log = logging.getLogger(__name__)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or create inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def write_json_if_changed(path: Path, document: dict[str, Any]) -> bool:
    """Write JSON atomically only when its content differs, to spare the flash drive. True if written."""
    data = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")
    path = Path(path)
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write_bytes(path, data)
    return True


REBUILD = "run `plexcache-r audit` to rebuild it"


def read_json(path: Path, schema: int, default: dict[str, Any] | None = None, remedy: str = REBUILD) -> dict[str, Any]:
    """Read a state file written by write_json_if_changed; a missing file gives `default`. An unreadable one is
    a UsageError naming it and `remedy`, what the person can do about it."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return dict(default or {"schema": schema})
    except (OSError, ValueError) as exc:
        raise UsageError(f"state file {path} is unreadable ({exc}); {remedy}") from None
    found = document.get("schema") if isinstance(document, dict) else None
    if found != schema:
        raise UsageError(f"state file {path} has schema {found!r}, expected {schema}; "
                         "was it written by a newer plexcache-r?")
    return dict(document)


def remove_own_file(path: str | os.PathLike[str]) -> bool:
    """Remove one of the program's own files; False when it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def read_advisory_json(path: Path, schema: int) -> dict[str, Any]:
    """A state file that only keeps figures (nothing a person chose, nothing about where media is): when it
    cannot be read it is renamed aside to NAME.unreadable, for a look later, and the figures start afresh
    rather than stopping the program."""
    try:
        return read_json(path, schema, remedy="set aside")
    except UsageError as exc:
        with contextlib.suppress(OSError):
            os.replace(path, f"{path}.unreadable")
        log.warning("%s as %s.unreadable; its figures start afresh", exc, Path(path).name)
        return {"schema": schema}
