"""The plugin's shell scripts against a stand-in `plexcache-r`: the Mover Tuning hook is bounded, live mode
starts and stops with the array, events return at once, and uninstall keeps what it promises. (The install
script runs in test_plugin_lifecycle.py, through Unraid's own plugin manager.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from plugin_sandbox import harness
from realtime import seconds, wait_for

pytestmark = pytest.mark.plugin

SCRIPTS = harness.REPO / "source" / "emhttp" / "scripts"
EVENTS = harness.REPO / "source" / "emhttp" / "event"

# Stand-in CLI: records its arguments; behaviour is steered by flag files in $STUB_DIR.
STUB = r"""#!/bin/bash
echo "$*" >> "$STUB_DIR/calls"
case "$*" in
  "-q run --before-mover")
    echo $$ > "$STUB_DIR/run.pid"
    [[ -e $STUB_DIR/quick ]] && exit 0
    for _ in $(seq 1 600); do [[ -e $STUB_DIR/stopped && ! -e $STUB_DIR/stubborn ]] && exit 5; sleep 0.1; done ;;
  "-q stop") touch "$STUB_DIR/stopped" ;;
  "query live-enabled") [[ -e $STUB_DIR/live_on ]] ;;
  "query managed-count") cat "$STUB_DIR/count" 2>/dev/null || echo 0 ;;
  "live") trap 'exit 0' TERM; while :; do sleep 0.1; done ;;
esac
"""


@pytest.fixture
def plugin(tmp_path: Path) -> dict[str, str]:
    """A plugin dir with the real scripts and events and a stand-in CLI; returns the environment."""
    plugdir = tmp_path / "plugin"
    shutil.copytree(SCRIPTS, plugdir / "scripts")
    shutil.copytree(EVENTS, plugdir / "event")
    cli = plugdir / "scripts" / harness.NAME
    cli.write_text(STUB)
    cli.chmod(0o755)
    stub = tmp_path / "stub"
    stub.mkdir()
    return {"PATH": os.environ["PATH"], "STUB_DIR": str(stub), "PLEXCACHE_PLUGIN_DIR": str(plugdir),
            "PLEXCACHE_LIVE_PIDFILE": str(tmp_path / "live.pid"), "PLEXCACHE_LOG_DIR": str(tmp_path / "log"),
            "PLEXCACHE_HOOK_GRACE": "1"}


def calls(env: dict[str, str]) -> list[str]:
    path = Path(env["STUB_DIR"]) / "calls"
    return path.read_text().splitlines() if path.exists() else []


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, timeout=seconds(60),
                          check=False)


def script(env: dict[str, str], name: str) -> Path:
    return Path(env["PLEXCACHE_PLUGIN_DIR"]) / "scripts" / name


# --- mover hook ------------------------------------------------------------------------------------


def test_mover_hook_runs_a_cycle(plugin: dict[str, str]) -> None:
    (Path(plugin["STUB_DIR"]) / "quick").touch()
    proc = run(plugin, script(plugin, "mover-hook"), "5")
    assert proc.returncode == 0
    assert calls(plugin) == ["-q run --before-mover"]


def test_mover_hook_asks_a_long_cycle_to_stop_after_its_budget(plugin: dict[str, str]) -> None:
    proc = run(plugin, script(plugin, "mover-hook"), "1")
    assert proc.returncode == 0
    assert calls(plugin) == ["-q run --before-mover", "-q stop"]


def test_mover_hook_never_waits_past_its_grace(plugin: dict[str, str]) -> None:
    (Path(plugin["STUB_DIR"]) / "stubborn").touch()  # a cycle that does not stop
    proc = run(plugin, script(plugin, "mover-hook"), "1")
    assert proc.returncode == 0  # returned (the 60 s subprocess timeout did not fire) and let the mover go
    assert calls(plugin) == ["-q run --before-mover", "-q stop"]
    os.kill(int((Path(plugin["STUB_DIR"]) / "run.pid").read_text()), 15)  # end the stand-in's loop


# --- live mode and the array events -------------------------------------------------------------------


def live_pid(env: dict[str, str]) -> int | None:
    try:
        return int(Path(env["PLEXCACHE_LIVE_PIDFILE"]).read_text())
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    return pid is not None and Path(f"/proc/{pid}").exists() and \
        "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_live_start_is_a_no_op_when_off(plugin: dict[str, str]) -> None:
    proc = run(plugin, script(plugin, "live"), "start")
    assert proc.returncode == 0 and "off" in proc.stdout
    assert live_pid(plugin) is None
    assert run(plugin, script(plugin, "live"), "status").returncode == 1


def test_live_start_status_stop(plugin: dict[str, str]) -> None:
    (Path(plugin["STUB_DIR"]) / "live_on").touch()
    assert run(plugin, script(plugin, "live"), "start").returncode == 0
    pid = live_pid(plugin)
    assert alive(pid)
    assert "running" in run(plugin, script(plugin, "live"), "status").stdout
    assert "already" in run(plugin, script(plugin, "live"), "start").stdout  # one at a time
    assert run(plugin, script(plugin, "live"), "stop").returncode == 0
    assert wait_for(lambda: not alive(pid))
    assert live_pid(plugin) is None


def test_array_events_start_and_stop_everything(plugin: dict[str, str]) -> None:
    (Path(plugin["STUB_DIR"]) / "live_on").touch()
    event = Path(plugin["PLEXCACHE_PLUGIN_DIR"]) / "event"
    assert run(plugin, event / "disks_mounted").returncode == 0
    assert wait_for(lambda: alive(live_pid(plugin)))  # started by the background job, not the event
    assert calls(plugin)[0] == "-q recover"
    pid = live_pid(plugin)
    assert run(plugin, event / "unmounting_disks").returncode == 0
    assert not alive(pid)  # the unmount event waits for it (bounded)
    assert "-q stop" in calls(plugin)


# --- uninstall -------------------------------------------------------------------------------------------

UNINSTALL_DRIVER = r"""
set -u
mount -t tmpfs tmpfs /run
mkdir /run/t && mount --bind "$TESTDIR" /run/t   # the test's files, still reachable once /tmp is hidden
export PLEXCACHE_PLUGIN_DIR=/run/t/plugin STUB_DIR=/run/t/stub
for d in /boot /usr/local /tmp /var/log; do mount -t tmpfs tmpfs $d; done
F=/boot/config/plugins/plexcache-r
mkdir -p $F/state $F/python /boot/config/plugins/ca.mover.tuning /usr/local/sbin /usr/local/plexcache-r/pycache \
  /tmp/plexcache-r /var/log/plexcache-r
echo 'schema: 2' > $F/settings.yaml
echo '{}' > $F/state/registry.json
echo '/mnt/user/mine' > $F/mover_exclude_manual.txt
echo '/mnt/cache/tv/a.mkv' > $F/mover_exclude.txt
echo '0 * * * * x' > $F/plexcache-r.cron
touch $F/plexcache-r-2026.01.01-x86_64-1.txz $F/python/cpython.tar.gz
ln -s "$PLEXCACHE_PLUGIN_DIR/scripts/plexcache-r" /usr/local/sbin/plexcache-r
[ "$MT" = yes ] && echo "filelistv=\"$F/mover_exclude.txt\"" > /boot/config/plugins/ca.mover.tuning/ca.mover.tuning.cfg
"$PLEXCACHE_PLUGIN_DIR/scripts/uninstall"
echo "rc=$?"
cd /boot/config/plugins/plexcache-r && find . | sort | sed 's/^/left: /'
for p in /usr/local/sbin/plexcache-r /usr/local/plexcache-r /tmp/plexcache-r /var/log/plexcache-r; do
  [ -e "$p" ] || [ -L "$p" ] && echo "still there: $p"
done
wc -c < $F/mover_exclude.txt 2>/dev/null | sed 's/^/list bytes: /'
"""


@pytest.mark.skipif(harness.sandbox_unavailable() is not None,
                    reason=f"plugin sandbox: {harness.sandbox_unavailable()}")
@pytest.mark.parametrize("mover_tuning", [True, False])
def test_uninstall_keeps_settings_and_releases_cached_files(plugin: dict[str, str], mover_tuning: bool) -> None:
    (Path(plugin["STUB_DIR"]) / "count").write_text("2\n")
    env = {**plugin, "MT": "yes" if mover_tuning else "no", "PLEXCACHE_LIVE_PIDFILE": "/run/live.pid",
           "TESTDIR": str(Path(plugin["STUB_DIR"]).parent)}
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", UNINSTALL_DRIVER],
                          env=env, capture_output=True, text=True, timeout=seconds(120), check=False)
    out = proc.stdout
    assert "rc=0" in out, out + proc.stderr
    left = {line[len("left: "):] for line in out.splitlines() if line.startswith("left: ")}
    kept = {".", "./settings.yaml", "./state", "./state/registry.json", "./mover_exclude_manual.txt"}
    assert left == (kept | {"./mover_exclude.txt"} if mover_tuning else kept)
    assert "still there" not in out
    assert "2 file(s)" in out  # the user is told what stays on the pool and how to tidy up
    if mover_tuning:
        assert "list bytes: 0" in out and "Mover Tuning still points" in out


# --- install ----------------------------------------------------------------------------------------------


def test_install_refuses_to_run_from_anywhere_but_an_unpacked_package(plugin: dict[str, str]) -> None:
    """It deletes its staging folder when done: run from the installed plugin it would delete the plugin."""
    plugdir = Path(plugin["PLEXCACHE_PLUGIN_DIR"])
    proc = run(plugin, script(plugin, "install"), "2026.01.01", "/tmp/x.txz", "http://127.0.0.1:9/p", "0" * 64, "p")
    assert proc.returncode == 2 and "nothing was changed" in proc.stderr
    assert (plugdir / "scripts" / "install").exists() and (plugdir / "event").is_dir()
