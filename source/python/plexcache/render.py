"""Human text for the CLI, made from the same JSON documents `--json` prints (docs/cli.md)."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional

SOURCE_WORDS = {"playing": "playing now", "on_deck": "On Deck", "next_episode": "next episode",
                "watchlist": "watchlist", "pinned": "pinned"}


def human_bytes(count: Optional[float]) -> str:
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def human_age(seconds: Optional[float], now: Optional[float] = None) -> str:
    if not seconds:
        return "never"
    delta = max(0, (now or time.time()) - seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if delta >= size:
            return f"{delta / size:.0f} {unit} ago"
    return "just now"


def reason_words(reason: dict[str, Any]) -> str:
    """'On Deck, in progress' rather than 'On Deck (On Deck, in progress)': the detail, led by the source."""
    words = SOURCE_WORDS.get(reason.get("source", ""), reason.get("source", ""))
    detail = reason.get("detail") or ""
    if detail.lower().startswith(words.lower()):
        return detail
    return f"{words}, {detail}" if detail else words


def describe_reasons(reasons: list[dict[str, Any]]) -> str:
    return "; ".join(f"{reason.get('user', '?')}: {reason_words(reason)}" for reason in reasons)


def unknown_words(unknown: dict[str, Any]) -> str:
    """'could not read Plex (server): timed out' / 'could not read on_deck for alice: HTTP 401 …'."""
    scope = unknown["scope"]
    if scope.startswith("("):  # the whole server, or every user but the owner
        whom = "Plex" if scope == "(server)" else "Plex's other users"
        return f"could not read {whom} ({unknown['source']}): {unknown['error']}"
    return f"could not read {unknown['source']} for {scope}: {unknown['error']}"


def _unknown_lines(unknown: list[dict[str, Any]]) -> list[str]:
    return [f"  ! {unknown_words(u)}" for u in unknown]


def render_plan(document: dict[str, Any]) -> str:
    actions = document.get("actions", [])
    lines = []
    for kind, title in (("cache", "Will cache"), ("move_back", "Will move back to the array"),
                        ("keep", "Stays cached"), ("skip", "Skipped")):
        chosen = [a for a in actions if a["action"] == kind]
        if not chosen:
            continue
        lines.append(f"{title} ({len(chosen)}):")
        for action in chosen:
            why = describe_reasons(action.get("reasons", [])) or action.get("why", "")
            size = f" [{human_bytes(action['size'])}]" if action.get("size") else ""
            lines.append(f"  {action.get('title') or action['path']}{size}\n      {why}")
    if document.get("unknown"):
        lines.append("Plex could not be read for part of the demand; nothing is moved back on its account:")
        lines.extend(_unknown_lines(document["unknown"]))
    for path in document.get("unmapped", []):
        lines.append(f"  ! no path mapping for Plex path {path}")
    summary = document.get("summary", {})
    lines.append(f"Summary: {summary.get('cache', 0)} to cache ({human_bytes(summary.get('bytes_to_cache', 0))}), "
                 f"{summary.get('move_back', 0)} to move back, {summary.get('keep', 0)} kept.")
    return "\n".join(lines)


def render_report(report: Any) -> str:
    document = report.to_json() if hasattr(report, "to_json") else report
    lines = [document.get("message", "")] if document.get("message") else []
    lines.append(f"Cached {document.get('cached', 0)} file(s) ({human_bytes(document.get('bytes_cached', 0))}), "
                 f"moved back {document.get('moved_back', 0)} ({human_bytes(document.get('bytes_moved_back', 0))}), "
                 f"{document.get('failed', 0)} failed.")
    lines.extend(_unknown_lines(document.get("unknown", [])))
    lines.extend(f"  ! {w if isinstance(w, str) else w.get('message', w)}" for w in document.get("warnings", []))
    return "\n".join(line for line in lines if line)


def render_status(document: dict[str, Any]) -> str:
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
    last = document.get("last_run")
    if last:
        lines.append(f"Last run: {human_age(last.get('finished_at'))}, exit {last.get('exit_code')}: "
                     f"{last.get('message', '')}")
    lines.extend(f"  ! {w['message']}" for w in document.get("warnings", []))
    return "\n".join(lines)


def render_list(document: dict[str, Any]) -> str:
    files = document.get("files", [])
    if not files:
        return "No managed files."
    lines = []
    for entry in files:
        pin = " (pinned)" if entry.get("pinned") else ""
        lines.append(f"{human_bytes(entry.get('size')):>9}  {human_age(entry.get('cached_at')):>12}  "
                     f"{entry['path']}{pin}\n{'':>25}{describe_reasons(entry.get('reasons', []))}")
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
        lines.append(f"  [{outcome.get('result')}] {outcome.get('fix')} {outcome.get('action', '')}: "
                     f"{outcome.get('path', '')} - {outcome.get('message', '')}")
    return "\n".join(lines)


def terminal_progress(stream: Any = None) -> Callable[[dict[str, Any]], None]:
    """A progress callback drawing one updating line: files, bytes, rate and ETA."""
    out = stream or sys.stderr

    def draw(progress: dict[str, Any]) -> None:
        total = progress.get("bytes_total") or 0
        done = progress.get("bytes_done") or 0
        width = 24
        filled = int(width * done / total) if total else 0
        eta = progress.get("eta_seconds")
        eta_text = f" ETA {int(eta) // 60}:{int(eta) % 60:02d}" if eta else ""
        out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {progress.get('files_done', 0)}/"
                  f"{progress.get('files_total', 0)} files  {human_bytes(done)}/{human_bytes(total)}  "
                  f"{human_bytes(progress.get('rate_bps') or 0)}/s{eta_text}   ")
        if progress.get("phase") == "finishing":
            out.write("\n")
        out.flush()

    return draw
