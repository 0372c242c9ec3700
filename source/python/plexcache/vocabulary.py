"""The words the pages show for the backend's own terms: exit codes, reasons a file is cached, health-check
finding kinds and fixes, notification levels, and the settings file's place.

Each table is keyed by the constants the backend produces (the error classes, demand.Source, findings.KINDS and
FIXES, config.Level), so the pages read them from one document (`config schema`) instead of keeping copies
that drift; a test checks every constant has its words.
"""

from __future__ import annotations

import typing
from typing import Any

from plexcache import config, demand, errors
from plexcache.audit import findings, fixes
from plexcache.words import SOURCE_WORDS

EXIT_WORDS = errors.EXIT_WORDS

# demand.Source in the log's words (words.SOURCE_WORDS), as a heading; and what a file kept only for its
# retention time shows
REASON_WORDS = {**{key: text[:1].upper() + text[1:] for key, text in SOURCE_WORDS.items()},
                "retention": "Retention"}

KIND_WORDS = {"interrupted": "Interrupted operations", "unprotected": "Unprotected cached files",
              "stale": "Stale entries", "orphaned": "Orphaned backups", "duplicate": "Duplicates",
              "untracked": "Untracked copies on the pool", "mismatch": "Copies that differ",
              "stray": "Stray backups", "leftover": "Leftover temporary copies"}

FIX_WORDS = {"recover": "Finish or roll back", "protect": "Protect", "sync": "Update the records",
             "restore": "Restore the original", "delete-redundant": "Delete the redundant copy",
             "keep-new": "Keep the new file", "keep-original": "Restore the original",
             "settle": "Compare, and remove the backup if identical",
             "keep": "Keep this copy", "retire-extras": "Keep the backup on the file's disk",
             "remove-leftover": "Remove the partial copy",
             fixes.ALL_SAFE: "Fix all safely"}

LEVEL_WORDS = {"summary": "Run summaries", "activity": "Each file moved", "warnings": "Warnings", "errors": "Errors"}


def reasons() -> tuple[str, ...]:
    """Every reason a managed file can show: demand's sources, and retention."""
    return (*typing.get_args(demand.Source), "retention")


def document() -> dict[str, Any]:
    return {"exit_codes": {str(code): words for code, words in sorted(EXIT_WORDS.items())},
            "reasons": {key: REASON_WORDS[key] for key in reasons()},
            "finding_kinds": {kind: KIND_WORDS[kind] for kind in findings.KINDS},
            "fixes": {fix: FIX_WORDS[fix] for fix in (*fixes.FIXES, fixes.ALL_SAFE)},
            "choices": list(findings.CHOICES),
            "levels": {level: LEVEL_WORDS[level] for level in typing.get_args(config.Level)},
            "config_file": config.DEFAULT_CONFIG_PATH}
