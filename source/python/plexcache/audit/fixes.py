"""How to repair: the fixes `audit --fix` applies, in order, under one session (lock, stop flag,
progress, recovery first), every change to a media file through the journaled mover."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from plexcache import backups
from plexcache.audit.disk import FileCopies, Stat, same_file, stat_file
from plexcache.audit.findings import (
    CHOICE_KINDS,
    CHOICES,
    EXTRAS,
    KEEP,
    KINDS,
    LEFTOVER,
    Finding,
    Scan,
    facts_for,
    load_registry,
    managed_index,
    scan,
)
from plexcache.config import Settings
from plexcache.errors import UsageError
from plexcache.fsutil import atomic_write_bytes
from plexcache.layout import BACKUP_SUFFIX, journal_dir
from plexcache.maintenance import MaintenanceHistory
from plexcache.media.journal import Journal
from plexcache.media.lanes import run_ops
from plexcache.media.mover import Mover, recover
from plexcache.media.openfiles import open_paths
from plexcache.media.ops import DiscardOp, RecordedCopy, Recovered, RestoreOp
from plexcache.media.tidy import (
    REMOVED,
    SET_ASIDE,
    discard_copy,
    drop_partial,
    drop_redundant,
    put_backup_back,
    retire_stale_backup,
)
from plexcache.runctl import StopFlag
from plexcache.session import Books, Progress, Session
from plexcache.state import Entry, Registry
from plexcache.unraid import Unraid, split_user_path

FIXES = ("recover", "protect", "sync", "restore", "delete-redundant", "keep-new", "keep-original", "settle", KEEP,
         EXTRAS, LEFTOVER)
ALL_SAFE = "all-safe"
HASH = "hash"  # modifier: also compare contents before deleting a redundant copy
SAFE_FIXES = ("recover", "protect", "sync", "restore")  # nothing is deleted by these



@dataclass
class Wanted:
    """What `--fix` asked for: fix names, finding kinds (their offered fix is applied), and hashing."""

    fixes: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    use_hash: bool = False
    # a choice named as CHOICE:KIND decides the findings of those kinds only (a choice named alone, all)
    choice_kinds: dict[str, set[str]] = field(default_factory=dict)
    keep: list[str] = field(default_factory=list)  # KEEP:PATH: the physical copies a person chose to keep

    def __bool__(self) -> bool:
        return bool(self.fixes or self.kinds)

    def chooses(self, finding: Finding) -> bool:
        return finding.fix is not None and (finding.fix in self.fixes or finding.kind in self.kinds)

    def decides(self, choice: str, finding: Finding) -> bool:
        """Whether the person's `choice` was made for this finding."""
        if choice not in finding.choices or choice not in self.fixes:
            return False
        if choice == KEEP:
            return bool(self.keep_paths(finding))
        scope = self.choice_kinds.get(choice)
        return scope is None or finding.kind in scope

    def keep_paths(self, finding: Finding) -> list[str]:
        """The copies of this finding the person chose to keep (one, unless they chose twice)."""
        return [p for p in finding.paths if p in self.keep]

    def add_choice(self, choice: str, kind: Optional[str]) -> None:
        if choice not in self.fixes:
            self.fixes.append(choice)
            self.choice_kinds[choice] = set()
        scope = self.choice_kinds.get(choice)
        if kind is None:
            self.choice_kinds.pop(choice, None)   # named alone: every kind that offers it
        elif scope is not None:
            scope.add(kind)


def expand_fixes(fixes: list[str]) -> Wanted:
    """Validate `--fix` words: a fix name, a finding kind (apply the fix its findings offer), all-safe (the
    fixes that never delete anything) or hash (compare contents too before removing a redundant copy)."""
    wanted = Wanted()
    for name in fixes:
        if name.startswith(KEEP + ":/"):   # a path, taken as it is: its case and spaces are its own
            wanted.keep.append(name[len(KEEP) + 1:])
            if KEEP not in wanted.fixes:
                wanted.fixes.append(KEEP)
            continue
        name = name.strip().lower()
        if name in (ALL_SAFE, "fix-all-safe"):
            wanted.fixes.extend(f for f in SAFE_FIXES if f not in wanted.fixes)
        elif name == HASH:
            wanted.use_hash = True
        elif name in CHOICES:
            wanted.add_choice(name, None)
        elif name.partition(":")[0] in CHOICES and name.partition(":")[2] in CHOICE_KINDS:
            choice, _, kind = name.partition(":")
            wanted.add_choice(choice, kind)
        elif name in FIXES:
            if name not in wanted.fixes:
                wanted.fixes.append(name)
        elif name in KINDS:
            if name not in wanted.kinds:
                wanted.kinds.append(name)
        else:
            raise UsageError(f"unknown fix {name!r}: use a fix ({', '.join(FIXES)}, {ALL_SAFE}, {HASH}), a "
                             f"finding kind ({', '.join(KINDS)}) or a choice for one kind (e.g. keep-new:stray; "
                             f"kinds with choices: {', '.join(CHOICE_KINDS)}) or the copy of a duplicate to keep "
                             f"({KEEP}:/mnt/disk1/SHARE/FILE)")
    if wanted.use_hash and not wanted:
        raise UsageError("--fix hash only says how to compare copies: add delete-redundant (or duplicate)")
    return wanted



# The order fixes run in: finish the journal first, then put lone backups back, then remove redundant
# copies, then bring the registry and the ignore list in line with what is now on disk.
FIX_ORDER = ("recover", "keep-original", "keep-new", KEEP, EXTRAS, LEFTOVER, "settle", "restore", "delete-redundant",
             "sync", "protect")


@dataclass
class FixContext:
    """Everything one `audit --fix` holds while it repairs: the lock is taken by the caller."""

    settings: Settings
    registry: Registry
    unraid: Unraid
    mover: Mover
    stop: StopFlag
    progress: Progress
    use_hash: bool
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    registry_changed: bool = False
    relist: bool = False  # the ignore list is to be rewritten from the registry
    stopped: bool = False

    def record(self, finding: Finding, result: str, message: str) -> None:
        self.outcomes.append({"fix": finding.fix, "action": finding.action, "kind": finding.kind,
                              "path": finding.path, "result": result, "message": message})


def _recover_first(settings: Settings) -> list[dict[str, Any]]:
    """Finish or roll back interrupted operations the way a run does (the registry and history are brought
    in line with them), before any fix looks at the files. Returns one outcome per operation."""
    journal = Journal(journal_dir(settings))
    if not (journal.has_unfinished() or journal.has_done()):
        return []
    try:
        books = Books(settings, time.time())
    except UsageError:  # a damaged registry: repair the files now; the sync fix rebuilds the books from them
        results = recover(journal)
    else:
        results = books.recover([])
        books.save()
    return [_recovered_outcome(rec) for rec in results if not rec.earlier]


def _recovered_outcome(rec: Recovered) -> dict[str, Any]:
    """One repaired operation as a fix outcome (one finished before is only bookkeeping: not reported)."""
    ok = rec.outcome != "failed"
    return {"fix": "recover", "action": "recover", "kind": "interrupted", "path": rec.key,
            "result": "ok" if ok else "failed",
            "message": f"operation {rec.op_id} {rec.outcome.replace('_', ' ')}" if ok else
            (rec.detail or "recovery failed; it is retried at the next run")}


def _restore_op(ctx: FixContext, finding: Finding, entry: Optional[Entry]) -> Any:
    """Put a lone backup back under its own name, through the mover (a journaled rename). A managed video
    takes its subtitles along (each renamed back from its backup, or copied back from the pool)."""
    backup = finding.paths[0]
    array_path = backup[: -len(BACKUP_SUFFIX)]
    parts = split_user_path(ctx.settings.paths.user_root, finding.path)
    info = ctx.unraid.share(parts[0]) if parts else None
    pool = entry.pool if entry else (info.pool if info else "")
    root = Path(ctx.settings.paths.pool_root) / pool
    pool_path = str(root / parts[0] / parts[1]) if parts and pool else array_path + ".no-pool-copy"
    sidecars, recorded = [], {}
    if entry is not None and entry.path == finding.path:
        folder = os.path.dirname(array_path)
        for side in entry.sidecars:
            side_parts = split_user_path(ctx.settings.paths.user_root, side)
            if side_parts is None:
                continue
            side_pool = str(root / side_parts[0] / side_parts[1])
            side_array = os.path.join(folder, os.path.basename(side))
            if stat_file(side_pool) or stat_file(side_array + BACKUP_SUFFIX):
                sidecars.append((side_pool, side_array))
            facts = entry.recorded.get(side)
            if facts:
                recorded[side_pool] = RecordedCopy(facts["size"], facts["mtime_ns"], facts.get("blake2b"))
    return RestoreOp(pool_path=pool_path, array_path=array_path, backup_path=backup, sidecars=sidecars,
                     recorded=recorded, key=finding.path)


def _run_file_ops(ctx: FixContext, pairs: list[tuple[Finding, Any]]) -> list[tuple[Finding, Any]]:
    """Run mover ops (skipping files some process has open); returns (finding, OpResult) for the done ones."""
    busy = open_paths([p for f, _ in pairs for p in f.paths])
    runnable = []
    for finding, op in pairs:
        if busy.intersection(finding.paths):
            ctx.record(finding, "skipped", "the file is open (being played?); try again later")
        else:
            runnable.append((finding, op))
    if not runnable:
        return []
    ctx.progress.totals(len(runnable), sum(max(f.sizes, key=lambda s: s or 0) or 0 for f, _ in runnable))
    ctx.progress.phase("copying")
    report = run_ops([op for _, op in runnable], ctx.settings.cache.workers, ctx.mover, stop=ctx.stop,
                     progress=ctx.progress)
    ctx.stopped = ctx.stopped or report.stopped
    done = []
    for (finding, _), result in zip(runnable, report.results, strict=True):
        if result.outcome in ("restored", "cached", "dropped"):
            done.append((finding, result))
        elif result.outcome == "not_started":
            ctx.record(finding, "skipped", "stopped before this file" if report.stopped else "not started")
        else:
            ctx.record(finding, result.outcome, str(result.error) if result.error else result.outcome)
    return done


def _fix_restore(ctx: FixContext, findings: list[Finding]) -> None:
    index = managed_index(ctx.registry)
    chosen = {f.path for f in findings}
    pairs, with_video = [], []
    for finding in findings:
        entry = index.get(finding.path)
        if entry is not None and entry.path != finding.path and entry.path in chosen:
            with_video.append(finding)  # a subtitle of a video being restored: it goes back with it
            continue
        pairs.append((finding, _restore_op(ctx, finding, entry)))
    restored = set()
    for finding, _ in _run_file_ops(ctx, pairs):
        restored.add(finding.path)
        if ctx.registry.forget(finding.path):
            ctx.registry_changed = True
        ctx.record(finding, "ok", f"put the array copy back at {finding.paths[0][: -len(BACKUP_SUFFIX)]}")
    for finding in with_video:
        video = index[finding.path].path
        ctx.record(finding, "ok" if video in restored else "skipped",
                   f"with its video {video}" if video in restored else f"its video {video} was not restored")


def _fix_keep_original(ctx: FixContext, findings: list[Finding]) -> None:
    """Put each original (the backup) back at its name through the mover; the mover removes the new copy
    only once the original is in place, and the file is no longer managed."""
    index = managed_index(ctx.registry)
    pairs = []
    for finding in findings:
        if finding.kind == "stray":
            _fix_stray_choice(ctx, finding, keep_new=False)
            continue
        new, backup = finding.paths[0], finding.paths[1]
        op = _restore_op(ctx, dataclasses.replace(finding, paths=[backup]), index.get(finding.path))
        pairs.append((finding, dataclasses.replace(op, pool_path=new, keep_original=(new,))))
    for finding, _ in _run_file_ops(ctx, pairs):
        if ctx.registry.forget(finding.path):
            ctx.registry_changed = True
        ctx.record(finding, "ok", f"put the original back at {finding.paths[1][: -len(BACKUP_SUFFIX)]}; "
                   f"removed {finding.paths[0]}")


def _fix_settle(ctx: FixContext, findings: list[Finding]) -> None:
    """Stray backups: hash both copies; an identical backup is retired (the mover checks the live copy is
    complete and closed), copies that differ both stay for a person to choose."""
    for finding in findings:
        live, backup = finding.paths[0], finding.paths[1]
        ctx.progress.file_started(finding.path)
        outcome = backups.settle(live, backup, dry_run=False)
        ctx.progress.file_done(finding.path, 0)
        if outcome == backups.RETIRED:
            ctx.record(finding, "ok", f"{backup} held the same bytes as {live}: removed")
        elif outcome == backups.KEPT:
            ctx.record(finding, "refused", f"{live} is open or changed; both kept, try again later")
        else:
            ctx.record(finding, "refused", f"{live} and {backup} differ; both kept: choose to keep the new file "
                       "(the live file stays) or to restore the original (the backup is put back)")


def _fix_stray_choice(ctx: FixContext, finding: Finding, keep_new: bool) -> None:
    """A person's choice for a stray backup: keep the live file (the backup goes) or put the backup back
    (the live file goes), each only while the live file is still what the audit saw."""
    live, backup = finding.paths[0], finding.paths[1]
    size = finding.sizes[0] if finding.sizes[0] is not None else -1
    if keep_new and retire_stale_backup(backup, live, size):
        ctx.record(finding, "ok", f"kept {live}; removed the backup {backup}")
    elif not keep_new and put_backup_back(backup, live, size):
        ctx.record(finding, "ok", f"put the backup {backup} back; removed {live}")
    else:
        ctx.record(finding, "refused", f"{live} is open or changed since the check; both kept")


def _fix_keep_new(ctx: FixContext, findings: list[Finding]) -> None:
    """Keep the new copy. A managed file's pool copy is recorded as chosen, so its move back retires the
    backup; an unmanaged one's backup goes now (only while the new copy is complete and closed)."""
    index = managed_index(ctx.registry)
    for finding in findings:
        if finding.kind == "stray":
            _fix_stray_choice(ctx, finding, keep_new=True)
            continue
        new, backup = finding.paths[0], finding.paths[1]
        copy, entry = stat_file(new), index.get(finding.path)
        if copy is None or copy.size != finding.sizes[0]:
            ctx.record(finding, "refused", f"{new} changed since the check; run the audit again")
        elif entry is not None:
            entry.confirmed = {**entry.confirmed, finding.path: {"size": copy.size, "mtime_ns": copy.mtime_ns,
                                                                 "by": "you"}}
            ctx.registry_changed = True
            ctx.record(finding, "ok", f"kept {new}; its backup {backup} goes when it moves back")
        elif retire_stale_backup(backup, new, copy.size):
            ctx.record(finding, "ok", f"kept {new}; removed the backup {backup}")
        else:
            ctx.record(finding, "refused", f"{new} is open or changed; both kept")


def _fix_keep(ctx: FixContext, findings: list[Finding], wanted: Wanted) -> None:
    """A duplicate's copy chosen to keep: each other copy goes through the mover (removed when its bytes are
    the same, set aside as NAME.plexcache-discarded when they differ); the kept copy is only read."""
    for finding in findings:
        chosen = finding.paths[:1] if finding.action == EXTRAS else wanted.keep_paths(finding)
        if len(chosen) != 1:
            ctx.record(finding, "refused", f"choose one copy to keep, not {len(chosen)}; nothing changed")
            continue
        if ctx.stop.requested():
            ctx.stopped = True
            ctx.record(finding, "skipped", "stopped on request")
            continue
        ctx.progress.file_started(finding.path)
        given_up = _cached_copy_given_up(ctx, finding, chosen[0])
        done = [_discard_one(ctx, other, chosen[0], finding.path if other == given_up else None)
                for other in finding.paths if other != chosen[0]]
        ctx.progress.file_done(finding.path, 0)
        refused = [why for ok, why in done if not ok]
        message = f"kept {chosen[0]}; " + "; ".join(why for _, why in done)
        if given_up is not None and not os.path.lexists(given_up) and ctx.registry.forget(finding.path):
            ctx.registry_changed = ctx.relist = True
            message += "; the file is no longer managed (its subtitles on the pool are left to Unraid's mover)"
        ctx.record(finding, "refused" if refused else "ok", message)


def _cached_copy_given_up(ctx: FixContext, finding: Finding, kept: str) -> Optional[str]:
    """A managed file's cached copy, when the person keeps another copy of it (the array file): its
    management ends with it, else a move back would bring the copy set aside over the file the person kept
    and the ignore list would pin a path with nothing behind it. None when the cached copy stays."""
    entry = ctx.registry.get(finding.path)
    if entry is None:
        return None
    cached = entry.pool_path(ctx.settings.paths.pool_root)
    return cached if cached != kept and cached in finding.paths else None


def _fix_leftover(ctx: FixContext, findings: list[Finding]) -> None:
    """Temporary copies no operation names: each removed through the mover's tidying once its bytes are
    the start of a complete copy of its file (the run lock is held, so no copy is being written)."""
    for finding in findings:
        if ctx.stop.requested():
            ctx.stopped = True
            ctx.record(finding, "skipped", "stopped on request")
            continue
        ctx.progress.file_started(finding.path)
        done, what = drop_partial(finding.paths[0], finding.paths[1:])
        ctx.progress.file_done(finding.path, 0)
        ctx.record(finding, "ok" if done else "refused", what)


def _discard_one(ctx: FixContext, path: str, keep: str, forget: Optional[str]) -> tuple[bool, str]:
    """Give up one copy. The copy whose going ends a file's management (`forget`: its user path) goes as a
    journaled step, so that a kill before the registry is saved is finished by the next recovery."""
    outcome, where = ctx.mover.discard(DiscardOp(path, keep, forget)) if forget else discard_copy(path, keep)
    if outcome == REMOVED:
        return True, f"removed {path} (the same bytes)"
    if outcome == SET_ASIDE:
        return True, f"{path} differs: set aside as {where} (delete it when you are sure)"
    return False, f"{path} kept: {where}"


def _drop_plan(finding: Finding) -> Optional[tuple[str, str, Optional[str]]]:
    """(redundant copy, the copy that stays, rename_to) for a duplicate finding; None if it has no plan."""
    first, second = finding.paths[0], finding.paths[1]
    if finding.action == "delete-pool":  # pool copy redundant: the array original stays
        return first, second, None
    if finding.action == "delete-original":  # the first copy (the pool copy) stays
        return second, first, None
    if finding.action == "original-to-backup":  # managed, backups on, no backup: the original becomes it
        return second, first, second + BACKUP_SUFFIX
    return None


def _fix_delete(ctx: FixContext, findings: list[Finding]) -> None:
    """Remove verified-redundant copies through the mover (drop_redundant checks them again first)."""
    planned = [(f, _drop_plan(f)) for f in findings]
    busy = open_paths([p for f, _ in planned for p in f.paths])
    for finding, plan in planned:
        if plan is None:
            ctx.record(finding, "skipped", "no safe plan for this duplicate")
        elif busy.intersection(finding.paths):
            ctx.record(finding, "skipped", "the file is open (being played?); try again later")
        elif ctx.stop.requested():
            ctx.stopped = True
            ctx.record(finding, "skipped", "stopped on request")
        else:
            _drop(ctx, finding, *plan)


def _drop(ctx: FixContext, finding: Finding, path: str, keep: str, rename_to: Optional[str]) -> None:
    ctx.progress.file_started(finding.path)
    done = drop_redundant(path, keep, verify=ctx.use_hash or ctx.settings.cache.verify, rename_to=rename_to)
    ctx.progress.file_done(finding.path, 0)
    if done:
        ctx.record(finding, "ok", f"turned {path} into its backup" if rename_to else f"removed {path}")
    else:
        ctx.record(finding, "refused", "refused: the copies are no longer identical (or one is open)")


def _adopt(ctx: FixContext, finding: Finding, facts: FileCopies) -> str:
    """Add an untracked pool file with a matching backup, or one alone that the ignore list names, to the
    registry (as a sidecar of its video if it is one). Returns what was done."""
    info = ctx.unraid.share(facts.share)
    pool = info.pool if info else ""
    pool_copy = facts.pool_copies.get(pool)
    if pool_copy is None:
        return ""
    alone = not facts.backups and not facts.originals and finding.paths == [pool_copy.path]
    matched = len(facts.backups) == 1 and same_file(pool_copy, facts.backups[0][1])
    if not (alone or matched):
        return ""
    disk = None if alone else facts.backups[0][0]  # no backup: its move back hands it to the mover
    parent = sidecar_parent(ctx.settings, ctx.registry, facts.user_path, disk)
    if parent is not None:
        attach_sidecar(parent, facts.user_path, pool_copy)
        return f"added as a sidecar of {parent.path}"
    ctx.registry.add(adopted_entry(facts, pool, disk, pool_copy, backup=not alone))
    return "added to the registry"


def _recorded(copy: Stat) -> dict[str, Any]:
    """What the mover compares at move-back time (the shape engine entries keep in Entry.recorded)."""
    return {"size": copy.size, "mtime_ns": copy.mtime_ns or int(copy.mtime * 1e9), "blake2b": None}


def adopted_entry(facts: FileCopies, pool: str, disk: Optional[str], pool_copy: Stat, cached_at: Optional[float] = None,
                  backup: bool = True, **extra: Any) -> Entry:
    """A registry entry for a pool file whose original is kept as a backup on `disk` (or, with backup False
    and no disk, one that never had a copy on the array to go back to)."""
    name = facts.rel.rsplit("/", 1)[-1]
    return Entry(path=facts.user_path, share=facts.share, rel=facts.rel, pool=pool, disk=disk,
                 size=pool_copy.size, mtime=pool_copy.mtime,
                 cached_at=cached_at if cached_at is not None else time.time(),
                 title=name.rsplit(".", 1)[0], backup=backup, recorded={facts.user_path: _recorded(pool_copy)},
                 **extra)


def attach_sidecar(parent: Entry, user_path: str, pool_copy: Stat) -> None:
    if user_path not in parent.sidecars:
        parent.sidecars.append(user_path)
    parent.recorded[user_path] = _recorded(pool_copy)


def sidecar_parent(settings: Settings, registry: Registry, user_path: str,
                   disk: Optional[str] = None) -> Optional[Entry]:
    """The managed video a sidecar (subtitle) belongs to: same folder, its name starts with the video's stem,
    and (when given) its backup is on the same disk (a sidecar moves back to its video's disk)."""
    directory, _, name = user_path.rpartition("/")
    lower = name.lower()
    if not any(lower.endswith(ext.lower()) for ext in settings.cache.sidecar_extensions):
        return None
    best: Optional[Entry] = None
    for entry in registry.entries.values():
        edir, _, ename = entry.path.rpartition("/")
        stem = ename.rsplit(".", 1)[0]
        if disk is not None and entry.disk != disk:
            continue
        if edir == directory and name.startswith(stem + ".") and (best is None or len(stem) > len(best.rel)):
            best = entry
    return best


def _is_sidecar_name(settings: Settings, path: str) -> bool:
    lower = path.lower()
    return any(lower.endswith(ext.lower()) for ext in settings.cache.sidecar_extensions)


def _fix_sync(ctx: FixContext, findings: list[Finding], facts_of: dict[str, FileCopies]) -> None:
    # videos first, so that their subtitles can join them as sidecars
    for finding in sorted(findings, key=lambda f: _is_sidecar_name(ctx.settings, f.path)):
        if finding.action == "rebuild":
            _keep_damaged(Path(finding.path))
            ctx.registry_changed = True
            ctx.record(finding, "ok", f"kept the damaged file as {finding.path}.damaged; rebuilt from the disks")
        elif finding.action == "forget":
            changed = ctx.registry.forget(finding.path)
            ctx.registry_changed = ctx.registry_changed or changed
            ctx.record(finding, "ok", "dropped the registry entry")
        elif finding.action == "adopt":
            what = _adopt(ctx, finding, facts_of.get(finding.path) or facts_for(ctx.settings, finding.path))
            ctx.registry_changed = ctx.registry_changed or bool(what)
            ctx.record(finding, "ok" if what else "skipped", what or "the copies changed since the scan")
        else:  # unlist: the ignore list is rebuilt from the registry below
            ctx.relist = True
            ctx.record(finding, "ok", "removed from the mover ignore list")


def _keep_damaged(path: Path) -> None:
    """Copy an unreadable state file aside before it is replaced (someone may want to look at it)."""
    try:
        atomic_write_bytes(Path(str(path) + ".damaged"), path.read_bytes())
    except OSError:
        pass


def _fix_protect(ctx: FixContext, findings: list[Finding]) -> None:
    ctx.relist = True
    for finding in findings:
        ctx.record(finding, "ok", "added to the mover ignore list")


def apply_fixes(ctx: FixContext, found: Scan, wanted: Wanted) -> None:
    """Apply the wanted fixes to the findings that offer them, in FIX_ORDER."""
    for name in FIX_ORDER:
        chosen = [f for f in found.findings if f.fix == name and wanted.chooses(f)]
        # a choice is applied only when named, never by its kind: the finding takes the fix chosen
        chosen += [dataclasses.replace(f, fix=name) for f in found.findings if wanted.decides(name, f)]
        if not chosen:
            continue
        if ctx.stopped or ctx.stop.requested():
            ctx.stopped = True
            for finding in chosen:
                ctx.record(finding, "skipped", "stopped on request")
            continue
        if name == "recover":  # _recover_first already ran; whatever is left could not be repaired now
            for finding in chosen:
                ctx.record(finding, "failed", "still in the journal after recovery; see the log")
        elif name == "restore":
            _fix_restore(ctx, chosen)
        elif name == "keep-original":
            _fix_keep_original(ctx, chosen)
        elif name == "keep-new":
            _fix_keep_new(ctx, chosen)
        elif name in (KEEP, EXTRAS):
            _fix_keep(ctx, chosen, wanted)
        elif name == LEFTOVER:
            _fix_leftover(ctx, chosen)
        elif name == "settle":
            _fix_settle(ctx, chosen)
        elif name == "delete-redundant":
            _fix_delete(ctx, chosen)
        elif name == "sync":
            _fix_sync(ctx, chosen, found.facts)
        else:
            _fix_protect(ctx, chosen)
    offered = {p for f in found.findings if KEEP in f.choices for p in f.paths}
    for path in wanted.keep:
        if path not in offered:   # the copies changed since the person looked, or the path is no copy
            ctx.outcomes.append({"fix": KEEP, "action": KEEP, "kind": "duplicate", "path": path, "result": "refused",
                                 "message": f"{path} is not a copy of a duplicate now; run the check again"})


def _history(history: Any, outcomes: list[dict[str, Any]]) -> None:
    """One history record per fix applied: how many paths, and the worst result."""
    by_fix: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        by_fix.setdefault(outcome["fix"], []).append(outcome)
    for fix, items in by_fix.items():
        results = {i["result"] for i in items}
        worst = next((r for r in ("failed", "critical", "refused", "skipped") if r in results), "ok")
        ok = sum(1 for i in items if i["result"] == "ok")
        history.add("audit-fix", worst, f"{fix}: {ok} of {len(items)} done", fix=fix,
                    paths=[i["path"] for i in items])


def repair(settings: Settings, wanted: Wanted) -> tuple[list[dict[str, Any]], bool]:
    """Hold the run lock, recover if needed, scan, fix, save. Returns (outcomes, stopped)."""
    with Session(settings, "audit-fix") as session:
        recovered = _recover_first(settings)
        registry, damaged = load_registry(settings)
        books = Books(settings, time.time(), registry)
        session.progress.phase("planning")
        found = scan(settings, registry, books.unraid)
        if damaged is not None:
            found.findings.insert(0, damaged)
        ctx = FixContext(settings, registry, books.unraid, books.new_mover(verify=wanted.use_hash), session.stop,
                         session.progress, wanted.use_hash, recovered)
        apply_fixes(ctx, found, wanted)
        session.progress.phase("finishing")
        # a damaged registry stays in the journal's care until the sync fix has rebuilt it
        books.save(registry=ctx.registry_changed, history=False, relist=ctx.registry_changed or ctx.relist,
                   checkpoint=damaged is None or ctx.registry_changed)
        history = MaintenanceHistory.load(settings)
        _history(history, ctx.outcomes)
        history.save(settings)
        done = sum(1 for o in ctx.outcomes if o["result"] == "ok")
        failed = sum(1 for o in ctx.outcomes if o["result"] in ("failed", "critical"))
        session.finished({"exit_code": 5 if ctx.stopped else 1 if failed else 0, "fixed": done, "failed": failed,
                          "message": f"fixed {done} of {len(ctx.outcomes)} finding(s)"}, registry)
    return ctx.outcomes, ctx.stopped
