"""One cycle, end to end: lock, environment, recover, discover, reconcile, plan, move, record, notify.

Also the other commands that read or change the registry: evict, pin, status, list, plan, recover.
Data flows one way (docs/engine.md): plex -> pathmap -> unraid facts -> planner (pure) -> mover -> state,
exclusion list and notifications. Every durable file is written at most once per command.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import time
from collections.abc import Callable
from typing import Any, Optional

from plexcache import audit, exclusions, pace, plex, runs, schedule
from plexcache.config import Settings
from plexcache.demand import DemandItem, Reason, WantedFile
from plexcache.errors import UsageError
from plexcache.layout import BACKUP_SUFFIX
from plexcache.media.openfiles import open_paths
from plexcache.media.ops import Recovered
from plexcache.notify import Notifier, run_messages
from plexcache.operations import Operations
from plexcache.pathmap import map_paths
from plexcache.planner import CACHE, MOVE_BACK, FileStatus, Plan, PlanItem, PoolFacts, Situation, plan
from plexcache.query import _pool_size_override, activity, cache_usage, list_files, status
from plexcache.reconcile import Reconciler
from plexcache.report import RunReport, final_exit_code, one_line, plan_json, worth_telling
from plexcache.runctl import RunLock
from plexcache.session import Progress, ProgressCallback, Session
from plexcache.state import Registry, StateStore
from plexcache.unraid import (
    Unraid,
    disks_in_standby,
    split_user_path,
)
from plexcache.words import human_bytes

log = logging.getLogger(__name__)

SKIPPED_REFUSALS = ("hardlinked", "changed")
WANTED_GRANULARITY = 86400.0  # refused for a reason that is not a failure: try next run


# ---------------------------------------------------------------- the cycle


class Cycle(Reconciler, Operations):
    """One command's steps: recover, discover, reconcile (Reconciler), plan, apply (Operations), save, report."""

    def announce(self) -> None:
        """The run's first log line (the Logs tab shows what each run did, start to end)."""
        log.info("%s started (dry run: %s)", self.report.action,
                 "yes, nothing is moved" if self.report.dry_run else "no")

    # -- recovery -------------------------------------------------------------------------------

    def recover(self) -> list[Recovered]:
        """Finish or roll back interrupted operations into the registry (Books.recover); a dry run only
        says that some wait."""
        if self.report.dry_run:
            if not self.books.journal().is_empty():
                self.report.warnings.append("interrupted operations are waiting in the journal; a real run "
                                            "(or `plexcache-r recover`) repairs them first")
            return []
        return self.books.recover(self.report.warnings)

    # -- demand ---------------------------------------------------------------------------------

    def discover(self) -> list[WantedFile]:
        self.demand = plex.discover(self.settings, session_factory=self.session_factory, now=self.now) \
            if self.session_factory else plex.discover(self.settings, now=self.now)
        self.mapping = map_paths(self.demand, self.settings)
        self.report.plex_requests = self.demand.requests
        self.report.unknown = [{"scope": u.scope, "source": u.source, "error": u.error} for u in self.demand.unknown]
        self.report.unmapped = list(self.mapping.unmapped)
        self.report.filtered = [{"title": title, "why": why} for title, why in self.demand.skipped]
        self.report.warnings.extend(self.demand.warnings)
        for plex_path, why in self.mapping.not_cacheable:
            log.info("not cacheable: %s (%s)", plex_path, why)
        return self._pace(self.mapping.wanted + self._pinned_wanted({w.path for w in self.mapping.wanted}))

    def _pace(self, wanted: list[WantedFile]) -> list[WantedFile]:
        """Learn each viewer's pace from this run's queues; trim their next episodes to it (docs/engine.md)."""
        if not self.settings.demand.pace or self.demand.server_unknown:
            return wanted
        tracks = pace.load(self.settings)
        if pace.observe(tracks, wanted, self.now, self.demand.viewed) and not self.report.dry_run:
            pace.save(self.settings, tracks)
        wanted, self.lookaheads = pace.plan_ahead(tracks, wanted, self.settings, self.now)
        return wanted

    def _pinned_wanted(self, already: set[str]) -> list[WantedFile]:
        """Pinned paths not cached yet become demand of the highest priority."""
        out = []
        for path in sorted(self.registry.pins - already - set(self.registry.entries)):
            parts = path[len(self.settings.paths.user_root.rstrip("/")) + 1:].partition("/")
            item = DemandItem(rating_key=f"pin:{path}", title=os.path.basename(path), kind="movie", library="",
                              plex_files=(path,), size=0, reasons=[Reason("(pinned)", "pinned", self.now,
                                                                          "pinned by you")])
            out.append(WantedFile(path, parts[0], parts[2], path, item))
        return out

    # -- facts ------------------------------------------------------------------------------------

    def known_disks(self, p: Plan) -> dict[str, str]:
        """The array disk of each planned file, from what planning already looked up (nothing is read again)."""
        disks = {}
        for item in p.items:
            entry = self.registry.get(item.path)
            loc = self.locations.get(item.path)
            disk = entry.disk if entry is not None else loc.disk if loc is not None else None
            if disk:
                disks[item.path] = disk
        return disks

    def facts(self, wanted: list[WantedFile], open_now: frozenset[str] = frozenset()) -> Situation:
        files: dict[str, FileStatus] = {}
        for entry in self.registry.entries.values():
            files[entry.path] = FileStatus(entry.path, entry.size, entry.pool, on_pool=True,
                                          open=entry.path in open_now, mounted=entry.pool not in self.unmounted,
                                          held="held on the pool: its pool copy differs from its backup; run "
                                          "`plexcache-r audit` to choose" if entry.path in self.held else "")
        for w in wanted:
            if w.path not in files:
                files[w.path] = self._candidate_facts(w.path, w.path in open_now)
        pools = {}
        for pool in {f.pool for f in files.values() if f.pool}:
            try:
                override = _pool_size_override(self.settings)
                space = self.unraid.pool_space(pool, override)
                pools[pool] = PoolFacts(pool, space.total, space.free)
            except OSError:
                self.report.warnings.append(f"pool {pool} is not mounted at {self.settings.paths.pool_root}/{pool}")
        asleep = disks_in_standby(self.settings) if self.settings.cache.spin_aware else None
        return Situation(files, pools, frozenset(self.mapping.playing), self.unknown_users, self.demand.server_unknown,
                     asleep or frozenset(), {key: look.due for key, look in self.lookaheads.items()})

    def _candidate_facts(self, path: str, is_open: bool) -> FileStatus:
        cacheable, why = self.unraid.cacheable(path)
        loc = self.locate(path)
        size, hardlinked = 0, False
        physical = loc.pool_path if loc.on_pool else loc.array_path
        if physical:
            try:
                st = os.stat(physical)
                size, hardlinked = st.st_size, st.st_nlink > 1
            except OSError:
                pass
        if len(loc.disks) > 1:
            cacheable, why = False, f"on more than one disk ({', '.join(loc.disks)}); run `plexcache-r audit`"
        if path in self.blocked:
            cacheable, why = False, self.blocked[path]
        return FileStatus(path, size, loc.pool, on_pool=loc.on_pool, on_array=loc.on_array, cacheable=cacheable,
                         why=why, hardlinked=hardlinked, open=is_open, disk=loc.disk)

    def plan(self, wanted: list[WantedFile]) -> Plan:
        """Plan, then check only the files that would move for open handles, and re-plan if any are."""
        first = plan(wanted, self.registry, self.facts(wanted), self.settings, self.now, add_only=self.add_only)
        moving = {self._physical(i.path, i.action): i.path for i in first.items if i.action in (CACHE, MOVE_BACK)}
        busy = open_paths([p for p in moving if p])
        if not busy:
            return first
        return plan(wanted, self.registry, self.facts(wanted, frozenset(moving[p] for p in busy)), self.settings,
                    self.now, add_only=self.add_only)

    def _physical(self, path: str, action: str) -> str:
        entry = self.registry.get(path)
        if action == MOVE_BACK and entry is not None:
            return entry.pool_path(self.settings.paths.pool_root)
        loc = self.locate(path)
        return loc.array_path or loc.pool_path

    # -- finishing --------------------------------------------------------------------------------

    def save(self, protect: Optional[Plan] = None) -> None:
        """Write registry, history and exclusion list (each only if changed)."""
        if self.report.dry_run:
            return
        self.books.save()

    def after_run(self) -> None:
        """Cheap upkeep once the moves are done: the schedule follows a moved mover, and a health check."""
        try:
            result = schedule.refresh_if_stale(self.settings)
        except (OSError, UsageError, ValueError) as exc:
            log.warning("could not refresh the schedule: %s", exc)
        else:
            for warning in result.warnings if result else []:
                log.warning("schedule: %s", warning)
        health = audit.audit(self.settings, fixes=[], cheap=True, registry=self.registry)
        found = sum(health.get("summary", {}).values())
        if found:
            self.report.warnings.append(f"cache health: {found} finding(s); see `plexcache-r audit`")

    def finish(self, notify: bool = True) -> RunReport:
        report = self.report
        report.finished_at = report.started_at + (time.monotonic() - self._clock)
        report.exit_code = final_exit_code(report, self.demand)
        report.message = one_line(report, self.registry)
        report.run_id = runs.current() or ""
        log.info("%s finished in %.1f s (exit %d): %s; cached %d (%s), moved back %d (%s), skipped %d, failed %d",
                 report.action, report.finished_at - report.started_at, report.exit_code, report.message,
                 report.cached, human_bytes(report.bytes_cached), report.moved_back,
                 human_bytes(report.bytes_moved_back), report.skipped, report.failed)
        self.store.save_last_run(report.summary())
        if notify and worth_telling(report):
            Notifier(self.settings).send_all(run_messages(report.summary(), report.failures, report.activity))
        return report


# ---------------------------------------------------------------- public commands


def run_cycle(settings: Settings, *, dry_run: bool = False, plan_only: bool = False,
              on_progress: Optional[ProgressCallback] = None, progress: Optional[ProgressCallback] = None,
              now: Optional[float] = None, before_mover: bool = False, add_only: bool = False,
              session_factory: Optional[Callable[..., Any]] = None) -> RunReport:
    """One full cycle. Raises LockHeld (4) or EnvironmentRefuses (6) before touching anything; otherwise
    returns the report, whose exit_code is 0, 1 (some failed), 3 (Plex unreadable) or 5 (stopped).
    add_only (live mode): cache what is wanted and fits, move nothing back."""
    dry_run = dry_run or settings.dry_run or plan_only
    if plan_only:
        cycle = Cycle(settings, now=now, dry_run=True, action="plan", session_factory=session_factory)
        wanted = cycle.discover()
        cycle.reconcile(wanted)
        cycle.report.plan = cycle.plan(wanted)
        cycle.report.exit_code = 3 if cycle.demand.server_unknown else 0
        cycle.report.disks = cycle.known_disks(cycle.report.plan)
        return cycle.report
    with Session(settings, "run", dry_run=dry_run, before_mover=before_mover,
                 on_progress=on_progress or progress) as session:
        cycle = Cycle(settings, now=now, dry_run=dry_run, progress=session.progress,
                      session_factory=session_factory)
        cycle.add_only = add_only
        if add_only:
            session.kind = "live"  # the history tells live mode's runs from the full ones
        report = _run(cycle, session.progress)
        session.finished(report.summary(), None if report.dry_run else cycle.registry)
        return report


def _run(cycle: Cycle, prog: Progress) -> RunReport:
    """The cycle's steps in order, under the session's lock."""
    cycle.announce()
    prog.phase("recovering")
    cycle.recover()
    prog.phase("discovering")
    wanted = cycle.discover()
    prog.phase("planning")
    cycle.reconcile(wanted)
    p = cycle.report.plan = cycle.plan(wanted)
    cycle.log_plan(p)
    if not cycle.report.dry_run:
        cycle.adopt(p)
        cycle.protect_planned(p)
        cycle.execute(p)
    prog.phase("finishing")
    cycle.save()
    if not cycle.report.dry_run:
        cycle.after_run()
    return cycle.finish()


def plan_document(settings: Settings, *, now: Optional[float] = None,
                  session_factory: Optional[Callable[..., Any]] = None) -> dict[str, Any]:
    """`plan --json`: what run would do now. Changes nothing (no lock, no writes)."""
    report = run_cycle(settings, plan_only=True, now=now, session_factory=session_factory)
    doc = plan_json(report.plan, True, report.unknown, report.unmapped, report.filtered)
    doc.update(exit_code=report.exit_code, plex_requests=report.plex_requests, warnings=report.warnings)
    for action in doc["actions"]:
        if action["path"] in report.disks:
            action["disk"] = report.disks[action["path"]]
    doc["space"] = _space_after(settings, doc["summary"])
    return doc


def _space_after(settings: Settings, summary: dict[str, int]) -> dict[str, Any]:
    """`plan.space`: the pool's free space and plexcache-r's share of it now, and once the plan is carried out."""
    usage = cache_usage(settings, StateStore(settings).load_registry())
    change = summary["bytes_to_cache"] - summary["bytes_to_move_back"]
    return {"pool": usage["pool"], "total_bytes": usage["total_bytes"], "free_before": usage["free_bytes"],
            "free_after": usage["free_bytes"] - change, "managed_before": usage["managed_bytes"],
            "managed_after": usage["managed_bytes"] + change, "floor_bytes": usage["floor_bytes"],
            "limit_bytes": usage["limit_bytes"]}


def _user_path(settings: Settings, path: str, registry: Registry) -> Optional[str]:
    """Accept a user-share path, or a pool path of a managed file; None when neither."""
    path = os.path.normpath(path)
    if path in registry.entries or path.startswith(settings.paths.user_root.rstrip("/") + "/"):
        return path
    root = settings.paths.pool_root.rstrip("/") + "/"
    for entry in registry.entries.values():
        if path == entry.pool_path(settings.paths.pool_root) and path.startswith(root):
            return entry.path
    return None


def evict(settings: Settings, paths: Optional[list[str]], *, now: Optional[float] = None,
          on_progress: Optional[ProgressCallback] = None) -> RunReport:
    """Move the given managed files (None: all of them, and forget every pin) back to the array now."""
    with Session(settings, "evict", on_progress=on_progress) as session:
        cycle = Cycle(settings, now=now, action="evict", progress=session.progress)
        cycle.announce()
        session.progress.phase("recovering")
        cycle.recover()
        targets = _evict_targets(settings, cycle.registry, paths)
        if paths is None:
            cycle.registry.pins.clear()
        for path in targets:
            entry = cycle.registry.get(path)
            if entry is not None:
                entry.pinned = False
        p = cycle.report.plan = _evict_plan(cycle, targets)
        cycle.log_plan(p)
        wanted_before = {t: cycle.registry.entries[t].reasons for t in targets if cycle.registry.entries[t].reasons}
        cycle.execute(p)
        cycle.report.still_wanted = [{"path": t, "reasons": [r.to_json() for r in reasons]}
                                     for t, reasons in wanted_before.items() if t not in cycle.registry]
        session.progress.phase("finishing")
        cycle.save()
        report = cycle.finish()
        session.finished(report.summary(), cycle.registry)
        return report


def _evict_plan(cycle: Cycle, targets: list[str]) -> Plan:
    """Move each target back, except what is open now or held on the pool (skipped, with why)."""
    entries, pool_root = cycle.registry.entries, cycle.settings.paths.pool_root
    p = Plan([PlanItem(MOVE_BACK, t, entries[t].size, entries[t].pool, why="evicted on request",
                       release=entries[t].disk is None) for t in targets])
    busy = open_paths([entries[t].pool_path(pool_root) for t in targets])
    for item in p.items:
        held = cycle.hold_reason(entries[item.path])
        if entries[item.path].pool_path(pool_root) in busy:
            item.action, item.why = "skip", "open by another program; try again later"
            cycle.report.skipped += 1
        elif held:
            item.action, item.why = "skip", held
            cycle.report.skipped += 1
            cycle.report.warnings.append(held)
            log.warning("%s", held)
    return p


def _evict_targets(settings: Settings, registry: Registry, paths: Optional[list[str]]) -> list[str]:
    if paths is None:
        return sorted(registry.entries)
    targets = []
    for raw in paths:
        path = _user_path(settings, raw, registry)
        if path is None or path not in registry:
            raise UsageError(f"{raw} is not a file plexcache-r manages; see `plexcache-r list`")
        targets.append(path)
    return targets


def pin(settings: Settings, paths: list[str], on: bool = True) -> list[str]:
    """Pin (or unpin) files: pinned files are cached at the next run and never moved back. Returns the paths
    whose pin changed."""
    with RunLock(settings.paths.volatile_dir):
        store = StateStore(settings)
        registry = store.load_registry()
        changed = []
        for raw in paths:
            path = _user_path(settings, raw, registry)
            if path is None:
                raise UsageError(f"{raw} is neither a path under {settings.paths.user_root} nor a managed file")
            if on and path not in registry:
                _refuse_missing(settings, path)
            if (path in registry.pins) != on:
                changed.append(path)
            (registry.pins.add if on else registry.pins.discard)(path)
            entry = registry.get(path)
            if entry is not None:
                entry.pinned = on
        if changed:
            store.save_registry(registry)
            exclusions.write(settings, registry)
        return changed


def _refuse_missing(settings: Settings, path: str) -> None:
    """A pin of a file that is on no pool and no array disk would be stored and never cached: refuse it,
    naming the closest names in that folder (a typo is the usual cause)."""
    unraid = Unraid.load(settings)
    if unraid.locate(path).exists:
        return
    folder, name = os.path.split(path)
    parts = split_user_path(settings.paths.user_root, path)
    names: set[str] = set()
    if parts is not None:
        share, rel = parts
        parent = os.path.dirname(rel)
        places = [os.path.join(mount, share, parent) for _disk, mount in unraid.disks]
        places += [os.path.join(settings.paths.pool_root, info.pool, share, parent)
                   for info in unraid.shares.values() if info.name == share and info.pool]
        for place in places:
            with contextlib.suppress(OSError):
                names.update(n.removesuffix(BACKUP_SUFFIX) for n in os.listdir(place) if not n.startswith("."))
    close = difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.5)
    hint = "; did you mean " + " or ".join(repr(os.path.join(folder, c)) for c in close) + "?" if close else ""
    raise UsageError(f"{path} does not exist on the pool or any array disk, so it cannot be pinned{hint}")


def recover_only(settings: Settings) -> dict[str, Any]:
    """`plexcache-r recover`: finish or roll back interrupted operations and record the outcome."""
    with Session(settings, "recover", check=False, report_progress=False) as session:
        cycle = Cycle(settings, action="recover")
        results = cycle.recover()
        cycle.save()
        failed = sum(1 for r in results if r.outcome == "failed")
        message = ("nothing to recover: no interrupted operations" if not results else
                   f"repaired {len(results) - failed} interrupted operation(s)"
                   + (f", {failed} failed" if failed else ""))
        session.finished({"exit_code": 0, "message": message, "recovered": len(results) - failed,
                          "failed": failed}, cycle.registry)
    done = [{"op_id": r.op_id, "path": r.key, "outcome": r.outcome, "detail": r.detail}
            for r in results]
    return {"message": message, "recovered": done, "run_id": session.run_id}


__all__ = ["RunReport", "activity", "evict", "list_files", "pin", "plan_document", "recover_only", "run_cycle",
           "status"]
