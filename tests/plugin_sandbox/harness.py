"""Host side of the plugin tests: build the package with build.sh into a temporary dir, and run the
install/reinstall/boot/update/remove cycle in a private mount namespace (driver.py).

Set UNRAID_WEBGUI_DIR to a checkout (or export) of unraid/webgui to drive Unraid's own plugin manager
under php-cli (needs php's SimpleXML: Debian package php-xml); otherwise plugin_manager.py stands in.
UNRAID_VERSION (default 7.2.3) is what /etc/unraid-version says inside the sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NAME = "plexcache-r"
WHEEL_CACHE = REPO / "build" / "wheels"
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


class Build:
    def __init__(self, dist: Path, version: str) -> None:
        self.dist = dist
        self.version = version
        self.package = dist / f"{NAME}-{version}-x86_64-1.txz"
        self.plg = dist / f"{NAME}.plg"


def build(out: Path, *, version: Optional[str] = None, base_url: Optional[str] = None) -> Build:
    """Run build.sh into OUT (never touching the repo's plexcache-r.plg when base_url is given)."""
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}  # PyPI on a first run
    env.update(DIST_DIR=str(out / "dist"), BUILD_DIR=str(out / "build"), WHEEL_CACHE=str(WHEEL_CACHE),
               PYTHON=sys.executable)
    if version:
        env["VERSION"] = version
    script = REPO / "build.sh"
    if base_url:
        env["PLG_BASE_URL"] = base_url  # build.sh then leaves the repo's .plg alone
    else:
        script = _copy_of_tree(out / "tree") / "build.sh"  # a plain build rewrites the .plg it finds
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise AssertionError(f"build.sh failed:\n{proc.stdout}\n{proc.stderr}")
    return Build(out / "dist", version or built_version(out / "dist"))


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


def sandbox_unavailable() -> Optional[str]:
    """Why the namespace cycle cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (a private mount namespace with tmpfs and overlay mounts)"
    for tool in ("unshare", "mount", "umount", "xz", "wget"):
        if not shutil.which(tool):
            return f"needs {tool}"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True,
                           check=False)
    if probe.returncode:
        return f"unshare -m refused: {probe.stderr.decode(errors='replace').strip()}"
    webgui = os.environ.get("UNRAID_WEBGUI_DIR")
    if webgui and not (Path(webgui) / "emhttp/plugins/dynamix.plugin.manager/scripts/plugin").exists():
        return f"UNRAID_WEBGUI_DIR={webgui} has no emhttp/plugins/dynamix.plugin.manager/scripts/plugin"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cycle(work: Path, old: Build, new: Build, port: int) -> dict[str, Any]:
    """Serve both builds and play the life cycle in a private mount namespace; return driver's results."""
    www = work / "www"
    for b in (old, new):
        (www / b.version).mkdir(parents=True, exist_ok=True)
        shutil.copy2(b.package, www / b.version / b.package.name)
        shutil.copy2(b.plg, www / b.version / b.plg.name)
    spec = {"work": str(work), "port": port, "versions": [old.version, new.version],
            # the stand-ins need only the standard library: the base interpreter, which (unlike a venv
            # under /tmp) stays reachable inside the sandbox
            "python": os.path.realpath(sys.executable), "webgui": os.environ.get("UNRAID_WEBGUI_DIR") or None,
            "unraid_version": os.environ.get("UNRAID_VERSION", "7.2.3")}
    (work / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                           str(HERE / "driver.py"), str(work / "spec.json")],
                          capture_output=True, text=True, timeout=600, check=False)
    results_file = work / "results.json"
    if proc.returncode or not results_file.exists():
        raise AssertionError(f"sandbox driver failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(results_file.read_text())


def rebuild(first: Build, out: Path) -> Build:
    """Build the same tree copy as `first` (a plain build) again into OUT."""
    tree = first.dist.parent / "tree"
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env.update(DIST_DIR=str(out / "dist"), BUILD_DIR=str(out / "build"), WHEEL_CACHE=str(WHEEL_CACHE),
               PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(tree / "build.sh")], env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise AssertionError(f"build.sh failed:\n{proc.stdout}\n{proc.stderr}")
    return Build(out / "dist", first.version)
