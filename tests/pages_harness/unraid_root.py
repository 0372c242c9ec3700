"""An Unraid-shaped root for one webGui release, built in a test folder and mounted over the real paths by
in_namespace.sh (a private mount namespace, so nothing on this machine changes).

    SB/usr-local/emhttp/    the docroot as /usr/local/emhttp: links into the release's emhttp/ and
                            plugins/plexcache-r -> source/emhttp (the plugin as the package installs it)
    SB/usr-local/sbin/      plexcache-r (the CLI under test) and the syslog stand-in `logger`
    SB/var-local/emhttp/    emhttpd's state files (var.ini with the csrf_token, disks.ini, ...), as
                            /var/local/emhttp; emhttpd itself cannot run here, so they are written once
    SB/boot/config/         the flash drive: dynamix.cfg (theme) and the plugin's settings.yaml
    SB/var-tmp/             /var/tmp
    SB/php/                 php's ini scan folder (Debian's minus gettext, which Unraid's php lacks)

Only what cannot run here is stood in for, each named as such: emhttpd (its state files), nginx (router.php),
rsyslog (`logger` appends to SB/syslog).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pages_harness import webgui

HERE = Path(__file__).resolve().parent
EMHTTP_SRC = HERE.parents[1] / "source" / "emhttp"
STANDINS = HERE / "standins"
PREPEND = "/usr/local/emhttp/webGui/include/local_prepend.php"   # as Unraid's php.ini names it


@dataclass
class UnraidRoot:
    base: Path
    version: str

    @property
    def docroot(self) -> Path:
        return self.base / "usr-local" / "emhttp"

    @property
    def sbin(self) -> Path:
        return self.base / "usr-local" / "sbin"

    @property
    def state(self) -> Path:
        return self.base / "var-local" / "emhttp"

    @property
    def boot(self) -> Path:
        return self.base / "boot"

    @property
    def syslog(self) -> Path:
        return self.base / "syslog"

    @property
    def php_errors(self) -> Path:
        return self.base / "php-errors.log"

    def set_theme(self, theme: str) -> None:
        """Unraid keeps the theme in the flash drive's dynamix.cfg, read on every page load."""
        cfg = self.boot / "config" / "plugins" / "dynamix" / "dynamix.cfg"
        cfg.write_text(f'[display]\ntheme="{theme}"\n')

    def set_token(self, token: str) -> None:
        _write_ini(self.state / "var.ini", var_ini(self.version, token))


def build(base: Path, version: str, token: str, cli: Path) -> UnraidRoot:
    root = UnraidRoot(base, version)
    _docroot(root)
    _sbin(root, cli)
    _state(root, token)
    root.set_theme("white")
    (base / "var-tmp").mkdir(exist_ok=True)
    # DefaultPageLayout fills this from the plugin manager when it is missing; a fresh boot has it
    (base / "var-tmp" / "unRAIDServer.txt").write_text("")
    for name in ("ns", "sessions"):
        (base / name).mkdir(exist_ok=True)
    _php_scan_dir(base / "php")
    return root


def _docroot(root: UnraidRoot) -> None:
    """Links to each entry of the release's emhttp/; the export stores its few symlinks as text files."""
    src = webgui.path(root.version) / "emhttp"
    docroot = root.docroot
    (docroot / "plugins").mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name == "plugins":
            continue
        target = _stored_link(entry) or entry
        (docroot / entry.name).symlink_to(target)
    for plugin in (src / "plugins").iterdir():
        (docroot / "plugins" / plugin.name).symlink_to(plugin)
    for standin in STANDINS.iterdir():   # parts of a server the release does not hold (standins/README.md)
        if standin.is_dir() and not (docroot / "plugins" / standin.name).exists():
            (docroot / "plugins" / standin.name).symlink_to(standin)
    (docroot / "plugins" / "plexcache-r").symlink_to(EMHTTP_SRC)


def _stored_link(entry: Path) -> str | None:
    """`webGui`, `state`, `boot`, `mnt`, `log`: symlinks in Unraid, one-line text files in the export."""
    if not entry.is_file() or entry.stat().st_size > 200:
        return None
    text = entry.read_text(errors="replace")
    return text if text and "\n" not in text and all(c.isalnum() or c in "/._-" for c in text) else None


def _sbin(root: UnraidRoot, cli: Path) -> None:
    root.sbin.mkdir(parents=True, exist_ok=True)
    # The plugin installs its command here; the pages find it without any setting.
    (root.sbin / "plexcache-r").symlink_to(cli)
    logger = root.sbin / "logger"   # stand-in for rsyslog's logger: the line lands in SB/syslog
    logger.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{root.syslog}"\n')
    # stand-in for the plugin manager's read-only queries (6.12's header asks the OS's release branch);
    # the real one needs php's SimpleXML and the installed .plg files, which the plugin tests exercise
    plugin = root.sbin / "plugin"
    plugin.write_text('#!/bin/sh\n[ "$1" = category ] && echo stable\nexit 0\n')
    for tool in (logger, plugin):
        tool.chmod(0o755)


def var_ini(version: str, token: str) -> dict[str, str]:
    """The keys of emhttpd's var.ini that the webGui reads, with the values of a healthy started array."""
    now = int(time.time())
    return {"version": version, "NAME": "Tower", "COMMENT": "Media server", "timeZone": "Etc/UTC",
            "csrf_token": token, "regTy": "Pro", "regBuildTime": str(now - 86400 * 30),
            "regFILE": "/boot/config/Pro.key",
            "flashGUID": "0781-5583-8355-81071A4B6F06", "safeMode": "no", "mdState": "STARTED", "mdColor": "green-on",
            "mdNumDisks": "4", "mdNumDisabled": "0", "mdNumInvalid": "0", "mdNumMissing": "0",
            "mdResync": "0", "mdResyncPos": "0", "mdResyncSize": "7814026532", "mdResyncAction": "check P",
            "sbSynced": str(now - 86400 * 3), "sbSyncErrs": "0", "sbSyncExit": "0", "sbNumDisks": "5",
            "fsState": "Started", "fsProgress": "", "fsNumMounted": "5", "fsNumUnmountable": "0",
            "shareCacheEnabled": "yes", "shareMoverActive": "no", "shareUser": "e", "USE_SSL": "no", "PORT": "80",
            "PORTSSL": "443", "LOCAL_TLD": "local", "configValid": "yes", "deviceCount": "6", "regCheck": "",
            "regGUID": "0781-5583-8355-81071A4B6F06", "regTo": "Plex Household", "regTm": str(now - 86400 * 400),
            "regExp": "", "regGen": "0", "regDevs": "unlimited", "flashVendor": "SanDisk", "flashProduct": "Cruzer Fit",
            "SYS_MODEL": ""}


def _state(root: UnraidRoot, token: str) -> None:
    root.state.mkdir(parents=True, exist_ok=True)
    root.set_token(token)
    disk = {"status": "DISK_OK", "fsType": "xfs", "fsStatus": "Mounted", "color": "green-on", "type": "Data"}
    disks = {"parity": {"name": "parity", "idx": "0", "device": "sdb", "status": "DISK_OK", "type": "Parity",
                        "color": "green-on"},
             **{f"disk{i}": {"name": f"disk{i}", "idx": str(i), "device": f"sd{'cdef'[i - 1]}", **disk}
                for i in range(1, 5)},
             "cache": {"name": "cache", "idx": "30", "device": "nvme0n1", "devices": "1", "status": "DISK_OK",
                       "fsType": "btrfs", "fsStatus": "Mounted", "color": "green-on", "type": "Cache"},
             "flash": {"name": "flash", "idx": "54", "device": "sda", "status": "DISK_OK", "fsType": "vfat",
                       "type": "Flash", "color": "green-on"}}
    _write_sections(root.state / "disks.ini", disks)
    _write_sections(root.state / "shares.ini", {
        name: {"name": name, "useCache": "yes", "cachePool": "cache", "cachePool2": ""} for name in ("movies", "tv")})
    _write_sections(root.state / "network.ini", {
        "eth0": {"BONDING": "yes", "BRIDGING": "yes", "BRNAME": "br0", "USE_DHCP:0": "yes",
                 "IPADDR:0": "192.168.1.20", "NETMASK:0": "255.255.255.0", "GATEWAY": "192.168.1.1"}})
    for name in ("devs.ini", "sec.ini", "sec_nfs.ini", "users.ini"):
        (root.state / name).write_text("")
    flash = root.boot / "config" / "plugins" / "dynamix"
    flash.mkdir(parents=True, exist_ok=True)


def _php_scan_dir(folder: Path) -> None:
    """Debian's php extensions minus gettext: Unraid's php has none, and Unraid defines its own _()."""
    folder.mkdir(exist_ok=True)
    scan = subprocess.run(["php", "-r", "echo PHP_CONFIG_FILE_SCAN_DIR;"], capture_output=True, text=True,
                          check=True).stdout.strip()
    for ini in Path(scan).glob("*.ini"):
        if "gettext" not in ini.name and not (folder / ini.name).exists():
            (folder / ini.name).symlink_to(ini)


def _write_ini(path: Path, values: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))
    os.replace(tmp, path)   # emhttpd rewrites its state files whole; a reader never sees half of one


def _write_sections(path: Path, sections: dict[str, dict[str, str]]) -> None:
    path.write_text("".join(f'[{name}]\n' + "".join(f'{k}="{v}"\n' for k, v in values.items())
                            for name, values in sections.items()))
