"""The list CA Mover Tuning ignores, so the mover leaves cached files on the pool.

Format (Mover Tuning's `age_mover`): one absolute pool-side path per line (/mnt/POOL/SHARE/REL), LF
endings, no trailing slash. /mnt/user paths would never match, so every managed file and its sidecars are
written with their physical pool path. The user's own entries live in a separate file (paths.manual_exclusions)
and are copied in first. The list is replaced atomically, so the mover never reads half a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from plexcache.config import Settings
from plexcache.fsutil import atomic_write_text
from plexcache.state import Registry
from plexcache.unraid import split_user_path


def manual_entries(settings: Settings) -> list[str]:
    """Absolute paths from the user's manual file (blank lines and # comments ignored)."""
    try:
        text = Path(settings.paths.manual_exclusions).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines = (line.strip().rstrip("/") for line in text.replace("\r\n", "\n").split("\n"))
    return [line for line in lines if line.startswith("/")]


def pool_side(settings: Settings, pool: str, user_path: str) -> Optional[str]:
    """/mnt/user/SHARE/REL on POOL -> POOL_ROOT/POOL/SHARE/REL."""
    parts = split_user_path(settings.paths.user_root, user_path)
    if parts is None or not pool:
        return None
    return f"{settings.paths.pool_root.rstrip('/')}/{pool}/{parts[0]}/{parts[1]}"


def build_lines(settings: Settings, registry: Registry) -> list[str]:
    """Manual entries first (in their order), then every managed file and sidecar, sorted, no repeats."""
    manual = manual_entries(settings)
    managed: set[str] = set()
    for entry in registry.entries.values():
        for path in (entry.path, *entry.sidecars):
            line = pool_side(settings, entry.pool, path)
            if line:
                managed.add(line)
    seen: set[str] = set()
    out = []
    for line in [*manual, *sorted(managed)]:
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


def render(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def write(settings: Settings, registry: Registry) -> bool:
    """Rewrite the list when its content changed. True if written."""
    path = Path(settings.paths.exclusion_list)
    text = render(build_lines(settings, registry))
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True
