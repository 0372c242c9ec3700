"""What is wrong: the findings between the registry, the ignore list, the journal and the copies on disk,
each with the fix that repairs it (or the choices only a person can make)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from plexcache import exclusions
from plexcache.audit.disk import FileCopies, Stat, same_file, scan_share, stat_file
from plexcache.backups import UNCONFIRMED, pool_copy_state
from plexcache.config import Settings
from plexcache.errors import UsageError
from plexcache.layout import BACKUP_SUFFIX, journal_dir
from plexcache.media.journal import Journal
from plexcache.state import Entry, Registry, StateStore
from plexcache.unraid import Unraid, split_user_path

KINDS = ("interrupted", "unprotected", "stale", "orphaned", "duplicate", "untracked", "mismatch", "stray",
         "leftover")
CHOICES = ("keep-new", "keep-original")  # a mismatch: only a person can say which copy is right
CHOICE_KINDS = ("mismatch", "stray")  # the kinds of finding that offer CHOICES
LEFTOVER = "remove-leftover"  # a temporary copy proved to hold only the start of a complete copy
EXTRAS = "retire-extras"  # a managed file's backups on other disks than the one it moves back to
KEEP = "keep"  # a duplicate's choice: which physical copy to keep (`--fix keep:PATH`), one finding at a time



@dataclass
class Finding:
    """One problem, the copies it concerns (physical paths and sizes) and the fix that repairs it."""

    kind: str
    message: str
    fix: Optional[str]
    path: str  # the user-share path (or, for the journal, the operation id)
    paths: list[str] = field(default_factory=list)
    sizes: list[Optional[int]] = field(default_factory=list)
    mtimes: list[Optional[float]] = field(default_factory=list)  # of each copy, as the audit saw it
    places: list[str] = field(default_factory=list)  # the pool or array disk of each copy, when a person chooses
    action: str = ""  # what the fix does for this finding (internal plan: see _apply_one)
    choices: list[str] = field(default_factory=list)  # fixes a person picks between (never applied by kind)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "fix": self.fix, "path": self.path,
                "paths": list(self.paths), "sizes": list(self.sizes), "mtimes": list(self.mtimes),
                "places": list(self.places), "action": self.action,
                "choices": list(self.choices)}


def _finding(kind: str, message: str, fix: Optional[str], path: str, *stats: Optional[Stat],
             action: str = "") -> Finding:
    present = [s for s in stats if s is not None]
    return Finding(kind, message, fix, path, [s.path for s in present], [s.size for s in present],
                   [s.mtime for s in present], action=action)


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
        out.append(_extra_backups(facts, entry))
    for original in originals:
        if len(originals) == 1 and same_file(pool_copy, original):
            action = ("delete-original" if any(same_file(original, b) for b in backups) else
                      "original-to-backup" if backups_on and not backups else
                      "delete-original" if not backups else "")
            fix = "delete-redundant" if action else None
            out.append(_finding("duplicate", f"{path}: managed, and the array still has an identical original",
                                fix, path, pool_copy, original, action=action))
        else:
            out.append(_cached_or_array(facts, pool_copy, original))
    return out


def _cached_or_array(facts: FileCopies, pool_copy: Stat, original: Stat) -> Finding:
    """A managed file's pool copy and a different file since written at its array path: Unraid shows one of
    them, and only a person can say which is right (KEEP). Keeping the cached copy sets the array file aside;
    keeping the array file sets the cached copy aside and the file is no longer managed."""
    found = _finding("duplicate", f"{facts.user_path}: managed, and the array has a different file at the same "
                     f"path ({_size_words(pool_copy, original)}): choose the copy to keep", None, facts.user_path,
                     pool_copy, original)
    found.choices, found.places = [KEEP], [_volume(facts, pool_copy), _volume(facts, original)]
    return found


def _extra_backups(facts: FileCopies, entry: Entry) -> Finding:
    """A managed file with backups on several disks (Unraid's mover carried one, or a copy by hand): the
    file moves back to the disk its entry names, so that disk's backup is the one to keep (first in paths);
    `retire-extras` removes each other one that holds the same bytes and sets aside one that differs."""
    path = facts.user_path
    home = [b for d, b in facts.backups if d == entry.disk]
    if len(home) != 1:
        return _finding("duplicate", f"{path}: backups on {len(facts.backups)} disks, none on {entry.disk} where "
                        "it moves back", None, path, *(b for _, b in facts.backups))
    others = [b for d, b in facts.backups if d != entry.disk]
    found = _finding("duplicate", f"{path}: backups on {len(facts.backups)} disks; it moves back to "
                     f"{entry.disk}, so the backup there is kept and the others go (removed when they hold the "
                     "same bytes, set aside when not)", EXTRAS, path, home[0], *others, action=EXTRAS)
    found.places = [entry.disk or "", *(d for d, _ in facts.backups if d != entry.disk)]
    return found


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
    disk). The journal's recovery removes its own; one no journal record names is reported here, with the
    complete copies of its file after it: `remove-leftover` removes it once its bytes are shown to be the
    start of one of them."""
    whole = [*facts.pool_copies.values(), *(c for _, c in facts.originals), *(c for _, c in facts.backups)]
    how = ("its fix removes it once its bytes are shown to be the start of a complete copy" if whole
           else "no complete copy of the file was found, so it is kept: look at it before removing it")
    return [_finding("leftover", f"{facts.user_path}: a temporary copy {t.path} was left behind (an "
                     f"interrupted copy); it is not a complete file: {how}", LEFTOVER if whole else None,
                     facts.user_path, t, *whole, action=LEFTOVER if whole else "") for t in facts.temps]


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
                       "this is settled: its fix compares them and removes an identical backup; if they "
                       "differ, choose to keep the new file (the live one) or to restore the original (the backup)",
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
        if not backups and len(originals) > 1:
            return [_live_copies(facts, originals)]
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
    if len(originals) == 1 and same_file(pool_copy, originals[0]):
        found = _finding("duplicate", f"{path}: identical copies on the pool and the array, neither managed",
                         "delete-redundant", path, pool_copy, originals[0], action="delete-pool")
        found.choices, found.places = [KEEP], [_volume(facts, pool_copy), _volume(facts, originals[0])]
        return [found]
    return [_live_copies(facts, [pool_copy, *originals])] if originals else []


def _live_copies(facts: FileCopies, copies: list[Stat]) -> Finding:
    """A file plexcache-r does not manage, live in several places (the pool and the array, or several array
    disks): Unraid shows one of them. Only a person can say which is right: they choose the copy to keep
    (KEEP); each other copy goes if its bytes are the same, or is set aside if they differ."""
    places = [_volume(facts, c) for c in copies]
    where = ", ".join(places)
    differ = "" if all(same_file(copies[0], c) for c in copies[1:]) else \
        f" ({_size_words(copies[0], copies[1])})" if len(copies) == 2 else " (they differ)"
    found = _finding("duplicate", f"{facts.user_path}: live in {len(copies)} places ({where}){differ}; Unraid "
                     "shows only one of them: choose the copy to keep", None, facts.user_path, *copies)
    found.choices, found.places = [KEEP], places
    return found


def _volume(facts: FileCopies, copy: Stat) -> str:
    """Which pool or array disk a copy is on."""
    named = [p for p, c in facts.pool_copies.items() if c is copy] + [d for d, c in facts.originals if c is copy]
    return named[0] if named else copy.path


# ---------------------------------------------------------------- the audit


@dataclass
class Scan:
    """What one audit saw: findings plus the facts the fixes need."""

    findings: list[Finding]
    facts: dict[str, FileCopies]
    cheap: bool
    files_seen: int = 0
    seconds: float = 0.0


def managed_index(registry: Registry) -> dict[str, Entry]:
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
        kind = op.intent.get("kind") or "operation"
        state = "committed, recovery finishes it" if op.committed else "not committed, recovery rolls it back"
        if kind == "discard":  # one atomic step: recovery reads from the files whether it happened
            state = "recovery records it if the copy went"
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
    for user_path, entry in managed_index(registry).items():
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
    managed = managed_index(registry)
    mounted = _mounted_pools(settings, {e.pool for e in managed.values()})
    findings = journal_findings(settings)
    findings.extend(exclusion_findings(settings, registry, facts))
    findings.extend(_unmounted(settings, managed, mounted))
    backups_on = settings.cache.backups
    for found in facts.values():
        if found.user_path in managed or found.backups:   # else judge_unmanaged lists the live copies
            findings.extend(live_on_disks(found))
        findings.extend(leftovers(found))
    for user_path, entry in managed.items():
        if entry.pool not in mounted:
            continue
        found = facts.get(user_path) or facts_for(settings, user_path)
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


def _mounted_pools(settings: Settings, pools: set[str]) -> set[str]:
    """The pools (of those named) that are there: one look per pool, not per file."""
    return {pool for pool in pools if pool and (Path(settings.paths.pool_root) / pool).is_dir()}


def _unmounted(settings: Settings, managed: dict[str, Entry], mounted: set[str]) -> list[Finding]:
    """A pool that is not there says nothing about its files: one finding per pool, no fix, nothing judged."""
    counts: dict[str, int] = {}
    for entry in managed.values():
        if entry.pool not in mounted:
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


def facts_for(settings: Settings, user_path: str) -> FileCopies:
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


def summary(findings: list[Finding]) -> dict[str, int]:
    counts = {k: 0 for k in KINDS}
    for finding in findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    return counts
