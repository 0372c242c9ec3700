"""Where plexcache-r keeps things and what it names them: the suffixes of its copies on the media disks, its own
files under the state and volatile folders, and how close two modification times must be to count as one.

Every other module asks here, so a name or a path is defined once (docs/architecture.md, "Contracts").
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Optional

# ------------------------------------------------------------------ names beside media files

BACKUP_SUFFIX = ".plexcached"  # NAME.plexcached: the array original kept while its copy is on the pool
TMP_SUFFIX = ".plexcache-tmp"  # .NAME.plexcache-tmp: a copy being written, renamed into place when complete
DISCARDED_SUFFIX = ".plexcache-discarded"  # NAME.plexcache-discarded: a copy a person chose not to keep
NAME_MAX = 255  # bytes in one file name on the filesystems Unraid uses (XFS, Btrfs, ZFS)


def temp_name(path: str) -> str:
    """The hidden temporary name beside `path` (same folder, so the final rename is atomic); hashed when the
    name would be longer than a file name may be."""
    directory, name = os.path.split(path)
    tmp = f".{name}{TMP_SUFFIX}"
    if len(os.fsencode(tmp)) > NAME_MAX:
        tmp = f".{hashlib.blake2b(os.fsencode(name), digest_size=12).hexdigest()}{TMP_SUFFIX}"
    return os.path.join(directory, tmp)


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def temp_target(rel: str) -> Optional[str]:
    """The file a temporary copy's path belongs to (dir/.NAME.plexcache-tmp -> dir/NAME), or None. A hashed
    temp name (a very long file name) answers the hash: it is still reported as a leftover of something."""
    head, name = os.path.split(rel)
    if not is_temp_name(name):
        return None
    return os.path.join(head, name[1: -len(TMP_SUFFIX)])


# ------------------------------------------------------------------ the program's own files

# durable, under paths.state_dir (on the flash: each written at most once per run)
REGISTRY_FILE = "registry.json"
HISTORY_FILE = "history.json"
LAST_RUN_FILE = "last_run.json"
RUNS_FILE = "runs.json"  # the run history and the daily figures (runs.py)
PINNED_TITLES_FILE = "pinned_titles.json"  # movies, shows and seasons pinned by rating key (titles.py)
JOURNAL_DIR = "journal"

# volatile, under paths.volatile_dir (tmpfs: gone at reboot)
LOCK_NAME = "run.lock"
LIVE_LOCK_NAME = "live.lock"
STOP_NAME = "stop"
PROGRESS_NAME = "progress.json"
LIVE_STATE_NAME = "live.json"
RECORD_LOCK_NAME = "runs.lock"  # held a moment while the run history is changed
PENDING_PLAYS_NAME = "plays.json"  # plays live mode saw since the last run, not yet in the run history


def journal_dir(settings: Any) -> str:
    """The mover's journal: <paths.state_dir>/journal (durable, survives reboots)."""
    return os.path.join(settings.paths.state_dir, JOURNAL_DIR)


def live_state_path(settings: Any) -> Path:
    """Live mode's heartbeat and what it last saw (written by live mode, read by status and the pages)."""
    return Path(settings.paths.volatile_dir) / LIVE_STATE_NAME


# ------------------------------------------------------------------ modification times

# Two copies of one file may differ in mtime by up to this: copies made by other tools (and some filesystems)
# keep the time only to the second. Used to call two copies the same file (with equal sizes), never alone.
COPY_MTIME_SLACK_NS = 1_000_000_000

# The registry stores a managed file's mtime as float seconds (JSON): a pool copy counts as replaced in place
# when its mtime moved by at least this much, so the float's rounding is never taken for a change.
CHANGED_MTIME_S = 1.0
