"""Single-step changes to copies the program has proved redundant or was asked to give up: a stale backup
retired, a backup put back in place of the live copy, a redundant copy dropped, a duplicate's copy a person
chose not to keep removed (the same bytes) or set aside (different ones). Each is one atomic unlink or
no-replace rename, so a crash leaves either the old state or the new, and needs no journal."""

from __future__ import annotations

import errno
import logging
import os
import stat
from typing import Optional

from plexcache.fsutil import fsync_dir
from plexcache.layout import BACKUP_SUFFIX, COPY_MTIME_SLACK_NS, DISCARDED_SUFFIX, is_temp_name
from plexcache.media import fastcopy
from plexcache.media.crash import crash_point
from plexcache.media.fs import lstat_or_none, rename_noreplace
from plexcache.media.openfiles import is_open, open_paths

log = logging.getLogger(__name__)


def retire_stale_backup(backup_path: str, new_path: str, new_size: int) -> bool:
    """Delete a backup made stale by an upgrade under another name, once the new file is complete.

    True if deleted. Refused (False) unless: backup_path ends in .plexcached and is a regular file; new_path
    is a regular file of exactly new_size bytes, is not the backup itself, and nobody has it open (an
    import still being written). A single unlink needs no journal: it either happened or it did not. An
    OSError (an immutable folder, a read-only disk) also answers False, logged: the backup is kept.
    """
    if not backup_path.endswith(BACKUP_SUFFIX):
        return False
    bst, nst = lstat_or_none(backup_path), lstat_or_none(new_path)
    if bst is None or nst is None or not stat.S_ISREG(bst.st_mode) or not stat.S_ISREG(nst.st_mode):
        return False
    if nst.st_size != new_size or (bst.st_dev, bst.st_ino) == (nst.st_dev, nst.st_ino) or is_open(new_path):
        return False
    try:
        os.unlink(backup_path)
        fsync_dir(os.path.dirname(backup_path))
    except OSError as exc:  # e.g. EPERM from an immutable folder: both copies stay, the caller goes on
        log.warning("could not remove the stale backup %s: %s; it is kept", backup_path, exc)
        return False
    return True


def put_backup_back(backup_path: str, live_path: str, live_size: int) -> bool:
    """Put a .plexcached backup back as the file, in place of the live array copy a person chose to give up
    (`audit --fix keep-original` for a stray backup). True if done.

    Refused (False) unless both are regular files, two inodes, live_path still has live_size bytes (what the
    person saw) and neither is open. The backup keeps its disk: beside the live copy, the live copy goes first
    and then the backup is renamed into its name; on another disk, the backup is renamed first (for a moment
    the file is live twice, which `audit` reports) and then the live copy goes. A crash in between leaves the
    backup's bytes under one of its names, and no byte the person chose to keep is ever at risk.
    """
    bst, lst = lstat_or_none(backup_path), lstat_or_none(live_path)
    if not backup_path.endswith(BACKUP_SUFFIX) or bst is None or lst is None:
        return False
    if not stat.S_ISREG(bst.st_mode) or not stat.S_ISREG(lst.st_mode) or lst.st_size != live_size \
            or (bst.st_dev, bst.st_ino) == (lst.st_dev, lst.st_ino) or open_paths((backup_path, live_path)):
        return False
    target = backup_path[: -len(BACKUP_SUFFIX)]
    try:
        if target != live_path:
            rename_noreplace(backup_path, target)
            fsync_dir(os.path.dirname(target))
        os.unlink(live_path)
        fsync_dir(os.path.dirname(live_path))
        if target == live_path:
            rename_noreplace(backup_path, target)
            fsync_dir(os.path.dirname(target))
    except OSError as exc:
        log.warning("could not put the backup %s back in place of %s: %s", backup_path, live_path, exc)
        return False
    log.info("put the backup %s back in place of %s", backup_path, live_path)
    return True


def drop_redundant(path: str, keep: str, *, verify: bool = False, rename_to: Optional[str] = None) -> bool:
    """Remove `path`, a copy made redundant by the identical `keep` (or, with rename_to, turn it into that
    name: an array original next to an identical pool copy becomes its backup). True if done.

    Refused (False, reason logged) unless both are regular files (not symlinks), not the same file (inode),
    of the same size with mtimes within COPY_MTIME_SLACK_NS, with `verify` of the same blake2b, and neither is
    open; and, with rename_to, that name is free. The checks are repeated after hashing so a file changed
    meanwhile is not dropped. An unlink, like a no-replace rename, is atomic: a crash leaves either both
    files or `keep` alone (resp. `keep` and rename_to), never an ambiguous state, so no journal is needed.
    An OSError (e.g. permission denied) also answers False, with the error logged.
    """
    why = _drop_refusal(path, keep, verify)
    if why is None and rename_to is not None and os.path.lexists(rename_to):
        why = f"{rename_to} already exists"
    if why is not None:
        log.info("not dropping %s (kept: %s): %s", path, keep, why)
        return False
    try:
        if rename_to is None:
            os.unlink(path)
        else:
            rename_noreplace(path, rename_to)
            if os.path.dirname(rename_to) != os.path.dirname(path):
                fsync_dir(os.path.dirname(rename_to))
        fsync_dir(os.path.dirname(path))
    except OSError as exc:
        log.warning("could not drop the redundant copy %s: %s; both copies are still there", path, exc)
        return False
    log.info("dropped the redundant copy %s (identical to %s)%s", path, keep,
             f"; it is now {rename_to}" if rename_to else "")
    return True


def _drop_refusal(path: str, keep: str, verify: bool) -> Optional[str]:
    """Why `path` may not be dropped in favour of `keep`, or None."""
    st, kst = lstat_or_none(path), lstat_or_none(keep)
    if st is None or kst is None:
        return "one of the copies is gone"
    why = _identical_by_stat(st, kst)
    if why is not None:
        return why
    if open_paths((path, keep)):
        return "one of the copies is open (being played?)"
    if verify:
        if fastcopy.hash_file(path) != fastcopy.hash_file(keep):
            return "the contents differ (blake2b)"
        again, kagain = lstat_or_none(path), lstat_or_none(keep)
        if again is None or kagain is None or not _same_stat(st, again) or not _same_stat(kst, kagain):
            return "a copy changed while it was being compared"
    return None


def _identical_by_stat(st: os.stat_result, kst: os.stat_result) -> Optional[str]:
    if not stat.S_ISREG(st.st_mode) or not stat.S_ISREG(kst.st_mode):
        return "not both regular files"
    if (st.st_dev, st.st_ino) == (kst.st_dev, kst.st_ino):
        return "they are the same file (one inode), not two copies"
    if st.st_size != kst.st_size:
        return f"sizes differ ({st.st_size} vs {kst.st_size} bytes)"
    if abs(st.st_mtime_ns - kst.st_mtime_ns) > COPY_MTIME_SLACK_NS:
        return "modification times differ"
    return None


def _same_stat(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns)


REMOVED = "removed"  # discard_copy: the copy held the same bytes as the one kept, and is gone
SET_ASIDE = "set-aside"  # discard_copy: the copy differed, and is kept as NAME.plexcache-discarded


def discard_copy(path: str, keep: str) -> tuple[Optional[str], str]:
    """A person chose `keep` among several live copies of one file; `path` is another of them. Returns
    (REMOVED or SET_ASIDE, where it went) when done, (None, why not) when refused.

    Nothing is lost either way: `path` is removed only when its bytes hash equal to `keep`'s; a copy that
    differs (or whose size already differs) is renamed aside to NAME.plexcache-discarded on its own disk,
    never replacing a file of that name. `keep` is only ever read. Refused unless both are regular files, two
    inodes, neither open, and neither changed while they were compared. Each change is one unlink or one
    no-replace rename: a crash leaves the copy at its name or gone (identical) or at its new name, with no
    journal record needed for the files (a caller whose books follow the change uses Mover.discard, which
    journals it for them); an OSError answers a refusal, both copies kept.
    """
    st, kst = lstat_or_none(path), lstat_or_none(keep)
    if st is None or kst is None or not stat.S_ISREG(st.st_mode) or not stat.S_ISREG(kst.st_mode):
        return None, "one of the copies is gone or not a regular file"
    if (st.st_dev, st.st_ino) == (kst.st_dev, kst.st_ino):
        return None, "they are the same file (one inode), not two copies"
    if open_paths((path, keep)):
        return None, "one of the copies is open (being played?)"
    same = st.st_size == kst.st_size and fastcopy.hash_file(path) == fastcopy.hash_file(keep)
    crash_point("discard.hashed")
    again, kagain = lstat_or_none(path), lstat_or_none(keep)
    if again is None or kagain is None or not _same_stat(st, again) or not _same_stat(kst, kagain):
        return None, "a copy changed while it was being compared"
    aside = path + DISCARDED_SUFFIX
    try:
        if same:
            os.unlink(path)
        else:
            aside = _set_aside(path)
        fsync_dir(os.path.dirname(path))
    except OSError as exc:
        log.warning("could not discard the copy %s (kept: %s): %s; both copies are still there", path, keep, exc)
        return None, f"{exc.strerror or exc}"
    crash_point("discard.removed" if same else "discard.set-aside")
    if same:
        log.info("removed %s: the same bytes as the copy kept, %s", path, keep)
        return REMOVED, path
    log.info("set %s aside as %s: it differs from the copy kept, %s", path, aside, keep)
    return SET_ASIDE, aside


def _set_aside(path: str) -> str:
    """Rename `path` to the first free NAME[.N].plexcache-discarded beside it (never over a file); its name."""
    for n in range(1, 100):
        aside = path + (f".{n}" if n > 1 else "") + DISCARDED_SUFFIX
        try:
            rename_noreplace(path, aside)
            return aside
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "99 copies set aside already; remove some", path)


def drop_partial(temp: str, copies: list[str]) -> tuple[bool, str]:
    """Remove a temporary copy no operation names any more (a kill mid-copy left it, perhaps carried to
    another disk by Unraid's mover), once its bytes are proved to be the start of one of `copies`, a
    complete copy of the same file: then it holds nothing that is not elsewhere. Returns (done, what or
    why not). Refused for a name that is not a temporary copy's, an open or changing file, or when no copy
    starts with its bytes. One unlink: a crash leaves it there or gone."""
    st = lstat_or_none(temp)
    if not is_temp_name(os.path.basename(temp)) or st is None or not stat.S_ISREG(st.st_mode):
        return False, f"{temp} is not a temporary copy"
    if open_paths([temp, *copies]):
        return False, "a copy is open (being written or played?)"
    digest = fastcopy.hash_file(temp)
    whole = next((c for c in copies if _starts_with(c, st.st_size, digest)), None)
    again = lstat_or_none(temp)
    if whole is None:
        return False, "no complete copy starts with its bytes; it is kept"
    if again is None or not _same_stat(st, again):
        return False, f"{temp} changed while it was compared"
    try:
        os.unlink(temp)
        fsync_dir(os.path.dirname(temp))
    except OSError as exc:
        return False, f"{exc.strerror or exc}"
    crash_point("leftover.removed")
    log.info("removed the partial copy %s: its bytes are the start of %s", temp, whole)
    return True, f"removed {temp}: its {st.st_size} bytes are the start of {whole}"


def _starts_with(path: str, size: int, digest: str) -> bool:
    cst = lstat_or_none(path)
    if cst is None or not stat.S_ISREG(cst.st_mode) or cst.st_size < size:
        return False
    try:
        return fastcopy.hash_file(path, limit=size) == digest
    except OSError:
        return False
