#!/usr/bin/env python3
"""Stand-ins for Slackware's installpkg, upgradepkg and removepkg (Debian has none), chosen by argv[0].

Faithful in what the plugin relies on: packages are tar.xz of paths relative to /; the package database is
/var/lib/pkgtools/packages/NAME-VERSION-ARCH-BUILD holding the file list; `install/` is not left in /;
install/doinst.sh runs from / after extraction; upgradepkg finds the installed package by base name,
skips an identical one unless --reinstall, installs the new one and then removes files only the old one
had; removepkg takes the full or the base name and removes the package's files and its now-empty
directories, except directories another installed package lists too. Not reproduced: Slackware's symlink
handling in doinst.sh and files shared between packages.

SBX_FAIL=FILE.txz in the environment makes upgradepkg fail half-way through writing that package's files, as
a full disk would: the files written so far stay, the package database is not touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Optional

DB = Path("/var/lib/pkgtools/packages")


def full_name(package: Path) -> str:
    name = package.name
    for ext in (".txz", ".tgz", ".tbz", ".tlz"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def base_name(full: str) -> str:
    parts = full.split("-")
    return "-".join(parts[:-3]) if len(parts) > 3 else full


def file_list(full: str) -> list[str]:
    lines = (DB / full).read_text().splitlines()
    return lines[lines.index("FILE LIST:") + 1:]


def find_installed(name: str) -> Optional[str]:
    if (DB / name).exists():
        return name
    for entry in sorted(DB.glob("*")):
        if base_name(entry.name) == name:
            return entry.name
    return None


def installpkg(package: Path, *, fail_halfway: bool = False) -> int:
    full = full_name(package)
    DB.mkdir(parents=True, exist_ok=True)
    with tarfile.open(package, "r:xz") as archive:
        members = archive.getmembers()
        names = []
        for member in members:
            rel = member.name[2:] if member.name.startswith("./") else member.name
            if member.isdir():
                rel = rel.rstrip("/") + "/" if rel and rel != "." else "./"
            names.append(rel or "./")
        for count, member in enumerate(members):
            if fail_halfway and count > len(members) // 2:
                print(f"{full}: write error (No space left on device)", file=sys.stderr)
                return 1
            rel = _rel(member).rstrip("/")
            if not rel or rel == "." or rel.startswith("install"):
                continue
            target = Path("/") / rel
            if member.isdir():
                # Existing directories keep their mode and times (the sandbox shares / and /usr with the host).
                if not target.exists():
                    target.mkdir(parents=True)
                    os.chmod(target, member.mode)
                continue
            if target.is_symlink() or target.exists():
                target.unlink()
            archive.extract(member, "/", numeric_owner=True)
        doinst = next((m for m in members if _rel(m) == "install/doinst.sh"), None)
        if doinst is not None:
            with tempfile.TemporaryDirectory() as tmp:
                archive.extractall(tmp, members=[doinst])
                subprocess.run(["/bin/sh", str(Path(tmp) / _rel(doinst)), "-install"], cwd="/", check=False)
    header = [f"PACKAGE NAME:     {full}", f"COMPRESSED PACKAGE SIZE:     {package.stat().st_size}",
              "PACKAGE LOCATION: " + str(package), "FILE LIST:"]
    (DB / full).write_text("\n".join(header + names) + "\n")
    print(f"Installing package {full}")
    return 0


def _rel(member: tarfile.TarInfo) -> str:
    return member.name[2:] if member.name.startswith("./") else member.name


def remove_files(full: str, keep: frozenset = frozenset()) -> None:
    others = {e for entry in DB.glob("*") if entry.name != full and not entry.name.startswith(".")
              for e in file_list(entry.name) if e.endswith("/")}
    entries = [e for e in file_list(full) if e not in keep | others and e != "./" and not e.startswith("install")]
    for entry in entries:
        path = Path("/") / entry
        if not entry.endswith("/") and (path.is_file() or path.is_symlink()):
            path.unlink()
    for entry in sorted((e for e in entries if e.endswith("/")), key=len, reverse=True):
        try:
            (Path("/") / entry).rmdir()
        except OSError:
            pass  # not empty: something else lives there


def removepkg(name: str) -> int:
    full = find_installed(name)
    if full is None:
        print(f"Cannot find package {name}", file=sys.stderr)
        return 1
    remove_files(full)
    (DB / full).unlink()
    print(f"Removing package {full}")
    return 0


def upgradepkg(args: list[str]) -> int:
    flags = {a for a in args if a.startswith("--")}
    packages = [Path(a) for a in args if not a.startswith("--")]
    for package in packages:
        full = full_name(package)
        old = find_installed(base_name(full))
        if old is None:
            if "--install-new" not in flags:
                print(f"{full} is not installed", file=sys.stderr)
                return 1
            if installpkg(package, fail_halfway=package.name == os.environ.get("SBX_FAIL")):
                return 1
            continue
        if old == full and "--reinstall" not in flags:
            print(f"{full} already installed, skipping")
            continue
        old_files = file_list(old)
        if installpkg(package, fail_halfway=package.name == os.environ.get("SBX_FAIL")):
            return 1
        new_files = frozenset(file_list(full))
        if old != full:
            (DB / old).rename(DB / f".{old}.old")
            DB.joinpath(old).write_text("\n".join(["FILE LIST:", *old_files]) + "\n")
            remove_files(old, keep=new_files)
            (DB / old).unlink()
            (DB / f".{old}.old").unlink()
        print(f"Upgraded {old} to {full}")
    return 0


def main(argv: list[str]) -> int:
    # Called as a symlink named after the tool, or as `pkgtools.py TOOL ARGS...`.
    tool, args = os.path.basename(argv[0]), argv[1:]
    if args and args[0] in ("installpkg", "upgradepkg", "removepkg"):
        tool, args = args[0], args[1:]
    if tool == "installpkg":
        return max([installpkg(Path(a)) for a in args if not a.startswith("-")] or [1])
    if tool == "upgradepkg":
        return upgradepkg(args)
    if tool == "removepkg":
        return max([removepkg(a) for a in args if not a.startswith("-")] or [1])
    print(f"pkgtools stand-in: unknown tool {tool}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
