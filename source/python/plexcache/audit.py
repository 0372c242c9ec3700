"""Cache health: find what is wrong between the registry, the ignore list and the files on disk, and fix it.

`audit(settings, fixes)` scans, reports findings and, when asked, applies fixes. Every fix that touches a
media file goes through the journaled mover (plexcache.mover), under the run lock, with progress and stop
like a run, and is recorded in the maintenance history (plexcache.maintenance).

A full scan walks each cacheable share on its pool and on every array disk (one directory walk each, no
per-file probing). `cheap=True` never touches an array disk (no spin-up): it checks the registry against
the pools, the ignore list and the journal, which is what a run can afford to do after every cycle.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from plexcache import backups, exclusions, mover
from plexcache.backups import UNCONFIRMED, pool_copy_state
from plexcache.config import Settings
from plexcache.errors import StopRequested, UsageError
from plexcache.fsutil import atomic_write_bytes
from plexcache.journal import Journal
from plexcache.layout import BACKUP_SUFFIX, COPY_MTIME_SLACK_NS, is_temp_name, journal_dir, temp_target
from plexcache.maintenance import MaintenanceHistory, load_records
from plexcache.mover import RecordedCopy, RestoreOp, open_paths, run_ops
from plexcache.session import Books, Session
from plexcache.state import Entry, Registry, StateStore
from plexcache.unraid import Unraid, split_user_path

SCHEMA = 1
KINDS = ("interrupted", "unprotected", "stale", "orphaned", "duplicate", "untracked", "mismatch", "stray",
         "leftover")
FIXES = ("recover", "protect", "sync", "restore", "delete-redundant", "keep-new", "keep-original", "settle")
CHOICES = ("keep-new", "keep-original")  # a mismatch: only a person can say which copy is right
ALL_SAFE = "all-safe"
HASH = "hash"  # modifier: also compare contents before deleting a redundant copy
SAFE_FIXES = ("recover", "protect", "sync", "restore")  # nothing is deleted by these


# ---------------------------------------------------------------- what is on disk


@dataclass(frozen=True)
class Stat:
    """One physical regular file."""

    path: str
    size: int
    mtime: float
    nlink: int = 1
    mtime_ns: int = 0


def stat_file(path: str) -> Optional[Stat]:
    """lstat a regular file (never follows a symlink); None when absent or not a regular file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if st.st_mode & 0o170000 != 0o100000:
        return None
    return Stat(path, st.st_size, st.st_mtime, st.st_nlink, st.st_mtime_ns)


def same_file(a: Stat, b: Stat) -> bool:
    """Same size and mtime (contents are compared separately, only when asked)."""
    return a.size == b.size and abs(a.mtime - b.mtime) * 1e9 <= COPY_MTIME_SLACK_NS


@dataclass
class FileCopies:
    """Every physical copy of one user-share file: on pools, as originals on disks, as backups on disks."""

    user_path: str
    share: str
    rel: str
    pool_copies: dict[str, Stat] = field(default_factory=dict)  # pool name -> copy
    originals: list[tuple[str, Stat]] = field(default_factory=list)  # (disk, copy)
    backups: list[tuple[str, Stat]] = field(default_factory=list)  # (disk, NAME.plexcached)
    temps: list[Stat] = field(default_factory=list)  # .NAME.plexcache-tmp copies, on any disk or pool


def _skip_name(name: str) -> bool:
    """Hidden files: never ours as media. The mover's temporary copies are hidden too, but walked: a kill
    can leave one behind, and Unraid's mover can carry it to any disk."""
    return name.startswith(".") and not is_temp_name(name)


def walk_files(root: str) -> dict[str, Stat]:
    """Every regular file under root, keyed by its path relative to root. One scandir per directory."""
    out: dict[str, Stat] = {}
    stack = [("", root)]
    while stack:
        rel_dir, path = stack.pop()
        try:
            with os.scandir(path) as it:
                for item in it:
                    if _skip_name(item.name):
                        continue
                    rel = f"{rel_dir}{item.name}"
                    try:
                        if item.is_dir(follow_symlinks=False):
                            stack.append((rel + "/", item.path))
                        elif item.is_file(follow_symlinks=False):
                            st = item.stat(follow_symlinks=False)
                            out[rel] = Stat(item.path, st.st_size, st.st_mtime, st.st_nlink, st.st_mtime_ns)
                    except OSError:
                        continue
        except OSError:
            continue
    return out


def probe(settings: Settings, unraid: Unraid, share: str, rel: str, pools: list[str]) -> FileCopies:
    """FileCopies for one file by lstat (pool copies, then each disk). For a handful of paths, not for scans."""
    user_path = f"{settings.paths.user_root.rstrip('/')}/{share}/{rel}"
    facts = FileCopies(user_path, share, rel)
    for pool in pools:
        copy = stat_file(str(Path(settings.paths.pool_root) / pool / share / rel))
        if copy:
            facts.pool_copies[pool] = copy
    for disk, mount in unraid.disks:
        original = stat_file(os.path.join(mount, share, rel))
        if original:
            facts.originals.append((disk, original))
        backup = stat_file(os.path.join(mount, share, rel) + BACKUP_SUFFIX)
        if backup:
            facts.backups.append((disk, backup))
    return facts


def scan_share(settings: Settings, unraid: Unraid, share: str, pools: list[str],
               array: bool = True) -> dict[str, FileCopies]:
    """Walk SHARE on the given pools (and, with array, on every disk): user path -> FileCopies."""
    user_root = settings.paths.user_root.rstrip("/")
    facts: dict[str, FileCopies] = {}

    def get(rel: str) -> FileCopies:
        found = facts.get(rel)
        if found is None:
            found = facts[rel] = FileCopies(f"{user_root}/{share}/{rel}", share, rel)
        return found

    for pool in pools:
        for rel, st in walk_files(str(Path(settings.paths.pool_root) / pool / share)).items():
            if temp_target(rel) is not None:
                get(str(temp_target(rel))).temps.append(st)
            else:
                get(rel).pool_copies[pool] = st
    if array:
        for disk, mount in unraid.disks:
            for rel, st in walk_files(os.path.join(mount, share)).items():
                if temp_target(rel) is not None:
                    get(str(temp_target(rel))).temps.append(st)
                elif rel.endswith(BACKUP_SUFFIX) and len(rel) > len(BACKUP_SUFFIX):
                    get(rel[: -len(BACKUP_SUFFIX)]).backups.append((disk, st))
                else:
                    get(rel).originals.append((disk, st))
    return {f.user_path: f for f in facts.values()}


# ---------------------------------------------------------------- findings


@dataclass
class Finding:
    """One problem, the copies it concerns (physical paths and sizes) and the fix that repairs it."""

    kind: str
    message: str
    fix: Optional[str]
    path: str  # the user-share path (or, for the journal, the operation id)
    paths: list[str] = field(default_factory=list)
    sizes: list[Optional[int]] = field(default_factory=list)
    action: str = ""  # what the fix does for this finding (internal plan: see _apply_one)
    choices: list[str] = field(default_factory=list)  # fixes a person picks between (never applied by kind)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "fix": self.fix, "path": self.path,
                "paths": list(self.paths), "sizes": list(self.sizes), "action": self.action,
                "choices": list(self.choices)}


def _copies(*stats: Optional[Stat]) -> tuple[list[str], list[Optional[int]]]:
    present = [s for s in stats if s is not None]
    return [s.path for s in present], [s.size for s in present]


def _finding(kind: str, message: str, fix: Optional[str], path: str, *stats: Optional[Stat],
             action: str = "") -> Finding:
    paths, sizes = _copies(*stats)
    return Finding(kind, message, fix, path, paths, sizes, action)


def _size_words(a: Stat, b: Stat) -> str:
    if a.size != b.size:
        return f"{a.size} vs {b.size} bytes"
    if a.mtime == b.mtime:
        return "modified at another time"
    return f"modified {abs(a.mtime - b.mtime):.0f} s apart"


def judge_managed(facts: FileCopies, entry: Entry, backups_on: bool) -> list[Finding]:
    """A file the registry manages (or a sidecar of one)."""
    path = facts.user_path
    pool_copy = facts.pool_copies.get(entry.pool)
    backups = [b for _, b in facts.backups]
    originals = [o for _, o in facts.originals]
    out: list[Finding] = []
    if pool_copy is None:
        if backups and not originals:
            if len(backups) == 1:
                out.append(_finding("stale", f"{path}: managed, but its pool copy is gone; the array backup "
                                    "is the only copy", "restore", path, *backups, action="rename-backup"))
            else:
                out.append(_finding("duplicate", f"{path}: pool copy gone and backups on {len(backups)} disks",
                                    None, path, *backups))
        else:
            what = "the array has the file" if originals else "no copy is left anywhere"
            out.append(_finding("stale", f"{path}: managed, but its pool copy is gone ({what})", "sync", path,
                                *originals, action="forget"))
            out.extend(_array_pairs(facts))
        return out
    for backup in backups:
        state = pool_copy_state((pool_copy.size, pool_copy.mtime_ns), (backup.size, backup.mtime_ns),
                                entry.recorded.get(path), entry.confirmed.get(path))
        if state == UNCONFIRMED:
            out.append(_mismatch(f"{path}: the pool copy no longer matches what was cached and nothing shows it "
                                 f"is complete ({_size_words(pool_copy, backup)} than its backup); it stays on "
                                 "the pool until you choose", path, pool_copy, backup))
    if len(backups) > 1:
        out.append(_finding("duplicate", f"{path}: backups on {len(backups)} disks", None, path, *backups))
    for original in originals:
        if len(originals) == 1 and same_file(pool_copy, original):
            action = ("delete-original" if any(same_file(original, b) for b in backups) else
                      "original-to-backup" if backups_on and not backups else
                      "delete-original" if not backups else "")
            fix = "delete-redundant" if action else None
            out.append(_finding("duplicate", f"{path}: managed, and the array still has an identical original",
                                fix, path, pool_copy, original, action=action))
        else:
            out.append(_finding("duplicate", f"{path}: managed, and the array has a different file at the same "
                                f"path ({_size_words(pool_copy, original)})", None, path, pool_copy, original))
    return out


def live_on_disks(facts: FileCopies) -> list[Finding]:
    """The same file live on more than one array disk (e.g. Unraid's mover carried a cached file to another
    disk than its original's): Unraid shows one of them, the other is hidden. Nothing is removed by audit."""
    if len(facts.originals) < 2:
        return []
    where = ", ".join(disk for disk, _ in facts.originals)
    return [_finding("duplicate", f"{facts.user_path}: live on {len(facts.originals)} array disks ({where}); "
                     "Unraid shows only one of them: keep the right one and remove the others", None,
                     facts.user_path, *(o for _, o in facts.originals))]


def leftovers(facts: FileCopies) -> list[Finding]:
    """Temporary copies the mover left (a kill mid-copy; Unraid's mover may have carried one to another
    disk). The journal's recovery removes its own; one no journal record names is reported here."""
    return [_finding("leftover", f"{facts.user_path}: a temporary copy {t.path} was left behind (an "
                     "interrupted copy); it is not a complete file: remove it once no run is going", None,
                     facts.user_path, t) for t in facts.temps]


def _mismatch(message: str, path: str, new: Stat, original: Stat) -> Finding:
    """Two copies of one file that differ, where only a person can say which is right: keep the new one
    (the original, a backup, goes) or restore the original (the new copy goes once the original is back)."""
    finding = _finding("mismatch", message, None, path, new, original)
    finding.choices = list(CHOICES)
    return finding


def _array_pairs(facts: FileCopies) -> list[Finding]:
    """An original and its .plexcached side by side on the array (issue SN-D#63)."""
    path = facts.user_path
    if len(facts.originals) == 1 and len(facts.backups) == 1:
        return [_stray(path, facts.originals[0][1], facts.backups[0][1])]
    # several live copies or backups: which ones are right is for a person to say
    return [_finding("duplicate", f"{path}: the array has the file and a {BACKUP_SUFFIX} backup among several "
                     f"copies of it ({_size_words(original, backup)})", None, path, original, backup)
            for _, original in facts.originals for _, backup in facts.backups]


def _stray(path: str, live: Stat, backup: Stat) -> Finding:
    """A live array file and one backup of it (on any disk): a run will not cache the file while the backup
    is not provably the same bytes (it would make a second backup). Equal size and mtime prove nothing (a
    byte changed in place keeps both), so the fix hashes: `settle` retires an identical backup; copies that
    differ wait for a person's choice: keep the live file (keep-new) or put the backup back (keep-original)."""
    how = "same size and time" if (live.size, live.mtime_ns) == (backup.size, backup.mtime_ns) else \
        _size_words(live, backup)
    finding = _finding("stray", f"{path}: the array has the file and a {BACKUP_SUFFIX} backup that is not "
                       f"known to hold the same bytes ({how}); it cannot be cached until "
                       "this is settled: `settle` compares them and removes an identical backup, otherwise "
                       "choose keep-new (the live file stays) or keep-original (the backup is put back)",
                       "settle", path, live, backup, action="settle")
    finding.choices = list(CHOICES)
    return finding


def judge_unmanaged(facts: FileCopies, pool: str, listed: frozenset[str] = frozenset()) -> list[Finding]:
    """A file the registry does not know. `listed`: the pool paths the ignore list plexcache-r wrote names
    (the user's own entries left out)."""
    path = facts.user_path
    pool_copy = facts.pool_copies.get(pool)
    backups = [b for _, b in facts.backups]
    originals = [o for _, o in facts.originals]
    if pool_copy is not None and not backups and not originals and pool_copy.path in listed:
        # cached without a backup (backups off) and the registry lost it: the ignore list is the record
        return [_finding("untracked", f"{path}: on the pool and in the ignore list plexcache-r wrote, but not in "
                         "the registry (cached without a backup)", "sync", path, pool_copy, action="adopt")]
    if pool_copy is None:
        if backups and not originals:
            if len(backups) == 1:
                return [_finding("orphaned", f"{path}: a {BACKUP_SUFFIX} backup with no pool copy and no "
                                 "registry entry", "restore", path, *backups, action="rename-backup")]
            return [_finding("orphaned", f"{path}: {BACKUP_SUFFIX} backups on {len(backups)} disks and no "
                             "pool copy", None, path, *backups)]
        return _array_pairs(facts)
    if backups:
        if len(backups) == 1 and not originals and same_file(pool_copy, backups[0]):
            return [_finding("untracked", f"{path}: on the pool with a matching {BACKUP_SUFFIX} backup, but "
                             "not in the registry", "sync", path, pool_copy, backups[0], action="adopt")]
        out = [_mismatch(f"{path}: on the pool, not in the registry, and its backup differs "
                         f"({_size_words(pool_copy, b)})", path, pool_copy, b)
               for b in backups if not same_file(pool_copy, b)]
        out.extend(_array_pairs(facts))
        return out or [_finding("duplicate", f"{path}: on the pool with backups on {len(backups)} disks",
                                None, path, pool_copy, *backups)]
    out = []
    for original in originals:
        if len(originals) == 1 and same_file(pool_copy, original):
            out.append(_finding("duplicate", f"{path}: identical copies on the pool and the array, neither "
                                "managed", "delete-redundant", path, pool_copy, original, action="delete-pool"))
        else:
            out.append(_finding("duplicate", f"{path}: different files on the pool and the array "
                                f"({_size_words(pool_copy, original)})", None, path, pool_copy, original))
    return out


# ---------------------------------------------------------------- the audit


@dataclass
class Scan:
    """What one audit saw: findings plus the facts the fixes need."""

    findings: list[Finding]
    facts: dict[str, FileCopies]
    cheap: bool
    files_seen: int = 0
    seconds: float = 0.0


def _managed_index(registry: Registry) -> dict[str, Entry]:
    """User path -> the entry that manages it (its own, or its video's for a sidecar)."""
    index: dict[str, Entry] = {}
    for entry in registry.entries.values():
        for sidecar in entry.sidecars:
            index.setdefault(sidecar, entry)
        index[entry.path] = entry
    return index


def journal_findings(settings: Settings) -> list[Finding]:
    out = []
    try:
        pending = Journal(journal_dir(settings)).pending()
    except (OSError, ValueError) as exc:
        return [Finding("interrupted", f"the journal cannot be read ({exc})", None, str(journal_dir(settings)))]
    for op in pending:
        files = [f for f in op.intent.get("files") or [] if isinstance(f, dict)]
        paths = [p for f in files for p in (f.get("src"), f.get("dst"), f.get("backup")) if isinstance(p, str)]
        sizes: list[Optional[int]] = [f.get("size") for f in files for p in (f.get("src"), f.get("dst"),
                                                                               f.get("backup")) if isinstance(p, str)]
        state = "committed, recovery finishes it" if op.committed else "not committed, recovery rolls it back"
        kind = op.intent.get("kind") or "operation"
        key = (op.intent.get("op") or {}).get("key") if isinstance(op.intent.get("op"), dict) else None
        what = key or (paths[0] if paths else "?")
        out.append(Finding("interrupted", f"interrupted {kind} of {what} ({op.op_id}; {state})",
                           "recover", key or op.op_id, paths, sizes, action="recover"))
    return out


def exclusion_findings(settings: Settings, registry: Registry, facts_of: dict[str, FileCopies]) -> list[Finding]:
    """Managed pool copies missing from the ignore list (unprotected) and lines for files we do not manage."""
    try:
        text = Path(settings.paths.exclusion_list).read_text(encoding="utf-8", errors="replace")
        listed = {line.strip().rstrip("/") for line in text.splitlines() if line.strip()}
    except OSError:
        listed = set()
    expected = set(exclusions.build_lines(settings, registry))
    out = []
    for user_path, entry in _managed_index(registry).items():
        line = exclusions.pool_side(settings, entry.pool, user_path)
        if not line or line in listed:
            continue
        facts = facts_of.get(user_path)
        present = facts.pool_copies.get(entry.pool) if facts else stat_file(line)
        if present:
            out.append(_finding("unprotected", f"{user_path}: cached on {entry.pool} but missing from the mover "
                                "ignore list (the mover may move it)", "protect", user_path, present,
                                action="protect"))
    for line in sorted(listed - expected):
        out.append(Finding("stale", f"{line}: in the mover ignore list, but plexcache-r does not manage it "
                           "(the mover will never move it)", "sync", line, [line], [None], action="unlist"))
    return out


def _shares_to_scan(settings: Settings, unraid: Unraid, registry: Registry) -> dict[str, list[str]]:
    """Share -> pools to walk: every cacheable share on its pool, plus wherever the registry says."""
    out: dict[str, list[str]] = {}
    for name, info in unraid.shares.items():
        if info.cacheable:
            out.setdefault(name, []).append(info.pool)
    for entry in registry.entries.values():
        pools = out.setdefault(entry.share, [])
        if entry.pool and entry.pool not in pools:
            pools.append(entry.pool)
    return out


def scan(settings: Settings, registry: Registry, unraid: Optional[Unraid] = None, cheap: bool = False) -> Scan:
    """Every finding, without changing anything."""
    started = time.monotonic()
    unraid = unraid or Unraid.load(settings)
    facts: dict[str, FileCopies] = {}
    for share, pools in _shares_to_scan(settings, unraid, registry).items():
        facts.update(scan_share(settings, unraid, share, pools, array=not cheap))
    managed = _managed_index(registry)
    findings = journal_findings(settings)
    findings.extend(exclusion_findings(settings, registry, facts))
    findings.extend(_unmounted(settings, managed))
    backups_on = settings.cache.backups
    for found in facts.values():
        findings.extend(live_on_disks(found))
        findings.extend(leftovers(found))
    for user_path, entry in managed.items():
        if not _pool_mounted(settings, entry.pool):
            continue
        found = facts.get(user_path) or _facts_for(settings, user_path)
        if cheap:
            findings.extend(_judge_cheap(found, entry))
        else:
            findings.extend(judge_managed(found, entry, backups_on))
    if not cheap:
        listed = _listed_by_us(settings)
        for user_path, found in facts.items():
            if user_path in managed:
                continue
            info = unraid.share(found.share)
            findings.extend(judge_unmanaged(found, info.pool if info else "", listed))
    findings = _without_in_flight(findings)
    order = {k: i for i, k in enumerate(KINDS)}
    findings.sort(key=lambda f: (order.get(f.kind, 99), f.path))
    return Scan(findings, facts, cheap, len(facts), time.monotonic() - started)


def _listed_by_us(settings: Settings) -> frozenset[str]:
    """The lines of the mover ignore list that plexcache-r wrote for its files (not the user's own)."""
    try:
        text = Path(settings.paths.exclusion_list).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    return frozenset(line.strip() for line in text.splitlines() if line.strip()) - set(
        exclusions.manual_entries(settings))


def _without_in_flight(findings: list[Finding]) -> list[Finding]:
    """Files an interrupted operation names are in flux until recovery: report only the interruption."""
    busy_paths = {p for f in findings if f.kind == "interrupted" for p in (f.path, *f.paths)}
    if not busy_paths:
        return findings
    return [f for f in findings if f.kind == "interrupted" or
            (f.path not in busy_paths and not busy_paths.intersection(f.paths))]


def _pool_mounted(settings: Settings, pool: str) -> bool:
    return bool(pool) and (Path(settings.paths.pool_root) / pool).is_dir()


def _unmounted(settings: Settings, managed: dict[str, Entry]) -> list[Finding]:
    """A pool that is not there says nothing about its files: one finding per pool, no fix, nothing judged."""
    counts: dict[str, int] = {}
    for entry in managed.values():
        if not _pool_mounted(settings, entry.pool):
            counts[entry.pool] = counts.get(entry.pool, 0) + 1
    return [Finding("stale", f"pool {pool!r} is not mounted at {settings.paths.pool_root}/{pool}: {n} managed "
                    "file(s) cannot be checked; mount it (or start the array) and audit again", None,
                    f"{settings.paths.pool_root}/{pool}") for pool, n in sorted(counts.items())]


def load_registry(settings: Settings) -> tuple[Registry, Optional[Finding]]:
    """The registry, or (when its file is unreadable) an empty one and a finding saying so: every cached
    file then shows as untracked, and `--fix sync` rebuilds the registry from the disks."""
    store = StateStore(settings)
    try:
        return store.load_registry(), None
    except UsageError as exc:
        return Registry(), Finding("stale", f"{exc}; `plexcache-r audit --fix sync` rebuilds it from the pool "
                                   "copies with matching backups (the damaged file is kept beside it)", "sync",
                                   str(store.registry_path), [str(store.registry_path)], [None],
                                   action="rebuild")


def _facts_for(settings: Settings, user_path: str) -> FileCopies:
    parts = split_user_path(settings.paths.user_root, user_path) or ("", "")
    return FileCopies(user_path, parts[0], parts[1])


def _judge_cheap(facts: FileCopies, entry: Entry) -> list[Finding]:
    """Registry against the pool only: no array disk is touched."""
    path = facts.user_path
    pool_copy = facts.pool_copies.get(entry.pool)
    if pool_copy is None:
        return [_finding("stale", f"{path}: managed, but its pool copy is gone (run `plexcache-r audit` to see "
                         "the array side and the fix)", None, path)]
    if entry.path == path and entry.size and pool_copy.size != entry.size:
        return [_finding("mismatch", f"{path}: the pool copy is {pool_copy.size} bytes, the registry recorded "
                         f"{entry.size}", None, path, pool_copy)]
    return []


# ---------------------------------------------------------------- entry point


@dataclass
class Wanted:
    """What `--fix` asked for: fix names, finding kinds (their offered fix is applied), and hashing."""

    fixes: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    use_hash: bool = False

    def __bool__(self) -> bool:
        return bool(self.fixes or self.kinds)

    def chooses(self, finding: Finding) -> bool:
        return finding.fix is not None and (finding.fix in self.fixes or finding.kind in self.kinds)


def expand_fixes(fixes: list[str]) -> Wanted:
    """Validate `--fix` words: a fix name, a finding kind (apply the fix its findings offer), all-safe (the
    fixes that never delete anything) or hash (compare contents too before removing a redundant copy)."""
    wanted = Wanted()
    for name in fixes:
        name = name.strip().lower()
        if name in (ALL_SAFE, "fix-all-safe"):
            wanted.fixes.extend(f for f in SAFE_FIXES if f not in wanted.fixes)
        elif name == HASH:
            wanted.use_hash = True
        elif name in FIXES:
            if name not in wanted.fixes:
                wanted.fixes.append(name)
        elif name in KINDS:
            if name not in wanted.kinds:
                wanted.kinds.append(name)
        else:
            raise UsageError(f"unknown fix {name!r}: use a fix ({', '.join(FIXES)}, {ALL_SAFE}, {HASH}) or a "
                             f"finding kind ({', '.join(KINDS)})")
    if wanted.use_hash and not wanted:
        raise UsageError("--fix hash only says how to compare copies: add delete-redundant (or duplicate)")
    return wanted


def summary(findings: list[Finding]) -> dict[str, int]:
    counts = {k: 0 for k in KINDS}
    for finding in findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    return counts



# ---------------------------------------------------------------- fixes

# The order fixes run in: finish the journal first, then put lone backups back, then remove redundant
# copies, then bring the registry and the ignore list in line with what is now on disk.
FIX_ORDER = ("recover", "keep-original", "keep-new", "settle", "restore", "delete-redundant", "sync", "protect")


@dataclass
class FixContext:
    """Everything one `audit --fix` holds while it repairs: the lock is taken by the caller."""

    settings: Settings
    registry: Registry
    unraid: Unraid
    mover: Any
    stop: Any
    progress: Any
    use_hash: bool
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    registry_changed: bool = False
    relist: bool = False  # the ignore list is to be rewritten from the registry
    stopped: bool = False

    def record(self, finding: Finding, result: str, message: str) -> None:
        self.outcomes.append({"fix": finding.fix, "action": finding.action, "kind": finding.kind,
                              "path": finding.path, "result": result, "message": message})


def _remove_managed(registry: Registry, user_path: str) -> bool:
    """Forget a managed path: its own entry, or its place in a video's sidecars."""
    if registry.remove(user_path) is not None:
        return True
    for entry in registry.entries.values():
        if user_path in entry.sidecars:
            entry.sidecars.remove(user_path)
            entry.recorded.pop(user_path, None)
            return True
    return False


def _recover_first(settings: Settings) -> list[dict[str, Any]]:
    """Finish or roll back interrupted operations the way a run does (the registry and history are brought
    in line with them), before any fix looks at the files. Returns one outcome per operation."""
    journal = Journal(journal_dir(settings))
    if not (journal.has_unfinished() or journal.has_done()):
        return []
    try:
        books = Books(settings, time.time())
    except UsageError:  # a damaged registry: repair the files now; the sync fix rebuilds the books from them
        results = mover.recover(journal)
    else:
        results = books.recover([])
        books.save()
    return [_recovered_outcome(rec) for rec in results if not rec.earlier]


def _recovered_outcome(rec: mover.Recovered) -> dict[str, Any]:
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
    for (finding, _), result in zip(runnable, report.results):
        if result.outcome in ("restored", "cached", "dropped"):
            done.append((finding, result))
        elif result.outcome == "not_started":
            ctx.record(finding, "skipped", "stopped before this file" if report.stopped else "not started")
        else:
            ctx.record(finding, result.outcome, str(result.error) if result.error else result.outcome)
    return done


def _fix_restore(ctx: FixContext, findings: list[Finding]) -> None:
    index = _managed_index(ctx.registry)
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
        if _remove_managed(ctx.registry, finding.path):
            ctx.registry_changed = True
        ctx.record(finding, "ok", f"put the array copy back at {finding.paths[0][: -len(BACKUP_SUFFIX)]}")
    for finding in with_video:
        video = index[finding.path].path
        ctx.record(finding, "ok" if video in restored else "skipped",
                   f"with its video {video}" if video in restored else f"its video {video} was not restored")


def _fix_keep_original(ctx: FixContext, findings: list[Finding]) -> None:
    """Put each original (the backup) back at its name through the mover; the mover removes the new copy
    only once the original is in place, and the file is no longer managed."""
    index = _managed_index(ctx.registry)
    pairs = []
    for finding in findings:
        if finding.kind == "stray":
            _fix_stray_choice(ctx, finding, keep_new=False)
            continue
        new, backup = finding.paths[0], finding.paths[1]
        op = _restore_op(ctx, dataclasses.replace(finding, paths=[backup]), index.get(finding.path))
        pairs.append((finding, dataclasses.replace(op, pool_path=new, keep_original=(new,))))
    for finding, _ in _run_file_ops(ctx, pairs):
        if _remove_managed(ctx.registry, finding.path):
            ctx.registry_changed = True
        ctx.record(finding, "ok", f"put the original back at {finding.paths[1][: -len(BACKUP_SUFFIX)]}; "
                   f"removed {finding.paths[0]}")


def _fix_settle(ctx: FixContext, findings: list[Finding]) -> None:
    """Stray backups: hash both copies; an identical backup is retired (the mover checks the live copy is
    complete and closed), copies that differ both stay for a person to choose."""
    for finding in findings:
        live, backup = finding.paths[0], finding.paths[1]
        ctx.progress.file_started(finding.path)
        outcome = backups.settle(live, backup, None, dry_run=False)
        ctx.progress.file_done(finding.path, 0)
        if outcome == backups.RETIRED:
            ctx.record(finding, "ok", f"{backup} held the same bytes as {live}: removed")
        elif outcome == backups.KEPT:
            ctx.record(finding, "refused", f"{live} is open or changed; both kept, try again later")
        else:
            ctx.record(finding, "refused", f"{live} and {backup} differ; both kept: choose keep-new (the live "
                       "file stays) or keep-original (the backup is put back)")


def _fix_stray_choice(ctx: FixContext, finding: Finding, keep_new: bool) -> None:
    """A person's choice for a stray backup: keep the live file (the backup goes) or put the backup back
    (the live file goes), each only while the live file is still what the audit saw."""
    live, backup = finding.paths[0], finding.paths[1]
    size = finding.sizes[0] if finding.sizes[0] is not None else -1
    if keep_new and mover.retire_stale_backup(backup, live, size):
        ctx.record(finding, "ok", f"kept {live}; removed the backup {backup}")
    elif not keep_new and mover.put_backup_back(backup, live, size):
        ctx.record(finding, "ok", f"put the backup {backup} back; removed {live}")
    else:
        ctx.record(finding, "refused", f"{live} is open or changed since the check; both kept")


def _fix_keep_new(ctx: FixContext, findings: list[Finding]) -> None:
    """Keep the new copy. A managed file's pool copy is recorded as chosen, so its move back retires the
    backup; an unmanaged one's backup goes now (only while the new copy is complete and closed)."""
    index = _managed_index(ctx.registry)
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
        elif mover.retire_stale_backup(backup, new, copy.size):
            ctx.record(finding, "ok", f"kept {new}; removed the backup {backup}")
        else:
            ctx.record(finding, "refused", f"{new} is open or changed; both kept")


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
    busy = mover.open_paths([p for f, _ in planned for p in f.paths])
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
    done = mover.drop_redundant(path, keep, verify=ctx.use_hash or ctx.settings.cache.verify, rename_to=rename_to)
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
            changed = _remove_managed(ctx.registry, finding.path)
            ctx.registry_changed = ctx.registry_changed or changed
            ctx.record(finding, "ok", "dropped the registry entry")
        elif finding.action == "adopt":
            what = _adopt(ctx, finding, facts_of.get(finding.path) or _facts_for(ctx.settings, finding.path))
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
        chosen += [dataclasses.replace(f, fix=name) for f in found.findings
                   if name in f.choices and name in wanted.fixes]
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
        elif name == "settle":
            _fix_settle(ctx, chosen)
        elif name == "delete-redundant":
            _fix_delete(ctx, chosen)
        elif name == "sync":
            _fix_sync(ctx, chosen, found.facts)
        else:
            _fix_protect(ctx, chosen)


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


def _repair(settings: Settings, wanted: Wanted) -> tuple[list[dict[str, Any]], bool]:
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
    return ctx.outcomes, ctx.stopped


def audit(settings: Settings, fixes: Optional[list[str]] = None, cheap: bool = False,
          registry: Optional[Registry] = None) -> dict[str, Any]:
    """Scan (and, with fixes, repair and scan again). Returns the `audit --json` document.

    cheap: never touch an array disk (for the end of a run); ignored when fixes are asked for.
    registry: the registry a caller already holds (a run, under its lock), to spare reading it again;
    ignored when fixes are asked for (they reload it under the lock).
    """
    wanted = expand_fixes(list(fixes or []))
    outcomes: list[dict[str, Any]] = []
    if wanted:
        outcomes, stopped = _repair(settings, wanted)
        if stopped:
            raise StopRequested("audit fixes stopped on request after the current file; run the audit again "
                                "to see what is left")
    damaged = None
    if registry is None or wanted:
        registry, damaged = load_registry(settings)
    result = scan(settings, registry, cheap=cheap and not wanted)
    if damaged is not None:
        result.findings.insert(0, damaged)
    done = sum(1 for o in outcomes if o["result"] == "ok")
    checked = (f"checked {result.files_seen} path(s) in {result.seconds:.1f} s"
               + (" (cheap: no array disk read)" if result.cheap else ""))
    message = (checked if not wanted else
               f"applied {done} of {len(outcomes)} fix(es); {len(result.findings)} finding(s) left")
    return {"schema": SCHEMA, "ok": True, "cheap": result.cheap, "message": message,
            "findings": [f.to_json() for f in result.findings], "summary": summary(result.findings),
            "fixes": outcomes, "files_seen": result.files_seen, "seconds": round(result.seconds, 3),
            "history": load_records(settings)}
