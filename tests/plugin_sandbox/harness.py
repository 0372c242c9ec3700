"""Host side of the plugin tests: build the package with build.sh into a temporary dir, and run the life
cycle in a private mount namespace (driver.py) against one release of Unraid's own webGui.

Builds and cycles are made once per test session and shared by pytest-xdist workers (`shared`), so a
release's cycle runs once however its tests are spread.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import pytest

from realtime import seconds

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NAME = "plexcache-r"
WHEEL_CACHE = REPO / "build" / "wheels"
PORT = 8765  # the sandbox has its own network namespace: the same port for every cycle
PYTHON_PORT = 8766  # where the pinned Python is served, when it is
CYCLE_TIMEOUT = 300   # a base figure (realtime.seconds)
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


class Build:
    def __init__(self, dist: Path, version: str) -> None:
        self.dist = dist
        self.version = version
        self.package = dist / f"{NAME}-{version}-x86_64-1.txz"
        self.plg = dist / f"{NAME}.plg"


def build(out: Path, *, version: Optional[str] = None, base_url: Optional[str] = None) -> Build:
    """Run build.sh into OUT (never touching the repo's plexcache-r.plg when base_url is given). With a
    base_url the .plg also takes its pinned Python from the sandbox (`fake_python`), on PYTHON_PORT."""
    env = _build_env(out)
    if version:
        env["VERSION"] = version
    script = REPO / "build.sh"
    if base_url:
        digest = hashlib.sha256(fake_python(out / "python-www").read_bytes()).hexdigest()
        env.update(PLG_BASE_URL=base_url, PLG_PYTHON_URL=f"http://127.0.0.1:{PYTHON_PORT}/python.tar.gz",
                   PLG_PYTHON_SHA256=digest)  # the repo's .plg is left alone
    else:
        script = _copy_of_tree(out / "tree") / "build.sh"  # a plain build rewrites the .plg it finds
    _run_build(script, env)
    return Build(out / "dist", version or built_version(out / "dist"))


def fake_python(folder: Path) -> Path:
    """A stand-in for the pinned relocatable CPython tarball: python/bin/python3 runs the interpreter the
    sandbox keeps visible for its stand-ins (driver.PYTHON), even while the server's python3 is hidden.
    The same bytes every time, so its SHA256 can go into the .plg."""
    script = b'#!/bin/sh\nexec /run/sbx-python/python3 "$@"\n'
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / "python.tar.gz"
    with gzip.GzipFile(tarball, "wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as archive:
        for name, data in (("python/", None), ("python/bin/", None), ("python/bin/python3", script)):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mode, info.mtime = 0o755, 0
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return tarball


def rebuild(first: Build, out: Path) -> Build:
    """Build the same tree copy as `first` (a plain build) again into OUT."""
    _run_build(first.dist.parent / "tree" / "build.sh", _build_env(out))
    return Build(out / "dist", first.version)


def _build_env(out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}  # PyPI on a first run
    env.update(DIST_DIR=str(out / "dist"), BUILD_DIR=str(out / "build"), WHEEL_CACHE=str(WHEEL_CACHE),
               PYTHON=sys.executable)
    return env


def _run_build(script: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise AssertionError(f"build.sh failed:\n{proc.stdout}\n{proc.stderr}")


def _copy_of_tree(tree: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    tree.mkdir(parents=True)
    for item in ("build.sh", f"{NAME}.plg", "plugin", "source"):
        if (REPO / item).is_dir():
            shutil.copytree(REPO / item, tree / item, ignore=skip)
        else:
            shutil.copy2(REPO / item, tree / item)
    return tree


def built_version(dist: Path) -> str:
    return ET.parse(dist / f"{NAME}.plg").getroot().get("version")


def shared(factory: pytest.TempPathFactory, key: str, make: Callable[[Path], Any]) -> Any:
    """make(DIR) once per test session, whichever xdist worker asks first; its JSON result for everyone."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's dir, above each worker's own
    folder = base / f"shared-{key}"
    folder.mkdir(exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait here while the first one makes it
        done = folder / "result.json"
        if not done.exists():
            result = make(folder)
            done.write_text(json.dumps(result))
        return json.loads(done.read_text())


def sandbox_unavailable() -> Optional[str]:
    """Why the namespace cycle cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (a private mount namespace with tmpfs and overlay mounts)"
    for tool in ("unshare", "mount", "umount", "ip", "xz", "wget", "php"):
        if not shutil.which(tool):
            return f"needs {tool}"
    probe = subprocess.run(["php", "-r", "exit(function_exists('simplexml_load_file') ? 0 : 1);"], check=False)
    if probe.returncode:
        return "needs php's SimpleXML (Debian: php-xml), which Unraid's plugin manager reads the .plg with"
    probe = subprocess.run(["unshare", "-m", "-n", "--propagation", "private", "true"], capture_output=True,
                           check=False)
    if probe.returncode:
        return f"unshare -m refused: {probe.stderr.decode(errors='replace').strip()}"
    return None


def run_cycle(work: Path, old: Build, new: Build, webgui: Path, unraid_version: str) -> dict[str, Any]:
    """Serve both builds and play the life cycle in private mount and network namespaces; return the
    driver's results."""
    www = work / "www"
    shutil.copytree(new.dist.parent / "python-www", work / "python-www")
    for b in (old, new):
        (www / b.version).mkdir(parents=True, exist_ok=True)
        shutil.copy2(b.package, www / b.version / b.package.name)
        shutil.copy2(b.plg, www / b.version / b.plg.name)
    spec = {"work": str(work), "port": PORT, "python_port": PYTHON_PORT, "versions": [old.version, new.version],
            # the stand-ins need only the standard library: the base interpreter, which (unlike a venv
            # under /tmp) stays reachable inside the sandbox
            "python": os.path.realpath(sys.executable), "webgui": str(webgui), "unraid_version": unraid_version,
            "wait_seconds": seconds(20)}
    (work / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run(["unshare", "-m", "-n", "--propagation", "private", sys.executable,
                           str(HERE / "driver.py"), str(work / "spec.json")],
                          capture_output=True, text=True, timeout=seconds(CYCLE_TIMEOUT), check=False)
    results_file = work / "results.json"
    if proc.returncode or not results_file.exists():
        raise AssertionError(f"sandbox driver failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(results_file.read_text())
