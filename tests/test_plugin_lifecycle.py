"""The built .plg through its whole life on each release of Unraid's own webGui: a refused install on an old
Unraid, failed installs (no usable python3 and no network; a failure half-way through the package), install,
a schedule change, refused and forced reinstall, a reboot without network, a failed update, update and
remove, each through that release's real plugin manager under php-cli, with cron loaded by its real
update_cron, in private mount and network namespaces (see tests/plugin_sandbox/)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

import unraid_webgui
from plugin_sandbox import harness
from realtime import seconds

NAME = harness.NAME
FLASH = f"/boot/config/plugins/{NAME}"
PLUGDIR = f"/usr/local/emhttp/plugins/{NAME}"
RUN_LINE = f"/usr/local/sbin/{NAME} -q run"
RELEASES = unraid_webgui.versions()
PYTHON_FILE = re.search(r'<!ENTITY pythonFile\s+"([^"]+)"', (harness.REPO / f"{NAME}.plg").read_text()).group(1)
# What a removal keeps on purpose (docs/plugin.md): the settings, and the manager's copy of the removed .plg.
REMOVED_LEFTOVERS = {"/boot/config/plugins-removed", f"/boot/config/plugins-removed/{NAME}.plg", FLASH,
                     f"{FLASH}/settings.yaml"}
# Kept by the plugin manager itself after a refused or failed install: the .plg it downloaded, the
# pre-hook's pending marker (its folder stays), and a .plg that failed at boot goes to plugins-error.
MANAGER_OWN = re.compile(r"^/tmp/plugins/(plexcache-r\.plg|pluginPending(/.*)?)$")

pytestmark = [
    pytest.mark.plugin,
    pytest.mark.skipif(harness.sandbox_unavailable() is not None,
                       reason=f"plugin sandbox: {harness.sandbox_unavailable()}"),
    pytest.mark.skipif(not RELEASES, reason=unraid_webgui.MISSING),
]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[harness.Build, harness.Build]:
    """This tree's version and a year-older one (it sorts first), both served from the sandbox's port."""

    def make(folder: Path) -> dict[str, str]:
        base = f"http://127.0.0.1:{harness.PORT}"
        new = harness.build(folder / "new", base_url=base)
        old = harness.build(folder / "old", version=f"{int(new.version[:4]) - 1}{new.version[4:10]}",
                            base_url=base)
        return {"old": str(old.dist), "old_version": old.version, "new": str(new.dist), "new_version": new.version}

    made = harness.shared(tmp_path_factory, "lifecycle-builds", make)
    return (harness.Build(Path(made["old"]), made["old_version"]),
            harness.Build(Path(made["new"]), made["new_version"]))


@pytest.fixture(scope="module", params=[version for version, _ in RELEASES])
def cycle(request: pytest.FixtureRequest, builds: tuple[harness.Build, harness.Build],
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    release = request.param
    old, new = builds
    results = harness.shared(tmp_path_factory, f"cycle-{release}",
                             lambda work: harness.run_cycle(work, old, new, dict(RELEASES)[release], release))
    assert "error" not in results, results["error"]
    return {**results, "versions": (old.version, new.version)}


def ok(step: dict[str, Any]) -> None:
    assert step["rc"] == 0, step["out"]


def clean_banner(step: dict[str, Any]) -> None:
    """A healthy server's install prints no warning of any kind (ours, PHP's, the manager's)."""
    assert not re.search(r"warning|notice|deprecated|fatal|error", step["out"], re.I), step["out"]


def left_behind(step: dict[str, Any]) -> list[str]:
    changes = step["after"]
    return [p for p in changes["added"] + changes["removed"] + changes["changed"] if not MANAGER_OWN.match(p)]


def same_version_everywhere(step: dict[str, Any], version: str) -> None:
    """The CLI, `status`, the registered .plg and the installed package all say one version."""
    assert step["version"] == f"{NAME}, version {version}"
    assert step["status_version"] == version
    assert step["registered_version"] == version
    assert step["packages"] == [f"{NAME}-{version}-x86_64-1"]


def test_too_old_unraid_is_refused_cleanly(cycle: dict[str, Any]) -> None:
    step = cycle["too_old"]
    assert step["rc"] == 1 and "6.12.0" in step["out"]
    assert left_behind(step) == []


def test_failed_install_without_python_or_network_leaves_nothing(cycle: dict[str, Any]) -> None:
    """No usable python3 and the pinned Python cannot be fetched: the install says why and what to do,
    and the server is as it was: no package, no pages, nothing in /usr/local, nothing on flash."""
    step = cycle["no_python"]
    assert step["rc"] == 1, step["out"]
    assert "needs Python 3.10 or newer" in step["out"] and "downloading" in step["out"]
    assert left_behind(step) == [], step["out"]


def test_failed_install_at_a_later_step_leaves_nothing(cycle: dict[str, Any]) -> None:
    """The package fails half-way (a full disk): what it had written is removed with everything else."""
    step = cycle["late_failure"]
    assert step["rc"] == 1, step["out"]
    assert "installing the package failed" in step["out"] and "nothing of it is left" in step["out"]
    assert left_behind(step) == [], step["out"]


def test_install(cycle: dict[str, Any]) -> None:
    step = cycle["install"]
    ok(step)
    clean_banner(step)
    old = cycle["versions"][0]
    assert step["registered"]
    same_version_everywhere(step, old)
    assert step["flash_files"] == sorted([f"{NAME}-{old}-x86_64-1.txz", f"{NAME}.cron", "settings.yaml"])
    assert step["settings_mode"] == "0o600"
    assert step["cli_link"] == f"{PLUGDIR}/scripts/{NAME}"
    assert "PlexCacheR.page" in step["pages"]
    ok(step["help"])
    assert "is installed" in step["out"]


def test_install_loads_the_schedule_into_cron(cycle: dict[str, Any]) -> None:
    step = cycle["install"]
    # Stock mover at 40 3 * * * (sandbox flash); default mode: 10 minutes before it.
    assert f"30 3 * * * {RUN_LINE}" in step["cron_file"]
    assert step["schedule_loaded_after"] >= 0, "the job never reached the crontab"
    assert f"30 3 * * * {RUN_LINE}" in step["crontab"]
    assert "/usr/local/sbin/mover start" in step["crontab"]  # update_cron kept Unraid's own jobs


def test_a_schedule_change_reaches_the_crontab_within_the_same_command(cycle: dict[str, Any]) -> None:
    """Settings page Apply = `config set` then `schedule apply`: the crontab has the new job when it returns."""
    step = cycle["schedule_change"]
    ok(step["saved"])
    ok(step["applied"])
    applied = json.loads(step["applied"]["out"])
    assert (applied["update_cron"], applied["warnings"]) == (0, [])
    assert f"0 */4 * * * {RUN_LINE}" in step["crontab"]
    assert step["crontab"].count(RUN_LINE) == 1


def test_reinstall_same_version_needs_forced_and_keeps_settings(cycle: dict[str, Any]) -> None:
    assert cycle["reinstall_refused"]["rc"] == 1
    step = cycle["reinstall"]
    ok(step)
    clean_banner(step)
    assert step["settings"] == cycle["schedule_change"]["settings"]
    assert step["crontab"].count(RUN_LINE) == 1
    assert f"0 */4 * * * {RUN_LINE}" in step["crontab"]
    same_version_everywhere(step, cycle["versions"][0])


def test_boot_installs_offline_from_the_flash_drive(cycle: dict[str, Any]) -> None:
    step = cycle["boot_offline"]
    ok(step)
    clean_banner(step)
    same_version_everywhere(step, cycle["versions"][0])
    assert step["settings"] == cycle["schedule_change"]["settings"]
    assert step["schedule_loaded_after"] >= 0 and f"0 */4 * * * {RUN_LINE}" in step["crontab"]
    ok(step["help"])


def test_a_failed_update_leaves_the_previous_version_working(cycle: dict[str, Any]) -> None:
    old, new = cycle["versions"]
    step = cycle["failed_update"]
    assert step["rc"] == 1, step["out"]
    assert f"{old} is installed as before" in step["out"]
    same_version_everywhere(step, old)
    assert step["registered"]
    assert f"{NAME}-{old}-x86_64-1.txz" in step["flash_files"]
    assert f"{NAME}-{new}-x86_64-1.txz" not in step["flash_files"]
    assert step["settings"] == cycle["schedule_change"]["settings"]
    assert step["crontab"].count(RUN_LINE) == 1 and f"0 */4 * * * {RUN_LINE}" in step["crontab"]
    ok(step["help"])


def test_update(cycle: dict[str, Any]) -> None:
    old, new = cycle["versions"]
    assert cycle["check_again"]["rc"] == 0 and new in cycle["check_again"]["out"]
    step = cycle["update"]
    ok(step)
    clean_banner(step)
    same_version_everywhere(step, new)
    assert f"{NAME}-{old}-x86_64-1.txz" not in step["flash_files"]
    assert f"{NAME}-{new}-x86_64-1.txz" in step["flash_files"]
    assert step["settings"] == cycle["schedule_change"]["settings"]
    assert step["crontab"].count(RUN_LINE) == 1
    ok(step["help"])


def test_remove_leaves_only_what_is_documented(cycle: dict[str, Any]) -> None:
    """docs/plugin.md: settings (and state, none here) stay on the flash drive; the manager keeps the
    removed .plg in plugins-removed (and its pre-hook's pending folder). Nothing else."""
    ok(cycle["remove"])
    changes = cycle["after_remove"]
    added = [p for p in changes["added"] if p not in REMOVED_LEFTOVERS and not MANAGER_OWN.match(p)]
    assert added == []
    assert changes["removed"] == [] and changes["changed"] == []
    assert NAME not in (cycle["after_remove_crontab"] or "")
    assert "/usr/local/sbin/mover start" in cycle["after_remove_crontab"]


def test_without_python3_the_pinned_python_is_fetched_kept_and_used_offline(cycle: dict[str, Any]) -> None:
    """The server has no usable python3: the install downloads the pinned interpreter, checks its SHA256,
    keeps it on the flash drive, and the next boot (no network) installs from that copy."""
    new = cycle["versions"][1]
    for name in ("bundled_install", "bundled_boot"):
        step = cycle[name]
        ok(step)
        clean_banner(step)
        same_version_everywhere(step, new)
        assert step["python"] == {"flash": [PYTHON_FILE], "runtime": True}
        assert step["schedule_loaded_after"] >= 0
    assert "downloading Python" in cycle["bundled_install"]["out"]
    assert "downloading Python" not in cycle["bundled_boot"]["out"]
    ok(cycle["bundled_remove"])
    changes = cycle["after_bundled_remove"]
    leftovers = [p for p in changes["added"] + changes["removed"] + changes["changed"]
                 if p not in REMOVED_LEFTOVERS and not MANAGER_OWN.match(p)]
    assert leftovers == []


@pytest.mark.slow
def test_demo_runs_from_the_installed_tree(builds: tuple[harness.Build, harness.Build], tmp_path: Path) -> None:
    """`plexcache-r demo` from the package as installed (isolated interpreter, vendored libraries)."""
    root = tmp_path / "root"
    with tarfile.open(builds[1].package, "r:xz") as archive:
        archive.extractall(root)
    plugdir = root / PLUGDIR.lstrip("/")
    env = {"PATH": "/usr/bin:/bin", "PLEXCACHE_PYTHON": sys.executable, "PLEXCACHE_PLUGIN_DIR": str(plugdir),
           "PLEXCACHE_LIB": str(root / f"usr/local/lib/{NAME}"), "TMPDIR": str(tmp_path),
           "HOME": str(tmp_path)}
    proc = subprocess.run([str(plugdir / f"scripts/{NAME}"), "demo"], env=env, capture_output=True,
                          text=True, timeout=seconds(600), check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Live mode's notification channel: plexapi's alert listener imports websocket-client lazily, so a
    # package without it would only show when live mode starts. Import it as bootstrap.py would.
    vendor = root / f"usr/local/lib/{NAME}/vendor"
    probe = "import sys; sys.path[:0] = [sys.argv[1]]; import websocket, plexapi.alert; print(websocket.__version__)"
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(vendor)], capture_output=True, text=True,
                          timeout=seconds(60), check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "1.8.0", proc.stderr[-2000:]
