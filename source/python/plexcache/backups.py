""".plexcached backups that no longer belong with a live copy on the pool.

A backup only makes sense while its file's live copy is on the pool. When something else (Unraid's mover
running without CA Mover Tuning's ignore list, a user) puts the live copy back on the array, possibly on
another disk than the backup, the backup is a duplicate. It is removed only when it is provably the same
bytes as the array copy, and only through the mover's helper (`retire_stale_backup`), which also
checks that the array copy is a complete regular file that nobody has open. Anything less certain is kept
for a human (`plexcache-r audit`). The engine calls this during reconcile (docs/engine.md).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any, Optional

from plexcache.layout import BACKUP_SUFFIX
from plexcache.media import fastcopy
from plexcache.media.tidy import retire_stale_backup

RETIRED, SAME, DIFFERENT, KEPT = "retired", "same", "different", "kept"
# What a pool copy is to its backup (pool_copy_state)
MATCHES, CONFIRMED, UNCONFIRMED = "matches", "confirmed", "unconfirmed"


@dataclass
class Copies:
    """Every array copy of one SHARE/REL: live originals and .plexcached backups, by disk order."""

    originals: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)


def copies_on_disks(disks: list[tuple[str, str]], share: str, rel: str) -> Copies:
    """lstat SHARE/REL and SHARE/REL.plexcached on every array disk (never through /mnt/user)."""
    found = Copies()
    for _name, mount in disks:
        path = os.path.join(mount, share, rel)
        if _regular(path) is not None:
            found.originals.append(path)
        if _regular(path + BACKUP_SUFFIX) is not None:
            found.backups.append(path + BACKUP_SUFFIX)
    return found


def identical(original: str, backup: str, *, may_hash: bool) -> Optional[bool]:
    """Whether the backup holds the same bytes as the array original.

    True: both hash the same. Nothing less is proof: equal sizes and mtimes are kept by a copy damaged in
    place (a flipped byte), and a recorded hash vouches only for the file it is checked against (the bytes
    cached last time may have been damaged ones), while the backup may be the last good copy. False: they
    differ. None: it would take hashing and `may_hash` is off (a dry run or `plan` reads no file contents).
    """
    ost, bst = _regular(original), _regular(backup)
    if ost is None or bst is None or ost.st_size != bst.st_size:
        return False
    if (ost.st_dev, ost.st_ino) == (bst.st_dev, bst.st_ino):
        return False  # one file under two names is not a duplicate to remove
    if not may_hash:
        return None
    return fastcopy.hash_file(original) == fastcopy.hash_file(backup)


def settle(original: str, backup: str, *, dry_run: bool) -> str:
    """Retire `backup` when it is provably a copy of `original`.

    Returns RETIRED (removed), SAME (identical, left because this is a dry run), KEPT (identical but the
    mover refused, e.g. the original is open) or DIFFERENT (not provably identical: both kept).
    """
    same = identical(original, backup, may_hash=not dry_run)
    if same is None:
        return SAME  # a dry run: the real run proves it (or keeps both)
    if not same:
        return DIFFERENT
    if dry_run:
        return SAME
    size = os.lstat(original).st_size
    return RETIRED if retire_stale_backup(backup, original, size) else KEPT


def pool_copy_state(pool: tuple[int, int], backup: Optional[tuple[int, int]],
                    recorded: Optional[dict[str, Any]], confirmed: Optional[dict[str, Any]]) -> str:
    """Whether a move back may retire the backup of a pool copy; copies are (size, mtime_ns).

    MATCHES: the pool copy is what was cached (the recorded facts, or without a record its backup), or there
    is no backup to lose. CONFIRMED: it changed, and exactly this copy was shown to be a complete replacement
    (Plex lists it with that size, or the user chose it). UNCONFIRMED: it changed and nothing shows it is
    complete (a truncated or damaged copy looks the same): the backup may be the last good copy.
    """
    if backup is None:
        return MATCHES
    reference = recorded or {"size": backup[0], "mtime_ns": backup[1]}
    if _same(pool, reference):
        return MATCHES
    return CONFIRMED if confirmed and _same(pool, confirmed) else UNCONFIRMED


def _same(copy: tuple[int, int], facts: dict[str, Any]) -> bool:
    return copy == (facts.get("size"), facts.get("mtime_ns"))


def _regular(path: str) -> Optional[os.stat_result]:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None
