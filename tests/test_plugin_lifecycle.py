"""The real built .plg through install -> reinstall -> reboot (offline) -> update -> remove, run by a plugin
manager in a private mount namespace over tmpfs (see tests/plugin_sandbox/). With UNRAID_WEBGUI_DIR set
to an unraid/webgui checkout it is Unraid's own manager under php-cli; otherwise a faithful stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plugin_sandbox import harness

NAME = harness.NAME
FLASH = f"/boot/config/plugins/{NAME}"
RUN_LINE = f"/usr/local/sbin/{NAME} -q run"

pytestmark = pytest.mark.skipif(harness.sandbox_unavailable() is not None,
                                reason=f"plugin sandbox: {harness.sandbox_unavailable()}")


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[harness.Build, harness.Build, int]:
    """This tree's version and a year-older one (it sorts first), both pointing at one loopback port."""
    root = tmp_path_factory.mktemp("plugin-builds")
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    new = harness.build(root / "new", base_url=base)
    old = harness.build(root / "old", version=f"{int(new.version[:4]) - 1}{new.version[4:10]}", base_url=base)
    return old, new, port


@pytest.fixture(scope="module")
def cycle(builds: tuple[harness.Build, harness.Build, int], tmp_path_factory: pytest.TempPathFactory,
          ) -> dict[str, Any]:
    old, new, port = builds
    work = tmp_path_factory.mktemp("plugin-cycle")
    results = harness.run_cycle(work, old, new, port)
    assert "error" not in results, results["error"]
    results["versions"] = (old.version, new.version)
    return results


def ok(step: dict[str, Any]) -> None:
    assert step["rc"] == 0, step["out"]


def test_too_old_unraid_is_refused_cleanly(cycle: dict[str, Any]) -> None:
    step = cycle["too_old"]
    assert step["rc"] == 1
    assert "6.12.0" in step["out"]
    leftovers = [p for p in step["after"]["added"] if not p.startswith("/tmp/plugins")]
    assert leftovers == [] and step["after"]["removed"] == []


def test_install(cycle: dict[str, Any]) -> None:
    step = cycle["install"]
    ok(step)
    old = cycle["versions"][0]
    assert step["registered"]
    assert step["version_file"] == old
    assert step["packages"] == [f"{NAME}-{old}-x86_64-1"]
    assert sorted(step["flash_files"]) == sorted([f"{NAME}-{old}-x86_64-1.txz", f"{NAME}.cron", "settings.yaml"])
    assert step["settings_mode"] == "0o600"
    assert step["cli_link"] == f"/usr/local/emhttp/plugins/{NAME}/scripts/{NAME}"
    ok(step["help"])
    assert "Usage: plexcache-r" in step["help"]["out"]
    assert "is installed" in step["out"]


def test_install_schedules_before_the_stock_mover(cycle: dict[str, Any]) -> None:
    step = cycle["install"]
    # Stock mover at 40 3 * * * (sandbox flash); default mode: 30 minutes before it.
    assert f"10 3 * * * {RUN_LINE}" in step["cron_file"]
    assert step["schedule_loaded_after"] >= 0, "the job never reached the crontab"
    assert f"10 3 * * * {RUN_LINE}" in step["crontab"]


def test_reinstall_same_version_needs_forced_and_keeps_settings(cycle: dict[str, Any]) -> None:
    assert cycle["reinstall_refused"]["rc"] == 1
    step = cycle["reinstall"]
    ok(step)
    assert step["settings"] == cycle["custom_settings"]
    # The user's switch to interval mode took effect: one job, every 4 hours, nothing duplicated.
    assert step["crontab"].count(RUN_LINE) == 1
    assert f"0 */4 * * * {RUN_LINE}" in step["crontab"]
    ok(step["help"])


def test_boot_installs_offline_from_the_flash_drive(cycle: dict[str, Any]) -> None:
    step = cycle["boot_offline"]
    ok(step)
    assert step["version_file"] == cycle["versions"][0]
    assert step["settings"] == cycle["custom_settings"]
    assert step["schedule_loaded_after"] >= 0 and RUN_LINE in step["crontab"]
    ok(step["help"])


def test_update(cycle: dict[str, Any]) -> None:
    old, new = cycle["versions"]
    assert cycle["check"]["rc"] == 0 and new in cycle["check"]["out"]
    step = cycle["update"]
    ok(step)
    assert step["version_file"] == new
    assert step["packages"] == [f"{NAME}-{new}-x86_64-1"]
    assert f"{NAME}-{old}-x86_64-1.txz" not in step["flash_files"]
    assert f"{NAME}-{new}-x86_64-1.txz" in step["flash_files"]
    assert step["settings"] == cycle["custom_settings"]
    assert step["crontab"].count(RUN_LINE) == 1
    ok(step["help"])


def test_remove_leaves_only_what_is_documented(cycle: dict[str, Any]) -> None:
    """docs/plugin.md: settings (and state, none here) stay on the flash drive; the manager keeps the
    removed .plg in plugins-removed (and Unraid's own pre-hook its pending marker). Nothing else."""
    ok(cycle["remove"])
    changes = cycle["after_remove"]
    allowed = {"/boot/config/plugins-removed", f"/boot/config/plugins-removed/{NAME}.plg", FLASH,
               f"{FLASH}/settings.yaml"}
    added = [p for p in changes["added"] if p not in allowed
             and not (cycle["manager"] == "webgui" and p.startswith("/tmp/plugins/pluginPending"))]
    assert added == []
    assert changes["removed"] == [] and changes["changed"] == []
    assert NAME not in (cycle["after_remove_crontab"] or "")


@pytest.mark.slow
def test_demo_runs_from_the_installed_tree(builds: tuple[harness.Build, harness.Build, int],
                                          tmp_path: Path) -> None:
    """`plexcache-r demo` from the package as installed (isolated interpreter, vendored libraries)."""
    import subprocess
    import sys
    import tarfile

    root = tmp_path / "root"
    with tarfile.open(builds[1].package, "r:xz") as archive:
        archive.extractall(root)
    plugdir = root / f"usr/local/emhttp/plugins/{NAME}"
    env = {"PATH": "/usr/bin:/bin", "PLEXCACHE_PYTHON": sys.executable, "PLEXCACHE_PLUGIN_DIR": str(plugdir),
           "PLEXCACHE_LIB": str(root / f"usr/local/lib/{NAME}"), "TMPDIR": str(tmp_path),
           "HOME": str(tmp_path)}
    proc = subprocess.run([str(plugdir / f"scripts/{NAME}"), "demo"], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Live mode's notification channel: plexapi's alert listener imports websocket-client lazily, so a
    # package without it would only show when live mode starts. Import it as bootstrap.py would.
    vendor = root / f"usr/local/lib/{NAME}/vendor"
    probe = "import sys; sys.path[:0] = [sys.argv[1]]; import websocket, plexapi.alert; print(websocket.__version__)"
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(vendor)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "1.8.0", proc.stderr[-2000:]
