"""What every command that may move media holds, in one order: the run lock, a cleared stop flag, the
environment check, progress; then the books (registry, history, the disks) with the journal's interrupted
operations recovered into them, a mover, and at the end the books saved, the journal checkpointed and the
mover's ignore list rewritten. Used by run, evict, recover and the audit's fixes (docs/architecture.md).
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Optional

from plexcache import exclusions, runs
from plexcache.config import Settings
from plexcache.errors import EnvironmentRefuses
from plexcache.layout import journal_dir
from plexcache.media.journal import Journal
from plexcache.media.mover import Mover, recover
from plexcache.media.ops import DISCARDED, MovedFile, Recovered
from plexcache.runctl import ProgressWriter, RunLock, StopFlag
from plexcache.state import ActivityHistory, Entry, Registry, StateStore
from plexcache.unraid import Unraid, check_environment, environment_problems

log = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, Any]], None]


class Progress:
    """ProgressWriter plus an optional callback (the CLI's terminal bar), throttled to ~5 a second."""

    def __init__(self, writer: Optional[ProgressWriter], callback: Optional[ProgressCallback]) -> None:
        self.writer = writer
        self.callback = callback
        self._last = 0.0

    def _tell(self, force: bool = False) -> None:
        if self.callback is None or self.writer is None:
            return
        now = time.monotonic()
        if force or now - self._last >= 0.2:
            self._last = now
            self.callback(dict(self.writer.doc))

    def phase(self, name: str) -> None:
        if self.writer:
            self.writer.phase(name)
        self._tell(force=True)

    def totals(self, files: int, size: int) -> None:
        if self.writer:
            self.writer.totals(files, size)
        self._tell(force=True)

    def file_started(self, label: str) -> None:
        if self.writer:
            self.writer.file_started(label)
        self._tell()

    def on_bytes(self, label: str, done: int, total: int) -> None:
        if self.writer:
            self.writer.on_bytes(label, done, total)
        self._tell()

    def file_done(self, label: str, size: int) -> None:
        if self.writer:
            self.writer.file_done(label, size)
        self._tell()

    def close(self) -> None:
        if self.writer:
            self.writer.close()


class Books:
    """The registry, the activity history and the disks as one command reads them at its start, and what
    recovery and the end of the command write back."""

    def __init__(self, settings: Settings, now: float, registry: Optional[Registry] = None) -> None:
        self.settings = settings
        self.now = now
        self.store = StateStore(settings)
        self.registry: Registry = self.store.load_registry() if registry is None else registry
        self.history: ActivityHistory = self.store.load_history()
        self.unraid = Unraid.load(settings)

    def roots(self) -> list[str]:
        """Every disk and pool mount a file of ours may be on (or be carried to by Unraid's mover)."""
        return self.unraid.roots(e.pool for e in self.registry.entries.values())

    def journal(self) -> Journal:
        return Journal(journal_dir(self.settings))

    def new_mover(self, verify: bool = False) -> Mover:
        """The journaled mover, with the settings' policy (verify: also when the command asks for it)."""
        cache = self.settings.cache
        return Mover(self.journal(), backups=cache.backups, verify=cache.verify or verify,
                     allow_hardlinked=cache.hardlinks == "copy", roots=self.roots())

    def event(self, kind: str, path: str, detail: str) -> None:
        """A history event that is not a file moved by this command (recovered, adopted, dropped, ...)."""
        self.history.add(kind, path, self.now, detail=detail)
        log.info("%s: %s: %s", kind, path, detail)

    def recover(self, warnings: list[str]) -> list[Recovered]:
        """Finish or roll back interrupted operations and bring the registry in line with the outcome.

        Also re-applies operations that finished before the last registry save (a command killed in between):
        the journal keeps them until save() checkpoints it. Applying one twice changes nothing, and they
        come in the order they began, so a file cached and then moved back ends up forgotten."""
        results = recover(self.journal(), self.roots())
        for rec in results:
            self._record_recovered(rec, warnings)
        return results

    def _record_recovered(self, rec: Recovered, warnings: list[str]) -> None:
        key, earlier = rec.key, rec.earlier
        if rec.outcome == "cached" and rec.files:
            if key in self.registry:
                return  # recorded already (killed after the save, before the checkpoint)
            entry = entry_from_moved(self, key, rec.files, None, None)
            entry.made_dirs = list(rec.made_dirs)
            self.registry.add(entry)
            self.event("recovered", key, detail="recorded a cache that finished just before the run "
                       "was interrupted" if earlier else "finished an interrupted cache")
        elif rec.outcome == "restored":
            # forget, not remove: a subtitle moved back alone (its video stays cached) leaves its video's entry
            if not self.registry.forget(key) and earlier:
                return
            self.event("recovered", key, detail="recorded a move back that finished just before the run "
                       "was interrupted" if earlier else "finished an interrupted move back")
        elif rec.outcome == DISCARDED:
            # the person kept another copy of the file and its cached copy went: no longer managed
            if not self.registry.forget(key) and earlier:
                return
            self.event("recovered", key, detail="recorded that the file is no longer managed: its cached copy "
                       "was given up for the copy kept" + ("" if earlier else " when the fix was interrupted"))
        elif rec.outcome in ("failed", "mixed"):
            # mixed: some files of the op ended on each side (another program deleted files meanwhile);
            # every file still has its one complete copy, and `audit` shows where.
            warnings.append(f"interrupted operation on {key} ({rec.outcome}): {rec.detail}")
            log.warning("interrupted operation on %s (%s): %s", key, rec.outcome, rec.detail)
        else:
            self.event("recovered", key, detail="rolled back an interrupted operation")

    def save(self, *, registry: bool = True, history: bool = True, relist: bool = True,
             checkpoint: bool = True) -> None:
        """Write what changed: registry, history, the ignore list (each file only when its content changed);
        then let the journal forget the operations these now record."""
        if registry:
            self.store.save_registry(self.registry)
        if history:
            self.store.save_history(self.history)
        if relist:  # the list is a function of the registry
            exclusions.write(self.settings, self.registry)
        # Only now may the journal forget the operations finished so far: registry and ignore list record
        # them durably. A kill before this line is repaired by recover() re-applying them.
        if checkpoint:
            self.journal().checkpoint()


def entry_from_moved(books: Books, key: str, files: list[MovedFile], item: Any,
                     disk: Optional[str]) -> Entry:
    """The registry entry for a file the mover cached (and its subtitles), from what it recorded; the
    demand of the plan item (or of the entry it replaces) is kept."""
    settings, old = books.settings, books.registry.get(key)
    share, _, rel = key[len(settings.paths.user_root.rstrip("/")) + 1:].partition("/")
    main = files[0]
    pool = Path(main.pool_path).relative_to(settings.paths.pool_root).parts[0]
    user_dir = os.path.dirname(key)
    recorded = {}
    sidecars = []
    for i, f in enumerate(files):
        user_path = key if i == 0 else os.path.join(user_dir, os.path.basename(f.pool_path))
        if i:
            sidecars.append(user_path)
        recorded[user_path] = {"size": f.facts.size, "mtime_ns": f.facts.mtime_ns, "blake2b": f.facts.blake2b}
    reasons = list(item.reasons) if item is not None else (old.reasons if old else [])
    wanted = item.wanted if item is not None else None
    return Entry(path=key, share=share, rel=rel, pool=pool,
                 disk=disk or disk_of(main.array_path, books.unraid), size=main.facts.size,
                 mtime=main.facts.mtime_ns / 1e9, cached_at=books.now, last_wanted_at=books.now if item else None,
                 users=sorted({r.user for r in reasons}), reasons=reasons,
                 title=wanted.item.title if wanted else (old.title if old else ""),
                 library=wanted.item.library if wanted else (old.library if old else ""),
                 kind=wanted.item.kind if wanted else (old.kind if old else ""),
                 pinned=key in books.registry.pins, sidecars=sidecars, backup=main.backup_path is not None,
                 rating_key=wanted.item.rating_key if wanted else (old.rating_key if old else ""),
                 recorded=recorded)


def disk_of(array_path: str, unraid: Unraid) -> Optional[str]:
    """The array disk whose mount holds this path."""
    for name, mount in unraid.disks:
        if array_path.startswith(mount.rstrip("/") + "/"):
            return name
    return None


# What the run history keeps of a command's outcome (the last-run fields that fit in one line of history).
RUN_FIELDS = ("exit_code", "cached", "moved_back", "failed", "skipped", "bytes_cached", "bytes_moved_back",
              "message", "managed_bytes", "files", "fixed", "recovered", "dry_run")

# A command keeps the registry (tens of thousands of long-lived objects for 10,000 files) for its whole life and
# makes few reference cycles; at Python's default threshold the collector rescans that registry hundreds of times,
# a fifth of a no-op run's CPU (bench/noop_run.py). While a session holds, it collects far less often.
SESSION_GC_THRESHOLD = (50_000, 20, 100)


class Session:
    """`with Session(settings, action) as session:` holds the run lock with the stop flag cleared, the
    environment checked and progress reported, until the block ends (the lock is released on any exit)."""

    def __init__(self, settings: Settings, action: str, *, dry_run: bool = False, check: bool = True,
                 before_mover: bool = False, report_progress: bool = True,
                 on_progress: Optional[ProgressCallback] = None) -> None:
        self.settings = settings
        self.action = action
        self.dry_run = dry_run
        self.check = check and not dry_run
        self.before_mover = before_mover
        self.report_progress = report_progress
        self.on_progress = on_progress
        self.lock = RunLock(settings.paths.volatile_dir)
        self.stop = StopFlag(settings.paths.volatile_dir)
        self.progress = Progress(None, None)
        self._gc_threshold = gc.get_threshold()
        self.kind = action
        self.run_id = ""
        self.started_at = 0.0
        self.outcome: Optional[dict[str, Any]] = None

    def finished(self, outcome: dict[str, Any], registry: Optional[Registry] = None) -> None:
        """What the command did (exit_code, counts, bytes, message), for the run history; `registry`: the
        registry after it, whose bytes on the pool the history's chart draws."""
        self.outcome = dict(outcome)
        if registry is not None:
            self.outcome.update(managed_bytes=registry.managed_bytes(), files=len(registry))

    def __enter__(self) -> Session:
        self.lock.acquire()
        gc.set_threshold(*SESSION_GC_THRESHOLD)
        try:
            self.stop.clear()
            if self.check:
                _check(self.settings, self.before_mover)
        except BaseException:
            self._release()
            raise
        self.started_at = time.time()
        self.run_id = runs.begin(self.started_at)
        if self.report_progress:
            writer = ProgressWriter(self.settings.paths.volatile_dir, self.action)
            writer.doc["run_id"] = self.run_id
            self.progress = Progress(writer, self.on_progress)
        return self

    def __exit__(self, kind: Optional[type[BaseException]], error: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        try:
            self.progress.close()
            self._record(error)
        finally:
            runs.end()
            self._release()

    def _release(self) -> None:
        gc.set_threshold(*self._gc_threshold)
        self.lock.release()

    def _record(self, error: Optional[BaseException]) -> None:
        """One line of the run history: what the command said it did, or how it ended without saying."""
        outcome = self.outcome or {"exit_code": getattr(error, "exit_code", 1) if error is not None else 0,
                                   "message": str(error) if error is not None else ""}
        if isinstance(error, KeyboardInterrupt):
            outcome = {**outcome, "exit_code": 5, "message": "interrupted"}
        runs.record(self.settings, {"id": self.run_id, "kind": self.kind, "dry_run": self.dry_run,
                                    "started_at": self.started_at, "finished_at": time.time(),
                                    **{k: v for k, v in outcome.items() if k in RUN_FIELDS}})


def _check(settings: Settings, before_mover: bool) -> None:
    if not before_mover:
        check_environment(settings)
        return
    # Called by the mover's own before-hook: the mover waits for us, so only the other checks apply.
    problems = [p for p in environment_problems(settings) if "mover" not in p]
    if problems:
        raise EnvironmentRefuses(problems[0])
