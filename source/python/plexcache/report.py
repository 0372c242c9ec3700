"""The outcome of one command as data: what it did, its exit code and the one-line summary the last-run
record keeps; the plan as `plan --json` shows it (docs/cli.md). The words around it are made at the edge
(render, notify, the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from plexcache.demand import Demand
from plexcache.planner import Plan
from plexcache.state import Registry


@dataclass
class RunReport:
    """What one command did; `summary()` is the last-run record, `to_json()` the `run --json` document."""

    action: str = "run"
    run_id: str = ""  # the id its log lines, events and history line carry (runs.py)
    started_at: float = 0.0
    finished_at: float = 0.0
    dry_run: bool = False
    exit_code: int = 0
    plan: Optional[Plan] = None
    cached: int = 0
    moved_back: int = 0
    failed: int = 0
    skipped: int = 0
    bytes_cached: int = 0
    bytes_moved_back: int = 0
    plex_requests: int = 0
    unknown: list[dict[str, str]] = field(default_factory=list)
    still_wanted: list[dict[str, Any]] = field(default_factory=list)  # evict: moved back, but wanted still
    unmapped: list[str] = field(default_factory=list)
    filtered: list[dict[str, str]] = field(default_factory=list)  # left out by a demand filter, with why
    warnings: list[str] = field(default_factory=list)
    stray_backups: int = 0  # wanted files not cached: a backup beside them is not provably the same bytes
    failures: list[str] = field(default_factory=list)
    activity: list[str] = field(default_factory=list)
    message: str = ""
    disks: dict[str, str] = field(default_factory=dict)  # plan: the array disk each planned file is (or was) on

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "started_at": self.started_at, "finished_at": self.finished_at,
                "exit_code": self.exit_code,
                "dry_run": self.dry_run, "cached": self.cached, "moved_back": self.moved_back,
                "failed": self.failed, "bytes_cached": self.bytes_cached,
                "bytes_moved_back": self.bytes_moved_back, "skipped": self.skipped,
                "plex_requests": self.plex_requests, "unknown": self.unknown, "warnings": self.warnings,
                "stray_backups": self.stray_backups, "message": self.message}

    def to_json(self) -> dict[str, Any]:
        doc = plan_json(self.plan, self.dry_run, self.unknown, self.unmapped, self.filtered)
        doc.update(self.summary())
        doc.update({"action": self.action, "failures": self.failures, "still_wanted": self.still_wanted})
        return doc


def plan_json(p: Optional[Plan], dry_run: bool, unknown: list[dict[str, str]],
              unmapped: list[str], filtered: Optional[list[dict[str, str]]] = None) -> dict[str, Any]:
    """The `plan --json` shape (docs/cli.md)."""
    items = p.items if p else []
    summary = p.summary() if p else Plan().summary()
    return {"dry_run": dry_run, "actions": [i.to_json() for i in items], "unknown": unknown,
            "unmapped": unmapped, "filtered": filtered or [], "summary": summary}


def final_exit_code(report: RunReport, demand: Demand) -> int:
    if report.exit_code == 5:
        return 5
    if demand.server_unknown:
        return 3
    return 1 if report.failed else 0


def one_line(report: RunReport, registry: Registry) -> str:
    dry = "dry run: " if report.dry_run else ""
    if report.exit_code == 5:
        return f"{dry}stopped on request after {report.cached} cached and {report.moved_back} moved back"
    p = report.plan
    if report.dry_run and p is not None:
        s = p.summary()
        return f"dry run: would cache {s['cache']} and move back {s['move_back']} file(s); nothing was moved"
    if report.exit_code == 3:
        lead = "Plex could not be read, so nothing was moved back"
    elif not (report.cached or report.moved_back or report.failed or report.activity or report.warnings):
        return f"nothing to do: {len(registry)} file(s) cached, all up to date"
    elif not (report.cached or report.moved_back or report.failed or report.activity):
        return f"nothing moved: {len(registry)} file(s) cached; {len(report.warnings)} warning(s) to look at"
    else:
        lead = f"cached {report.cached}, moved back {report.moved_back}"
    return f"{dry}{lead}" + (f"; {report.failed} failed" if report.failed else "")


def worth_telling(report: RunReport) -> bool:
    return bool(report.cached or report.moved_back or report.failed or report.exit_code or report.warnings
                or report.unknown or report.activity)


