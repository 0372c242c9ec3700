"""Human text for the CLI, made from the same JSON documents `--json` prints (docs/cli.md)."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, Optional

from plexcache import errors
from plexcache.words import describe_reasons, human_bytes


def human_age(seconds: Optional[float], now: Optional[float] = None) -> str:
    if not seconds:
        return "never"
    delta = max(0, (now or time.time()) - seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if delta >= size:
            return f"{delta / size:.0f} {unit} ago"
    return "just now"


def unknown_words(unknown: dict[str, Any]) -> str:
    """'could not read Plex (server): timed out' / 'could not read on_deck for alice: HTTP 401 …'."""
    scope = unknown["scope"]
    if scope.startswith("("):  # the whole server, or every user but the owner
        whom = "Plex" if scope == "(server)" else "Plex's other users"
        return f"could not read {whom} ({unknown['source']}): {unknown['error']}"
    return f"could not read {unknown['source']} for {scope}: {unknown['error']}"


def _unknown_lines(unknown: list[dict[str, Any]]) -> list[str]:
    return [f"  ! {unknown_words(u)}" for u in unknown]


PLAN_SECTIONS = (("cache", "Will cache", ""), ("move_back", "Will move back to the array", "why"),
                 ("keep", "Stays cached", "note"), ("skip", "Left out", "why"))


def render_plan(document: dict[str, Any]) -> str:
    """Each section lists its files with who wants them, and (moved back, kept, left out) why."""
    actions = document.get("actions", [])
    lines = []
    for kind, title, why_label in PLAN_SECTIONS:
        chosen = [a for a in actions if a["action"] == kind]
        if not chosen:
            continue
        lines.append(f"{title} ({len(chosen)}):")
        for action in chosen:
            size = f" [{human_bytes(action['size'])}]" if action.get("size") else ""
            lines.append(f"  {action.get('title') or action['path']}{size}")
            wants = describe_reasons(action.get("reasons", []))
            if wants:
                lines.append(f"      wanted by {wants}")
            if why_label and action.get("why"):
                lines.append(f"      {why_label}: {action['why']}")
    if document.get("unknown"):
        lines.append("Plex could not be read for part of the demand; nothing is moved back on its account:")
        lines.extend(_unknown_lines(document["unknown"]))
    for path in document.get("unmapped", []):
        lines.append(f"  ! no path mapping for Plex path {path}")
    for filtered in document.get("filtered", []):
        lines.append(f"  - not wanted: {filtered['title']} ({filtered['why']})")
    summary = document.get("summary", {})
    lines.append(f"Summary: {summary.get('cache', 0)} to cache ({human_bytes(summary.get('bytes_to_cache', 0))}), "
                 f"{summary.get('move_back', 0)} to move back, {summary.get('keep', 0)} kept, "
                 f"{summary.get('skip', 0)} left out.")
    return "\n".join(lines)


SHOWN = 10  # files named one by one in a report; a bulk move back of 10,000 says the rest in a count


def render_report(report: Any) -> str:
    """A run's (or evict's) outcome: one summary line, then what failed, what could not be read and the
    warnings. The counts are said once: the message leads only when it says something they do not."""
    doc = report.to_json() if hasattr(report, "to_json") else report
    cached, moved_back, failed = doc.get("cached", 0), doc.get("moved_back", 0), doc.get("failed", 0)
    moved = bool(cached or moved_back or failed) and not doc.get("dry_run")
    lines = []
    if not moved or doc.get("exit_code") in (3, 5):
        lines.append(doc.get("message", ""))
    if moved and doc.get("exit_code") != 5:
        lines.append(f"Cached {cached} file(s) ({human_bytes(doc.get('bytes_cached', 0))}), moved back "
                     f"{moved_back} ({human_bytes(doc.get('bytes_moved_back', 0))})"
                     + (f", {failed} failed" if failed else "") + ".")
    lines.extend(f"  x {failure}" for failure in doc.get("failures", []))
    still = doc.get("still_wanted", [])
    for wanted in still[:SHOWN]:
        lines.append(f"  - {wanted['path']} is still wanted ({describe_reasons(wanted['reasons'])}); the next "
                     "run caches it again")
    if len(still) > SHOWN:
        lines.append(f"  - and {len(still) - SHOWN} more still wanted: the next run caches them again")
    lines.extend(_unknown_lines(doc.get("unknown", [])))
    lines.extend(f"  ! {w if isinstance(w, str) else w.get('message', w)}" for w in doc.get("warnings", []))
    return "\n".join(line for line in lines if line)


def render_status(document: dict[str, Any], now: Optional[float] = None) -> str:
    """What the Dashboard shows, as text: state, managed files, the pool and its limits, the schedule,
    live mode, the last run and the warnings."""
    cache = document.get("cache") or {}
    counts = document.get("counts") or {}
    lines = [f"State: {document.get('state', 'idle')}"]
    progress = document.get("progress")
    if progress:
        lines.append(f"  {progress.get('phase')}: {progress.get('files_done', 0)}/{progress.get('files_total', 0)} "
                     f"files, {human_bytes(progress.get('bytes_done'))} of {human_bytes(progress.get('bytes_total'))}")
    lines.append(f"Managed: {counts.get('files', 0)} file(s), {human_bytes(counts.get('bytes', 0))}, "
                 f"{counts.get('pinned', 0)} pinned")
    if cache:
        lines.append(f"Pool {cache.get('pool', '?')}: {human_bytes(cache.get('used_bytes'))} used of "
                     f"{human_bytes(cache.get('total_bytes'))}, {human_bytes(cache.get('free_bytes'))} free")
        limit = cache.get("limit_bytes")
        lines.append(f"  cached files: {human_bytes(cache.get('managed_bytes'))} of "
                     + (f"a {human_bytes(limit)} limit" if limit is not None else "no size limit")
                     + f"; {human_bytes(cache.get('floor_bytes'))} always left free")
    lines.append(f"Next run: {_when(document.get('next_run'), now)}")
    lines.append(f"Live mode: {_live_words(document.get('live') or {})}")
    lines.extend(_pace_lines(document.get("pace") or []))
    last = document.get("last_run")
    if last:
        lines.append(f"Last run: {human_age(last.get('finished_at'), now)}, exit {last.get('exit_code')}: "
                     f"{last.get('message', '')}")
    lines.extend(f"  ! {w['message']}" for w in document.get("warnings", []))
    return "\n".join(lines)


def _pace_lines(paces: list[dict[str, Any]]) -> list[str]:
    """Each viewer's learned pace (already fastest first), and what follows from it."""
    if not paces:
        return []
    lines = ["Each viewer's pace:"]
    for p in paces[:SHOWN]:
        show = str(p.get("show", "")).split("/", 1)[-1]
        lines.append(f"  {p.get('user')}, {show}: {pace_words(float(p.get('episodes_per_day') or 0))}; "
                     f"{p.get('ahead')} cached ahead, {p.get('due')} due before the next run")
    if len(paces) > SHOWN:
        lines.append(f"  and {len(paces) - SHOWN} more (plexcache-r --json status)")
    return lines


def pace_words(per_day: float) -> str:
    """'4.3 episodes a day', or for a slow viewer '2 episodes a week' (a fraction of a day reads badly), as
    the Cached files tab words it (halves round up there, so here too); 'none lately' once a viewer stopped."""
    weekly = math.floor(per_day * 7 + 0.5)
    if per_day >= 1:
        count, span = round(per_day, 1), "a day"
    elif weekly >= 1:
        count, span = weekly, "a week"
    elif per_day > 0:
        return f"1 episode every {math.floor(1 / (per_day * 7) + 0.5)} weeks"
    else:
        return "none lately"
    return f"{count:g} episode{'' if count == 1 else 's'} {span}"


def _when(moment: Optional[float], now: Optional[float] = None) -> str:
    if not moment:
        return "not scheduled"
    local = time.strftime("%a %H:%M", time.localtime(moment))
    delta = moment - (now or time.time())
    if delta < 0:
        return local
    ahead = f"{delta / 3600:.0f} h" if delta >= 5400 else f"{max(1, round(delta / 60))} min"
    return f"{local} (in {ahead})"


def _live_words(live: dict[str, Any]) -> str:
    if not live.get("enabled"):
        return "off"
    if not live.get("running"):
        return "on, but not running (it starts with the array)"
    state = live.get("state") or {}
    return "on, following Plex notifications" if state.get("channel") == "notifications" else "on, polling Plex"


def render_history(document: dict[str, Any]) -> str:
    """`history`: one line a run, newest first, then the days that saw plays."""
    lines = []
    for run in document.get("runs", []):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.get("started_at") or 0))
        kind = ("dry run" if run.get("dry_run") else run.get("kind", "run"))
        plays = f"; {run.get('plays_from_pool', 0)} of {run['plays']} play(s) from the pool since" \
            if run.get("plays") else ""
        outcome = errors.EXIT_WORDS.get(run.get("exit_code"), f"exit {run.get('exit_code', '?')}")
        lines.append(f"{when}  {kind:<9} {run.get('id', '')}  {outcome}: {run.get('message', '')}{plays}")
    if not lines:
        lines.append("No run recorded yet.")
    played = [d for d in document.get("days", []) if d.get("plays_pool") or d.get("plays_array")]
    for day in played:
        lines.append(f"{day['day']}: {day['plays_pool']} play(s) from the pool, {day['plays_array']} from the array")
    return "\n".join(lines)


def render_list(document: dict[str, Any], now: Optional[float] = None) -> str:
    files = document.get("files", [])
    if not files:
        return "No managed files."
    lines = [f"{'SIZE':>9}  {'CACHED':>12}  FILE / WHY IT IS CACHED"]
    for entry in files:
        pin = " (pinned)" if entry.get("pinned") else ""
        why = describe_reasons(entry.get("reasons", [])) or (
            "pinned by you" if entry.get("pinned") else "no one wants it now (it goes back after its retention)")
        lines.append(f"{human_bytes(entry.get('size')):>9}  {human_age(entry.get('cached_at'), now):>12}  "
                     f"{entry['path']}{pin}\n{'':>25}{why}")
    total = sum(e.get("size", 0) for e in files)
    lines.append(f"{len(files)} file(s), {human_bytes(total)}")
    return "\n".join(lines)


def render_audit(document: dict[str, Any]) -> str:
    findings = document.get("findings", [])
    lines = [document["message"]] if document.get("message") else []
    if findings:
        lines.append(f"Cache health: {len(findings)} finding(s)")
    elif not document.get("fixes"):
        lines.append("Cache health: no problems found.")
    for finding in findings:
        lines.append(f"  [{finding.get('kind')}] {finding.get('message', '')}")
        if finding.get("fix"):
            lines.append(f"      fix: plexcache-r audit --fix {finding['fix']}")
    for outcome in document.get("fixes", []):
        what = " ".join(dict.fromkeys(w for w in (outcome.get("fix"), outcome.get("action")) if w))
        lines.append(f"  [{outcome.get('result')}] {what}: {outcome.get('path', '')} - {outcome.get('message', '')}")
    return "\n".join(lines)


PHASE_WORDS = {"recovering": "Checking for interrupted operations", "discovering": "Asking Plex what is wanted",
               "planning": "Planning", "copying": "Copying", "finishing": "Saving the state"}


def terminal_progress(stream: Any = None) -> Callable[[dict[str, Any]], None]:
    """A progress callback drawing one updating line: the phase until there is something to copy, then files,
    bytes, rate and ETA."""
    out = stream or sys.stderr
    drawn = [0]  # width of the line on screen, to blank what a shorter line leaves behind

    def draw(progress: dict[str, Any]) -> None:
        phase = progress.get("phase", "")
        files = progress.get("files_total") or 0
        if files and phase in ("copying", "finishing"):
            total = progress.get("bytes_total") or 0
            done = progress.get("bytes_done") or 0
            width = 24
            filled = int(width * done / total) if total else 0
            eta = progress.get("eta_seconds")
            eta_text = f" ETA {int(eta) // 60}:{int(eta) % 60:02d}" if eta else ""
            text = (f"[{'#' * filled}{'.' * (width - filled)}] {progress.get('files_done', 0)}/{files} files  "
                    f"{human_bytes(done)}/{human_bytes(total)}  {human_bytes(progress.get('rate_bps') or 0)}/s"
                    f"{eta_text}")
        else:
            text = PHASE_WORDS.get(phase, phase.capitalize()) + "..."
        out.write("\r" + text.ljust(drawn[0]))
        drawn[0] = len(text)
        if phase == "finishing":
            out.write("\n")
            drawn[0] = 0
        out.flush()

    return draw


SETUP_MARKS = {"done": "[x]", "todo": "[ ]", "broken": "[!]"}


def render_setup(doc: dict[str, Any]) -> str:
    """`setup`: the checklist, one step a line with what to do, and whether a run may start."""
    lines = [f"{SETUP_MARKS.get(s['state'], '[?]')} {s['title']}: {s['detail']}" for s in doc["steps"]]
    for m in doc.get("suggested_mappings", []):
        lines.append(f"    suggested: {m['plex']} -> {m['share']}" + (f" ({m['note']})" if m.get("note") else ""))
    lines.append("Ready to run." if doc["ready"] else "Runs wait for: " + "; ".join(doc["missing"]) + ".")
    return "\n".join(lines)
