"""Where Unraid's own webGui releases are: `$UNRAID_WEBGUI_ROOT`, else `<repo>/../shared/unraid-webgui`.

Each release is a folder (6.12.15, 7.2.8, ...) holding `emhttp/`, `sbin/` and `etc/` as Unraid ships them.
The page tests run that code (its local_prepend.php, template.php and DefaultPageLayout); nothing of it is
copied into the project.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]
PREPEND = "emhttp/plugins/dynamix/include/local_prepend.php"
NEWEST_STABLE = "7.2.8"   # the full browser suite runs on this one; the others get the smoke set


def root() -> Path:
    env = os.environ.get("UNRAID_WEBGUI_ROOT")
    return Path(env) if env else REPO.parent / "shared" / "unraid-webgui"


def _key(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in name.replace("-", ".").split("."))


def versions() -> list[str]:
    """The releases found, oldest first (a folder counts when it has Unraid's local_prepend.php)."""
    base = root()
    if not base.is_dir():
        return []
    return sorted((d.name for d in base.iterdir() if (d / PREPEND).is_file()), key=_key)


def at_least(version: str, oldest: str) -> bool:
    """Whether `version` is `oldest` or later (a pre-release counts as its release: 7.4.0-beta >= 7.4)."""
    return _key(version)[:3] >= _key(oldest)[:3]


def path(version: str) -> Path:
    return root() / version


def missing_reason() -> Optional[str]:
    """Why no release can be used, naming both places looked at; None when at least one is there."""
    if versions():
        return None
    env = os.environ.get("UNRAID_WEBGUI_ROOT") or "unset"
    return (f"needs Unraid's webGui releases: none found in $UNRAID_WEBGUI_ROOT ({env}) or, when it is "
            f"unset, in {REPO.parent / 'shared' / 'unraid-webgui'}")


def smoke_versions() -> list[str]:
    """Every release but the newest stable one: they get the smoke set of browser tests."""
    return [v for v in versions() if v != NEWEST_STABLE]
