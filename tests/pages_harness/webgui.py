"""The Unraid webGui releases the page tests run in (tests/unraid_webgui.py finds them), and which of them get
the full browser suite. The page tests run their code (local_prepend.php, template.php, DefaultPageLayout);
nothing of it is copied into the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import unraid_webgui
from unraid_webgui import at_least, root

__all__ = ["NEWEST_STABLE", "PREPEND", "at_least", "missing_reason", "path", "root", "smoke_versions", "versions"]

PREPEND = "emhttp/plugins/dynamix/include/local_prepend.php"
NEWEST_STABLE = "7.2.8"   # the full browser suite runs on this one; the others get the smoke set


def versions() -> list[str]:
    """The releases found, oldest first (a folder counts when it has Unraid's local_prepend.php)."""
    return [name for name, where in unraid_webgui.versions() if (where / PREPEND).is_file()]


def path(version: str) -> Path:
    return root() / version


def missing_reason() -> Optional[str]:
    """Why no release can be used, naming both places looked at; None when at least one is there."""
    return None if versions() else unraid_webgui.MISSING


def smoke_versions() -> list[str]:
    """Every release but the newest stable one: they get the smoke set of browser tests."""
    return [v for v in versions() if v != NEWEST_STABLE]
