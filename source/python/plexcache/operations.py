"""Building the mover's operations from a plan and applying their outcomes to the registry and history;
listing what is about to be cached before copying starts."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional

from plexcache import exclusions
from plexcache.config import Settings
from plexcache.media.lanes import run_ops
from plexcache.media.ops import AUTO, CacheOp, MovedFile, Op, OpResult, RecordedCopy, RestoreOp
from plexcache.planner import CACHE, MOVE_BACK, SKIP, Plan, PlanItem
from plexcache.reconcile import _mtime, _size
from plexcache.runctl import StopFlag
from plexcache.runstate import RunState
from plexcache.session import entry_from_moved
from plexcache.state import Entry
from plexcache.words import describe_reasons, human_bytes

log = logging.getLogger(__name__)
SKIPPED_REFUSALS = ("hardlinked", "changed")  # refused for a reason that is not a failure: try next run


class Operations(RunState):
    """Carries out a plan through the mover and records what happened."""

    def execute(self, p: Plan) -> None:
        """Carry out the plan's move-backs (first: they free room) and caches through the mover."""
        for item in p.of(MOVE_BACK):
            if item.release:
                self.registry.remove(item.path)
                self._done("released", item.path, item.size, "released to the mover", item.why)
        ops: list[Op] = [op for op in (self._restore_op(i.path) for i in p.of(MOVE_BACK) if not i.release)
                               if op is not None]
        ops += self.left_behind
        ops += [op for op in (self._cache_op(i.path, i.size) for i in p.of(CACHE)) if op is not None]
        if not ops:
            return
        self.progress.phase("copying")
        self.progress.totals(len(ops), sum(i.size for i in p.items if i.action in (CACHE, MOVE_BACK)))
        engine_mover = self.books.new_mover()
        wanted = {i.path: i for i in p.items if i.action in (CACHE, MOVE_BACK)}
        outcome = run_ops(ops, self.settings.cache.workers, engine_mover,
                          stop=StopFlag(self.settings.paths.volatile_dir), progress=self.progress)
        for result in outcome.results:
            self._apply(result, wanted)
        if outcome.critical is not None:
            self.report.warnings.append(f"stopped early: {outcome.critical}")
        if outcome.stopped:
            self.report.exit_code = 5

    def _restore_op(self, path: str) -> Optional[RestoreOp]:
        entry = self.registry.get(path)
        if entry is None or entry.disk is None:
            return None
        root = self.settings.paths.pool_root
        array = self.unraid.disk_path(entry.disk, entry.share, entry.rel)
        if not os.path.isdir(os.path.join(dict(self.unraid.disks).get(entry.disk, "/nonexistent"), entry.share)):
            self._fail(path, f"array disk {entry.disk} (or its {entry.share} folder) is not there")
            return None
        sidecars = []
        for side in entry.sidecars:
            rel = side[len(self.settings.paths.user_root.rstrip("/")) + 1:].partition("/")[2]
            sidecars.append((str(Path(root) / entry.pool / entry.share / rel),
                             self.unraid.disk_path(entry.disk, entry.share, rel)))
        return RestoreOp(entry.pool_path(root), array, AUTO if entry.backup else None, sidecars,
                         pool_facts(self.settings, entry, entry.recorded), key=path, disk=entry.disk,
                         made_dirs=self._made_dirs_above(entry),
                         confirmed=pool_facts(self.settings, entry, entry.confirmed),
                         keep_backup=[pool for pool, _ in sidecars])  # see unconfirmed_copies

    def _made_dirs_above(self, entry: Entry) -> list[str]:
        """Every folder plexcache-r created above this file, whichever file's caching created it: the season
        folder made for the first episode is removed when the last one leaves (the mover skips non-empty ones)."""
        if self._made_dirs is None:
            self._made_dirs = {d for e in self.registry.entries.values() for d in e.made_dirs}
        pool_path = entry.pool_path(self.settings.paths.pool_root)
        return sorted(d for d in self._made_dirs if pool_path.startswith(d.rstrip("/") + "/"))

    def _cache_op(self, path: str, size: int) -> Optional[CacheOp]:
        loc = self.locate(path)
        if not (loc.on_array and loc.pool_path):
            self._fail(path, "the array original is no longer where it was found")
            return None
        sidecars = [(a, p) for a, p in self._sidecars(loc) if not os.path.lexists(p)]
        return CacheOp(loc.array_path, loc.pool_path, sidecars, expected_size=size, key=path, disk=loc.disk)

    def _apply(self, result: OpResult, planned: dict[str, Any]) -> None:
        key = result.op.key or result.op.array_path
        if result.outcome == "cached":
            item = planned.get(key)
            entry = self._entry_from_moved(key, result.files, item, self.locate(key).disk)
            entry.made_dirs = list(result.made_dirs)
            self.registry.add(entry)
            self.report.cached += 1
            self.report.bytes_cached += entry.size
            self._done("cached", key, entry.size, "cached", _why(item))
        elif result.outcome == "restored":
            gone = self.registry.remove(key)
            size = gone.size if gone else sum(f.facts.size for f in result.files)
            self.report.moved_back += 1
            self.report.bytes_moved_back += size
            self._done("moved_back", key, size, "moved back to the array", _why(planned.get(key)))
            for kept in (f for f in result.files if f.backup_path):  # a replaced subtitle (RestoreOp.keep_backup)
                self.report.warnings.append(f"{kept.array_path} was replaced on the pool and moved back as it is; "
                                            f"the old one is kept beside it as {kept.backup_path}: run "
                                            "`plexcache-r audit` to choose")
        elif result.outcome == "refused" and getattr(result.error, "reason", "") == "mismatch":
            self.report.skipped += 1  # both copies kept: a person chooses in the audit
            self.report.warnings.append(str(result.error))
            self.history.add("skipped", key, self.now, detail=str(result.error))
            log.warning("held on the pool: %s", result.error)
        elif result.outcome == "refused" and getattr(result.error, "reason", "") in SKIPPED_REFUSALS:
            self.report.skipped += 1
            self.history.add("skipped", key, self.now, detail=str(result.error))
            log.info("skipped: %s (%s): %s", key, human_bytes(_op_size(result.op)), result.error)
        elif result.outcome in ("refused", "failed", "critical"):
            self._fail(key, str(result.error))

    def _entry_from_moved(self, key: str, files: list[MovedFile], item: Any, disk: Optional[str]) -> Entry:
        return entry_from_moved(self.books, key, files, item, disk)

    def adopt(self, p: Plan) -> None:
        """Files that were already on the pool and are wanted become managed (no file is touched)."""
        for item in p.items:
            if item.adopt and item.wanted is not None:
                w = item.wanted
                loc = self.locate(w.path)
                self.registry.add(Entry(path=w.path, share=w.share, rel=w.rel, pool=loc.pool, disk=None,
                                        size=item.size, mtime=_mtime(loc.pool_path), cached_at=self.now,
                                        last_wanted_at=self.now, users=sorted({r.user for r in item.reasons}),
                                        reasons=list(item.reasons), title=w.item.title, library=w.item.library,
                                        kind=w.item.kind, rating_key=w.item.rating_key,
                                        sidecars=self._pool_sidecars(loc, w.path)))
                self._event("adopted", w.path, detail="already on the pool")

    def _done(self, kind: str, path: str, size: int, words: str, why: str = "") -> None:
        self.history.add(kind, path, self.now, size=size)
        self.report.activity.append(f"{words}: {path}")
        log.info("%s: %s (%s)%s", words, path, human_bytes(size), f": {why}" if why else "")

    def _fail(self, path: str, why: str) -> None:
        self.report.failed += 1
        self.report.failures.append(f"{path}: {why}")
        self.history.add("failed", path, self.now, detail=why)
        log.warning("failed: %s: %s", path, why)

    def log_plan(self, p: Plan) -> None:
        """Skipped candidates (with why) always; in a dry run also what a real run would move."""
        for item in p.items:
            if item.action == SKIP:
                log.info("skipped: %s (%s): %s", item.path, human_bytes(item.size), item.why or "not cacheable")
            elif self.report.dry_run and item.action in (CACHE, MOVE_BACK):
                words = "would cache" if item.action == CACHE else "would move back"
                log.info("%s: %s (%s): %s", words, item.path, human_bytes(item.size), _why(item))

    def protect_planned(self, p: Plan) -> None:
        """Before copying, list the pool paths about to appear, so a mover starting mid-run leaves them be."""
        if self.report.dry_run or not p.of(CACHE):
            return
        future = self.registry.copy()
        for item in p.of(CACHE):
            loc = self.locate(item.path)
            folder = os.path.dirname(item.path)
            # its subtitles too: they reach the pool in the same operation, and the mover must skip them as well
            sidecars = [os.path.join(folder, os.path.basename(pool)) for _, pool in self._sidecars(loc)]
            future.add(Entry(item.path, loc.share, loc.rel, loc.pool, sidecars=sidecars))
        exclusions.write(self.settings, future)


def pool_facts(settings: Settings, entry: Entry,
               by_user_path: dict[str, dict[str, Any]]) -> dict[str, RecordedCopy]:
    """An entry's per-file facts (recorded, confirmed), keyed by pool path as the mover takes them."""
    out = {}
    for user_path, facts in by_user_path.items():
        rel = user_path[len(settings.paths.user_root.rstrip("/")) + 1:].partition("/")[2]
        out[f"{settings.paths.pool_root.rstrip('/')}/{entry.pool}/{entry.share}/{rel}"] = RecordedCopy(
            facts["size"], facts["mtime_ns"], facts.get("blake2b"))
    return out


def _why(item: Optional[PlanItem]) -> str:
    """A plan item's reasons (who wants it, why) or its why, in words for the log."""
    if item is None:
        return ""
    if item.reasons:
        return describe_reasons([r.to_json() for r in item.reasons])
    return item.why


def _op_size(op: Op) -> int:
    return _size(op.array_path if isinstance(op, CacheOp) else op.pool_path)


