"""Sandbox and server for the page tests: a docroot, var.ini, settings, and `php -S` on loopback.

The sandbox mirrors what Unraid gives the plugin: DOCROOT/plugins/plexcache-r is the source tree,
EMHTTP/var.ini carries the csrf_token, and the settings file points every plexcache-r path into the
sandbox. The CLI is the stand-in (fake-plexcache-r) unless `cli` names the real one.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EMHTTP_SRC = REPO / "source" / "emhttp"
FAKE_CLI = HERE / "fake-plexcache-r"
REAL_CLI = REPO / ".venv" / "bin" / "plexcache-r"
PHP_INI = ["-d", "short_open_tag=On", "-d", "display_errors=stderr", "-d", "error_reporting=E_ALL"]


@dataclass
class Sandbox:
    root: Path
    docroot: Path
    emhttp: Path
    config: Path
    token: str
    cli: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"PCR_DOCROOT": str(self.docroot), "PCR_EMHTTP_STATE": str(self.emhttp),
                    "PLEXCACHE_CLI": str(self.cli), "PLEXCACHE_CONFIG": str(self.config)}, **self.extra_env)
        return env

    def settings(self) -> dict:
        return yaml.safe_load(self.config.read_text()) or {}

    def cli_json(self, *args: str) -> dict:
        import json
        out = subprocess.run([str(self.cli), "--config", str(self.config), "--json", *args], env=self.env(),
                             capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)


def default_settings(root: Path) -> dict:
    """Settings for the stand-in CLI: a stored token (to prove it stays masked) and sandboxed paths."""
    paths = {"state_dir": "state", "volatile_dir": "volatile", "log_dir": "log",
             "exclusion_list": "mover_exclude.txt", "cron_file": "plexcache-r.cron"}
    return {"plex": {"url": "http://127.0.0.1:32400", "token": "sandbox-secret-token",
                     "path_mappings": [{"plex": "/data/tv", "share": "/mnt/user/tv"}]},
            "paths": {k: str(root / v) for k, v in paths.items()}}


def make_sandbox(root: Path, cli: Optional[Path] = None, settings: Optional[dict] = None,
                 keep_settings: bool = False) -> Sandbox:
    """Create docroot, var.ini and (unless keep_settings) a settings file whose paths all live under root."""
    docroot, emhttp = root / "docroot", root / "emhttp"
    (docroot / "plugins").mkdir(parents=True, exist_ok=True)
    link = docroot / "plugins" / "plexcache-r"
    if not link.exists():
        link.symlink_to(EMHTTP_SRC)
    emhttp.mkdir(exist_ok=True)
    token = secrets.token_hex(8).upper()
    (emhttp / "var.ini").write_text(f'NAME="Tower"\ncsrf_token="{token}"\n')
    config = root / "settings.yaml"
    if not keep_settings:
        config.write_text(yaml.safe_dump(settings if settings is not None else default_settings(root)))
    return Sandbox(root, docroot, emhttp, config, token, cli or FAKE_CLI)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`php -S 127.0.0.1:PORT router.php` with the sandbox's environment."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None
        self.log = box.root / "php-server.log"

    def __enter__(self) -> Server:
        env = self.box.env()
        env["PHP_CLI_SERVER_WORKERS"] = "8"   # the page polls while a request runs the CLI
        self.proc = subprocess.Popen(["php", *PHP_INI, "-S", f"127.0.0.1:{self.port}", str(HERE / "router.php")],
                                     cwd=str(HERE), env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/harness/shim.css", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"php -S did not start; see {self.log}")

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=5)


def main() -> None:
    """`python tests/pages_harness/harness.py DIR [PORT]`: serve the pages with the stand-in CLI by hand."""
    import sys

    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/plexcache-r-pages")
    root.mkdir(parents=True, exist_ok=True)
    box = make_sandbox(root, keep_settings=(root / "settings.yaml").exists())
    server = Server(box)
    if len(sys.argv) > 2:
        server.port = int(sys.argv[2])
        server.url = f"http://127.0.0.1:{server.port}"
    with server:
        print(f"{server.url}/Settings/PlexCacheR  (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
