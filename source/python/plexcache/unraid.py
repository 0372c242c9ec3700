"""What Unraid looks like: shares and their pool/array roles, where a file physically lives, pool space,
and whether the environment allows moving anything now (mover, parity check, array state).

Never reads or writes a media file through /mnt/user: a user-share path is only ever translated into the
physical paths POOL_ROOT/POOL/SHARE/REL and DISK/SHARE/REL, which are checked with lstat.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from plexcache.config import Settings
from plexcache.errors import EnvironmentRefuses
from plexcache.layout import BACKUP_SUFFIX

_KV = re.compile(r'^\s*(\w+)\s*=\s*"?(.*?)"?\s*$')
_SECTION = re.compile(r"^\s*\[\"?([^\]\"]+)\"?\]\s*$")


# ---------------------------------------------------------------- small readers


def parse_cfg(text: str) -> dict[str, str]:
    """A flat Unraid `key="value"` file (share.cfg, a plugin's .cfg, var.ini): CRLF tolerated, `#` and `;`
    comments and `[section]` lines skipped."""
    out: dict[str, str] = {}
    for line in text.replace("\r", "").split("\n"):
        if line.lstrip().startswith(("#", ";", "[")):
            continue
        match = _KV.match(line)
        if match:
            out[match.group(1)] = match.group(2)
    return out


def parse_ini_sections(text: str) -> dict[str, dict[str, str]]:
    """An emhttp `.ini` with [sections] (shares.ini, disks.ini)."""
    out: dict[str, dict[str, str]] = {}
    current: Optional[dict[str, str]] = None
    for line in text.replace("\r\n", "\n").split("\n"):
        section = _SECTION.match(line)
        if section:
            current = out.setdefault(section.group(1), {})
            continue
        match = _KV.match(line)
        if match and current is not None:
            current[match.group(1)] = match.group(2)
    return out


def read_cfg(path: Path) -> dict[str, str]:
    """`parse_cfg` of a file; a missing or unreadable file reads as empty."""
    return parse_cfg(_read(path) or "")


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _natural(name: str) -> tuple[str, int]:
    match = re.match(r"^(.*?)(\d+)$", name)
    return (match.group(1), int(match.group(2))) if match else (name, -1)


# ---------------------------------------------------------------- shares


@dataclass(frozen=True)
class ShareInfo:
    """One user share and whether plexcache-r may cache from it (if not, `why` says so)."""

    name: str
    use_cache: str  # yes | prefer | only | no
    pool: str  # primary pool ("" when the primary is the array)
    pool2: str = ""  # secondary pool on 7.x ("" or "array" means the array)
    exclusive: bool = False
    zfs: bool = False  # the pool is ZFS: the share's top-level dir is a dataset, never remove it
    cacheable: bool = False
    why: str = ""


def classify(name: str, use_cache: str, pool: str, pool2: str = "", exclusive: bool = False,
             zfs: bool = False) -> ShareInfo:
    """Only pool-primary, array-secondary shares (`yes`) are worth caching; say why for the others."""
    use = (use_cache or "no").lower()
    secondary_is_pool = bool(pool2) and pool2.lower() != "array"
    why = ""
    if exclusive:
        why = f"share {name} is exclusive (it lives on one pool only); nothing to cache"
    elif use == "no" or not pool:
        why = f"share {name} has no pool as primary storage (array only); set a pool as primary to cache it"
    elif use == "only":
        why = f"share {name} lives on pool {pool} only; it is already on fast storage"
    elif use == "prefer":
        why = (f"share {name} has the array as primary with pool {pool} preferred: the mover already keeps "
               "it on the pool")
    elif secondary_is_pool:
        why = f"share {name} has pool {pool2} as secondary storage, not the array"
    elif use != "yes":
        why = f"share {name} has an unknown cache setting {use_cache!r}"
    return ShareInfo(name=name, use_cache=use, pool=pool, pool2=pool2, exclusive=exclusive, zfs=zfs,
                     cacheable=not why, why=why)


def zfs_mounts(proc_mounts: str = "/proc/mounts") -> set[str]:
    """Mount points whose filesystem is ZFS."""
    text = _read(Path(proc_mounts)) or ""
    return {fields[1] for fields in (line.split() for line in text.splitlines())
            if len(fields) > 2 and fields[2] == "zfs"}


def read_shares(settings: Settings, proc_mounts: str = "/proc/mounts") -> dict[str, ShareInfo]:
    """Shares from emhttp's shares.ini (runtime view) where present, else /boot/config/shares/*.cfg."""
    raw: dict[str, dict[str, str]] = {}
    ini = _read(Path(settings.paths.emhttp_state_dir) / "shares.ini")
    if ini is not None:
        for section, values in parse_ini_sections(ini).items():
            raw[values.get("name", section)] = {
                "use": values.get("useCache", "no"), "pool": values.get("cachePool", ""),
                "pool2": values.get("cachePool2", ""), "exclusive": values.get("exclusive", "no")}
    cfg_dir = Path(settings.paths.shares_config_dir)
    for cfg in sorted(cfg_dir.glob("*.cfg")) if cfg_dir.is_dir() else []:
        if cfg.stem in raw:
            continue
        values = parse_cfg(_read(cfg) or "")
        use = values.get("shareUseCache", "no")
        raw[cfg.stem] = {"use": use, "pool": values.get("shareCachePool", "cache" if use != "no" else ""),
                         "pool2": values.get("shareCachePool2", ""), "exclusive": "no"}
    zfs = zfs_mounts(proc_mounts)
    user_root = Path(settings.paths.user_root)
    out = {}
    for name, r in raw.items():
        # An exclusive share shows as a symlink in /mnt/user (FUSE bypassed), whatever the ini says.
        exclusive = r["exclusive"].lower() == "yes" or (user_root / name).is_symlink()
        pool_mount = str(Path(settings.paths.pool_root) / r["pool"]) if r["pool"] else ""
        out[name] = classify(name, r["use"], r["pool"], r["pool2"], exclusive, pool_mount in zfs)
    return out


# ---------------------------------------------------------------- locations


@dataclass(frozen=True)
class Location:
    """Where one user-share file physically is. Paths are physical (pool or disk), never /mnt/user."""

    user_path: str
    share: str
    rel: str
    pool: str = ""
    pool_path: str = ""
    on_pool: bool = False
    disk: Optional[str] = None  # first disk holding the original or its backup
    array_path: str = ""  # DISK/SHARE/REL on that disk
    on_array: bool = False
    backup_path: str = ""
    has_backup: bool = False
    disks: tuple[str, ...] = ()  # every disk holding the original (more than one is a duplicate)

    @property
    def exists(self) -> bool:
        return self.on_pool or self.on_array


def split_user_path(user_root: str, user_path: str) -> Optional[tuple[str, str]]:
    """/mnt/user/SHARE/REL -> (SHARE, REL), or None when the path is not under the user root."""
    root = user_root.rstrip("/") + "/"
    if not user_path.startswith(root):
        return None
    share, _, rel = user_path[len(root):].partition("/")
    if not share or not rel or ".." in rel.split("/"):
        return None
    return share, rel


@dataclass
class PoolSpace:
    pool: str
    total: int
    free: int
    used: int


@dataclass
class Unraid:
    """The Unraid layout for one command: shares read once, array disks listed once."""

    settings: Settings
    shares: dict[str, ShareInfo] = field(default_factory=dict)
    disks: list[tuple[str, str]] = field(default_factory=list)  # (name, mount path), natural order

    @classmethod
    def load(cls, settings: Settings, proc_mounts: str = "/proc/mounts") -> Unraid:
        mounts = sorted(glob.glob(settings.paths.disks_glob), key=lambda p: _natural(Path(p).name))
        return cls(settings, read_shares(settings, proc_mounts),
                   [(Path(p).name, p) for p in mounts if os.path.isdir(p)])

    def share(self, name: str) -> Optional[ShareInfo]:
        return self.shares.get(name)

    def roots(self, pools: Iterable[str] = ()) -> list[str]:
        """Every array disk mount and every pool mount (of the shares, plus `pools`): where Unraid's mover
        may carry a file of any share."""
        names = {n for info in self.shares.values() for n in (info.pool, info.pool2) if n and n != "array"}
        names.update(p for p in pools if p)
        pool_mounts = [os.path.join(self.settings.paths.pool_root, n) for n in sorted(names)]
        return [m for _n, m in self.disks] + [m for m in pool_mounts if os.path.isdir(m)]

    def cacheable(self, user_path: str) -> tuple[bool, str]:
        """Whether a user-share path may be cached, and why not."""
        parts = split_user_path(self.settings.paths.user_root, user_path)
        if parts is None:
            return False, f"{user_path} is not under {self.settings.paths.user_root}"
        info = self.shares.get(parts[0])
        if info is None:
            return False, f"share {parts[0]} has no configuration in {self.settings.paths.shares_config_dir}"
        return info.cacheable, info.why

    def locate(self, user_path: str, pool: Optional[str] = None, disk: Optional[str] = None) -> Location:
        """Find the pool copy, the array original and any .plexcached backup of a user-share file.

        With `disk` (where a managed file came from) and the pool copy present, only that disk is checked:
        a no-op run over thousands of managed files then costs three lstat calls a file (pool copy, original,
        backup), not two a disk."""
        parts = split_user_path(self.settings.paths.user_root, user_path)
        if parts is None:
            return Location(user_path, "", "")
        share, rel = parts
        info = self.shares.get(share)
        pool = pool or (info.pool if info else "")
        pool_path = f"{self.settings.paths.pool_root.rstrip('/')}/{pool}/{share}/{rel}" if pool else ""
        disks = self.disks
        on_pool = bool(pool_path) and _is_file(pool_path)
        if disk is not None and on_pool:
            disks = [(n, m) for n, m in self.disks if n == disk] or self.disks
        holders, backup_disk = [], None
        for name, mount in disks:
            candidate = os.path.join(mount, share, rel)
            if _is_file(candidate):
                holders.append(name)
            if backup_disk is None and _is_file(candidate + BACKUP_SUFFIX):
                backup_disk = name
        disk = holders[0] if holders else backup_disk
        array_path = os.path.join(dict(self.disks)[disk], share, rel) if disk else ""
        has_backup = disk is not None and backup_disk == disk
        return Location(user_path, share, rel, pool, pool_path,
                        on_pool=on_pool, disk=disk, array_path=array_path,
                        on_array=bool(holders), backup_path=array_path + BACKUP_SUFFIX if has_backup else "",
                        has_backup=has_backup, disks=tuple(holders))

    def disk_path(self, disk: str, share: str, rel: str) -> str:
        return os.path.join(dict(self.disks).get(disk, ""), share, rel)

    def pool_space(self, pool: str, total_override: Optional[int] = None) -> PoolSpace:
        """statvfs of the pool. On ZFS a dataset's total floats with usage, so a fixed size may be given."""
        path = Path(self.settings.paths.pool_root) / pool
        st = os.statvfs(path)
        free = st.f_bavail * st.f_frsize
        total = total_override or st.f_blocks * st.f_frsize
        return PoolSpace(pool, total, free, max(total - free, 0))


def _is_file(path: str) -> bool:
    try:
        return os.lstat(path).st_mode & 0o170000 == 0o100000
    except OSError:
        return False


# ---------------------------------------------------------------- environment


def read_var_ini(settings: Settings) -> Optional[dict[str, str]]:
    text = _read(Path(settings.paths.emhttp_state_dir) / "var.ini")
    return None if text is None else parse_cfg(text)


def disks_in_standby(settings: Settings) -> Optional[frozenset[str]]:
    """Array devices emhttp reports spun down (`spundown="1"` in disks.ini), by name (disk1, parity...).

    emhttp keeps this file current without touching the disks, so reading it never wakes one. None when
    there is no disks.ini (not an Unraid server): then nothing is known to be asleep."""
    text = _read(Path(settings.paths.emhttp_state_dir) / "disks.ini")
    if text is None:
        return None
    return frozenset(values.get("name", section) for section, values in parse_ini_sections(text).items()
                     if values.get("spundown", "0") == "1")


def mover_running(settings: Settings) -> bool:
    """The mover's pid file names a live process."""
    text = _read(Path(settings.paths.mover_pid))
    if text is None:
        return False
    try:
        pid = int(text.strip().split()[0])
    except (ValueError, IndexError):
        return True  # a pid file we cannot read: assume the mover is starting
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def environment_problems(settings: Settings) -> list[str]:
    """Reasons not to move files now (empty when all is well)."""
    problems = []
    if mover_running(settings):
        problems.append(f"the Unraid mover is running ({settings.paths.mover_pid}); try again when it is done")
    var = read_var_ini(settings)
    if var is not None:
        state = var.get("mdState", var.get("fsState", "STARTED")).upper()
        if state != "STARTED":
            problems.append(f"the array is not started (mdState={state}); start the array first")
        resync = next((var[k] for k in ("mdResync", "mdResyncPos") if var.get(k, "0") not in ("", "0")), None)
        if resync is not None:
            problems.append("a parity check or rebuild is running; try again when it has finished")
    return problems


def check_environment(settings: Settings) -> None:
    """Raise EnvironmentRefuses (exit 6) when the mover or a parity check runs or the array is stopped."""
    problems = environment_problems(settings)
    if problems:
        raise EnvironmentRefuses(problems[0])
