#!/usr/bin/env python3
"""Runs inside `unshare -m`: builds a throw-away Unraid-like root over the host and plays the plugin's
life cycle through the plugin manager, recording what happened in WORK/results.json.

RAM paths (/usr/local, /var/log, /var/lib, /var/local, /run, /tmp, /mnt) are fresh tmpfs; /boot is a
tmpfs that survives the simulated reboot; /etc is an overlay whose upper layer shows every change.
The package and .plg are served from a loopback HTTP server. Stand-ins for pkgtools, update_cron and
crontab go to /usr/local/sbin; the plugin manager is the real webGui script under php-cli when
a webGui checkout is given, else plugin_manager.py.

Usage (as root, in a private mount namespace): driver.py SPEC.json
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
TOOLS = Path("/run/sbx-tools")  # HERE, still visible once /tmp is hidden (a checkout may live under /tmp)
SBX = Path("/run/sbx")  # the test's work dir, still visible once /tmp is hidden
WEBGUI = Path("/run/webgui")
RAM = ["/usr/local", "/var/log", "/var/lib", "/var/local", "/tmp", "/mnt"]
SNAPSHOT_ROOTS = ["/boot", "/usr/local", "/var/log", "/var/lib", "/var/local", "/tmp", "/mnt", "/run",
                  "/run/overlay/etc-upper"]
SKIP = {"/run/sbx", "/run/overlay", "/run/mount", "/run/webgui", "/usr/local/emhttp/plugins/dynamix",
        "/usr/local/emhttp/plugins/dynamix.plugin.manager", "/usr/local/emhttp/webGui"}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAME = "plexcache-r"


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def mount_tmpfs(path: str) -> None:
    sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", path)


def setup(spec: dict[str, Any]) -> None:
    work = spec["work"]
    mount_tmpfs("/run")
    SBX.mkdir()
    sh("mount", "--bind", work, str(SBX))
    TOOLS.mkdir()
    sh("mount", "--bind", str(HERE), str(TOOLS))
    sh("mount", "-o", "remount,bind,ro", str(TOOLS))  # the sandbox may read the checkout, never change it
    if spec.get("webgui"):  # keep the checkout reachable once /tmp is hidden
        WEBGUI.mkdir()
        sh("mount", "--bind", spec["webgui"], str(WEBGUI))
        sh("mount", "-o", "remount,bind,ro", str(WEBGUI))
    for path in ["/boot", *RAM]:
        if not Path(path).is_dir():
            raise SystemExit(f"sandbox: {path} is missing on this host")
        mount_tmpfs(path)
    upper, workdir = Path("/run/overlay/etc-upper"), Path("/run/overlay/etc-work")
    upper.mkdir(parents=True)
    workdir.mkdir(parents=True)
    sh("mount", "-t", "overlay", "overlay", "-o", f"lowerdir=/etc,upperdir={upper},workdir={workdir}", "/etc")
    Path("/etc/cron.d").mkdir(exist_ok=True)
    set_unraid_version(spec.get("unraid_version", "7.2.3"))
    flash_skeleton()
    ram_skeleton(spec)


def set_unraid_version(version: str) -> None:
    Path("/etc/unraid-version").write_text(f'version="{version}"\n')


def flash_skeleton() -> None:
    """What a fresh Unraid flash drive has that matters here: the stock mover's schedule."""
    for sub in ("plugins/dynamix", "shares"):
        Path("/boot/config", sub).mkdir(parents=True, exist_ok=True)
    Path("/boot/config/share.cfg").write_text('shareMoverSchedule="40 3 * * *"\nshareUser="e"\n')
    Path("/boot/config/plugins/dynamix/mover.cron").write_text(
        "# Generated mover schedule:\n40 3 * * * /usr/local/sbin/mover start |& logger -t move\n\n")


def ram_skeleton(spec: dict[str, Any]) -> None:
    """What Unraid's root filesystem has at boot before plugins: the tools the plugin manager calls."""
    sbin = Path("/usr/local/sbin")
    sbin.mkdir(parents=True, exist_ok=True)
    py = spec["python"]
    for tool in ("installpkg", "upgradepkg", "removepkg"):
        script(sbin / tool, f'exec "{py}" "{TOOLS}/pkgtools.py" {tool} "$@"\n')
    # update_cron: concatenate dynamix/*.cron and the .cron files of every registered plugin (by .plg
    # basename) and hand them to crontab, as Unraid's sbin/update_cron does.
    script(sbin / "update_cron", """
entries=$( { cat /boot/config/plugins/dynamix/*.cron 2>/dev/null
  for plg in /var/log/plugins/*.plg; do
    [ -e "$plg" ] || continue
    base=${plg##*/}; cat /boot/config/plugins/${base%.plg}/*.cron 2>/dev/null
  done; } )
if [ -n "$entries" ]; then echo "$entries" | crontab -c /etc/cron.d -; else crontab -c /etc/cron.d -d; fi
""")
    # dcron's crontab -c DIR: '-' installs stdin as DIR/root, -d deletes it.
    script(sbin / "crontab", """
dir=/var/spool/cron/crontabs
while [ $# -gt 0 ]; do
  case "$1" in -c) dir=$2; shift 2 ;; -d) rm -f "$dir/root"; exit 0 ;; -) cat >"$dir/root"; exit 0 ;; *) shift ;; esac
done
""")
    for sub in ("/var/log/plugins", "/tmp/plugins", "/var/local/emhttp", "/var/lib/pkgtools/packages"):
        Path(sub).mkdir(parents=True, exist_ok=True)
    version = spec.get("unraid_version", "7.2.3")
    Path("/var/local/emhttp/var.ini").write_text(f'version="{version}"\nfsState="Stopped"\nmdResyncPos="0"\n')
    subprocess.run(["/usr/local/sbin/update_cron"], check=True, env={"PATH": PATH})  # as rc.local does
    webgui = spec.get("webgui")
    if webgui:
        shutil.copytree(WEBGUI / "emhttp", "/usr/local/emhttp", symlinks=True)
        ini = Path("/run/overlay/php")
        ini.mkdir(parents=True, exist_ok=True)
        (ini / "99-unraid.ini").write_text("short_open_tag=On\n")
        manager = "/usr/local/emhttp/plugins/dynamix.plugin.manager/scripts/plugin"
        script(sbin / "plugin", f'PHP_INI_SCAN_DIR=/etc/php/8.2/cli/conf.d:{ini} exec php -q {manager} "$@"\n')
        # The webGui scripts expect bash as /bin/sh (update_cron even lacks its '!').
        sh("mount", "--bind", "/bin/bash", os.path.realpath("/bin/sh"))
    else:
        script(sbin / "plugin", f'exec "{py}" "{TOOLS}/plugin_manager.py" "$@"\n')


def script(path: Path, body: str) -> None:
    path.write_text("#!/bin/bash\n" + body.lstrip("\n"))
    path.chmod(0o755)


def reboot(spec: dict[str, Any]) -> None:
    """Everything but /boot is lost: fresh RAM paths, then the stand-ins again (as the OS image has them)."""
    for path in RAM:
        sh("umount", "-l", path)
        mount_tmpfs(path)
    for entry in Path("/run").iterdir():
        if entry.name not in ("sbx", "sbx-tools", "overlay", "webgui"):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    Path("/etc/cron.d/root").unlink(missing_ok=True)
    ram_skeleton(spec)


# --- observing -------------------------------------------------------------------------------------


def snapshot() -> dict[str, str]:
    """path -> a short description that changes when type, mode, content or link target change."""
    seen: dict[str, str] = {}
    for root in SNAPSHOT_ROOTS:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in SKIP]
            if dirpath not in SNAPSHOT_ROOTS:
                seen[dirpath] = "dir"
            for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                seen[os.path.join(dirpath, name)] = describe(os.path.join(dirpath, name))
    return seen


def describe(path: str) -> str:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return "link->" + os.readlink(path)
    if not stat.S_ISREG(info.st_mode):
        return "special"
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return f"file {oct(info.st_mode & 0o7777)} {digest}"


def diff(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    return {"added": sorted(set(after) - set(before)), "removed": sorted(set(before) - set(after)),
            "changed": sorted(p for p in set(before) & set(after) if before[p] != after[p])}


def run(*args: str, env: Optional[dict[str, str]] = None, timeout: int = 120) -> dict[str, Any]:
    base = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    start = time.monotonic()
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, env={**base, **(env or {})},
                              timeout=timeout, check=False)
    except FileNotFoundError as exc:  # e.g. the CLI link an install should have made: a result, not a crash
        return {"rc": 127, "out": str(exc), "seconds": round(time.monotonic() - start, 2)}
    return {"rc": proc.returncode, "out": proc.stdout + proc.stderr,
            "seconds": round(time.monotonic() - start, 2)}


def read(path: str) -> Optional[str]:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def wait_for_schedule(limit: float = 10.0) -> float:
    """Seconds until our job shows up in the crontab (the install loads it once registered), or -1."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if NAME in (read("/etc/cron.d/root") or ""):
            return round(time.monotonic() - start, 2)
        time.sleep(0.1)
    return -1.0


def installed_state() -> dict[str, Any]:
    flash = Path(f"/boot/config/plugins/{NAME}")
    return {
        "schedule_loaded_after": wait_for_schedule(),
        "registered": os.path.islink(f"/var/log/plugins/{NAME}.plg")
        and os.readlink(f"/var/log/plugins/{NAME}.plg") == f"/boot/config/plugins/{NAME}.plg",
        "flash_files": sorted(p.name for p in flash.iterdir()) if flash.is_dir() else [],
        "packages": sorted(p.name for p in Path("/var/lib/pkgtools/packages").iterdir()),
        "version_file": (read(f"/usr/local/lib/{NAME}/VERSION") or "").strip(),
        "settings_mode": oct(os.stat(flash / "settings.yaml").st_mode & 0o777)
        if (flash / "settings.yaml").exists() else None,
        "settings": read(str(flash / "settings.yaml")),
        "cron_file": read(str(flash / f"{NAME}.cron")),
        "crontab": read("/etc/cron.d/root"),
        "cli_link": os.readlink("/usr/local/sbin/plexcache-r") if os.path.islink("/usr/local/sbin/plexcache-r")
        else None,
        "help": run("plexcache-r", "--help"),
        "version": run("plexcache-r", "--version"),
    }


# --- the life cycle --------------------------------------------------------------------------------


class Server:
    """Serves SBX/www on 127.0.0.1:PORT while up (the reboot step takes it down: boot must be offline)."""

    def __init__(self, port: int) -> None:
        handler = partial(_QuietHandler, directory=str(SBX / "www"))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def publish(version: str) -> None:
    """Make VERSION's .plg the one at pluginURL (its package is already under www/VERSION/)."""
    shutil.copyfile(SBX / "www" / version / f"{NAME}.plg", SBX / "www" / f"{NAME}.plg")


def cycle(spec: dict[str, Any]) -> dict[str, Any]:
    old, new = spec["versions"]
    url = f"http://127.0.0.1:{spec['port']}/{NAME}.plg"
    results: dict[str, Any] = {"manager": "webgui" if spec.get("webgui") else "stand-in"}
    server = Server(spec["port"])
    publish(old)
    pristine = snapshot()

    set_unraid_version("6.11.5")
    results["too_old"] = {**run("plugin", "install", url), "after": diff(pristine, snapshot())}
    set_unraid_version(spec.get("unraid_version", "7.2.3"))
    for leftover in ("/tmp/plugins", "/boot/config/plugins-error"):  # the manager's own bookkeeping
        shutil.rmtree(leftover, ignore_errors=True)
    Path("/tmp/plugins").mkdir()

    results["install"] = {**run("plugin", "install", url), **installed_state()}
    # The user changes the schedule; reinstalling must keep the settings and apply them.
    settings = Path(f"/boot/config/plugins/{NAME}/settings.yaml")
    custom = settings.read_text().replace("mode: before_mover", "mode: interval")
    settings.write_text(custom)
    results["custom_settings"] = custom
    results["reinstall_refused"] = run("plugin", "install", url)
    results["reinstall"] = {**run("plugin", "install", url, "forced"), **installed_state()}

    server.stop()
    reboot(spec)
    results["boot_offline"] = {**run("plugin", "install", f"/boot/config/plugins/{NAME}.plg"),
                               **installed_state()}

    server = Server(spec["port"])
    publish(new)
    results["check"] = run("plugin", "check", f"{NAME}.plg")
    results["update"] = {**run("plugin", "update", f"{NAME}.plg"), **installed_state()}
    results["remove"] = run("plugin", "remove", f"{NAME}.plg")
    results["after_remove"] = diff(pristine, snapshot())
    results["after_remove_crontab"] = read("/etc/cron.d/root")
    server.stop()
    return results


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    setup(spec)
    try:
        results = cycle(spec)
    except Exception as exc:  # report instead of losing everything
        results = {"error": f"{exc.__class__.__name__}: {exc}"}
    (SBX / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
