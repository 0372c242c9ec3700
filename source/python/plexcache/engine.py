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
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from plexcache import audit, backups, exclusions, fastcopy, mover, pace, plex, schedule
from plexcache.config import Settings
from plexcache.demand import OTHER_USERS, SERVER, Demand, DemandItem, Reason, WantedFile
from plexcache.errors import UsageError
from plexcache.layout import BACKUP_SUFFIX, CHANGED_MTIME_S
from plexcache.notify import Notifier, run_messages
from plexcache.pathmap import MappingResult, map_paths
from plexcache.planner import CACHE, MOVE_BACK, SKIP, FileStatus, Plan, PlanItem, PoolFacts, Situation, plan
from plexcache.query import _pool_size_override, activity, cache_usage, list_files, status
from plexcache.runctl import RunLock, StopFlag
from plexcache.session import Books, Progress, ProgressCallback, Session, disk_of, entry_from_moved
from plexcache.state import ActivityHistory, Entry, Registry, StateStore
from plexcache.unraid import (
    Location,
    Unraid,
    disks_in_standby,
    split_user_path,
)
from plexcache.words import describe_reasons, human_bytes

log = logging.getLogger(__name__)

SKIPPED_REFUSALS = ("hardlinked", "changed")
WANTED_GRANULARITY = 86400.0  # refused for a reason that is not a failure: try next run


# ---------------------------------------------------------------- the report


@dataclass
class RunReport:
    """What one command did; `summary()` is the last-run record, `to_json()` the `run --json` document."""

    action: str = "run"
    started_at: float = 0.0
    finished_at: float = 0.0
    dry_run: bool = False
    exit_code: int = 0
    plan: Optional[Plan] = None
    cached: int = 0
    moved_back: int = 0
    failed: int = 0
    skipped: int = 0
    bytes_cached: int = 0
    bytes_moved_back: int = 0
    plex_requests: int = 0
    unknown: list[dict[str, str]] = field(default_factory=list)
    still_wanted: list[dict[str, Any]] = field(default_factory=list)  # evict: moved back, but wanted still
    unmapped: list[str] = field(default_factory=list)
    filtered: list[dict[str, str]] = field(default_factory=list)  # left out by a demand filter, with why
    warnings: list[str] = field(default_factory=list)
    stray_backups: int = 0  # wanted files not cached: a backup beside them is not provably the same bytes
    failures: list[str] = field(default_factory=list)
    activity: list[str] = field(default_factory=list)
    message: str = ""
    disks: dict[str, str] = field(default_factory=dict)  # plan: the array disk each planned file is (or was) on

    def summary(self) -> dict[str, Any]:
        return {"started_at": self.started_at, "finished_at": self.finished_at, "exit_code": self.exit_code,
                "dry_run": self.dry_run, "cached": self.cached, "moved_back": self.moved_back,
                "failed": self.failed, "bytes_cached": self.bytes_cached,
                "bytes_moved_back": self.bytes_moved_back, "skipped": self.skipped,
                "plex_requests": self.plex_requests, "unknown": self.unknown, "warnings": self.warnings,
                "stray_backups": self.stray_backups, "message": self.message}

    def to_json(self) -> dict[str, Any]:
        doc = plan_json(self.plan, self.dry_run, self.unknown, self.unmapped, self.filtered)
        doc.update(self.summary())
        doc.update({"action": self.action, "failures": self.failures, "still_wanted": self.still_wanted})
        return doc


def plan_json(p: Optional[Plan], dry_run: bool, unknown: list[dict[str, str]],
              unmapped: list[str], filtered: Optional[list[dict[str, str]]] = None) -> dict[str, Any]:
    """The `plan --json` shape (docs/cli.md)."""
    items = p.items if p else []
    summary = p.summary() if p else Plan().summary()
    return {"dry_run": dry_run, "actions": [i.to_json() for i in items], "unknown": unknown,
            "unmapped": unmapped, "filtered": filtered or [], "summary": summary}


# ---------------------------------------------------------------- the cycle


class Cycle:
    """The state of one command: settings, layout, registry and history, and the report being built."""

    def __init__(self, settings: Settings, *, now: Optional[float] = None, dry_run: bool = False,
                 action: str = "run", progress: Optional[Progress] = None,
                 session_factory: Optional[Callable[..., Any]] = None) -> None:
        self.settings = settings
        self.now = time.time() if now is None else now
        self.books = Books(settings, self.now)
        self.store = self.books.store
        self.registry: Registry = self.books.registry
        self.history: ActivityHistory = self.books.history
        self.unraid = self.books.unraid
        self.progress = progress or Progress(None, None)
        self.session_factory = session_factory
        self.report = RunReport(action=action, started_at=self.now, dry_run=dry_run)
        self._clock = time.monotonic()  # finished_at = started_at + elapsed, also when `now` is injected
        self.locations: dict[str, Location] = {}
        self.mapping = MappingResult()
        self.demand = Demand()
        self.unmounted: set[str] = set()
        self.add_only = False  # live mode: cache what fits, move nothing back
        self.lookaheads: dict[tuple[str, str], pace.Lookahead] = {}  # learned pace by (user, show folder)
        self._made_dirs: Optional[set[str]] = None  # every pool folder the registry says we created
        self.blocked: dict[str, str] = {}  # candidates that must not be cached now, with why (stray backups)
        self.held: dict[str, str] = {}  # managed files kept on the pool until someone decides, with why
        self.moved_behind_our_back = 0
        self.left_behind: list[mover.RestoreOp] = []  # subtitles still cached after their video left the pool

    def announce(self) -> None:
        """The run's first log line (the Logs tab shows what each run did, start to end)."""
        log.info("%s started (dry run: %s)", self.report.action,
                 "yes, nothing is moved" if self.report.dry_run else "no")

    # -- recovery -------------------------------------------------------------------------------

    def recover(self) -> list[mover.Recovered]:
        """Finish or roll back interrupted operations into the registry (Books.recover); a dry run only
        says that some wait."""
        if self.report.dry_run:
            if not self.books.journal().is_empty():
                self.report.warnings.append("interrupted operations are waiting in the journal; a real run "
                                            "(or `plexcache-r recover`) repairs them first")
            return []
        return self.books.recover(self.report.warnings)

    def roots(self) -> list[str]:
        """Every disk and pool mount a file of ours may be on (or be carried to by Unraid's mover)."""
        return self.books.roots()

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
        if pace.observe(tracks, wanted, self.now) and not self.report.dry_run:
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

    @property
    def unknown_users(self) -> frozenset[str]:
        """Every user, named in the demand or in the registry, whose demand could not be read."""
        named = {u.scope for u in self.demand.unknown if u.scope not in (SERVER, OTHER_USERS)}
        named |= {user for entry in self.registry.entries.values() for user in entry.users}
        return frozenset(user for user in named if self.demand.user_unknown(user))

    # -- reconcile: the registry against the disks ------------------------------------------------

    def reconcile(self, wanted: list[WantedFile]) -> None:
        """Drop entries whose files left the pool behind our back, follow upgrades, refresh who wants what."""
        by_path = {w.path: w for w in wanted}
        by_key: dict[str, list[WantedFile]] = {}
        for w in wanted:
            by_key.setdefault(w.item.rating_key, []).append(w)
        mounted = {e.pool for e in self.registry.entries.values()
                   if (Path(self.settings.paths.pool_root) / e.pool).is_dir()}
        self.unmounted = {e.pool for e in self.registry.entries.values()} - mounted
        unknown = self.unknown_users  # once: it walks the whole registry (per entry, a 10,000-file run took 4 s)
        for entry in list(self.registry.entries.values()):
            if entry.pool not in mounted:
                continue  # a pool that is not mounted says nothing about its files
            loc = self.locate(entry.path, entry.pool, entry.disk)
            if not loc.on_pool:
                self._gone_from_pool(entry, loc, by_key.get(entry.rating_key, []))
                continue
            self._check_changed(entry, loc, by_path.get(entry.path))
            self._check_sidecars(entry)
            self._refresh_demand(entry, by_path.get(entry.path), unknown)
        for w in wanted:
            if w.path not in self.registry:
                self._adopt_interrupted(w)
            if w.path not in self.registry:
                self._check_stray_backups(w)
        if self.moved_behind_our_back:
            self.report.warnings.append(
                f"{self.moved_behind_our_back} cached file(s) were moved back to the array by something else "
                "(Unraid's mover without plexcache-r's ignore list?); check the Mover Tuning settings")

    def _adopt_interrupted(self, want: WantedFile) -> None:
        """A wanted file on the pool with its .plexcached backup on the array, unknown to the registry: an
        earlier run cached it and was killed before recording it. Take it back under management, backup and
        all, so it moves back by renaming the backup (never left to the mover beside a stale backup)."""
        loc = self.locate(want.path)
        if not (loc.on_pool and loc.has_backup and not loc.on_array):
            return
        why = self._partial_copy(want.path, loc)
        if why:
            # an interrupted copy: the backup is the truth. Not adopted (a move back would put the partial at
            # the array's live name), not cached again (a second backup), and the audit offers both choices.
            self.blocked[want.path] = self.held[want.path] = why
            self.report.warnings.append(why)
            log.warning("%s", why)
            return
        bst = os.stat(loc.backup_path)
        self.registry.add(Entry(path=want.path, share=want.share, rel=want.rel, pool=loc.pool, disk=loc.disk,
                                size=_size(loc.pool_path), mtime=_mtime(loc.pool_path), cached_at=self.now,
                                last_wanted_at=self.now, users=list(want.item.users),
                                reasons=list(want.item.reasons), title=want.item.title,
                                library=want.item.library, kind=want.item.kind, backup=True,
                                rating_key=want.item.rating_key,
                                recorded={want.path: {"size": bst.st_size, "mtime_ns": bst.st_mtime_ns}}))
        self._event("adopted", want.path, detail="found cached with its array backup "
                    "(an earlier run was interrupted before recording it)")

    def _partial_copy(self, path: str, loc: Location) -> str:
        """Why the pool copy beside a backup is not the cached copy of it (empty when it is): another size
        or time, or with cache.verify other contents."""
        try:
            pst, bst = os.stat(loc.pool_path), os.stat(loc.backup_path)
        except OSError as exc:
            return f"{loc.pool_path}: cannot compare it with its backup ({exc.strerror}); not taken over"
        same = pst.st_size == bst.st_size and pst.st_mtime_ns == bst.st_mtime_ns
        if same and self.settings.cache.verify:
            same = fastcopy.hash_file(loc.pool_path) == fastcopy.hash_file(loc.backup_path)
        if same:
            return ""
        return (f"{path}: the pool copy ({pst.st_size} bytes) is not a copy of its backup {loc.backup_path} "
                f"({bst.st_size} bytes): an interrupted copy? Not taken over; the backup is kept as the original: "
                "run `plexcache-r audit` to choose (restore the original, or keep the new file)")

    def _gone_from_pool(self, entry: Entry, loc: Location, same_item: list[WantedFile]) -> None:
        self.registry.remove(entry.path)
        replacement = [w for w in same_item if w.path != entry.path]
        if replacement:
            new = replacement[0]
            self._event("upgraded", entry.path, detail=f"replaced by {new.path}")
            if loc.has_backup:
                self._stale_backup(loc, new)
            return
        if loc.on_array:
            self._event("dropped", entry.path, detail="back on the array (moved by someone else)")
            self.moved_behind_our_back += 1
            self._retire_duplicate_backups(entry)
        elif loc.has_backup:
            self._event("dropped", entry.path, detail=f"deleted outside plexcache-r; its array "
                        f"backup {loc.backup_path} was left alone (`plexcache-r audit` lists it)")
        else:
            self._event("dropped", entry.path, detail="deleted outside plexcache-r")

    def _check_sidecars(self, entry: Entry) -> None:
        """A subtitle that left the pool while its video stayed (moved back to the array by something else,
        or deleted) is no longer managed; a backup of it identical to its array copy goes. One whose only
        copy left is its backup stays listed: the move back renames the backup back."""
        root = self.settings.paths.user_root.rstrip("/") + "/"
        for side in list(entry.sidecars):
            rel = side[len(root):].partition("/")[2]
            if os.path.lexists(f"{self.settings.paths.pool_root.rstrip('/')}/{entry.pool}/{entry.share}/{rel}"):
                continue
            copies = backups.copies_on_disks(self.unraid.disks, entry.share, rel)
            if not copies.originals and copies.backups:
                continue
            # new containers, never changed in place: they may be shared with the document as loaded, which
            # StateStore compares against to skip unchanged writes
            recorded = entry.recorded.get(side)
            entry.sidecars = [x for x in entry.sidecars if x != side]
            entry.recorded = {k: v for k, v in entry.recorded.items() if k != side}
            where = "back on the array" if copies.originals else "deleted"
            self._event("dropped", side, detail=f"subtitle left the pool ({where}) while its video stayed")
            if len(copies.originals) == 1:
                for backup in copies.backups:
                    self._settle_backup(side, copies.originals[0], backup, recorded)

    def _retire_duplicate_backups(self, entry: Entry) -> None:
        """The live copy is back on the array (maybe on another disk than its backup): a backup that holds
        the same bytes is a duplicate and goes; one that cannot be proven identical stays, with a warning."""
        root = self.settings.paths.user_root.rstrip("/") + "/"
        for user_path in (entry.path, *entry.sidecars):
            rel = user_path[len(root):].partition("/")[2]
            copies = backups.copies_on_disks(self.unraid.disks, entry.share, rel)
            if not copies.originals and len(copies.backups) == 1 and user_path != entry.path:
                self._move_back_left_behind(entry, user_path, rel, copies.backups[0])
                continue
            if not copies.backups or not copies.originals:
                continue  # nothing to settle, or no live array copy to compare with (`audit` reports it)
            if len(copies.originals) > 1:
                self.report.warnings.append(f"{user_path} is on more than one array disk and has a backup; "
                                            "all kept: run `plexcache-r audit`")
                continue
            for backup in copies.backups:
                self._settle_backup(user_path, copies.originals[0], backup, entry.recorded.get(user_path))

    def _move_back_left_behind(self, entry: Entry, user_path: str, rel: str, backup: str) -> None:
        """The video went back to the array behind our back but its subtitle is still on the pool, beside a
        backup: move the subtitle back too (by renaming its backup back), rather than leave it unmanaged."""
        pool_path = f"{self.settings.paths.pool_root.rstrip('/')}/{entry.pool}/{entry.share}/{rel}"
        if not os.path.isfile(pool_path):
            return
        facts = entry.recorded.get(user_path)
        recorded = {pool_path: mover.RecordedCopy(facts["size"], facts["mtime_ns"], facts.get("blake2b"))} \
            if facts else {}
        array_path = backup[:-len(BACKUP_SUFFIX)]
        self.left_behind.append(mover.RestoreOp(pool_path, array_path, mover.AUTO, (), recorded, key=user_path,
                                                disk=disk_of(array_path, self.unraid)))

    def _settle_backup(self, user_path: str, original: str, backup: str,
                       recorded: Optional[dict[str, Any]]) -> str:
        outcome = backups.settle(original, backup, recorded, dry_run=self.report.dry_run)
        if outcome == backups.RETIRED:
            self.locations.pop(user_path, None)
            self._event("retired", backup, detail=f"a duplicate of {original}, the live copy on the array")
        elif outcome in (backups.DIFFERENT, backups.KEPT):
            how = "is not provably identical to" if outcome == backups.DIFFERENT else \
                "could not be removed now (in use?) although identical to"
            self.report.warnings.append(f"backup {backup} {how} the array copy {original}; both kept: "
                                        "run `plexcache-r audit` to choose")
        return outcome

    def _check_stray_backups(self, want: WantedFile) -> None:
        """Before caching: a .plexcached of the same file on any disk (left when something else moved a cached
        file back to the array) is retired when identical to the original, else the file is not cached, so
        a second backup is never made."""
        loc = self.locate(want.path)
        if loc.on_pool or not loc.on_array or len(loc.disks) > 1 or loc.disk is None:
            return
        copies = backups.copies_on_disks(self.unraid.disks, want.share, want.rel)
        if not copies.backups:
            return  # the common case: one lstat a disk, as locate() already paid
        files = [(want.path, loc.array_path)]
        share_dir = os.path.join(dict(self.unraid.disks)[loc.disk], want.share)
        user_dir = os.path.dirname(want.path)
        files += [(os.path.join(user_dir, os.path.basename(a)), a) for a, _p in self._sidecars(loc)]
        for user_path, original in files:
            rel = os.path.relpath(original, share_dir)
            for backup in backups.copies_on_disks(self.unraid.disks, want.share, rel).backups:
                if self._settle_backup(user_path, original, backup, None) not in (backups.RETIRED, backups.SAME):
                    if want.path not in self.blocked:
                        self.report.stray_backups += 1
                    self.blocked[want.path] = (f"a backup {backup} exists that is not provably identical to "
                                               f"{original}; not cached, so no second backup is made: run "
                                               "`plexcache-r audit`")
        self.locations.pop(want.path, None)

    def _stale_backup(self, loc: Location, new: WantedFile) -> None:
        """An upgrade left the old backup behind. It is never restored over the newer file; it is retired
        only once the new file is complete (by the mover, when it offers that; until then: reported)."""
        retire = mover.retire_stale_backup
        new_loc = self.locate(new.path)
        new_physical = new_loc.pool_path if new_loc.on_pool else new_loc.array_path
        # "Complete" means the size Plex reports for it (a single-file item); the mover also refuses an open file.
        size = new.item.size if len(new.item.plex_files) == 1 and new.item.size else _size(new_physical)
        if new_loc.exists and not self.report.dry_run \
                and retire(loc.backup_path, new_physical, size):
            self._event("retired", loc.backup_path, detail=f"stale after upgrade to {new.path}")
            return
        self.report.warnings.append(f"stale backup {loc.backup_path} left after an upgrade to {new.path}; "
                                    "`plexcache-r audit` lists it")

    def _check_changed(self, entry: Entry, loc: Location, want: Optional[WantedFile]) -> None:
        """A pool copy replaced in place (same name, new content). Its recorded facts stay, so the mover
        copies it back instead of restoring the old backup; the backup goes with that move back only if the
        new copy is shown to be complete: Plex lists it with its size (confirmed here), or the user chose it
        in the audit. Until then the file is held on the pool with both copies, and the run warns."""
        try:
            st = os.stat(loc.pool_path)
        except OSError:
            return
        changed = st.st_size != entry.size or abs(st.st_mtime - entry.mtime) >= CHANGED_MTIME_S
        before = entry.size
        if changed:
            entry.size, entry.mtime = st.st_size, st.st_mtime
        found = self._unconfirmed(entry)
        if found and self._confirm_by_plex(entry, st, want, found):
            self._event("changed", entry.path, detail=f"replaced on the pool ({before} -> {st.st_size} bytes); "
                        "Plex lists the new size, so the old backup is retired when it moves back")
            found = self._unconfirmed(entry)
        elif changed and before and not found:
            self._event("changed", entry.path, detail=f"replaced on the pool ({before} -> {st.st_size} bytes)")
        why = self.hold_reason(entry, found)
        if why:
            self.held[entry.path] = why
            self.report.warnings.append(why)
            log.warning("%s", why)

    def _confirm_by_plex(self, entry: Entry, st: os.stat_result, want: Optional[WantedFile],
                         found: list[tuple[str, int, int]]) -> bool:
        """Record the pool copy as a complete replacement when Plex lists the file with exactly its new size
        (Sonarr/Radarr imported it and Plex rescanned it; a truncated or damaged copy is not rescanned)."""
        listed = want.item.plex_size(want.plex_path) if want is not None else None
        mine = [c for c in found if c[0] == entry.path]
        if listed != st.st_size or not mine or mine[0][2] == st.st_size:
            return False  # not listed so, or the original's size: then Plex's size says nothing new
        entry.confirmed = {**entry.confirmed, entry.path: {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                                           "by": "plex"}}
        return True

    def _unconfirmed(self, entry: Entry) -> list[tuple[str, int, int]]:
        """(user path, pool copy size, backup size) of each file of the entry whose pool copy differs from
        what was cached while its backup is still there, and that nothing showed to be complete."""
        return unconfirmed_copies(self.settings, self.unraid, entry)

    def hold_reason(self, entry: Entry, found: Optional[list[tuple[str, int, int]]] = None) -> str:
        """Why this managed file must stay on the pool for now (empty: it may move back)."""
        found = self._unconfirmed(entry) if found is None else found
        if not found:
            return ""
        path, pool_size, backup_size = found[0]
        return (f"{path}: the pool copy ({pool_size} bytes) no longer matches what was cached and nothing shows "
                f"it is a complete file (its backup has {backup_size} bytes); both kept, and it stays on the pool "
                "until you choose in `plexcache-r audit`: keep the new file, or restore the original")

    def _refresh_demand(self, entry: Entry, want: Optional[WantedFile], unknown: frozenset[str]) -> None:
        if self.demand.server_unknown:
            return
        still_unknown = set(entry.users) & unknown
        if want is None:
            entry.users = sorted(still_unknown)
            entry.reasons = [r for r in entry.reasons if r.user in still_unknown]
            return
        entry.reasons = list(want.item.reasons)
        entry.users = sorted({r.user for r in want.item.reasons} | still_unknown)
        # Refreshed at most daily: a timestamp bumped every run would rewrite the registry on the flash every run.
        if entry.last_wanted_at is None or self.now - entry.last_wanted_at >= WANTED_GRANULARITY:
            entry.last_wanted_at = self.now
        entry.title, entry.library, entry.kind = want.item.title, want.item.library, want.item.kind
        entry.rating_key = want.item.rating_key

    # -- facts ------------------------------------------------------------------------------------

    def locate(self, path: str, pool: Optional[str] = None, disk: Optional[str] = None) -> Location:
        loc = self.locations.get(path)
        if loc is None or (pool and loc.pool != pool):
            loc = self.locations[path] = self.unraid.locate(path, pool, disk)
        return loc

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
        busy = mover.open_paths([p for p in moving if p])
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

    # -- execution --------------------------------------------------------------------------------

    def execute(self, p: Plan) -> None:
        """Carry out the plan's move-backs (first: they free room) and caches through the mover."""
        for item in p.of(MOVE_BACK):
            if item.release:
                self.registry.remove(item.path)
                self._done("released", item.path, item.size, "released to the mover", item.why)
        ops: list[mover.Op] = [op for op in (self._restore_op(i.path) for i in p.of(MOVE_BACK) if not i.release)
                               if op is not None]
        ops += self.left_behind
        ops += [op for op in (self._cache_op(i.path, i.size) for i in p.of(CACHE)) if op is not None]
        if not ops:
            return
        self.progress.phase("copying")
        self.progress.totals(len(ops), sum(i.size for i in p.items if i.action in (CACHE, MOVE_BACK)))
        engine_mover = self.books.new_mover()
        wanted = {i.path: i for i in p.items if i.action in (CACHE, MOVE_BACK)}
        outcome = mover.run_ops(ops, self.settings.cache.workers, engine_mover,
                                stop=StopFlag(self.settings.paths.volatile_dir), progress=self.progress)
        for result in outcome.results:
            self._apply(result, wanted)
        if outcome.critical is not None:
            self.report.warnings.append(f"stopped early: {outcome.critical}")
        if outcome.stopped:
            self.report.exit_code = 5

    def _restore_op(self, path: str) -> Optional[mover.RestoreOp]:
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
        return mover.RestoreOp(entry.pool_path(root), array, mover.AUTO if entry.backup else None, sidecars,
                               pool_facts(self.settings, entry, entry.recorded), key=path, disk=entry.disk,
                               made_dirs=self._made_dirs_above(entry),
                               confirmed=pool_facts(self.settings, entry, entry.confirmed))

    def _made_dirs_above(self, entry: Entry) -> list[str]:
        """Every folder plexcache-r created above this file, whichever file's caching created it: the season
        folder made for the first episode is removed when the last one leaves (the mover skips non-empty ones)."""
        if self._made_dirs is None:
            self._made_dirs = {d for e in self.registry.entries.values() for d in e.made_dirs}
        pool_path = entry.pool_path(self.settings.paths.pool_root)
        return sorted(d for d in self._made_dirs if pool_path.startswith(d.rstrip("/") + "/"))

    def _cache_op(self, path: str, size: int) -> Optional[mover.CacheOp]:
        loc = self.locate(path)
        if not (loc.on_array and loc.pool_path):
            self._fail(path, "the array original is no longer where it was found")
            return None
        sidecars = [(a, p) for a, p in self._sidecars(loc) if not os.path.lexists(p)]
        return mover.CacheOp(loc.array_path, loc.pool_path, sidecars, expected_size=size, key=path, disk=loc.disk)

    def _sidecars(self, loc: Location) -> list[tuple[str, str]]:
        """Subtitles next to the video on the same disk whose name is the video's stem plus '.' (strict, so
        another episode's subtitles never ride along)."""
        folder, name = os.path.split(loc.array_path)
        stem = os.path.splitext(name)[0] + "."
        exts = tuple(e.lower() for e in self.settings.cache.sidecar_extensions)
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return []
        pool_folder = os.path.dirname(loc.pool_path)
        return [(os.path.join(folder, n), os.path.join(pool_folder, n)) for n in names
                if n != name and n.startswith(stem) and n.lower().endswith(exts) and not n.endswith(BACKUP_SUFFIX)
                and os.path.isfile(os.path.join(folder, n))]

    def _apply(self, result: mover.OpResult, planned: dict[str, Any]) -> None:
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
            entry = self.registry.remove(key)
            size = entry.size if entry else sum(f.facts.size for f in result.files)
            self.report.moved_back += 1
            self.report.bytes_moved_back += size
            self._done("moved_back", key, size, "moved back to the array", _why(planned.get(key)))
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

    def _entry_from_moved(self, key: str, files: list[mover.MovedFile], item: Any, disk: Optional[str]) -> Entry:
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
                                        kind=w.item.kind, rating_key=w.item.rating_key))
                self._event("adopted", w.path, detail="already on the pool")

    def _event(self, kind: str, path: str, detail: str) -> None:
        """A history event that is not a file moved by this run (recovered, adopted, dropped, retired, ...)."""
        self.books.event(kind, path, detail)

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

    # -- finishing --------------------------------------------------------------------------------

    def save(self, protect: Optional[Plan] = None) -> None:
        """Write registry, history and exclusion list (each only if changed)."""
        if self.report.dry_run:
            return
        self.books.save()

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
        report.exit_code = _exit_code(report, self.demand)
        report.message = _message(report, self.registry)
        log.info("%s finished in %.1f s (exit %d): %s; cached %d (%s), moved back %d (%s), skipped %d, failed %d",
                 report.action, report.finished_at - report.started_at, report.exit_code, report.message,
                 report.cached, human_bytes(report.bytes_cached), report.moved_back,
                 human_bytes(report.bytes_moved_back), report.skipped, report.failed)
        self.store.save_last_run(report.summary())
        if notify and _worth_telling(report):
            Notifier(self.settings).send_all(run_messages(report.summary(), report.failures, report.activity))
        return report


def pool_facts(settings: Settings, entry: Entry,
               by_user_path: dict[str, dict[str, Any]]) -> dict[str, mover.RecordedCopy]:
    """An entry's per-file facts (recorded, confirmed), keyed by pool path as the mover takes them."""
    out = {}
    for user_path, facts in by_user_path.items():
        rel = user_path[len(settings.paths.user_root.rstrip("/")) + 1:].partition("/")[2]
        out[f"{settings.paths.pool_root.rstrip('/')}/{entry.pool}/{entry.share}/{rel}"] = mover.RecordedCopy(
            facts["size"], facts["mtime_ns"], facts.get("blake2b"))
    return out


def unconfirmed_copies(settings: Settings, unraid: Unraid, entry: Entry) -> list[tuple[str, int, int]]:
    """(user path, pool copy size, backup size) of each file of a managed entry whose pool copy no longer
    matches what was cached (nor, without a record, its backup) while the backup is still on its disk, and
    that was not shown to be a complete replacement. A move back would have to delete that backup."""
    if not (entry.backup and entry.disk):
        return []
    root = settings.paths.user_root.rstrip("/") + "/"
    out = []
    for user_path in (entry.path, *entry.sidecars):
        rel = user_path[len(root):].partition("/")[2]
        pool, backup = _stat_pair(f"{settings.paths.pool_root.rstrip('/')}/{entry.pool}/{entry.share}/{rel}",
                                  unraid.disk_path(entry.disk, entry.share, rel) + BACKUP_SUFFIX)
        if pool is None or backup is None:
            continue
        state = backups.pool_copy_state(pool, backup, entry.recorded.get(user_path), entry.confirmed.get(user_path))
        if state == backups.UNCONFIRMED:
            out.append((user_path, pool[0], backup[0]))
    return out


def _stat_pair(*paths: str) -> tuple[Optional[tuple[int, int]], ...]:
    """(size, mtime_ns) of each path that is a regular file, else None."""
    out: list[Optional[tuple[int, int]]] = []
    for path in paths:
        try:
            st = os.lstat(path)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None)
    return tuple(out)


def _exit_code(report: RunReport, demand: Demand) -> int:
    if report.exit_code == 5:
        return 5
    if demand.server_unknown:
        return 3
    return 1 if report.failed else 0


def _message(report: RunReport, registry: Registry) -> str:
    dry = "dry run: " if report.dry_run else ""
    if report.exit_code == 5:
        return f"{dry}stopped on request after {report.cached} cached and {report.moved_back} moved back"
    p = report.plan
    if report.dry_run and p is not None:
        s = p.summary()
        return f"dry run: would cache {s['cache']} and move back {s['move_back']} file(s); nothing was moved"
    if report.exit_code == 3:
        lead = "Plex could not be read, so nothing was moved back"
    elif not (report.cached or report.moved_back or report.failed or report.activity or report.warnings):
        return f"nothing to do: {len(registry)} file(s) cached, all up to date"
    elif not (report.cached or report.moved_back or report.failed or report.activity):
        return f"nothing moved: {len(registry)} file(s) cached; {len(report.warnings)} warning(s) to look at"
    else:
        lead = f"cached {report.cached}, moved back {report.moved_back}"
    return f"{dry}{lead}" + (f"; {report.failed} failed" if report.failed else "")


def _why(item: Optional[PlanItem]) -> str:
    """A plan item's reasons (who wants it, why) or its why, in words for the log."""
    if item is None:
        return ""
    if item.reasons:
        return describe_reasons([r.to_json() for r in item.reasons])
    return item.why


def _op_size(op: mover.Op) -> int:
    return _size(op.array_path if isinstance(op, mover.CacheOp) else op.pool_path)


def _worth_telling(report: RunReport) -> bool:
    return bool(report.cached or report.moved_back or report.failed or report.exit_code or report.warnings
                or report.unknown or report.activity)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


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
        return _run(cycle, session.progress)


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
        return cycle.finish()


def _evict_plan(cycle: Cycle, targets: list[str]) -> Plan:
    """Move each target back, except what is open now or held on the pool (skipped, with why)."""
    entries, pool_root = cycle.registry.entries, cycle.settings.paths.pool_root
    p = Plan([PlanItem(MOVE_BACK, t, entries[t].size, entries[t].pool, why="evicted on request",
                       release=entries[t].disk is None) for t in targets])
    busy = mover.open_paths([entries[t].pool_path(pool_root) for t in targets])
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
    with Session(settings, "recover", check=False, report_progress=False):
        cycle = Cycle(settings, action="recover")
        results = cycle.recover()
        cycle.save()
    done = [{"op_id": r.op_id, "path": r.key, "outcome": r.outcome, "detail": r.detail}
            for r in results]
    failed = sum(1 for r in results if r.outcome == "failed")
    message = (f"repaired {len(results) - failed} interrupted operation(s)" + (f", {failed} failed" if failed else "")
               if results else "nothing to recover: no interrupted operations")
    return {"message": message, "recovered": done}


__all__ = ["RunReport", "activity", "evict", "list_files", "pin", "plan_document", "recover_only", "run_cycle",
           "status"]
