"""A sandbox Unraid root for a scenario: disks, pools, shares, share configs, emhttp state, notify stand-in.

Layout under `root` (every product path is a setting, so `settings_dict()` points them all in here; Unraid's
own commands, notify and update_cron, are not settings: PLEXCACHE_UNRAID_ROOT=root makes the product use
the stand-ins below):

    mnt/disk1..N/<share>/...      array disks holding the media the scenario places there
    mnt/<pool>/<share>/...        pools (cache, ...); files the scenario places on a pool
    mnt/user/<share>/...          stand-in for the shfs union: real directories, symlinks to the physical files
    boot/config/shares/*.cfg      share settings in Unraid's key="value" format; boot/config/share.cfg (global)
    boot/config/plugins/plexcache-r/   plugin settings dir (state/ inside)
    usr/local/emhttp/webGui/scripts/notify   appends its argv as one JSON line to var/log/notify.jsonl
    usr/local/sbin/update_cron    appends a line to var/log/update_cron.log
    var/local/emhttp/var.ini      mdState="STARTED", mdResync="0" ...; shares.ini (the runtime view)
    var/run/                      mover.pid appears here when a test says the mover runs
    var/log/plexcache-r/, tmp/plexcache-r/

Limits of the /mnt/user stand-in: it is a snapshot (rebuild it with `refresh_user_view()` after files move);
entries are symlinks, so `os.path.islink` is true there and there is no `system.LOCATION` xattr; writing
through it writes into the stand-in, not onto a disk. When the same relative path exists on a pool and on a
disk, the pool copy is shown. Product code must resolve physical paths itself (as it must on Unraid).

Media files larger than `unraid.fillLimit` (1 MiB by default) are sparse (truncated to size, no blocks);
smaller ones hold deterministic bytes derived from their path, so hash checks mean something. Files are
owned by the current user with Unraid's modes (0666 files, 0777 directories).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from plexcache.sim.scenario import Part, Scenario

PLUGIN = "plexcache-r"
FILE_MODE = 0o666
DIR_MODE = 0o777


@dataclass
class Sandbox:
    root: Path
    scenario: Scenario
    mnt: Path = field(init=False)
    user: Path = field(init=False)
    boot: Path = field(init=False)
    plugin_dir: Path = field(init=False)
    state_dir: Path = field(init=False)
    volatile_dir: Path = field(init=False)
    log_dir: Path = field(init=False)
    exclusion_list: Path = field(init=False)
    manual_exclusions: Path = field(init=False)
    cron_file: Path = field(init=False)
    shares_dir: Path = field(init=False)
    emhttp_dir: Path = field(init=False)
    var_ini: Path = field(init=False)
    mover_pid: Path = field(init=False)
    notify_script: Path = field(init=False)
    notify_log: Path = field(init=False)
    update_cron: Path = field(init=False)
    unmapped: list[str] = field(default_factory=list)  # Plex paths no pathMap entry covers (not created)

    def __post_init__(self) -> None:
        r = self.root
        self.mnt = r / "mnt"
        self.user = self.mnt / "user"
        self.boot = r / "boot"
        self.plugin_dir = self.boot / "config" / "plugins" / PLUGIN
        self.state_dir = self.plugin_dir / "state"
        self.volatile_dir = r / "tmp" / PLUGIN
        self.log_dir = r / "var" / "log" / PLUGIN
        self.exclusion_list = self.plugin_dir / "mover_exclude.txt"
        self.manual_exclusions = self.plugin_dir / "mover_exclude_manual.txt"
        self.cron_file = self.plugin_dir / f"{PLUGIN}.cron"
        self.shares_dir = self.boot / "config" / "shares"
        self.emhttp_dir = r / "var" / "local" / "emhttp"
        self.var_ini = self.emhttp_dir / "var.ini"
        self.mover_pid = r / "var" / "run" / "mover.pid"
        self.notify_script = r / "usr" / "local" / "emhttp" / "webGui" / "scripts" / "notify"
        self.notify_log = r / "var" / "log" / "notify.jsonl"
        self.update_cron = r / "usr" / "local" / "sbin" / "update_cron"

    # ------------------------------------------------------------ paths

    def disk(self, name: str) -> Path:
        """/mnt/<name> for diskN or a pool."""
        return self.mnt / name

    def physical_path(self, part: Union[Part, str], disk: Optional[str] = None) -> Path:
        """Where a Part (or a Plex path) lives on its disk/pool: root/mnt/<disk>/<share>/<rel>."""
        plex_path = part.file if isinstance(part, Part) else part
        where = disk or (part.disk if isinstance(part, Part) else None)
        mapped = self.scenario.unraid.to_share(plex_path)
        if mapped is None or where is None:
            raise ValueError(f"{plex_path} has no share mapping or disk")
        share, rel = mapped
        return self.mnt / where / share / rel

    def user_path(self, plex_path: str) -> Path:
        mapped = self.scenario.unraid.to_share(plex_path)
        if mapped is None:
            raise ValueError(f"{plex_path} is not under any pathMap prefix")
        return self.user / mapped[0] / mapped[1]

    def settings_dict(self, plex_url: str, token: str) -> dict[str, Any]:
        """Settings (plexcache.config schema) with every path pointing into this root."""
        mappings = []
        for prefix, target in sorted(self.scenario.unraid.path_map, key=lambda t: t[0]):
            mappings.append({"plex": prefix, "share": str(self.user / target)})
        # users whose Plex Home profile is PIN-protected: the product needs the PIN to read them
        overrides = [{"name": u.name, "pin": u.pin} for u in self.scenario.users.values() if u.pin]
        return {
            "plex": {"url": plex_url, "token": token, "path_mappings": mappings},
            "users": {"overrides": overrides},
            "paths": {
                "pool_root": str(self.mnt),
                "disks_glob": str(self.mnt / "disk[0-9]*"),
                "user_root": str(self.user),
                "shares_config_dir": str(self.shares_dir),
                "emhttp_state_dir": str(self.emhttp_dir),
                "mover_pid": str(self.mover_pid),
                "state_dir": str(self.state_dir),
                "volatile_dir": str(self.volatile_dir),
                "log_dir": str(self.log_dir),
                "exclusion_list": str(self.exclusion_list),
                "manual_exclusions": str(self.manual_exclusions),
                "cron_file": str(self.cron_file),
                "plugins_config_dir": str(self.boot / "config" / "plugins"),
            },
        }

    # ------------------------------------------------------------ state switches for tests

    def set_var(self, **values: str) -> None:
        """Rewrite keys in var.ini, e.g. set_var(mdResyncPos="1234") for a running parity check."""
        current = _read_ini(self.var_ini)
        current.update({k: str(v) for k, v in values.items()})
        _write_ini(self.var_ini, current)

    def set_mover_running(self, running: bool = True) -> None:
        if running:
            self.mover_pid.write_text(f"{os.getpid()}\n")
        elif self.mover_pid.exists():
            self.mover_pid.unlink()

    def set_mover_tuning(self, reads_ignore_list: bool = True) -> None:
        """Install CA Mover Tuning (its .plg where the plugin manager keeps it, and its settings), reading
        this tree's ignore list or not: what a person does in Settings > Scheduler > Mover Tuning."""
        plugins = self.boot / "config" / "plugins"
        (plugins / "ca.mover.tuning").mkdir(parents=True, exist_ok=True)
        (plugins / "ca.mover.tuning.plg").write_text("<PLUGIN name=\"ca.mover.tuning\"/>\n")
        values = {"filelistf": "yes" if reads_ignore_list else "no", "filelistv": str(self.exclusion_list)}
        _write_ini(plugins / "ca.mover.tuning" / "ca.mover.tuning.cfg", values)

    def notifications(self) -> list[list[str]]:
        """The argv of every notify call so far."""
        if not self.notify_log.exists():
            return []
        return [json.loads(line) for line in self.notify_log.read_text().splitlines() if line.strip()]

    def add_missing_media(self) -> list[Path]:
        """Create files for parts the scenario gained since the build (e.g. episodes added at runtime).

        A part counts as present when its file exists on any disk or pool; returns the paths created.
        """
        created = []
        vols = [f"disk{i}" for i in range(1, self.scenario.unraid.disks + 1)] + list(self.scenario.unraid.pools)
        for part in self.scenario.all_parts():
            if self.scenario.unraid.to_share(part.file) is None:
                continue
            if any(self.physical_path(part, v).exists() for v in vols):
                continue
            _place(self, part)
            created.append(self.physical_path(part))
        if created:
            self.refresh_user_view()
        return created

    # ------------------------------------------------------------ /mnt/user stand-in

    def refresh_user_view(self) -> None:
        """Rebuild mnt/user from what is on the disks and pools now (pools win over disks)."""
        if self.user.exists():
            shutil.rmtree(self.user)
        _mkdir(self.user)
        volumes = sorted(p for p in self.mnt.iterdir() if p.name.startswith("disk") and p.is_dir())
        volumes += [self.mnt / p for p in self.scenario.unraid.pools]  # later wins: pools over disks
        for share in self.scenario.unraid.shares:
            _mkdir(self.user / share)
        for vol in volumes:
            if not vol.is_dir():
                continue
            for dirpath, _dirnames, filenames in os.walk(vol):
                rel_dir = Path(dirpath).relative_to(vol)
                target_dir = self.user / rel_dir
                _mkdir(target_dir)
                for name in filenames:
                    link = target_dir / name
                    if link.is_symlink() or link.exists():
                        link.unlink()
                    link.symlink_to(Path(dirpath) / name)


def build_tree(root: Union[str, Path], scenario: Scenario) -> Sandbox:
    """Create the sandbox Unraid tree for `scenario` under `root` (which may exist but should be empty)."""
    sb = Sandbox(root=Path(root), scenario=scenario)
    un = scenario.unraid
    for d in [sb.mnt, *(sb.mnt / f"disk{i}" for i in range(1, un.disks + 1)), *(sb.mnt / p for p in un.pools),
              sb.plugin_dir, sb.state_dir, sb.volatile_dir, sb.log_dir, sb.shares_dir, sb.emhttp_dir,
              sb.mover_pid.parent, sb.notify_script.parent, sb.update_cron.parent, sb.notify_log.parent]:
        _mkdir(d)
    _write_share_configs(sb)
    _write_ini(sb.var_ini, {"mdState": "STARTED", "mdResync": "0", "mdResyncPos": "0", "mdResyncAction": "",
                            "fsState": "Started", "shareCacheEnabled": "yes", "shareMoverActive": "no",
                            "csrf_token": "0123456789ABCDEF", "version": "7.1.4"})
    _write_script(sb.notify_script, _NOTIFY.format(python=sys.executable, log=str(sb.notify_log)))
    cron_log = str(sb.log_dir.parent / "update_cron.log")
    _write_script(sb.update_cron, _UPDATE_CRON.format(python=sys.executable, log=cron_log))
    for part in scenario.all_parts():
        _place(sb, part)
    sb.refresh_user_view()
    return sb


def _place(sb: Sandbox, part: Part) -> None:
    if sb.scenario.unraid.to_share(part.file) is None:
        sb.unmapped.append(part.file)
        return
    path = sb.physical_path(part)
    write_media(path, part.size, part.file, sb.scenario.unraid.fill_limit)
    for car in part.sidecars:
        side = sb.physical_path(part.sidecar_path(car), part.disk)
        data = f"1\n00:00:01,000 --> 00:00:04,000\n{car.language} subtitle for {Path(part.file).name}\n".encode()
        _write_file(side, data)


def write_media(path: Path, size: int, seed: str, fill_limit: int) -> None:
    """Create a media file: deterministic bytes up to fill_limit, a sparse file above it."""
    _mkdir(path.parent)
    if size <= fill_limit:
        _write_file(path, deterministic_bytes(seed, size))
        return
    with open(path, "wb") as f:
        f.truncate(size)
    os.chmod(path, FILE_MODE)


def deterministic_bytes(seed: str, size: int) -> bytes:
    """Content derived only from (seed, size): the same scenario always yields the same file hashes."""
    block = hashlib.sha256(seed.encode()).digest() * 128  # 4 KiB
    reps = size // len(block) + 1
    return (block * reps)[:size]


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, DIR_MODE)
    except PermissionError:
        pass


def _write_file(path: Path, data: bytes) -> None:
    _mkdir(path.parent)
    path.write_bytes(data)
    os.chmod(path, FILE_MODE)


def _write_script(path: Path, text: str) -> None:
    _mkdir(path.parent)
    path.write_text(text)
    os.chmod(path, 0o755 | stat.S_IRUSR)


def _write_share_configs(sb: Sandbox) -> None:
    un = sb.scenario.unraid
    sections: dict[str, dict[str, str]] = {}
    for share in un.shares.values():
        keys = {"shareComment": "", "shareInclude": "", "shareExclude": "", "shareUseCache": share.use_cache,
                "shareCachePool": share.pool if share.use_cache != "no" else "", "shareCachePool2": share.pool2,
                "shareAllocator": "highwater", "shareSplitLevel": "", "shareFloor": "0", "shareExport": "e",
                "shareFruit": "no", "shareCaseSensitive": "auto", "shareSecurity": "public", "shareReadList": "",
                "shareWriteList": "", "shareVolsizelimit": "", "shareExportNFS": "-", "shareSecurityNFS": "public",
                "shareCOW": "auto"}
        _write_ini(sb.shares_dir / f"{share.name}.cfg", keys)
        sections[share.name] = {"name": share.name, "nameOrig": share.name, "comment": "", "allocator": "highwater",
                                "floor": "0", "splitLevel": "", "include": "", "exclude": "",
                                "useCache": share.use_cache, "cachePool": keys["shareCachePool"],
                                "cachePool2": share.pool2, "cow": "auto", "color": "yellow-on", "exclusive": "no"}
        # the share's top-level directory exists where Unraid would create it
        if share.use_cache in ("yes", "prefer", "only"):
            _mkdir(sb.mnt / share.pool / share.name)
        if share.use_cache != "only":
            _mkdir(sb.mnt / "disk1" / share.name)
    _write_ini(sb.boot / "config" / "share.cfg", {"shareCacheEnabled": "yes", "shareUser": "e",
                                                   "shareUserExclusive": "no", "shareMoverSchedule": "40 3 * * *",
                                                   "shareMoverLogging": "no"})
    lines = []
    for name, keys in sections.items():
        lines.append(f'["{name}"]')
        lines.extend(f'{k}="{v}"' for k, v in keys.items())
    (sb.emhttp_dir / "shares.ini").write_text("\n".join(lines) + "\n")


def _write_ini(path: Path, keys: dict[str, str]) -> None:
    _mkdir(path.parent)
    path.write_text("".join(f'{k}="{v}"\n' for k, v in keys.items()))
    os.chmod(path, FILE_MODE)


def _read_ini(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            k, sep, v = line.partition("=")
            if sep:
                out[k.strip()] = v.strip().strip('"')
    return out


_NOTIFY = """#!{python}
# Stand-in for Unraid's notify: records each call's arguments as one JSON line.
import json, sys
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
"""

_UPDATE_CRON = """#!{python}
# Stand-in for Unraid's update_cron: records that it ran.
import json, sys, time
with open({log!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "at": time.time()}}) + "\\n")
"""
