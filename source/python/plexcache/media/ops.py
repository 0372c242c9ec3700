"""What a media operation is and how it can fail: the operations the mover runs (copy to the pool, move
back), their results, and the errors each step raises. Plain records: they are written to the journal and
read back by recovery."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional, Protocol, Union

from plexcache.errors import PlexCacheError

AUTO = "auto"  # RestoreOp.backup_path default: NAME.plexcached next to the array path, if it exists
CRITICAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO})

# (label of the file, bytes done, bytes total)
ProgressFn = Callable[[str, int, int], None]


class StopSignal(Protocol):
    """What the lanes ask between files and while copying (runctl.StopFlag)."""

    def requested(self) -> bool: ...


class ProgressSink(Protocol):
    """Where the lanes report each file and its bytes (runctl.ProgressWriter, session.Progress)."""

    def file_started(self, label: str) -> None: ...

    def on_bytes(self, label: str, done: int, total: int) -> None: ...

    def file_done(self, label: str, size: int) -> None: ...


# ----------------------------------------------------------------------------------------------- errors

class MoveError(PlexCacheError):
    """A file operation did not happen. Whatever it had started was undone; the original is untouched."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


class MoveRefused(MoveError):
    """The operation was refused before anything was touched (or undone at once), for `reason`:

    hardlinked, not_a_file, source_missing, size_mismatch, changed (the file changed while being copied),
    target_exists, backup_exists, no_share_dir, name_too_long, lost (no copy left to restore from).
    """

    def __init__(self, message: str, path: str, reason: str) -> None:
        super().__init__(message, path)
        self.reason = reason


class MoveFailed(MoveError):
    """An unexpected I/O error or a failed verification; the operation was rolled back."""

    def __init__(self, message: str, path: str, errno_: Optional[int] = None) -> None:
        super().__init__(message, path)
        self.errno = errno_


class CopyStopped(MoveError):
    """A stop was asked for while a file was being copied: the partial copy was undone like any failed
    copy, and the file is where it was before (a large file need not finish before a run can stop)."""


class CriticalIOError(MoveError):
    """Disk full, permission denied, read-only or failing disk: the run must stop (and notify).

    The partial copy was removed and the original left untouched before this was raised.
    """

    def __init__(self, message: str, path: str, errno_: int) -> None:
        super().__init__(message, path)
        self.errno = errno_


# -------------------------------------------------------------------------------------------- operations

@dataclass(frozen=True)
class RecordedCopy:
    """What a file looked like when it was cached: restore compares the backup and the pool copy to it."""

    size: int
    mtime_ns: int
    blake2b: Optional[str] = None

    def matches(self, st: os.stat_result) -> bool:
        # exact: the copy got the original's mtime to the nanosecond (every pool filesystem keeps ns), and
        # an in-place edit within the same second must still count as a change
        return st.st_size == self.size and st.st_mtime_ns == self.mtime_ns


@dataclass(frozen=True)
class CacheOp:
    """Copy a video (and its sidecars) from an array disk to the pool.

    sidecars: (array_path, pool_path) pairs, in the same order as the main paths.
    expected_size: refuse if the array file has another size (e.g. still being written).
    key: the caller's identity for the item (e.g. its /mnt/user path); echoed in results and progress.
    disk: the array disk (e.g. "disk3") for scheduling; derived from the device number when None.
    """

    array_path: str
    pool_path: str
    sidecars: Sequence[tuple[str, str]] = ()
    expected_size: Optional[int] = None
    key: Optional[str] = None
    disk: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sidecars", tuple((str(a), str(p)) for a, p in self.sidecars))

    @property
    def label(self) -> str:
        return self.key or self.array_path


@dataclass(frozen=True)
class RestoreOp:
    """Move a cached video (and its sidecars) back from the pool to its array disk.

    backup_path: where the array original was kept; AUTO (default) means array_path + ".plexcached" for
    every file of the op, used if present; None means no backups are expected (any file there is left
    alone). sidecars: (pool_path, array_path) pairs, in the same order as the main paths.
    recorded: RecordedCopy returned when the files were cached, keyed by pool path. The backup is renamed
    back only when it and the pool copy both still match them; without them, when the two match each other.
    confirmed: RecordedCopy of pool copies shown to be complete replacements (Plex lists that file with that
    size, or the user chose to keep it), keyed by pool path. A pool copy that matches neither `recorded`
    (or, without a record, its backup) nor `confirmed` is refused (`mismatch`): both copies stay.
    keep_original: pool paths whose backup the user chose to put back whatever the pool copy holds; the
    pool copy is removed only once the original is back at its name.
    keep_backup: pool paths (subtitles: Plex lists no sizes to confirm them by) whose changed, unconfirmed
    copy is moved back anyway, with its backup kept beside it rather than refused (`mismatch`): nothing is
    deleted, and `audit` shows the pair as a stray backup for a person to choose.
    made_dirs: pool directories plexcache-r created when caching (OpResult.made_dirs / Recovered.made_dirs,
    of this op or of others). Once the pool copies are gone, each of them that is an ancestor of one of this
    op's pool paths, below the share's own folder, not a mount point and empty, is removed (deepest first).
    Passing more (e.g. every directory the caller ever saw created) is safe: the rest are ignored.
    """

    pool_path: str
    array_path: str
    backup_path: Optional[str] = AUTO
    sidecars: Sequence[tuple[str, str]] = ()
    recorded: Mapping[str, RecordedCopy] = field(default_factory=dict)
    key: Optional[str] = None
    disk: Optional[str] = None
    made_dirs: Sequence[str] = ()
    confirmed: Mapping[str, RecordedCopy] = field(default_factory=dict)
    keep_original: Sequence[str] = ()
    keep_backup: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sidecars", tuple((str(p), str(a)) for p, a in self.sidecars))
        object.__setattr__(self, "made_dirs", tuple(str(d) for d in self.made_dirs))
        object.__setattr__(self, "keep_original", tuple(str(p) for p in self.keep_original))
        object.__setattr__(self, "keep_backup", tuple(str(p) for p in self.keep_backup))

    @property
    def label(self) -> str:
        return self.key or self.array_path


Op = Union[CacheOp, RestoreOp]


@dataclass(frozen=True)
class DiscardOp:
    """Give up a managed file's copy (`path`, e.g. its cached copy) for another copy of it a person chose to
    keep (`keep`, e.g. a different array file): the copy is removed when its bytes are the same, else set
    aside (media.tidy.discard_copy), and the caller no longer manages the file.

    The copy goes in one atomic step, but the caller records the end of its management only when it saves
    its books: the journal holds the step in between, and recovery reports it (outcome `discarded`) once the
    copy has left its name, until the caller's books are saved and checkpointed.
    key: the caller's identity for the managed file (its /mnt/user path)."""

    path: str
    keep: str
    key: Optional[str] = None

    @property
    def label(self) -> str:
        return self.key or self.path


DISCARDED = "discarded"  # Recovered.outcome of a DiscardOp whose copy left its name


@dataclass
class MovedFile:
    """One file of a finished operation, for the registry.

    For a cache: where it now lives on the pool, where the original was kept (backup_path, None when
    backups are off) and the RecordedCopy to hand back in RestoreOp.recorded. For a restore: the array path
    it is back at; backup_path is None, or names a backup deliberately left in place (it differed from
    the pool copy and no record said which one is newer: `audit` reports it as an orphaned backup).
    """

    array_path: str
    pool_path: str
    backup_path: Optional[str]
    facts: RecordedCopy
    how: str = "copy"  # copy | rename (restore from the backup)


@dataclass
class OpResult:
    """Outcome of one operation run by run_ops (Mover.cache/restore return it on success, raise otherwise).

    outcome: cached | restored | refused | failed | critical | not_started (stop requested or run halted).
    made_dirs: (cache) pool directories this op created, top-down: keep them (e.g. in the registry) and
    hand them back as RestoreOp.made_dirs so the move back can remove them once empty.
    removed_dirs: (restore) the empty pool directories the move back removed.
    """

    op: Op
    outcome: str
    files: list[MovedFile] = field(default_factory=list)
    bytes_copied: int = 0
    seconds: float = 0.0
    error: Optional[MoveError] = None
    made_dirs: list[str] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)


@dataclass
class Recovered:
    """What recovery did with one interrupted operation.

    outcome: cached (finished: the files are on the pool), restored (finished: back on the array),
    discarded (a DiscardOp's copy left its name: the caller forgets op.key), rolled_back (undone: the
    files are where they were before the op started), mixed (some files each side; `files` lists all,
    detail names the ones at the destination), failed (could not be repaired now; the journal record stays
    and the next recovery tries again; detail says why).

    An operation that had already finished (its done record waits for Journal.checkpoint()) is reported
    the same way as one recovery finishes now (`earlier` is True): apply it to the registry idempotently.
    made_dirs: (cache) the pool directories the op created that still exist, as OpResult.made_dirs.
    """

    op_id: str
    op: Optional[Union[Op, DiscardOp]]  # None only for an unreadable journal record
    outcome: str
    files: list[MovedFile] = field(default_factory=list)
    detail: str = ""
    earlier: bool = False  # finished before this recovery (a done record not yet checkpointed)
    made_dirs: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The op's key, else its array path (a discard: the copy it gives up), else (unreadable record) the
        op id."""
        if self.op is None:
            return self.op_id
        return self.op.label


@dataclass
class OpsOutcome:
    """What run_ops did: one OpResult per op (input order), and why it ended early, if it did."""

    results: list[OpResult]
    stopped: bool = False
    critical: Optional[CriticalIOError] = None
