#!/usr/bin/env python3
"""Runs inside `unshare -m -n`: builds a throw-away Unraid root over the host from one release of Unraid's own
webGui and plays the plugin's life cycle through that release's real plugin manager, recording what
happened in WORK/results.json.

RAM paths (/usr/local, /var/log, /var/lib, /var/local, /tmp, /mnt) are fresh tmpfs; /boot is a tmpfs that
survives the simulated reboot; /etc is an overlay whose upper layer shows every change. /usr/local/emhttp is
an overlay over the release's `emhttp/` (its symlinks, stored as small text files in the fixture, made real),
so the plugin manager (`dynamix.plugin.manager/scripts/plugin`, under php-cli) and its hooks are Unraid's.
`/usr/local/sbin/update_cron` is the release's own file, byte for byte (it starts `#/bin/bash`), and /bin/sh
is bash, as on Unraid. Stand-ins only for what cannot run here: Slackware's pkgtools (pkgtools.py),
dcron's `crontab` and syslog's `logger` (small scripts written below). The .plg and the packages come
from a loopback HTTP server in the sandbox's own network namespace (nothing else is reachable); "no
network" is that server stopped or a dead port.

Usage (as root, in private mount and network namespaces): driver.py SPEC.json
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
WEBGUI = Path("/run/webgui")  # the webGui release
PYTHON = Path("/run/sbx-python/python3")  # the host interpreter for the stand-ins, even while python3 is hidden
RAM = ["/usr/local", "/var/log", "/var/lib", "/var/local", "/tmp", "/mnt"]
SNAPSHOT_ROOTS = ["/boot", "/usr/local", "/var/log", "/var/lib", "/var/local", "/tmp", "/mnt",
                  "/run/overlay/etc-upper", "/usr/local/emhttp/plugins/plexcache-r"]
SKIP = {"/usr/local/emhttp", "/var/log/syslog"}  # Unraid's own tree (the plugin's part is checked apart)
EMHTTP_LINKS = {"webGui": "plugins/dynamix", "state": "/var/local/emhttp", "boot": "/boot", "log": "/var/log",
                "mnt": "/mnt"}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAME = "plexcache-r"
PLUGDIR = f"/usr/local/emhttp/plugins/{NAME}"
FLASH = f"/boot/config/plugins/{NAME}"
CRONTAB = "/etc/cron.d/root"


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def mount_tmpfs(path: str) -> None:
    sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", path)


def bind(source: str, target: Path, *, readonly: bool = True, file: bool = False) -> None:
    if file:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    else:
        target.mkdir(parents=True, exist_ok=True)
    sh("mount", "--bind", source, str(target))
    if readonly:
        sh("mount", "-o", "remount,bind,ro", str(target))


def setup(spec: dict[str, Any]) -> None:
    sh("ip", "link", "set", "lo", "up")
    mount_tmpfs("/run")
    bind(spec["work"], SBX, readonly=False)
    bind(str(HERE), TOOLS)  # the sandbox may read the checkout, never change it
    bind(spec["webgui"], WEBGUI)
    bind(spec["python"], PYTHON, file=True)
    for path in ["/boot", *RAM]:
        if not Path(path).is_dir():
            raise SystemExit(f"sandbox: {path} is missing on this host")
        mount_tmpfs(path)
    upper, workdir = Path("/run/overlay/etc-upper"), Path("/run/overlay/etc-work")
    upper.mkdir(parents=True)
    workdir.mkdir(parents=True)
    sh("mount", "-t", "overlay", "overlay", "-o", f"lowerdir=/etc,upperdir={upper},workdir={workdir}", "/etc")
    Path("/etc/cron.d").mkdir(exist_ok=True)
    sh("mount", "--bind", "/bin/bash", os.path.realpath("/bin/sh"))  # Unraid's /bin/sh is bash
    set_unraid_version(spec["unraid_version"])
    flash_skeleton()
    ram_skeleton(spec)


def set_unraid_version(version: str) -> None:
    Path("/etc/unraid-version").write_text(f'version="{version}"\n')


def flash_skeleton() -> None:
    """What a fresh Unraid flash drive has that matters here: the stock mover's schedule, and the OS's
    own .plg (registered at boot: with no plugin registered at all, update_cron's unmatched glob would
    read every plugin's .cron, ours before it is registered, which no real server shows)."""
    for sub in ("plugins/dynamix", "shares"):
        Path("/boot/config", sub).mkdir(parents=True, exist_ok=True)
    Path("/boot/config/plugins/unRAIDServer.plg").write_text(
        "<?xml version='1.0' standalone='yes'?>\n<PLUGIN name=\"unRAIDServer\" author=\"LimeTech\"/>\n")
    Path("/boot/config/share.cfg").write_text('shareMoverSchedule="40 3 * * *"\nshareUser="e"\n')
    Path("/boot/config/plugins/dynamix/mover.cron").write_text(
        "# Generated mover schedule:\n40 3 * * * /usr/local/sbin/mover start |& logger -t move\n\n")


def ram_skeleton(spec: dict[str, Any]) -> None:
    """What Unraid's root filesystem has at boot before plugins: the webGui, its tools, the stand-ins."""
    emhttp_overlay()
    sbin = Path("/usr/local/sbin")
    sbin.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(WEBGUI / "sbin/update_cron", sbin / "update_cron")  # exactly as shipped
    (sbin / "update_cron").chmod(0o755)
    php_ini = Path("/run/overlay/php")
    php_ini.mkdir(parents=True, exist_ok=True)
    (php_ini / "99-unraid.ini").write_text("short_open_tag=On\n")
    manager = "/usr/local/emhttp/plugins/dynamix.plugin.manager/scripts/plugin"
    # /usr/local/sbin/plugin links to the manager, whose first line runs php: the same under php-cli here.
    script(sbin / "plugin", f'PHP_INI_SCAN_DIR=/etc/php/8.2/cli/conf.d:{php_ini} exec php -q {manager} "$@"\n')
    for tool in ("installpkg", "upgradepkg", "removepkg"):
        script(sbin / tool, f'exec {PYTHON} -I {TOOLS}/pkgtools.py {tool} "$@"\n')
    # Stand-in for dcron's crontab: `-c DIR -` installs stdin as DIR/root (whole, through a new file and a
    # rename, so a reader never sees half of it), `-d` deletes it.
    script(sbin / "crontab", """
dir=/var/spool/cron/crontabs
while [ $# -gt 0 ]; do
  case "$1" in
    -c) dir=$2; shift 2 ;;
    -d) rm -f "$dir/root"; exit 0 ;;
    -) cat >"$dir/root.new" && mv -f "$dir/root.new" "$dir/root"; exit ;;
    *) shift ;;
  esac
done
""")
    # Stand-in for syslog's logger: one line per message in /var/log/syslog.
    script(sbin / "logger", """
tag=logger
while [ $# -gt 0 ]; do case "$1" in -t) tag=$2; shift 2 ;; --) shift; break ;; -*) shift ;; *) break ;; esac; done
if [ $# -gt 0 ]; then echo "$tag: $*" >>/var/log/syslog; else sed "s/^/$tag: /" >>/var/log/syslog; fi
""")
    for sub in ("/var/log/plugins", "/tmp/plugins", "/var/local/emhttp", "/var/lib/pkgtools/packages",
                "/usr/local/bin", "/usr/local/lib"):
        Path(sub).mkdir(parents=True, exist_ok=True)
    Path("/var/log/plugins/unRAIDServer.plg").symlink_to("/boot/config/plugins/unRAIDServer.plg")
    # Slackware's aaa_base owns /usr/local/{bin,lib,sbin}: removing a package never removes them.
    Path("/var/lib/pkgtools/packages/aaa_base-15.0-x86_64-1").write_text(
        "PACKAGE NAME:     aaa_base-15.0-x86_64-1\nFILE LIST:\n./\nusr/\nusr/local/\nusr/local/bin/\n"
        "usr/local/lib/\nusr/local/sbin/\n")
    version = Path("/etc/unraid-version").read_text().split('"')[1]
    Path("/var/local/emhttp/var.ini").write_text(f'version="{version}"\nfsState="Stopped"\nmdResyncPos="0"\n')
    run("/bin/sh", "-c", "/usr/local/sbin/update_cron")  # as rc.local does (notify cron-init), before plugins


def emhttp_overlay() -> None:
    root = Path("/run/overlay/emhttp")
    shutil.rmtree(root, ignore_errors=True)
    (root / "upper").mkdir(parents=True)
    (root / "work").mkdir()
    Path("/usr/local/emhttp").mkdir(parents=True)
    sh("mount", "-t", "overlay", "overlay", "-o",
       f"lowerdir={WEBGUI}/emhttp,upperdir={root}/upper,workdir={root}/work", "/usr/local/emhttp")
    for name, target in EMHTTP_LINKS.items():
        link = Path("/usr/local/emhttp") / name
        link.unlink(missing_ok=True)
        link.symlink_to(target)


def script(path: Path, body: str) -> None:
    path.write_text("#!/bin/bash\n" + body.lstrip("\n"))
    path.chmod(0o755)


def reboot(spec: dict[str, Any]) -> None:
    """Everything but /boot is lost: fresh RAM paths, then the OS's own files and the stand-ins again."""
    sh("umount", "-l", "/usr/local/emhttp")
    for path in RAM:
        sh("umount", "-l", path)
        mount_tmpfs(path)
    Path(CRONTAB).unlink(missing_ok=True)
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
                if os.path.join(dirpath, name) not in SKIP:
                    seen[os.path.join(dirpath, name)] = describe(os.path.join(dirpath, name))
    if os.path.lexists(PLUGDIR):
        seen[PLUGDIR] = "dir"
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


def run(*args: str, env: Optional[dict[str, str]] = None, stdin: Optional[str] = None,
        timeout: int = 180) -> dict[str, Any]:
    base = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    start = time.monotonic()
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, env={**base, **(env or {})},
                              input=stdin, timeout=timeout, check=False)
    except FileNotFoundError as exc:  # e.g. the CLI link an install should have made: a result, not a crash
        return {"rc": 127, "out": str(exc), "seconds": round(time.monotonic() - start, 2)}
    return {"rc": proc.returncode, "out": proc.stdout + proc.stderr,
            "seconds": round(time.monotonic() - start, 2)}


def read(path: str) -> Optional[str]:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def wait_for_schedule(limit: float) -> float:
    """Seconds until our job shows up in the crontab (loaded once the manager has registered us), or -1."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if NAME in (read(CRONTAB) or ""):
            return round(time.monotonic() - start, 2)
        time.sleep(0.05)
    return -1.0


def installed_state(limit: float) -> dict[str, Any]:
    flash = Path(FLASH)
    registered = f"/var/log/plugins/{NAME}.plg"
    return {
        "schedule_loaded_after": wait_for_schedule(limit),
        "registered": os.path.islink(registered) and os.readlink(registered) == f"/boot/config/plugins/{NAME}.plg",
        "registered_version": run("plugin", "version", registered)["out"].strip(),
        "flash_files": sorted(p.name for p in flash.iterdir()) if flash.is_dir() else [],
        "packages": sorted(p.name for p in Path("/var/lib/pkgtools/packages").glob(f"{NAME}-*")),
        "settings_mode": oct(os.stat(flash / "settings.yaml").st_mode & 0o777)
        if (flash / "settings.yaml").exists() else None,
        "settings": read(str(flash / "settings.yaml")),
        "cron_file": read(str(flash / f"{NAME}.cron")),
        "crontab": read(CRONTAB),
        "cli_link": os.readlink(f"/usr/local/sbin/{NAME}") if os.path.islink(f"/usr/local/sbin/{NAME}") else None,
        "help": run(NAME, "--help"),
        "version": run(NAME, "--version")["out"].strip(),
        "status_version": _status_version(),
        "pages": sorted(p.name for p in Path(PLUGDIR).glob("*.page")),
    }


def _status_version() -> Optional[str]:
    out = run(NAME, "--json", "status")["out"]
    try:
        return json.loads(out).get("plugin_version")
    except ValueError:
        return f"not JSON: {out[-300:]}"


# --- the life cycle --------------------------------------------------------------------------------


class Server:
    """Serves SBX/FOLDER on 127.0.0.1:PORT while up (stopped: the network is down)."""

    def __init__(self, port: int, folder: str = "www") -> None:
        handler = partial(_QuietHandler, directory=str(SBX / folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def publish(version: str) -> None:
    """Make VERSION's .plg the one at pluginURL (its package is already under www/VERSION/)."""
    shutil.copyfile(SBX / "www" / version / f"{NAME}.plg", SBX / "www" / f"{NAME}.plg")


def package(version: str) -> str:
    return f"{NAME}-{version}-x86_64-1.txz"


def forget_manager_bookkeeping() -> None:
    """What the manager itself keeps after a refused or failed install (not the plugin's doing)."""
    for leftover in ("/tmp/plugins", "/boot/config/plugins-error"):
        shutil.rmtree(leftover, ignore_errors=True)
    Path("/tmp/plugins").mkdir()


def failed(step: dict[str, Any], pristine: dict[str, str]) -> dict[str, Any]:
    return {**step, "after": diff(pristine, snapshot()), "syslog": read("/var/log/syslog") or ""}


class HiddenPython:
    """The server's python3 answers like an interpreter too old to use (as Unraid without NerdTools &c.)."""

    def __enter__(self) -> None:
        fake = Path("/run/sbx-fake-python3")
        fake.write_text("#!/bin/sh\nexit 1\n")
        fake.chmod(0o755)
        self.target = os.path.realpath("/usr/bin/python3")
        sh("mount", "--bind", str(fake), self.target)

    def __exit__(self, *exc: object) -> None:
        sh("umount", self.target)


def cycle(spec: dict[str, Any]) -> dict[str, Any]:
    old, new = spec["versions"]
    url = f"http://127.0.0.1:{spec['port']}/{NAME}.plg"
    limit = spec["wait_seconds"]
    results: dict[str, Any] = {}
    server = Server(spec["port"])
    publish(old)
    pristine = snapshot()

    set_unraid_version("6.11.5")
    refused = run("plugin", "install", url)
    set_unraid_version(spec["unraid_version"])
    results["too_old"] = failed(refused, pristine)
    forget_manager_bookkeeping()

    with HiddenPython():  # and the pinned Python's address is a dead port: no network for it
        results["no_python"] = failed(run("plugin", "install", url), pristine)
    forget_manager_bookkeeping()
    results["late_failure"] = failed(run("plugin", "install", url, env={"SBX_FAIL": package(old)}), pristine)
    forget_manager_bookkeeping()

    results["install"] = {**run("plugin", "install", url), **installed_state(limit)}
    results["schedule_change"] = change_schedule()
    results["reinstall_refused"] = run("plugin", "install", url)
    results["reinstall"] = {**run("plugin", "install", url, "forced"), **installed_state(limit)}

    server.stop()
    reboot(spec)
    results["boot_offline"] = {**run("plugin", "install", f"/boot/config/plugins/{NAME}.plg"),
                               **installed_state(limit)}

    server = Server(spec["port"])
    publish(new)
    results["check"] = run("plugin", "check", f"{NAME}.plg")
    results["failed_update"] = {**run("plugin", "update", f"{NAME}.plg", env={"SBX_FAIL": package(new)}),
                                **installed_state(limit)}
    results["check_again"] = run("plugin", "check", f"{NAME}.plg")
    results["update"] = {**run("plugin", "update", f"{NAME}.plg"), **installed_state(limit)}
    results["remove"] = run("plugin", "remove", f"{NAME}.plg")
    results["after_remove"] = diff(pristine, snapshot())
    results["after_remove_crontab"] = read(CRONTAB)
    server.stop()
    results.update(bundled_python(spec, url, pristine))
    return results


def bundled_python(spec: dict[str, Any], url: str, pristine: dict[str, str]) -> dict[str, Any]:
    """A server without python3: the install fetches the pinned Python (a stand-in tarball that runs the
    host's interpreter), keeps it on the flash drive, and the next boot uses that copy without network."""
    results: dict[str, Any] = {}
    with HiddenPython():
        server, python_server = Server(spec["port"]), Server(spec["python_port"], "python-www")
        results["bundled_install"] = {**run("plugin", "install", url), **installed_state(spec["wait_seconds"]),
                                      "python": _bundled_python()}
        python_server.stop()
        server.stop()
        reboot(spec)
        results["bundled_boot"] = {**run("plugin", "install", f"/boot/config/plugins/{NAME}.plg"),
                                   **installed_state(spec["wait_seconds"]), "python": _bundled_python()}
        results["bundled_remove"] = run("plugin", "remove", f"{NAME}.plg")
    results["after_bundled_remove"] = diff(pristine, snapshot())
    return results


def _bundled_python() -> dict[str, Any]:
    return {"flash": sorted(p.name for p in Path(FLASH, "python").glob("*")),
            "runtime": os.path.isfile(f"/usr/local/{NAME}/python/bin/python3")}


def change_schedule() -> dict[str, Any]:
    """What the Settings page does on Apply: `config set --merge` with the form's JSON, then `schedule
    apply`; the crontab is read at once, without waiting."""
    saved = run(NAME, "--json", "config", "set", "--merge",
                stdin=json.dumps({"schedule": {"mode": "interval", "interval_hours": 4}}))
    applied = run(NAME, "--json", "schedule", "apply")
    return {"saved": saved, "applied": applied, "crontab": read(CRONTAB),
            "settings": read(f"{FLASH}/settings.yaml")}


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    setup(spec)
    try:
        results = cycle(spec)
    except Exception as exc:  # report instead of losing everything
        import traceback

        results = {"error": f"{exc.__class__.__name__}: {exc}\n{traceback.format_exc()}"}
    (SBX / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
