"""The registry against the disks: entries whose files left the pool behind our back, upgrades, files
replaced in place, subtitles, stray and stale backups, and who wants each managed file now."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Optional

from plexcache import backups
from plexcache.config import Settings
from plexcache.demand import WantedFile
from plexcache.layout import BACKUP_SUFFIX, CHANGED_MTIME_S
from plexcache.media import fastcopy
from plexcache.media.ops import AUTO, RecordedCopy, RestoreOp
from plexcache.media.tidy import retire_stale_backup
from plexcache.runstate import RunState
from plexcache.session import disk_of
from plexcache.state import Entry
from plexcache.unraid import Location, Unraid

log = logging.getLogger(__name__)
WANTED_GRANULARITY = 86400.0  # last_wanted_at is refreshed at most this often (seconds): flash wear


class Reconciler(RunState):
    """Brings the registry in line with what is on the disks before planning."""

    def reconcile(self, wanted: list[WantedFile]) -> None:
        """Drop entries whose files left the pool behind our back, follow upgrades, refresh who wants what."""
        by_path = {w.path: w for w in wanted}
        by_key: dict[str, list[WantedFile]] = {}
        for w in wanted:
            by_key.setdefault(w.item.rating_key, []).append(w)
        pools = {e.pool for e in self.registry.entries.values()}
        mounted = {pool for pool in pools if (Path(self.settings.paths.pool_root) / pool).is_dir()}
        self.unmounted = pools - mounted
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
                                rating_key=want.item.rating_key, sidecars=self._pool_sidecars(loc, want.path),
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
            entry.sidecars = [x for x in entry.sidecars if x != side]
            entry.recorded = {k: v for k, v in entry.recorded.items() if k != side}
            where = "back on the array" if copies.originals else "deleted"
            self._event("dropped", side, detail=f"subtitle left the pool ({where}) while its video stayed")
            if len(copies.originals) == 1:
                for backup in copies.backups:
                    self._settle_backup(side, copies.originals[0], backup)

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
                self._settle_backup(user_path, copies.originals[0], backup)

    def _move_back_left_behind(self, entry: Entry, user_path: str, rel: str, backup: str) -> None:
        """The video went back to the array behind our back but its subtitle is still on the pool, beside a
        backup: move the subtitle back too (by renaming its backup back), rather than leave it unmanaged."""
        pool_path = f"{self.settings.paths.pool_root.rstrip('/')}/{entry.pool}/{entry.share}/{rel}"
        if not os.path.isfile(pool_path):
            return
        facts = entry.recorded.get(user_path)
        recorded = {pool_path: RecordedCopy(facts["size"], facts["mtime_ns"], facts.get("blake2b"))} \
            if facts else {}
        array_path = backup[:-len(BACKUP_SUFFIX)]
        self.left_behind.append(RestoreOp(pool_path, array_path, AUTO, (), recorded, key=user_path,
                                          disk=disk_of(array_path, self.unraid)))

    def _settle_backup(self, user_path: str, original: str, backup: str) -> str:
        outcome = backups.settle(original, backup, dry_run=self.report.dry_run)
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
                if self._settle_backup(user_path, original, backup) not in (backups.RETIRED, backups.SAME):
                    if want.path not in self.blocked:
                        self.report.stray_backups += 1
                    self.blocked[want.path] = (f"a backup {backup} exists that is not provably identical to "
                                               f"{original}; not cached, so no second backup is made: run "
                                               "`plexcache-r audit`")
        self.locations.pop(want.path, None)

    def _stale_backup(self, loc: Location, new: WantedFile) -> None:
        """An upgrade left the old backup behind. It is never restored over the newer file; it is retired
        only once the new file is complete (by the mover, when it offers that; until then: reported)."""
        retire = retire_stale_backup
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
        pool_copy = (st.st_size, st.st_mtime_ns)  # looked at once: a regular file (locate), so stat = lstat
        found = self._unconfirmed(entry, pool_copy)
        if found and self._confirm_by_plex(entry, st, want, found):
            self._event("changed", entry.path, detail=f"replaced on the pool ({before} -> {st.st_size} bytes); "
                        "Plex lists the new size, so the old backup is retired when it moves back")
            found = self._unconfirmed(entry, pool_copy)
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

    def _unconfirmed(self, entry: Entry, pool_copy: Optional[tuple[int, int]] = None) -> list[tuple[str, int, int]]:
        """(user path, pool copy size, backup size) of each file of the entry whose pool copy differs from
        what was cached while its backup is still there, and that nothing showed to be complete."""
        return unconfirmed_copies(self.settings, self.unraid, entry, pool_copy)

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


def unconfirmed_copies(settings: Settings, unraid: Unraid, entry: Entry,
                       pool_copy: Optional[tuple[int, int]] = None) -> list[tuple[str, int, int]]:
    """[(user path, pool copy size, backup size)] when a managed video's pool copy no longer matches what was
    cached (nor, without a record, its backup) while the backup is still on its disk, and it was not shown to
    be a complete replacement: a move back would have to delete that backup. Its subtitles are not looked
    at: one Bazarr replaced cannot be confirmed (Plex lists no subtitle sizes), so the move back keeps the
    old one beside the new as its backup (RestoreOp.keep_backup) instead of holding the video on the pool,
    and `audit` shows the pair (a stray backup) for a person to choose. pool_copy: (size, mtime_ns) of the
    pool copy when the caller has just looked at it."""
    if not (entry.backup and entry.disk):
        return []
    backup_path = unraid.disk_path(entry.disk, entry.share, entry.rel) + BACKUP_SUFFIX
    if pool_copy is None:
        pool, backup = _stat_pair(entry.pool_path(settings.paths.pool_root), backup_path)
    else:
        pool, (backup,) = pool_copy, _stat_pair(backup_path)
    if pool is None or backup is None:
        return []
    state = backups.pool_copy_state(pool, backup, entry.recorded.get(entry.path), entry.confirmed.get(entry.path))
    return [(entry.path, pool[0], backup[0])] if state == backups.UNCONFIRMED else []


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
