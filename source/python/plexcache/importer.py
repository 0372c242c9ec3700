"""Adopt an existing PlexCache-R (PlexCache-D) installation: its settings and the files it has cached.

What is read from DIR (the folder holding its `plexcache_settings.json`; in Docker, its /config):
- `plexcache_settings.json`: mapped onto our settings (see SETTING_NOTES and docs/maintenance.md), written
  through plexcache.config validation and its atomic save, keeping every setting it does not cover;
- `plexcache_cached_files.txt` (one pool path per line) and `data/timestamps.json` (pool path -> when and
  why it was cached, its subtitles) - the older root-level `plexcache_timestamps.json` too;
- `data/pinned_media.json` (pins by Plex rating key);
- `unraid_mover_exclusions.txt`: the user's own lines above its marker go to our manual exclusion file.

A pool file becomes a managed entry only when its `.plexcached` backup sits on exactly one array disk with
the same size and modification time and no other copy exists. Anything else is reported and left alone:
nothing is moved, renamed or deleted by an import. `--dry-run` reports the same and writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from plexcache import config as cfg
from plexcache import exclusions
from plexcache.audit.disk import FileCopies, probe, same_file
from plexcache.audit.fixes import adopted_entry, attach_sidecar, sidecar_parent
from plexcache.config import Settings
from plexcache.errors import LockHeld, SettingsError, UsageError
from plexcache.fsutil import atomic_write_text
from plexcache.layout import BACKUP_SUFFIX
from plexcache.maintenance import MaintenanceHistory
from plexcache.runctl import RunLock
from plexcache.state import Registry, StateStore
from plexcache.unraid import Unraid

SCHEMA = 1
SETTINGS_FILE = "plexcache_settings.json"
CACHED_LIST = "plexcache_cached_files.txt"
MOVER_LIST = "unraid_mover_exclusions.txt"
MARKER = "### Plexcache exclusions below this line"
LEVELS = {"summary": "summary", "activity": "activity", "warning": "warnings", "warnings": "warnings",
          "error": "errors", "errors": "errors"}
EVICTION = {"none": "none", "smart": "priority", "fifo": "age"}
VIDEO_KINDS = {"episode": "episode", "movie": "movie"}


# ---------------------------------------------------------------- reading the installation


@dataclass
class Installation:
    """What was found in a PlexCache-R folder."""

    root: Path
    settings: dict[str, Any]
    cached: list[str] = field(default_factory=list)  # pool paths, in list order, no repeats
    timestamps: dict[str, Any] = field(default_factory=dict)
    pins: dict[str, Any] = field(default_factory=dict)
    manual_lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_json(path: Path, what: str, notes: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        notes.append(f"{what} {path} could not be read ({exc}); ignored")
        return None


def _first_existing(*paths: Path) -> Path:
    return next((p for p in paths if p.exists()), paths[0])


def read_installation(root: Path) -> Installation:
    """Read DIR; UsageError when it holds no PlexCache-R settings."""
    root = Path(root)
    settings_path = root / SETTINGS_FILE
    if not settings_path.is_file():
        raise UsageError(f"{root} holds no {SETTINGS_FILE}: give the folder of the PlexCache-R installation "
                         "(its Docker /config folder, or where plexcache.py lives)")
    notes: list[str] = []
    data = _read_json(settings_path, "settings", notes)
    if not isinstance(data, dict):
        raise UsageError(f"{settings_path} is not a JSON object of settings; fix or remove it and try again")
    inst = Installation(root, data, notes=notes)
    data_dir = root / "data"
    stamps = _read_json(_first_existing(data_dir / "timestamps.json", root / "plexcache_timestamps.json"),
                        "tracking file", notes)
    inst.timestamps = stamps if isinstance(stamps, dict) else {}
    pins = _read_json(data_dir / "pinned_media.json", "pins", notes)
    inst.pins = pins if isinstance(pins, dict) else {}
    seen: set[str] = set()
    for line in _lines(root / CACHED_LIST) + sorted(inst.timestamps):
        path = line.strip().rstrip("/")
        if path.startswith("/") and path not in seen:
            seen.add(path)
            inst.cached.append(path)
    mover_lines = _lines(root / MOVER_LIST)
    if MARKER in [m.strip() for m in mover_lines]:
        cut = [m.strip() for m in mover_lines].index(MARKER)
        inst.manual_lines = [m.strip() for m in mover_lines[:cut] if m.strip().startswith("/")]
    return inst


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n").split("\n")
    except OSError:
        return []


def check_not_running(root: Path) -> None:
    """Refuse while PlexCache-R runs: it holds an flock on its plexcache.lock for the whole run."""
    lock = root / "plexcache.lock"
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LockHeld(f"PlexCache-R is running (it holds {lock}); let it finish and stop its schedule, then "
                       "import again") from None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- settings


def _typed(data: dict[str, Any], key: str, kind: type, notes: list[str]) -> Any:
    """data[key] if present and of the right type (bools are not ints); otherwise None with a note."""
    if key not in data or data[key] is None:
        return None
    value = data[key]
    ok = isinstance(value, bool) if kind is bool else (
        isinstance(value, kind) and not isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        notes.append(f"{key}: {value!r} is not {kind.__name__}; not imported")
        return None
    return value


def _clamp(value: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, value))


def _share_path(settings: Settings, mapping: dict[str, Any]) -> Optional[str]:
    """The /mnt/user path of a PlexCache-R mapping: from its real path, else from its (host) cache path."""
    user_root = settings.paths.user_root.rstrip("/")
    real = str(mapping.get("real_path") or "").rstrip("/")
    for prefix in (user_root, user_root + "0"):  # /mnt/user and /mnt/user0 name the same share paths
        if real == prefix or real.startswith(prefix + "/"):
            return user_root + real[len(prefix):]
    for key in ("host_cache_path", "cache_path"):
        split = _split_pool_path(settings, str(mapping.get(key) or ""))
        if split:
            return f"{user_root}/{split[1]}/{split[2]}".rstrip("/")
    return None


def _split_pool_path(settings: Settings, path: str) -> Optional[tuple[str, str, str]]:
    """POOL_ROOT/POOL/SHARE[/REL] -> (POOL, SHARE, REL); None for anything else (disks and /mnt/user too)."""
    root = settings.paths.pool_root.rstrip("/") + "/"
    path = path.rstrip("/")
    if not path.startswith(root):
        return None
    parts = path[len(root):].split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    pool = parts[0]
    if pool in ("user", "user0", "disks", "remotes", "addons", "rootshare") or pool.startswith("disk"):
        return None
    return pool, parts[1], parts[2] if len(parts) > 2 else ""


def _mappings(settings: Settings, data: dict[str, Any], notes: list[str]) -> list[dict[str, Any]]:
    raw = data.get("path_mappings")
    if not isinstance(raw, list):
        raw = _legacy_mappings(data)
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("plex_path"), str):
            notes.append(f"path_mappings[{i}]: no plex_path; not imported")
            continue
        name = m.get("name") or m["plex_path"]
        if m.get("enabled") is False:
            notes.append(f"path mapping {name!r} is disabled there; not imported")
            continue
        share = _share_path(settings, m)
        if share is None:
            notes.append(f"path mapping {name!r}: cannot tell its /mnt/user share path from real_path "
                         f"{m.get('real_path')!r}; add it by hand (plex.path_mappings)")
            continue
        plex = m["plex_path"].rstrip("/") or "/"
        cacheable = m.get("cacheable", True) is not False and m.get("cache_path") not in (None, "")
        out.append({"plex": plex, "share": share, "cacheable": cacheable})
    return out


def _legacy_mappings(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Pre-mapping settings: plex_source + plex_library_folders paired with real_source + nas folders."""
    plex_src, real_src = data.get("plex_source"), data.get("real_source")
    if not isinstance(plex_src, str) or not isinstance(real_src, str):
        return []
    plex_dirs = data.get("plex_library_folders") or [""]
    nas_dirs = data.get("nas_library_folders") or [""]
    # the seed pairs the two lists by position: a folder without a partner has no mapping
    return [{"name": p or plex_src, "plex_path": f"{plex_src.rstrip('/')}/{p}".rstrip("/"),
             "real_path": f"{real_src.rstrip('/')}/{n}".rstrip("/"), "cache_path": "(legacy)", "cacheable": True}
            for p, n in zip(plex_dirs, nas_dirs, strict=False) if isinstance(p, str) and isinstance(n, str)]


def _users(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    users_on = _typed(data, "users_toggle", bool, notes)
    watchlist_on = _typed(data, "watchlist_toggle", bool, notes)
    out: dict[str, Any] = {}
    if watchlist_on is not None:
        out["owner"] = {"watchlist": watchlist_on}
    if users_on is not None:
        out["home"] = {"on_deck": users_on, "watchlist": bool(users_on and watchlist_on is not False)}
        out["friends"] = {"on_deck": users_on, "watchlist": False}
    rss = _typed(data, "remote_watchlist_toggle", bool, notes)
    if rss is not None:
        out["remote_watchlist_rss"] = rss
    url = _typed(data, "remote_watchlist_rss_url", str, notes)
    if url:
        out["rss_url"] = url
    skip: list[str] = []
    overrides: list[dict[str, Any]] = []
    for user in data.get("users") or []:
        if not isinstance(user, dict) or not isinstance(user.get("title"), str):
            continue
        no_deck, no_list = bool(user.get("skip_ondeck")), bool(user.get("skip_watchlist"))
        if no_deck and no_list:
            skip.append(user["title"])
        elif no_deck or no_list:
            overrides.append({"name": user["title"], "on_deck": not no_deck, "watchlist": not no_list})
        if user.get("days_to_monitor") is not None or user.get("watchlist_retention_days") is not None:
            notes.append(f"user {user['title']!r}: per-user days_to_monitor/watchlist_retention_days have no "
                         "equivalent; the global values apply")
    for name in data.get("skip_users") or []:
        if isinstance(name, str) and name not in skip:
            skip.append(name)
    if skip:
        out["skip"] = skip
    if overrides:
        out["overrides"] = overrides
    return out


def _levels(value: Any) -> Optional[list[str]]:
    raw = value if isinstance(value, list) else [value] if isinstance(value, str) and value else None
    if raw is None:
        return None
    out = []
    for level in raw:
        mapped = LEVELS.get(str(level).lower())
        if mapped and mapped not in out:
            out.append(mapped)
    return out


def _notify(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    kind = str(data.get("notification_type") or "system").lower()
    unraid = _levels(data.get("unraid_levels")) or _levels(data.get("unraid_level")) or ["summary"]
    webhook = _levels(data.get("webhook_levels")) or _levels(data.get("webhook_level")) or ["summary"]
    out: dict[str, Any] = {"unraid_levels": unraid if kind in ("system", "unraid", "both") else []}
    url = data.get("webhook_url")
    if kind in ("webhook", "both") and isinstance(url, str) and url:
        if url.startswith("https://"):
            out["webhooks"] = [{"url": url, "levels": webhook}]
        else:
            notes.append("webhook_url is not an https:// address; not imported")
    return out


def _cache(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    hours = _typed(data, "cache_retention_hours", float, notes)
    if hours is not None:
        out["retention_hours"] = float(_clamp(hours, 0, 87600))
    for theirs, ours in (("watched_move", "move_back_watched"), ("create_plexcached_backups", "backups")):
        value = _typed(data, theirs, bool, notes)
        if value is not None:
            out[ours] = value
    mode = data.get("cache_eviction_mode")
    if mode in EVICTION:
        out["eviction"] = EVICTION[mode]
    quota, limit = data.get("plexcache_quota") or "", data.get("cache_limit") or ""
    if quota:
        out["size_limit"] = str(quota)
        if limit:
            notes.append(f"cache_limit {limit!r} (a cap on the whole drive) has no equivalent; "
                         f"plexcache_quota {quota!r} became cache.size_limit")
    elif limit:
        out["size_limit"] = str(limit)
        notes.append(f"cache_limit {limit!r} capped the whole drive there; here it caps the cached files "
                     "(cache.size_limit), which is never more than the drive usage")
    if data.get("min_free_space"):
        out["min_free"] = str(data["min_free_space"])
    if data.get("hardlinked_files") in ("skip", "move"):
        out["hardlinks"] = "skip" if data["hardlinked_files"] == "skip" else "copy"
    assoc = data.get("cache_associated_files")
    if assoc == "none":
        out["sidecar_extensions"] = []
    elif assoc == "all":
        notes.append("cache_associated_files 'all' (posters, .nfo...): only subtitles travel with a video here")
    workers = _typed(data, "max_concurrent_moves_cache", int, notes)
    if workers is not None:
        out["workers"] = int(_clamp(workers, 1, 16))
    return out


def _demand(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for theirs, ours, hi in (("number_episodes", "next_episodes", 100), ("days_to_monitor", "days_to_monitor",
                             36500), ("watchlist_episodes", "watchlist_episodes", 100)):
        value = _typed(data, theirs, int, notes)
        if value is not None:
            out[ours] = int(_clamp(value, 0, hi))
    if data.get("prefetch_minimum_minutes"):
        notes.append("prefetch_minimum_minutes has no equivalent; demand.next_episodes counts episodes")
    return out


def _schedule(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    sched = data.get("schedule")
    if not isinstance(sched, dict) or not sched.get("enabled"):
        return {}
    if sched.get("schedule_type") == "cron" and isinstance(sched.get("cron_expression"), str):
        return {"mode": "cron", "cron": sched["cron_expression"]}
    hours = sched.get("interval_hours", 4)
    if isinstance(hours, (int, float)) and not isinstance(hours, bool):
        return {"mode": "interval", "interval_hours": int(_clamp(round(hours), 1, 168))}
    notes.append("schedule: not understood; keeping the current schedule")
    return {}


def settings_patch(settings: Settings, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Their settings as a partial document of ours, and notes on what could not be carried over."""
    notes: list[str] = []
    plex: dict[str, Any] = {}
    url = _typed(data, "PLEX_URL", str, notes)
    if url:
        plex["url"] = url.rstrip("/")
    token = _typed(data, "PLEX_TOKEN", str, notes)
    if token:
        plex["token"] = token
    sections = data.get("valid_sections")
    if isinstance(sections, list) and sections:
        plex["libraries"] = [str(s) for s in sections if isinstance(s, (int, str)) and not isinstance(s, bool)]
    mappings = _mappings(settings, data, notes)
    current = [dataclass_dict(m) for m in settings.plex.path_mappings]
    known = {m["plex"].rstrip("/") for m in current}
    added = [m for m in mappings if m["plex"].rstrip("/") not in known]
    if added:
        plex["path_mappings"] = current + added
    patch = {"plex": plex, "users": _users(data, notes), "demand": _demand(data, notes),
             "cache": _cache(data, notes), "notify": _notify(data, notes), "schedule": _schedule(data, notes)}
    if data.get("exit_if_active_session"):
        notes.append("exit_if_active_session: files being played are always left alone here; the run goes on")
    if data.get("cache_drive_size"):
        notes.append("cache_drive_size has no equivalent; pool sizes are read from the pool")
    for key in ("watchlist_retention_days", "ondeck_retention_days"):
        if data.get(key):
            notes.append(f"{key} has no equivalent; files move back when no user wants them any more "
                         "(after cache.retention_hours)")
    if data.get("use_symlinks"):
        notes.append("use_symlinks is for non-Unraid hosts; not imported")
    return {k: v for k, v in patch.items() if v}, notes


def dataclass_dict(obj: Any) -> dict[str, Any]:
    return cfg.to_mapping(obj) if hasattr(obj, "__dataclass_fields__") else dict(obj)


def merged_settings(settings: Settings, patch: dict[str, Any], notes: list[str]) -> Settings:
    """Validate current + patch; a key the validation refuses is dropped (with a note) and the rest kept."""
    base = cfg.to_mapping(settings)
    for _ in range(20):
        try:
            return cfg.from_mapping(cfg.merge(base, patch))
        except SettingsError as exc:
            dropped = False
            for key, problem in exc.problems:
                if _drop_key(patch, key):
                    notes.append(f"{key}: {problem}; not imported")
                    dropped = True
            if not dropped:
                raise
    return settings


def _drop_key(patch: dict[str, Any], dotted: str) -> bool:
    """Remove the top-most patch key that `dotted` (e.g. cache.size_limit, plex.path_mappings[1].plex) names."""
    head = dotted.split("[", 1)[0]
    keys = head.split(".")
    node: Any = patch
    for key in keys[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    if isinstance(node, dict) and keys[-1] in node:
        del node[keys[-1]]
        return True
    return False


def changed_keys(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose value differs (values are never listed: some are secrets)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after)):
            out.extend(changed_keys(before.get(key), after.get(key), f"{prefix}{key}."))
        return out
    return [prefix.rstrip(".")] if before != after else []


# ---------------------------------------------------------------- files


def _cache_to_host(data: dict[str, Any], path: str) -> str:
    """A container cache path -> the host path (Docker installs list container paths)."""
    for m in data.get("path_mappings") or []:
        if not isinstance(m, dict):
            continue
        inside, host = str(m.get("cache_path") or "").rstrip("/"), str(m.get("host_cache_path") or "").rstrip("/")
        if inside and host and (path == inside or path.startswith(inside + "/")):
            return host + path[len(inside):]
    return path


def _epoch(value: Any) -> Optional[float]:
    """PlexCache-R keeps naive local ISO times."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return dt.datetime.fromisoformat(value).timestamp()
    return None


@dataclass
class Candidate:
    pool_path: str
    user_path: str = ""
    facts: Optional[FileCopies] = None
    pool: str = ""
    why: str = ""  # non-empty: not adopted, and why
    hint: str = ""


def judge(settings: Settings, unraid: Unraid, data: dict[str, Any], pool_path: str) -> Candidate:
    """Whether one listed file can be adopted as it is."""
    host = _cache_to_host(data, pool_path)
    split = _split_pool_path(settings, host)
    cand = Candidate(host)
    if split is None or not split[2]:
        cand.why = f"not a file on a pool under {settings.paths.pool_root}"
        return cand
    pool, share, rel = split
    cand.pool = pool
    cand.user_path = f"{settings.paths.user_root.rstrip('/')}/{share}/{rel}"
    info = unraid.share(share)
    if info is None or not info.cacheable:
        cand.why = info.why if info else f"share {share} has no configuration"
        return cand
    if info.pool != pool:
        cand.why = f"it is on pool {pool}, but share {share} uses pool {info.pool}"
        return cand
    facts = cand.facts = probe(settings, unraid, share, rel, [pool])
    pool_copy = facts.pool_copies.get(pool)
    backups, originals = facts.backups, facts.originals
    if pool_copy is None:
        cand.why = "no copy on the pool any more"
        if len(backups) == 1 and not originals:
            cand.hint = "its .plexcached backup is the only copy: `plexcache-r audit --fix restore` puts it back"
    elif pool_copy.nlink > 1:
        cand.why = "the pool copy has more than one hard link"
    elif originals:
        cand.why = f"the array also has the original on {', '.join(d for d, _ in originals)} (a duplicate)"
        cand.hint = "see `plexcache-r audit`"
    elif not backups:
        cand.why = f"no {BACKUP_SUFFIX} backup on the array: the pool copy is the only copy"
        cand.hint = "leave it to the mover once PlexCache-R's exclusion list is gone, or keep it by hand"
    elif len(backups) > 1:
        cand.why = f"{BACKUP_SUFFIX} backups on {len(backups)} disks"
    elif not same_file(pool_copy, backups[0][1]):
        b = backups[0][1]
        cand.why = (f"size mismatch with its backup ({pool_copy.size} vs {b.size} bytes)"
                    if b.size != pool_copy.size else "modified since it was cached (times differ from the backup)")
        cand.hint = "see `plexcache-r audit`"
    return cand


def _pinned_keys(inst: Installation) -> set[str]:
    return {str(k) for k in inst.pins}


def plan_adoption(settings: Settings, inst: Installation, registry: Registry,
                  unraid: Unraid) -> tuple[Registry, list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """A copy of the registry with the adoptable files added; (registry, adopted, not_adopted, already)."""
    new = registry.copy()
    adopted: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    already: list[str] = []
    pinned = _pinned_keys(inst)
    sidecars: list[Candidate] = []
    managed = {p for e in registry.entries.values() for p in (e.path, *e.sidecars)}
    for pool_path in inst.cached:
        cand = judge(settings, unraid, inst.settings, pool_path)
        if cand.user_path and cand.user_path in managed:
            already.append(cand.user_path)
            continue
        if cand.why:
            rejected.append({"path": cand.user_path or cand.pool_path, "pool_path": cand.pool_path,
                             "why": cand.why, "hint": cand.hint})
            continue
        if _is_sidecar(settings, cand.user_path):
            sidecars.append(cand)
            continue
        stamp = inst.timestamps.get(pool_path) or inst.timestamps.get(cand.pool_path) or {}
        stamp = stamp if isinstance(stamp, dict) else {"cached_at": stamp}
        facts = cand.facts
        assert facts is not None
        disk, _backup = facts.backups[0]
        rating_key = str(stamp.get("rating_key") or "")
        entry = adopted_entry(facts, cand.pool, disk, facts.pool_copies[cand.pool],
                              cached_at=_epoch(stamp.get("cached_at")),
                              kind=VIDEO_KINDS.get(str(stamp.get("media_type")), ""), rating_key=rating_key,
                              pinned=bool(rating_key and rating_key in pinned))
        new.add(entry)
        managed.add(entry.path)
        adopted.append(_adopted_doc(entry, cand))
    for cand in sidecars:
        facts = cand.facts
        assert facts is not None
        parent = sidecar_parent(settings, new, cand.user_path, facts.backups[0][0])
        if parent is not None:
            attach_sidecar(parent, cand.user_path, facts.pool_copies[cand.pool])
            adopted.append({**_adopted_doc(parent, cand), "path": cand.user_path, "sidecar_of": parent.path,
                            "size": facts.pool_copies[cand.pool].size})
        else:
            entry = adopted_entry(facts, cand.pool, facts.backups[0][0], facts.pool_copies[cand.pool])
            new.add(entry)
            adopted.append(_adopted_doc(entry, cand))
    return new, adopted, rejected, already


def _is_sidecar(settings: Settings, user_path: str) -> bool:
    lower = user_path.lower()
    return any(lower.endswith(ext.lower()) for ext in settings.cache.sidecar_extensions)


def _adopted_doc(entry: Any, cand: Candidate) -> dict[str, Any]:
    return {"path": entry.path, "pool_path": cand.pool_path, "disk": entry.disk, "size": entry.size,
            "backup": f"{cand.facts.backups[0][1].path}" if cand.facts and cand.facts.backups else None}


# ---------------------------------------------------------------- entry point


def _merge_manual(settings: Settings, lines: list[str]) -> list[str]:
    """Lines of theirs not yet in our manual exclusion file (which is the user's, so only appended to)."""
    have = set(exclusions.manual_entries(settings))
    return [line.rstrip("/") for line in lines if line.rstrip("/") not in have]


def import_installation(settings: Settings, settings_path: Path, source: Path,
                        dry_run: bool = False) -> dict[str, Any]:
    """Adopt DIR's settings and cached files. Returns the `import --json` document (with "message")."""
    inst = read_installation(Path(source))
    check_not_running(inst.root)
    patch, notes = settings_patch(settings, inst.settings)
    notes = inst.notes + notes
    new_settings = merged_settings(settings, patch, notes)
    changed = changed_keys(cfg.to_mapping(settings), cfg.to_mapping(new_settings))
    lock = None if dry_run else RunLock(settings.paths.volatile_dir)
    if lock is not None:
        lock.acquire()
    try:
        store = StateStore(settings)
        registry = store.load_registry()
        # files are judged with the new settings' sidecar rules but our (unchanged) paths
        new_registry, adopted, rejected, already = plan_adoption(new_settings, inst, registry,
                                                                 Unraid.load(settings))
        manual = _merge_manual(settings, inst.manual_lines)
        if not dry_run:
            _write(settings, new_settings, Path(settings_path), changed, store, new_registry, manual)
            history = MaintenanceHistory.load(settings)
            history.add("import", "ok" if not rejected else "partial",
                        f"from {inst.root}: adopted {len(adopted)}, not adopted {len(rejected)}, "
                        f"{len(changed)} setting(s) changed", paths=[a["path"] for a in adopted])
            history.save(settings)
    finally:
        if lock is not None:
            lock.release()
    verb = "would adopt" if dry_run else "adopted"
    message = (f"{'Dry run: ' if dry_run else ''}{verb} {len(adopted)} cached file(s) from {inst.root}; "
               f"{len(rejected)} not adopted, {len(already)} already managed; "
               f"{len(changed)} setting(s) {'would change' if dry_run else 'changed'}")
    if rejected:
        message += "\n" + "\n".join(f"  not adopted: {r['path']}: {r['why']}" for r in rejected[:50])
    if notes:
        message += "\n" + "\n".join(f"  note: {n}" for n in notes)
    if adopted and not dry_run:
        message += ("\nNext: stop PlexCache-R's schedule and remove it; point CA Mover Tuning at "
                    f"{settings.paths.exclusion_list}")
    return {"schema": SCHEMA, "ok": True, "dry_run": dry_run, "source": str(inst.root),
            "settings": {"changed": changed, "notes": notes}, "adopted": adopted, "not_adopted": rejected,
            "already_managed": already, "manual_exclusions_added": manual, "message": message}


def _write(settings: Settings, new_settings: Settings, settings_path: Path, changed: list[str],
           store: StateStore, registry: Registry, manual: list[str]) -> None:
    """Registry first (the files are protected by PlexCache-R's list until ours is written), then the list,
    then the settings."""
    store.save_registry(registry)
    if manual:
        path = Path(settings.paths.manual_exclusions)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            text = ""
        if text and not text.endswith("\n"):
            text += "\n"
        atomic_write_text(path, text + "".join(f"{line}\n" for line in manual))
    exclusions.write(settings, registry)
    if changed:
        cfg.save(new_settings, settings_path)
