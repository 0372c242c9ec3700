"""The plugin's schedule: turn settings into a `.cron` file for Unraid's `update_cron`, and report how the
mover is set up (stock schedule, CA Mover Tuning, our ignore list) for the dashboard.

Unraid builds root's crontab from `/boot/config/plugins/<plugin>/*.cron` of every registered plugin when
`/usr/local/sbin/update_cron` runs, so "applying" a schedule means writing that file and running it.
That script starts with `#/bin/bash` (no `!`): the kernel refuses to execute it (ENOEXEC), and only a shell
runs it, as a script of its own. Unraid's webGui calls it through PHP's exec(), that is `/bin/sh -c`
(bash on Unraid), and so does `run_update_cron`.

"Before the mover" is derived from the schedule that really moves files: CA Mover Tuning's own cron
(`moverTuneCron`, used by Mover Tuning on Unraid 7.2.1+) when it is installed, otherwise the stock
schedule (`dynamix/mover.cron`, which emhttpd generates from `shareMoverSchedule` in `share.cfg`).
Every path comes from settings, so tests point them into a temporary root.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from plexcache.config import unraid_command
from plexcache.errors import UsageError
from plexcache.fsutil import atomic_write_text, remove_own_file
from plexcache.unraid import read_cfg

RUN_COMMAND = "/usr/local/sbin/plexcache-r -q run >/dev/null 2>&1"
MOVER_HOOK = "/usr/local/emhttp/plugins/plexcache-r/scripts/mover-hook"
MOVER_TUNING = "ca.mover.tuning"
UPDATE_CRON = "/usr/local/sbin/update_cron"  # Unraid's own; never a setting
UPDATE_CRON_TIMEOUT = 60
# Unraid 7.2.1 stopped wrapping the stock mover: from then on the stock schedule bypasses Mover Tuning.
STOCK_BYPASS_FROM = (7, 2, 1)

_DOW_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_MON_NAMES = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
# (name, lowest, highest, names allowed for values)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, _MON_NAMES), ("day of week", 0, 7, _DOW_NAMES))


@dataclass
class ScheduleResult:
    """What `schedule apply` did; `to_dict()` is the `--json` shape."""

    mode: str
    cron_file: str
    lines: list[str] = field(default_factory=list)  # the crontab lines written (empty: no schedule)
    changed: bool = False  # the .cron file was written or removed
    update_cron: Optional[int] = None  # exit code of update_cron; None when it could not be run
    mover_schedule: Optional[str] = None  # the mover schedule "before the mover" was derived from
    mover_source: Optional[str] = None  # the file that schedule was read from
    summary: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> dict[str, Any]:
        """The `schedule apply --json` document: the fields plus a one-line `message` for people."""
        return {"schema": 1, **self.to_dict(), "message": self.message()}

    def message(self) -> str:
        where = f"; {len(self.lines)} line(s) in {self.cron_file}" if self.lines else ""
        cron = "" if self.update_cron == 0 else "; cron not reloaded"
        text = f"Schedule: {self.summary}{where}{cron}."
        return "\n".join([text, *(f"warning: {w}" for w in self.warnings)])


# --- cron expressions ------------------------------------------------------------------------------


def _value(text: str, names: dict[str, int]) -> int:
    return names[text] if text in names else int(text)


def _expand_field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    """The set of values a cron field matches (numbers, names, *, ranges, steps, lists)."""
    values: set[int] = set()
    for part in text.lower().split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                a, b = base.split("-", 1)
                start, end = _value(a, names), _value(b, names)
            else:
                start = _value(base, names)
                end = high if step_text else start
        except (ValueError, KeyError):
            raise ValueError(f"{name} field {text!r} is not understood") from None
        if step < 1 or start < low or end > high or start > end:
            raise ValueError(f"{name} field {text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    if name == "day of week" and 7 in values:  # 7 and 0 both mean Sunday
        values = (values - {7}) | {0}
    return values


def parse_cron(expression: str) -> list[set[int]]:
    """Expand a five-field cron expression; ValueError (with the reason) when it is not valid."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected five fields like '0 */4 * * *', got {len(fields)}")
    return [_expand_field(text, *spec) for text, spec in zip(fields, _FIELDS, strict=True)]


def _join(values: set[int], low: int, high: int) -> str:
    """Write a set of values back as a cron field: '*' when complete, else ranges and lists."""
    if values == set(range(low, high + 1)):
        return "*"
    items: list[list[int]] = []
    run: list[int] = []
    for value in sorted(values):
        if run and value != run[-1] + 1:
            items.append(run)
            run = []
        run.append(value)
    items.append(run)
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in items)


def shift_before(expression: str, minutes: int) -> tuple[list[str], list[str]]:
    """Cron lines that fire `minutes` before every time `expression` fires, plus warnings.

    Times of day are shifted exactly; a shift across midnight moves a restricted day of week to the day
    before. A restricted day of month cannot be moved back across a month start in cron, so such runs
    are placed at 00:00 of the mover's own day and a warning says so.
    """
    minute, hour, _dom, _month, dow = parse_cron(expression)
    dom_text, month_text, dow_text = expression.split()[2:]
    same_day: dict[int, set[int]] = {}
    day_before: dict[int, set[int]] = {}
    warnings: list[str] = []
    crossed = False
    for h in hour:
        for m in minute:
            total = h * 60 + m - minutes
            target = same_day
            if total < 0:
                if dom_text != "*":
                    warnings.append(f"the mover runs on chosen days of the month ({dom_text}); a run "
                                    f"{minutes} min before {h:02d}:{m:02d} would fall on the day before, "
                                    "so it runs at 00:00 of the mover's day instead")
                    total = 0
                else:
                    total += 24 * 60
                    crossed = True
                    # With every weekday allowed the evening before is just another day.
                    target = same_day if dow_text == "*" else day_before
            target.setdefault(total // 60, set()).add(total % 60)
    if crossed and month_text != "*":
        warnings.append(f"the mover runs in chosen months ({month_text}); the run before its first "
                        "night of a month falls on that month's last evening instead")
    lines = _group(same_day, dom_text, month_text, dow_text)
    if day_before:
        lines += _group(day_before, dom_text, month_text, _join({(d - 1) % 7 for d in dow}, 0, 6))
    return lines, sorted(set(warnings))


def _group(times: dict[int, set[int]], dom: str, month: str, dow: str) -> list[str]:
    """Compress {hour: minutes} into as few cron lines as hours sharing the same minutes allow."""
    by_minutes: dict[tuple[int, ...], set[int]] = {}
    for h, mins in times.items():
        by_minutes.setdefault(tuple(sorted(mins)), set()).add(h)
    lines = []
    for minutes, hours in sorted(by_minutes.items(), key=lambda item: (min(item[1]), item[0])):
        lines.append(f"{_join(set(minutes), 0, 59)} {_join(hours, 0, 23)} {dom} {month} {dow}")
    return lines


def interval_lines(hours: int) -> tuple[list[str], list[str]]:
    """Cron lines for "every N hours". Exact when N divides 24; otherwise cron restarts the count at
    midnight (hours) or at the month start (days), which a warning says."""
    if hours < 24:
        warn = [] if 24 % hours == 0 else [f"every {hours} hours restarts at midnight in cron "
                                           f"(runs at {_join(set(range(0, 24, hours)), 0, 23)} h)"]
        return [f"0 {'*' if hours == 1 else f'*/{hours}'} * * *"], warn
    days, rest = divmod(hours, 24)
    warn = [] if rest == 0 else [f"every {hours} hours is rounded to every {days} day(s) in cron"]
    if days > 1:
        warn.append(f"every {days} days restarts at the first of each month in cron")
    return [f"0 0 {'*' if days == 1 else f'*/{days}'} * *"], warn


# --- where the mover schedule lives ----------------------------------------------------------------


def _plugins_dir(settings: Any) -> Path:
    return Path(settings.paths.plugins_config_dir)


def _share_cfg(settings: Any) -> Path:
    # share.cfg sits beside the shares/ directory: /boot/config/share.cfg
    return Path(settings.paths.shares_config_dir).parent / "share.cfg"


def _cron_expression(path: Path) -> Optional[str]:
    """The schedule of the first job line of a crontab file, or None."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.replace("\r", "").splitlines():
        fields = line.split()
        if len(fields) >= 6 and not line.lstrip().startswith("#"):
            return " ".join(fields[:5])
    return None


def stock_schedule(settings: Any) -> tuple[Optional[str], Optional[str]]:
    """(expression, source) of the stock mover's schedule, or (None, None) when it has none.

    The generated `dynamix/mover.cron` is what cron really runs; `shareMoverSchedule` is its source and
    is used when the generated file is not there yet (for instance early at boot)."""
    mover_cron = _plugins_dir(settings) / "dynamix" / "mover.cron"
    expression = _cron_expression(mover_cron)
    if expression:
        return expression, str(mover_cron)
    if mover_cron.parent.is_dir() and (mover_cron.parent / "mover.cron.old").exists():
        return None, None  # Mover Tuning took the schedule over and set the stock one aside
    value = read_cfg(_share_cfg(settings)).get("shareMoverSchedule", "").strip()
    if value and len(value.split()) == 5:
        return value, str(_share_cfg(settings))
    return None, None


def mover_tuning_installed(settings: Any) -> bool:
    # The plugin manager keeps an installed plugin's .plg in /boot/config/plugins and moves it away on remove.
    return (_plugins_dir(settings) / f"{MOVER_TUNING}.plg").exists()


def mover_tuning_schedule(settings: Any) -> tuple[Optional[str], Optional[str]]:
    """(expression, source) of Mover Tuning's own mover schedule, when it is installed and has one."""
    if not mover_tuning_installed(settings):
        return None, None
    mt_dir = _plugins_dir(settings) / MOVER_TUNING
    value = read_cfg(mt_dir / f"{MOVER_TUNING}.cfg").get("moverTuneCron", "").strip()
    if value and len(value.split()) == 5:
        return value, str(mt_dir / f"{MOVER_TUNING}.cfg")
    expression = _cron_expression(mt_dir / "mover.tuning.cron")
    return (expression, str(mt_dir / "mover.tuning.cron")) if expression else (None, None)


def effective_mover_schedule(settings: Any) -> tuple[Optional[str], Optional[str]]:
    """The schedule that moves files: Mover Tuning's own when it has one, else the stock one."""
    expression, source = mover_tuning_schedule(settings)
    if expression:
        return expression, source
    return stock_schedule(settings)


# --- apply -------------------------------------------------------------------------------------------


def cron_lines(settings: Any) -> tuple[list[str], list[str], Optional[str], Optional[str], str]:
    """(schedules, warnings, mover expression, mover source, summary) for the configured mode."""
    sched = settings.schedule
    if sched.mode == "off":
        return [], [], None, None, "off: runs only when started by hand or by the mover hook"
    if sched.mode == "interval":
        lines, warnings = interval_lines(int(sched.interval_hours))
        return lines, warnings, None, None, f"every {sched.interval_hours} hour(s)"
    if sched.mode == "cron":
        try:
            parse_cron(sched.cron)
        except ValueError as exc:
            raise UsageError(f"invalid setting schedule.cron: {exc}") from None
        return [" ".join(sched.cron.split())], [], None, None, f"cron {sched.cron}"
    if sched.mode == "before_mover":
        expression, source = effective_mover_schedule(settings)
        if not expression:
            return [], ["the mover has no schedule (Settings > Scheduler > Mover, or Mover Tuning), so "
                        "'before the mover' cannot run: pick an interval or cron schedule"], None, None, \
                "no schedule: the mover has none"
        try:
            lines, warnings = shift_before(expression, int(sched.minutes_before_mover))
        except ValueError as exc:
            raise UsageError(f"cannot read the mover schedule {expression!r} in {source}: {exc}; "
                             "set schedule.mode to interval or cron") from None
        summary = f"{sched.minutes_before_mover} min before the mover ({expression}, from {source})"
        return lines, warnings, expression, source, summary
    raise UsageError(f"invalid setting schedule.mode: {sched.mode!r}; "
                     "use off, interval, cron or before_mover")


def render_cron_file(lines: list[str], summary: str, command: str = RUN_COMMAND) -> str:
    header = f"# Generated by plexcache-r schedule apply: {summary}\n"
    return header + "".join(f"{line} {command}\n" for line in lines)


def apply_schedule(settings: Any, *, command: str = RUN_COMMAND) -> ScheduleResult:
    """Write (or remove) the plugin's .cron file from settings and run update_cron.

    The file is written only when its content changes (the flash drive wears); update_cron always runs,
    so the crontab matches the file even after a reboot or an earlier failure."""
    cron_file = Path(settings.paths.cron_file)
    lines, warnings, expression, source, summary = cron_lines(settings)
    result = ScheduleResult(mode=settings.schedule.mode, cron_file=str(cron_file), lines=lines,
                            mover_schedule=expression, mover_source=source, summary=summary,
                            warnings=list(warnings))
    if lines:
        text = render_cron_file(lines, summary, command)
        try:
            current = cron_file.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            atomic_write_text(cron_file, text, mode=0o644)
            result.changed = True
    elif remove_own_file(cron_file):
        result.changed = True
    result.update_cron = run_update_cron(unraid_command(UPDATE_CRON), result.warnings)
    return result


def next_run_time(settings: Any, now: Optional[float] = None) -> Optional[float]:
    """When the schedule in the .cron file next fires (epoch seconds, local time), or None when unscheduled."""
    try:
        text = Path(settings.paths.cron_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    schedules = [parse_cron(" ".join(line.split()[:5])) for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
    start = dt.datetime.fromtimestamp(now if now is not None else time.time()).replace(second=0, microsecond=0)
    for step in range(1, 8 * 24 * 60 + 1):  # every schedule fires within a week
        moment = start + dt.timedelta(minutes=step)
        if any(_fires(fields, moment) for fields in schedules):
            return moment.timestamp()
    return None


def _fires(fields: list[set[int]], moment: dt.datetime) -> bool:
    minute, hour, dom, month, dow = fields
    return (moment.minute in minute and moment.hour in hour and moment.month in month
            and moment.day in dom and (moment.isoweekday() % 7) in dow)


def refresh_if_stale(settings: Any, *, command: str = RUN_COMMAND) -> Optional[ScheduleResult]:
    """Re-apply the schedule when the .cron file no longer matches what the settings and the current
    mover schedule give (the user moved the mover in Unraid's settings, say); None when it matches.

    Cheap (reads a few small files, writes nothing when current), so a run can call it every time."""
    try:
        lines, _, _, _, summary = cron_lines(settings)
    except UsageError:
        return None  # invalid settings are reported by `schedule apply` and the settings page
    want = render_cron_file(lines, summary, command) if lines else None
    try:
        have: Optional[str] = Path(settings.paths.cron_file).read_text(encoding="utf-8")
    except OSError:
        have = None
    return None if have == want else apply_schedule(settings, command=command)


def run_update_cron(command: str, warnings: list[str]) -> Optional[int]:
    """Run Unraid's update_cron as Unraid does (`/bin/sh -c`, see the module docstring); on failure add a
    warning naming what to do instead of raising."""
    if not Path(command).exists():
        warnings.append(f"{command} not found (not an Unraid server?): the schedule file is written but "
                        "cron was not reloaded")
        return None
    try:
        # Its own process group, so a timeout ends the shell and whatever it started (crontab) together.
        proc = subprocess.Popen(["/bin/sh", "-c", shlex.quote(command)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    except OSError as exc:
        warnings.append(f"{command} could not be started ({exc.strerror}): run it by hand to load the schedule")
        return None
    try:
        out, err = proc.communicate(timeout=UPDATE_CRON_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        warnings.append(f"{command} did not finish within {UPDATE_CRON_TIMEOUT} s: run it by hand to load the "
                        "schedule")
        return None
    if proc.returncode != 0:
        tail = (err or out).strip().splitlines()[-1:] or [""]
        warnings.append(f"{command} exited {proc.returncode} {tail[0]}".rstrip()
                        + ": run it by hand to load the schedule")
    return proc.returncode


# --- Mover Tuning status for the dashboard -----------------------------------------------------------


def _unraid_version(settings: Any) -> Optional[tuple[int, ...]]:
    raw = read_cfg(Path(settings.paths.emhttp_state_dir) / "var.ini").get("version", "")
    numbers = re.findall(r"\d+", raw.split("-")[0])
    return tuple(int(n) for n in numbers[:3]) if numbers else None


def _same_path(a: str, b: str) -> bool:
    try:
        return bool(a) and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def mover_tuning_status(settings: Any) -> dict[str, Any]:
    """Is CA Mover Tuning installed, does it read our ignore list, does the stock schedule bypass it?

    `problems` holds one sentence per thing that lets the mover undo our work, each saying what to do;
    `ok` is True when there is none."""
    plugins = _plugins_dir(settings)
    cfg_path = plugins / MOVER_TUNING / f"{MOVER_TUNING}.cfg"
    cfg = read_cfg(cfg_path)
    installed = mover_tuning_installed(settings)
    ours = settings.paths.exclusion_list
    stock_expr, stock_source = stock_schedule(settings)
    mt_expr, _ = mover_tuning_schedule(settings)
    version = _unraid_version(settings)
    status: dict[str, Any] = {
        "installed": installed,
        "config_file": str(cfg_path),
        "ignore_list_enabled": cfg.get("filelistf", "no") == "yes",
        "ignore_list_path": cfg.get("filelistv", ""),
        "ignore_list_is_ours": _same_path(cfg.get("filelistv", ""), ours),
        "our_ignore_list": ours,
        "before_script": cfg.get("beforeScript", ""),
        "before_script_is_ours": cfg.get("beforeScript", "") == MOVER_HOOK,
        "mover_hook": MOVER_HOOK,
        "mover_tuning_schedule": mt_expr,
        "stock_schedule": stock_expr,
        "stock_schedule_source": stock_source,
        "unraid_version": ".".join(map(str, version)) if version else None,
        "stock_bypasses_mover_tuning": False,
    }
    # Known version: 7.2.1+ runs the stock mover unwrapped. Unknown: judge by Mover Tuning's own cron.
    modern = version >= STOCK_BYPASS_FROM if version else bool(mt_expr)
    status["stock_bypasses_mover_tuning"] = bool(installed and stock_expr and modern)
    status["problems"] = _problems(status)
    status["ok"] = not status["problems"]
    return status


def _problems(s: dict[str, Any]) -> list[str]:
    if not s["installed"]:
        return ["CA Mover Tuning is not installed: the stock mover has no ignore list and will move cached "
                "files back to the array; install Mover Tuning from Community Applications"]
    problems = []
    if not (s["ignore_list_enabled"] and s["ignore_list_is_ours"]):
        problems.append("Mover Tuning does not read our ignore list: in Settings > Scheduler > Mover Tuning "
                        "set 'Ignore files listed inside of a text file' to Yes and the file to "
                        f"{s['our_ignore_list']}")
    if s["stock_bypasses_mover_tuning"]:
        problems.append(f"the stock mover schedule ({s['stock_schedule']}) still runs and ignores Mover "
                        "Tuning's filters: set Settings > Scheduler > Mover schedule to Disabled")
    return problems
