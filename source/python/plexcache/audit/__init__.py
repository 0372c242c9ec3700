"""Cache health: find what is wrong between the registry, the ignore list and the files on disk, and fix it.

`audit(settings, fixes)` scans, reports findings and, when asked, applies fixes. Every fix that touches a
media file goes through the journaled mover (plexcache.media), under the run lock, with progress and stop
like a run, and is recorded in the maintenance history (plexcache.maintenance).

A full scan walks each cacheable share on its pool and on every array disk (one directory walk each, no
per-file probing). `cheap=True` never touches an array disk (no spin-up): it checks the registry against
the pools, the ignore list and the journal, which is what a run can afford to do after every cycle.

The package: `disk` (what is on disk), `findings` (what is wrong), `fixes` (how to repair).
"""

from __future__ import annotations

from typing import Any, Optional

from plexcache.audit.findings import load_registry, scan, summary
from plexcache.audit.fixes import expand_fixes, repair
from plexcache.config import Settings
from plexcache.errors import StopRequested
from plexcache.maintenance import load_records
from plexcache.state import Registry

SCHEMA = 1


def audit(settings: Settings, fixes: Optional[list[str]] = None, cheap: bool = False,
          registry: Optional[Registry] = None) -> dict[str, Any]:
    """Scan (and, with fixes, repair and scan again). Returns the `audit --json` document.

    cheap: never touch an array disk (for the end of a run); ignored when fixes are asked for.
    registry: the registry a caller already holds (a run, under its lock), to spare reading it again;
    ignored when fixes are asked for (they reload it under the lock).
    """
    wanted = expand_fixes(list(fixes or []))
    outcomes: list[dict[str, Any]] = []
    if wanted:
        outcomes, stopped = repair(settings, wanted)
        if stopped:
            raise StopRequested("audit fixes stopped on request after the current file; run the audit again "
                                "to see what is left")
    damaged = None
    if registry is None or wanted:
        registry, damaged = load_registry(settings)
    result = scan(settings, registry, cheap=cheap and not wanted)
    if damaged is not None:
        result.findings.insert(0, damaged)
    done = sum(1 for o in outcomes if o["result"] == "ok")
    checked = (f"checked {result.files_seen} path(s) in {result.seconds:.1f} s"
               + (" (cheap: no array disk read)" if result.cheap else ""))
    message = (checked if not wanted else
               f"applied {done} of {len(outcomes)} fix(es); {len(result.findings)} finding(s) left")
    return {"schema": SCHEMA, "ok": True, "cheap": result.cheap, "message": message,
            "findings": [f.to_json() for f in result.findings], "summary": summary(result.findings),
            "fixes": outcomes, "files_seen": result.files_seen, "seconds": round(result.seconds, 3),
            "history": load_records(settings)}
