#!/usr/bin/env python3
"""Stand-in for Unraid's plugin manager (`/usr/local/sbin/plugin`), used when no webGui checkout is given.

It follows the behaviour described in shared/reference/unraid.md §1.2 (read from the real
`dynamix.plugin.manager/scripts/plugin`): version gates, the reinstall/strcmp rules, FILE elements in
document order with Method/Min/Max, "an existing file is never overwritten unless its hash differs",
LOCAL/INLINE/URL sources, SHA256/MD5 checks, Mode, Run (with a Name, with LOCAL, or an INLINE script
written to /tmp/inlineN-NAME.sh), registration as /var/log/plugins/NAME.plg -> /boot/config/plugins/NAME.plg,
and on remove the move to plugins-removed followed by update_cron.

Usage: plugin install FILE|URL [forced] | check NAME.plg | update NAME.plg | remove NAME.plg | ATTR FILE
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

BOOT = Path("/boot/config/plugins")
PLUGINS = Path("/var/log/plugins")
TMP = Path("/tmp/plugins")


class Failure(Exception):
    pass


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def unraid_version() -> str:
    text = Path("/etc/unraid-version").read_text()
    match = re.search(r'version="([^"]+)"', text)
    return match.group(1) if match else "0"


def version_key(version: str) -> list[int]:
    # Good enough for PHP's version_compare on plain dotted release numbers.
    return [int(n) for n in re.findall(r"\d+", version.split("-")[0])]


def load(plugin_file: Path) -> ET.Element:
    try:
        return ET.parse(plugin_file).getroot()
    except (ET.ParseError, OSError) as exc:
        raise Failure(f"XML file doesn't exist or xml parse error ({exc})") from None


def download(url: str, target: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            data = response.read()
    except OSError as exc:
        raise Failure(f"{Path(url).name} download failure: {exc}") from None
    if not data:
        raise Failure(f"{Path(url).name} download failure: zero-length file")
    target.write_bytes(data)


def file_hash(path: Path, algo: str) -> str:
    return hashlib.new(algo, path.read_bytes()).hexdigest()


def run(command: str) -> int:
    proc = subprocess.run(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    write(proc.stdout)
    return proc.returncode


def process_files(root: ET.Element, method: str, plugin_file: Path) -> None:
    for index, element in enumerate(root.findall("FILE"), start=1):
        methods = element.get("Method")
        if methods is not None:
            if method not in methods.split(" "):
                continue
        elif method != "install":
            continue
        name = element.get("Name", "")
        if element.get("Min") and version_key(unraid_version()) < version_key(element.get("Min")):
            write(f"plugin: skipping: {Path(name).name} - Unraid version too low\n")
            continue
        if element.get("Max") and version_key(unraid_version()) > version_key(element.get("Max")):
            write(f"plugin: skipping: {Path(name).name} - Unraid version too high\n")
            continue
        if name:
            create_file(element, Path(name))
        command = element.get("Run")
        if not command:
            continue
        local, inline = element.findtext("LOCAL"), element.findtext("INLINE")
        if name:
            rc = run(f"{command} {name}")
        elif local:
            rc = run(f"{command} {local}")
        elif inline is not None:
            script = Path(f"/tmp/inline{index}-{plugin_file.stem}.sh")
            script.write_text(inline)
            rc = run(f"{command} '{script}'")
            script.unlink()
        else:
            rc = 0
        if rc != 0:
            raise Failure(f"run failed: '{command}' returned {rc}")


def create_file(element: ET.Element, target: Path) -> None:
    target.parent.mkdir(mode=0o770, parents=True, exist_ok=True)
    sha256, md5 = element.findtext("SHA256"), element.findtext("MD5")
    stale = target.exists() and (
        (sha256 and file_hash(target, "sha256") != sha256.strip())
        or (not sha256 and md5 and file_hash(target, "md5") != md5.strip()))
    if stale:
        target.unlink()
    if target.exists():
        pass  # never overwritten
    elif element.findtext("LOCAL"):
        shutil.copyfile(element.findtext("LOCAL"), target)
    elif element.find("INLINE") is not None:
        content = (element.findtext("INLINE") or "").strip() + "\n"
        target.write_text(content)
    elif element.findtext("URL"):
        download(element.findtext("URL").strip(), target)
        if sha256 and file_hash(target, "sha256") != sha256.strip():
            target.unlink()
            raise Failure(f"bad file SHA256: {target}")
        if not sha256 and md5 and file_hash(target, "md5") != md5.strip():
            target.unlink()
            raise Failure(f"bad file MD5: {target}")
    if element.get("Mode"):
        os.chmod(target, int(element.get("Mode"), 8))


def check_gates(root: ET.Element) -> None:
    have = version_key(unraid_version())
    if root.get("min") and have < version_key(root.get("min")):
        raise Failure(f"installed Unraid version is too low, require at least version {root.get('min')}")
    top = root.get("max") or root.get("Unraid")
    if top and have > version_key(top):
        raise Failure(f"installed Unraid version is too high, require at most version {top}")


def installed(link: Path) -> Optional[Path]:
    return Path(os.readlink(link)) if link.is_symlink() else None


def register(plugin_file: Path, plugin: str) -> None:
    target = BOOT / plugin
    if target != plugin_file:
        shutil.copyfile(plugin_file, target)
    link = PLUGINS / plugin
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target)


def install(arg: str, forced: bool) -> None:
    plugin = Path(arg).name
    if not plugin.endswith(".plg"):
        raise Failure(f"{plugin} is not a plg file")
    write(f"plugin: installing: {plugin}\n")
    if re.match(r"^https?://", arg):
        plugin_file = TMP / plugin
        download(arg, plugin_file)
    else:
        plugin_file = Path(os.path.realpath(arg))
    root = load(plugin_file)
    try:
        check_gates(root)
    except Failure:
        if plugin_file.parent == BOOT:
            move(plugin_file, Path(f"{BOOT}-error"))
        raise
    current = installed(PLUGINS / plugin)
    if current is not None:
        if current == plugin_file:
            raise Failure("not re-installing same plugin")
        new, old = root.get("version"), load(current).get("version")
        if not forced and new < old:
            raise Failure("not installing older version")
        if not forced and new == old:
            raise Failure("not reinstalling same version")
    try:
        process_files(root, "install", plugin_file)
    except Failure:
        if plugin_file.parent == BOOT:
            move(plugin_file, Path(f"{BOOT}-error"))
        raise
    register(plugin_file, plugin)
    write(f"plugin: {plugin} installed\n")


def check(plugin: str) -> None:
    current = installed(PLUGINS / plugin)
    if current is None:
        raise Failure("not installed")
    download(load(current).get("pluginURL"), TMP / plugin)
    write(f"{load(TMP / plugin).get('version')}\n")


def update(plugin: str) -> None:
    current = installed(PLUGINS / plugin)
    if current is None:
        raise Failure(f"{plugin} not installed")
    new_file = TMP / plugin
    if not new_file.exists():
        raise Failure(f"{new_file} does not exist, check for updates first")
    root = load(new_file)
    check_gates(root)
    if root.get("version") == load(current).get("version"):
        raise Failure("Not reinstalling same version")
    process_files(root, "install", new_file)
    register(new_file, plugin)
    write(f"plugin: {plugin} updated\n")


def move(path: Path, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.replace(path, directory / path.name)


def remove(plugin: str) -> None:
    link = PLUGINS / plugin
    write(f"plugin: removing: {plugin}\n")
    current = installed(link)
    if current is not None:
        link.unlink()
        (TMP / plugin).unlink(missing_ok=True)
        try:
            process_files(load(current), "remove", current)
        except Failure:
            if current.is_file():
                link.symlink_to(current)
            raise
        move(current, Path(f"{BOOT}-removed"))
    write(f"plugin: {plugin} removed\n")
    run("/usr/local/sbin/update_cron")


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        write(__doc__ or "")
        return 1
    method, arg = argv[1], argv[2]
    TMP.mkdir(parents=True, exist_ok=True)
    try:
        if method == "install":
            install(arg, forced=argv[3:4] == ["forced"])
        elif method == "check":
            check(arg)
        elif method == "update":
            update(arg)
        elif method == "remove":
            remove(arg)
        else:
            root = load(Path(arg))
            value = root.findtext("CHANGES") if method == "changes" else root.get(method)
            if value is None:
                raise Failure(f"{method} attribute not present")
            write(value.strip() + "\n")
    except Failure as exc:
        write(f"plugin: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
