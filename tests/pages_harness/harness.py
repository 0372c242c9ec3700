"""Sandbox and server for the page tests: the plugin inside one Unraid webGui release, served by `php -S`.

`make_sandbox(root, version)` builds an Unraid-shaped root (unraid_root.py): the release's docroot with the
plugin in plugins/plexcache-r, emhttpd's state files (var.ini carries the csrf_token), a flash drive with
the plugin's settings.yaml whose plexcache-r paths all point into the sandbox, and the CLI under test as
/usr/local/sbin/plexcache-r (the stand-in fake-plexcache-r unless `cli` names the real one).

`Server` runs `php -S` in a private mount namespace where that root sits at /usr/local/emhttp,
/var/local/emhttp and /boot, with Unraid's local_prepend.php as auto_prepend_file, the way php-fpm runs
every request on Unraid. router.php stands in for nginx. php runs in its own process group, which is
killed whole, together with any detached job the pages started; every process the harness starts
carries PCR_HARNESS in its environment so a leak check can find what outlived a test (leaks.py).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from pages_harness import leaks, unraid_root, webgui
from pages_harness.unraid_root import EMHTTP_SRC, UnraidRoot  # noqa: F401  (EMHTTP_SRC: used by the tests)
from realtime import seconds

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FAKE_CLI = HERE / "fake-plexcache-r"
REAL_CLI = REPO / ".venv" / "bin" / "plexcache-r"
SETTINGS = "/boot/config/plugins/plexcache-r/settings.yaml"   # the product's default, inside the namespace
PHP_INI = ["-d", "short_open_tag=On", "-d", "error_reporting=E_ALL", "-d", "display_errors=stderr"]
WORKERS = "6"   # the page polls status while another request waits for the CLI
PHP_ERROR = re.compile(r"PHP (Fatal|Parse|Warning|Notice|Deprecated|Error|Recoverable)|Stack trace")


@dataclass
class Sandbox:
    root: Path
    unraid: UnraidRoot
    config: Path
    token: str
    cli: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    php_errors_seen: int = 0

    @property
    def version(self) -> str:
        return self.unraid.version

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLEXCACHE_CLI", "PLEXCACHE_CONFIG"))}
        env.update(self.extra_env)
        env[leaks.MARKER] = leaks.session_marker()
        return env

    def settings(self) -> dict:
        return yaml.safe_load(self.config.read_text()) or {}

    def path(self, key: str) -> Path:
        return Path(self.settings()["paths"][key])

    def cli_json(self, *args: str, stdin: Optional[str] = None) -> dict:
        out = subprocess.run([str(self.cli), "--config", str(self.config), "--json", *args], env=self.env(),
                             capture_output=True, text=True, timeout=seconds(120), input=stdin)
        return json.loads(out.stdout)

    def php_errors(self) -> list[str]:
        """PHP's own error lines (warnings, notices, fatals) logged by any request so far."""
        log = self.unraid.php_errors
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return [line for line in lines if PHP_ERROR.search(line)]

    def new_php_errors(self) -> list[str]:
        """PHP error lines logged since the last `expect_php_errors` (or since the sandbox was made)."""
        return self.php_errors()[self.php_errors_seen:]

    def expect_php_errors(self, pattern: str) -> list[str]:
        """Take the new PHP error lines as expected: each must match `pattern` (PHP's own words)."""
        new = self.new_php_errors()
        assert all(re.search(pattern, line) for line in new), new
        self.php_errors_seen += len(new)
        return new


def default_settings(root: Path) -> dict:
    """Settings for the stand-in CLI: a stored token (to prove it stays masked) and sandboxed paths."""
    paths = {"state_dir": "state", "volatile_dir": "volatile", "log_dir": "log",
             "exclusion_list": "mover_exclude.txt", "cron_file": "plexcache-r.cron"}
    return {"plex": {"url": "http://127.0.0.1:32400", "token": "sandbox-secret-token",
                     "path_mappings": [{"plex": "/data/tv", "share": "/mnt/user/tv"}]},
            "paths": {k: str(root / v) for k, v in paths.items()}}


def make_sandbox(root: Path, version: Optional[str] = None, cli: Optional[Path] = None,
                 settings: Optional[dict] = None, keep_settings: bool = False) -> Sandbox:
    """Build the Unraid root for `version` (default: the newest stable release) and the plugin's settings."""
    version = version or webgui.NEWEST_STABLE
    token = secrets.token_hex(8).upper()
    cli = cli or FAKE_CLI
    unraid = unraid_root.build(root / "unraid", version, token, cli)
    config = unraid.boot / SETTINGS.removeprefix("/boot/")
    config.parent.mkdir(parents=True, exist_ok=True)
    if not keep_settings:
        config.write_text(yaml.safe_dump(settings if settings is not None else default_settings(root)))
    return Sandbox(root, unraid, config, token, cli)


def namespace_unavailable() -> Optional[str]:
    """Why the sandbox cannot be mounted here, or None."""
    if webgui.missing_reason():
        return webgui.missing_reason()
    for tool in ("unshare", "mount", "php"):
        if not shutil.which(tool):
            return f"needs {tool}"
    for path in ("/usr/local", "/var/local", "/boot", "/var/tmp"):
        if not Path(path).is_dir():
            return f"needs {path} on this machine to mount the sandbox over"
    userns = [] if os.geteuid() == 0 else ["-r"]
    probe = subprocess.run(["unshare", *userns, "-m", "--propagation", "private", "true"], capture_output=True,
                           check=False)
    if probe.returncode:
        return f"needs a private mount namespace (unshare -m): {probe.stderr.decode(errors='replace').strip()}"
    return None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`php -S` in the sandbox's mount namespace, Unraid's local_prepend.php before every PHP request.

    prepend=False serves the same tree without it (the endpoint must then check the token itself)."""

    def __init__(self, box: Sandbox, prepend: bool = True, port: Optional[int] = None) -> None:
        self.box = box
        self.prepend = prepend
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None
        self.log = box.root / "php-server.log"
        self.marker = f"{leaks.session_marker()}-{self.port}"

    def command(self) -> list[str]:
        sb = self.box.unraid
        ini = [*PHP_INI, "-d", "display_errors=Off", "-d", "log_errors=On", "-d", f"error_log={sb.php_errors}",
               "-d", f"session.save_path={sb.base / 'sessions'}"]
        if self.prepend:
            ini += ["-d", f"auto_prepend_file={unraid_root.PREPEND}"]
        userns = [] if os.geteuid() == 0 else ["-r"]
        return ["unshare", *userns, "-m", "--propagation", "private", "sh", str(HERE / "in_namespace.sh"),
                str(sb.base), "php", *ini, "-S", f"127.0.0.1:{self.port}", "-t", "/usr/local/emhttp",
                str(HERE / "router.php")]

    def __enter__(self) -> Server:
        env = self.box.env()
        env.update(PHP_CLI_SERVER_WORKERS=WORKERS, PHP_INI_SCAN_DIR=str(self.box.unraid.base / "php"))
        env[leaks.SERVER_MARKER] = self.marker
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)   # its own group: killed whole
        deadline = time.monotonic() + seconds(20)
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                urllib.request.urlopen(self.url + "/plugins/plexcache-r/css/plexcache-r.css", timeout=2).read()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"php -S did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is None:
            return
        leaks.kill_group(self.proc.pid)
        self.proc.wait(timeout=seconds(10))
        self.proc = None
        leaks.kill_survivors(self.marker)   # CLI calls under `timeout` and detached jobs have groups of their own

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=seconds(60)) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()


def main() -> None:
    """`PYTHONPATH=tests python -m pages_harness.harness DIR [PORT] [VERSION]`: serve the pages by hand."""
    import sys

    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/plexcache-r-pages")
    if root.exists() and any(root.iterdir()):
        raise SystemExit(f"{root} is not empty: give a new folder for the sandbox")
    root.mkdir(parents=True, exist_ok=True)
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8088
    box = make_sandbox(root, sys.argv[3] if len(sys.argv) > 3 else None)
    with Server(box, port=port) as server:
        print(f"{server.url}/Settings/PlexCacheR  (Unraid {box.version}; Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
