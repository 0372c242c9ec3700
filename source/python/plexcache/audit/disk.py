"""What is on disk: every physical copy of a user-share file (pool copies, array originals, backups,
temporary copies), found by one directory walk per share and disk, or by lstat for a handful of paths."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from plexcache.config import Settings
from plexcache.layout import BACKUP_SUFFIX, COPY_MTIME_SLACK_NS, is_temp_name, temp_target
from plexcache.media import fastcopy
from plexcache.unraid import Unraid, split_user_path


@dataclass(frozen=True)
class Stat:
    """One physical regular file."""

    path: str
    size: int
    mtime: float
    nlink: int = 1
    mtime_ns: int = 0


def stat_file(path: str) -> Optional[Stat]:
    """lstat a regular file (never follows a symlink); None when absent or not a regular file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if st.st_mode & 0o170000 != 0o100000:
        return None
    return Stat(path, st.st_size, st.st_mtime, st.st_nlink, st.st_mtime_ns)


def same_file(a: Stat, b: Stat) -> bool:
    """Same size and mtime (contents are compared separately, only when asked)."""
    return a.size == b.size and abs(a.mtime - b.mtime) * 1e9 <= COPY_MTIME_SLACK_NS


@dataclass
class FileCopies:
    """Every physical copy of one user-share file: on pools, as originals on disks, as backups on disks."""

    user_path: str
    share: str
    rel: str
    pool_copies: dict[str, Stat] = field(default_factory=dict)  # pool name -> copy
    originals: list[tuple[str, Stat]] = field(default_factory=list)  # (disk, copy)
    backups: list[tuple[str, Stat]] = field(default_factory=list)  # (disk, NAME.plexcached)
    temps: list[Stat] = field(default_factory=list)  # .NAME.plexcache-tmp copies, on any disk or pool


def _skip_name(name: str) -> bool:
    """Hidden files: never ours as media. The mover's temporary copies are hidden too, but walked: a kill
    can leave one behind, and Unraid's mover can carry it to any disk."""
    return name.startswith(".") and not is_temp_name(name)


def walk_files(root: str) -> dict[str, Stat]:
    """Every regular file under root, keyed by its path relative to root. One scandir per directory."""
    out: dict[str, Stat] = {}
    stack = [("", root)]
    while stack:
        rel_dir, path = stack.pop()
        try:
            with os.scandir(path) as it:
                for item in it:
                    if _skip_name(item.name):
                        continue
                    rel = f"{rel_dir}{item.name}"
                    try:
                        if item.is_dir(follow_symlinks=False):
                            stack.append((rel + "/", item.path))
                        elif item.is_file(follow_symlinks=False):
                            st = item.stat(follow_symlinks=False)
                            out[rel] = Stat(item.path, st.st_size, st.st_mtime, st.st_nlink, st.st_mtime_ns)
                    except OSError:
                        continue
        except OSError:
            continue
    return out


def probe(settings: Settings, unraid: Unraid, share: str, rel: str, pools: list[str]) -> FileCopies:
    """FileCopies for one file by lstat (pool copies, then each disk). For a handful of paths, not for scans."""
    user_path = f"{settings.paths.user_root.rstrip('/')}/{share}/{rel}"
    facts = FileCopies(user_path, share, rel)
    for pool in pools:
        copy = stat_file(str(Path(settings.paths.pool_root) / pool / share / rel))
        if copy:
            facts.pool_copies[pool] = copy
    for disk, mount in unraid.disks:
        original = stat_file(os.path.join(mount, share, rel))
        if original:
            facts.originals.append((disk, original))
        backup = stat_file(os.path.join(mount, share, rel) + BACKUP_SUFFIX)
        if backup:
            facts.backups.append((disk, backup))
    return facts


def scan_share(settings: Settings, unraid: Unraid, share: str, pools: list[str],
               array: bool = True) -> dict[str, FileCopies]:
    """Walk SHARE on the given pools (and, with array, on every disk): user path -> FileCopies."""
    user_root = settings.paths.user_root.rstrip("/")
    facts: dict[str, FileCopies] = {}

    def get(rel: str) -> FileCopies:
        found = facts.get(rel)
        if found is None:
            found = facts[rel] = FileCopies(f"{user_root}/{share}/{rel}", share, rel)
        return found

    for pool in pools:
        for rel, st in walk_files(str(Path(settings.paths.pool_root) / pool / share)).items():
            if temp_target(rel) is not None:
                get(str(temp_target(rel))).temps.append(st)
            else:
                get(rel).pool_copies[pool] = st
    if array:
        for disk, mount in unraid.disks:
            for rel, st in walk_files(os.path.join(mount, share)).items():
                if temp_target(rel) is not None:
                    get(str(temp_target(rel))).temps.append(st)
                elif rel.endswith(BACKUP_SUFFIX) and len(rel) > len(BACKUP_SUFFIX):
                    get(rel[: -len(BACKUP_SUFFIX)]).backups.append((disk, st))
                else:
                    get(rel).originals.append((disk, st))
    return {f.user_path: f for f in facts.values()}


def compare_copies(settings: Settings, user_path: str) -> dict[str, Any]:
    """Every physical copy of one user-share file (pools, array disks, backups) with its size, time and
    blake2b, and whether they all hold the same bytes. It reads each copy whole (array disks spin up), so it
    runs only when a person asks; copies of different sizes are not read (they cannot be the same)."""
    unraid = Unraid.load(settings)
    share, rel = split_user_path(settings.paths.user_root, user_path) or ("", "")
    info = unraid.share(share)
    facts = probe(settings, unraid, share, rel, [info.pool] if info and info.pool else [])
    found = [*facts.pool_copies.values(), *(c for _, c in facts.originals), *(c for _, c in facts.backups)]
    sizes = {c.size for c in found}
    copies = []
    for copy in found:
        doc: dict[str, Any] = {"path": copy.path, "size": copy.size, "mtime": copy.mtime, "blake2b": None}
        try:
            doc["blake2b"] = fastcopy.hash_file(copy.path) if len(sizes) == 1 else None
        except OSError as exc:
            doc["error"] = str(exc)
        copies.append(doc)
    digests = {c["blake2b"] for c in copies}
    identical = len(copies) > 1 and len(digests) == 1 and None not in digests
    verdict = ("no second copy to compare" if len(copies) < 2 else "the same bytes" if identical else
               "of different sizes" if len(sizes) > 1 else "not all could be read" if None in digests else
               "not the same bytes")
    message = f"{user_path}: {len(copies)} copies, {verdict}"
    return {"schema": 1, "ok": True, "path": user_path, "copies": copies, "identical": identical,
            "message": message}
