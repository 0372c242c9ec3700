"""The plugin's schedule: cron lines from settings, "before the mover" from the real mover schedule,
the .cron file and update_cron, and the Mover Tuning status shown on the dashboard."""

from __future__ import annotations

import itertools
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from plexcache import config, schedule
from plexcache.errors import UsageError


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[config.Settings, Path]:
    """Settings whose every path points into tmp_path, with a recording stand-in for update_cron where
    Unraid keeps it (under PLEXCACHE_UNRAID_ROOT), first line and all: Unraid's starts `#/bin/bash`, no `!`."""
    s = config.Settings()
    boot = tmp_path / "boot" / "config"
    (boot / "plugins" / "dynamix").mkdir(parents=True)
    (boot / "shares").mkdir()
    s.paths.plugins_config_dir = str(boot / "plugins")
    s.paths.shares_config_dir = str(boot / "shares")
    s.paths.cron_file = str(boot / "plugins" / "plexcache-r" / "plexcache-r.cron")
    s.paths.exclusion_list = str(boot / "plugins" / "plexcache-r" / "mover_exclude.txt")
    s.paths.emhttp_state_dir = str(tmp_path / "emhttp")
    Path(s.paths.emhttp_state_dir).mkdir()
    monkeypatch.setenv(config.UNRAID_ROOT_ENV, str(tmp_path / "unraid"))
    tool = update_cron()
    tool.parent.mkdir(parents=True)
    tool.write_text(f"#/bin/bash\n\necho ran >> {tmp_path / 'update_cron.log'}\n")
    tool.chmod(0o755)
    return s, boot


def update_cron() -> Path:
    return Path(config.unraid_command(schedule.UPDATE_CRON))


def runs(s: config.Settings) -> int:
    log = update_cron().parents[4] / "update_cron.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def stock(boot: Path, expression: str) -> None:
    (boot / "plugins" / "dynamix" / "mover.cron").write_text(
        f"# Generated mover schedule:\n{expression} /usr/local/sbin/mover start |& logger -t move\n")


def mover_tuning(boot: Path, **cfg: str) -> None:
    (boot / "plugins" / "ca.mover.tuning.plg").write_text("<PLUGIN/>")
    (boot / "plugins" / "ca.mover.tuning").mkdir(exist_ok=True)
    (boot / "plugins" / "ca.mover.tuning" / "ca.mover.tuning.cfg").write_text(
        "".join(f'{k}="{v}"\r\n' for k, v in cfg.items()))  # CRLF on purpose: files edited on Windows


# --- cron expressions ---------------------------------------------------------------------------


def test_parse_cron_expands_fields() -> None:
    minute, hour, dom, month, dow = schedule.parse_cron("*/20 1-3,23 * jan-mar sun,7")
    assert minute == {0, 20, 40}
    assert hour == {1, 2, 3, 23}
    assert dom == set(range(1, 32))
    assert month == {1, 2, 3}
    assert dow == {0}


@pytest.mark.parametrize("bad", ["* * * *", "60 * * * *", "* 24 * * *", "5-1 * * * *", "*/0 * * * *",
                                 "x * * * *", "* * 0 * *"])
def test_parse_cron_rejects_invalid(bad: str) -> None:
    with pytest.raises(ValueError):
        schedule.parse_cron(bad)


@pytest.mark.parametrize(("mover", "minutes", "expected"), [
    ("40 3 * * *", 30, ["10 3 * * *"]),
    ("0 */8 * * *", 30, ["30 7,15,23 * * *"]),
    ("0 3 * * 1", 240, ["0 23 * * 0"]),
    ("0 0 * * 0", 60, ["0 23 * * 6"]),
    ("*/15 * * * *", 5, ["10,25,40,55 * * * *"]),
    ("0 4 1 * *", 60, ["0 3 1 * *"]),
])
def test_shift_before(mover: str, minutes: int, expected: list[str]) -> None:
    lines, warnings = schedule.shift_before(mover, minutes)
    assert lines == expected
    assert warnings == []


def test_shift_before_month_start_warns_and_stays_on_the_day() -> None:
    lines, warnings = schedule.shift_before("0 0 1 * *", 30)
    assert lines == ["0 0 1 * *"]
    assert warnings and "days of the month" in warnings[0]


def test_shift_before_in_chosen_months_warns() -> None:
    lines, warnings = schedule.shift_before("0 0 * 6 *", 30)
    assert lines == ["30 23 * 6 *"]
    assert warnings and "months" in warnings[0]


def _fire_times(expression: str) -> set[int]:
    """Minutes of a week (0 = Sunday 00:00) at which the expression fires, ignoring day of month."""
    minute, hour, _dom, _month, dow = schedule.parse_cron(expression)
    return {d * 1440 + h * 60 + m for d, h, m in itertools.product(dow, hour, minute)}


@hsettings(max_examples=150, deadline=None)
@given(minutes=st.lists(st.integers(0, 59), min_size=1, max_size=3),
       hours=st.lists(st.integers(0, 23), min_size=1, max_size=4),
       days=st.one_of(st.none(), st.lists(st.integers(0, 6), min_size=1, max_size=3)),
       before=st.integers(5, 720))
def test_shifted_schedule_fires_exactly_before_every_mover_run(minutes: list[int], hours: list[int],
                                                              days: list[int] | None, before: int) -> None:
    dow = "*" if days is None else ",".join(map(str, sorted(set(days))))
    mover = f"{','.join(map(str, sorted(set(minutes))))} {','.join(map(str, sorted(set(hours))))} * * {dow}"
    lines, warnings = schedule.shift_before(mover, before)
    assert warnings == []
    ours: set[int] = set()
    for line in lines:
        ours |= _fire_times(line)
    week = 7 * 1440
    assert ours == {(t - before) % week for t in _fire_times(mover)}


@pytest.mark.parametrize(("hours", "line", "warned"), [
    (1, "0 * * * *", False), (4, "0 */4 * * *", False), (5, "0 */5 * * *", True),
    (24, "0 0 * * *", False), (48, "0 0 */2 * *", True), (36, "0 0 * * *", True)])
def test_interval_lines(hours: int, line: str, warned: bool) -> None:
    lines, warnings = schedule.interval_lines(hours)
    assert lines == [line]
    assert bool(warnings) is warned


# --- where the mover schedule comes from -------------------------------------------------------------


def test_stock_schedule_prefers_generated_cron_then_share_cfg(env) -> None:
    s, boot = env
    assert schedule.stock_schedule(s) == (None, None)
    (boot / "share.cfg").write_text('shareMoverSchedule="15 2 * * *"\n')
    assert schedule.stock_schedule(s)[0] == "15 2 * * *"
    stock(boot, "40 3 * * *")
    assert schedule.stock_schedule(s) == ("40 3 * * *", str(boot / "plugins/dynamix/mover.cron"))


def test_stock_schedule_set_aside_by_mover_tuning(env) -> None:
    s, boot = env
    (boot / "share.cfg").write_text('shareMoverSchedule="15 2 * * *"\n')
    (boot / "plugins/dynamix/mover.cron.old").write_text("15 2 * * * /usr/local/sbin/mover\n")
    assert schedule.stock_schedule(s) == (None, None)


def test_effective_schedule_is_mover_tunings_own_when_installed(env) -> None:
    s, boot = env
    stock(boot, "40 3 * * *")
    mover_tuning(boot, moverTuneCron="0 5 * * *")
    assert schedule.effective_mover_schedule(s)[0] == "0 5 * * *"
    (boot / "plugins/ca.mover.tuning.plg").unlink()  # removed: its leftover cfg no longer counts
    assert schedule.effective_mover_schedule(s)[0] == "40 3 * * *"


# --- apply ---------------------------------------------------------------------------------------


def test_apply_before_mover_writes_cron_and_runs_update_cron(env) -> None:
    s, boot = env
    stock(boot, "40 3 * * *")
    result = schedule.apply_schedule(s)
    text = Path(s.paths.cron_file).read_text()
    # by default the run starts 10 minutes before the mover, so the disks it wakes still spin when the mover
    # writes the day's downloads (one wake serves both, with any spin-down delay of 15 minutes or more)
    assert text.splitlines()[1] == f"30 3 * * * {schedule.RUN_COMMAND}"
    assert text.startswith("# Generated by plexcache-r") and text.endswith("\n")
    assert result.changed and result.update_cron == 0 and runs(s) == 1
    assert result.mover_schedule == "40 3 * * *"
    doc = result.to_json()
    assert doc["lines"] == ["30 3 * * *"] and "10 min before the mover" in doc["message"]


def test_apply_writes_only_on_change_but_always_reloads(env) -> None:
    s, boot = env
    stock(boot, "40 3 * * *")
    schedule.apply_schedule(s)
    before = os.stat(s.paths.cron_file).st_mtime_ns
    os.utime(s.paths.cron_file, ns=(1, 1))
    second = schedule.apply_schedule(s)
    assert not second.changed
    assert os.stat(s.paths.cron_file).st_mtime_ns == 1 != before  # untouched: the flash drive wears
    assert runs(s) == 2


@pytest.mark.parametrize(("mode", "expected"), [("interval", "0 */4 * * *"), ("cron", "5 1 * * 2")])
def test_apply_interval_and_cron_modes(env, mode: str, expected: str) -> None:
    s, _ = env
    s.schedule.mode = mode
    s.schedule.cron = "5  1 * * 2"
    schedule.apply_schedule(s)
    assert Path(s.paths.cron_file).read_text().splitlines()[1].startswith(expected + " ")
    assert stat.S_IMODE(os.stat(s.paths.cron_file).st_mode) == 0o644


def test_apply_off_removes_the_file(env) -> None:
    s, _ = env
    s.schedule.mode = "interval"
    schedule.apply_schedule(s)
    s.schedule.mode = "off"
    result = schedule.apply_schedule(s)
    assert result.changed and not Path(s.paths.cron_file).exists() and result.lines == []
    assert runs(s) == 2


def test_apply_invalid_cron_names_the_key(env) -> None:
    s, _ = env
    s.schedule.mode = "cron"
    s.schedule.cron = "61 * * * *"
    with pytest.raises(UsageError, match=r"schedule\.cron"):
        schedule.apply_schedule(s)
    assert runs(s) == 0


def test_apply_before_mover_without_mover_schedule_warns(env) -> None:
    s, _ = env
    result = schedule.apply_schedule(s)
    assert result.lines == [] and not Path(s.paths.cron_file).exists()
    assert any("no schedule" in w for w in result.warnings)


def test_refresh_follows_a_moved_mover_schedule(env) -> None:
    s, boot = env
    stock(boot, "40 3 * * *")
    schedule.apply_schedule(s)
    assert schedule.refresh_if_stale(s) is None and runs(s) == 1  # current: nothing written or run
    stock(boot, "0 2 * * *")  # the user moved the mover in Unraid's settings
    result = schedule.refresh_if_stale(s)
    assert result is not None and result.lines == ["50 1 * * *"] and runs(s) == 2
    assert "50 1 * * *" in Path(s.paths.cron_file).read_text()


def test_update_cron_without_a_shebang_is_run_as_unraid_runs_it(env) -> None:
    """Unraid's update_cron starts `#/bin/bash`: executed directly it fails (ENOEXEC) and the crontab never
    learns a changed schedule; run through /bin/sh, as the webGui runs it, it loads."""
    s, boot = env
    stock(boot, "40 3 * * *")
    result = schedule.apply_schedule(s)
    assert (result.update_cron, result.warnings, runs(s)) == (0, [], 1)
    assert "cron not reloaded" not in result.message()


def test_settings_cannot_choose_what_update_cron_runs(env) -> None:
    """An old settings file naming another program loads, and that program never runs."""
    s, boot = env
    stock(boot, "40 3 * * *")
    evil = boot / "evil"
    evil.write_text(f"#!/bin/sh\ntouch {boot / 'pwned'}\n")
    evil.chmod(0o755)
    loaded = config.from_mapping({"schema": 2, "paths": {"update_cron": str(evil), "cron_file": s.paths.cron_file,
                                                         "plugins_config_dir": s.paths.plugins_config_dir}})
    schedule.apply_schedule(loaded)
    assert runs(s) == 1 and not (boot / "pwned").exists()


def test_apply_without_update_cron_warns(env) -> None:
    s, boot = env
    stock(boot, "40 3 * * *")
    update_cron().unlink()
    result = schedule.apply_schedule(s)
    assert result.update_cron is None and Path(s.paths.cron_file).exists()
    assert any("not found" in w for w in result.warnings)


def test_apply_failing_update_cron_warns(env) -> None:
    s, boot = env
    stock(boot, "40 3 * * *")
    update_cron().write_text("#/bin/bash\necho 'crontab: no' >&2\nexit 3\n")
    result = schedule.apply_schedule(s)
    assert result.update_cron == 3 and any("exited 3" in w for w in result.warnings)


# --- Mover Tuning status -----------------------------------------------------------------------------


def test_status_without_mover_tuning(env) -> None:
    s, _ = env
    status = schedule.mover_tuning_status(s)
    assert not status["installed"] and not status["ok"]
    assert "not installed" in status["problems"][0]


def test_status_all_good(env) -> None:
    s, boot = env
    (Path(s.paths.emhttp_state_dir) / "var.ini").write_text('version="7.2.3"\n')
    mover_tuning(boot, filelistf="yes", filelistv=s.paths.exclusion_list, moverTuneCron="0 5 * * *",
                 beforeScript=schedule.MOVER_HOOK)
    status = schedule.mover_tuning_status(s)
    assert status["ok"], status["problems"]
    assert status["ignore_list_is_ours"] and status["before_script_is_ours"]
    assert status["mover_tuning_schedule"] == "0 5 * * *" and status["unraid_version"] == "7.2.3"


def test_status_flags_other_list_and_stock_bypass_on_721(env) -> None:
    s, boot = env
    (Path(s.paths.emhttp_state_dir) / "var.ini").write_text('version="7.2.1"\n')
    stock(boot, "40 3 * * *")
    mover_tuning(boot, filelistf="yes", filelistv="/boot/other.txt", moverTuneCron="0 5 * * *")
    status = schedule.mover_tuning_status(s)
    assert status["stock_bypasses_mover_tuning"] and not status["ignore_list_is_ours"]
    assert len(status["problems"]) == 2
    assert any("Disabled" in p for p in status["problems"])


def test_status_stock_schedule_is_fine_before_721(env) -> None:
    # Before 7.2.1 Mover Tuning wraps the stock mover, so the stock schedule runs the tuned mover.
    s, boot = env
    (Path(s.paths.emhttp_state_dir) / "var.ini").write_text('version="6.12.13"\n')
    stock(boot, "40 3 * * *")
    mover_tuning(boot, filelistf="yes", filelistv=s.paths.exclusion_list)
    assert schedule.mover_tuning_status(s)["ok"]




# --- the shell scripts' queries ---------------------------------------------------------------------


def test_the_shell_scripts_queries_answer_through_the_cli(env, tmp_path: Path) -> None:
    """The plugin's scripts ask `plexcache-r query ...` (so bash never parses YAML); it is hidden from --help."""
    s, _ = env
    s.live.enabled = True
    s.paths.state_dir = str(tmp_path / "state")
    path = tmp_path / "settings.yaml"
    config.save(s, path)

    def query(*args: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PLEXCACHE")}
        return subprocess.run([sys.executable, "-m", "plexcache", "--config", str(path), "query", *args],
                              capture_output=True, text=True, env=environ, timeout=120)

    assert query("live-enabled").returncode == 0
    assert query("managed-count").stdout.strip() == "0"
    assert "not installed" in query("mover-tuning").stdout
    s.live.enabled = False
    config.save(s, path)
    assert query("live-enabled").returncode == 1
    assert query("bogus").returncode == 2
    helptext = subprocess.run([sys.executable, "-m", "plexcache", "--help"], capture_output=True, text=True,
                              timeout=120).stdout
    assert "  schedule " in helptext and "  query " not in helptext
