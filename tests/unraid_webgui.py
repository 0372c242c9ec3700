"""Where Unraid's own webGui releases are (the test fixture the plugin is run against, GPL-2.0, never copied
into the project): `$UNRAID_WEBGUI_ROOT`, else `<repo>/../shared/unraid-webgui`, one folder per release
(`6.12.15/`, `7.2.8/`, ...), each holding that release's `emhttp/`, `sbin/` and `etc/`.

    versions() -> [(version, path), ...]   every release found, oldest first; [] when there is none
    at_least(version, oldest)               release order (a pre-release counts as its release)
    MISSING                                 the skip reason when there is none (names both places)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV = "UNRAID_WEBGUI_ROOT"
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "unraid-webgui"
MISSING = f"no Unraid webGui releases: set ${ENV} or put them in {DEFAULT}"


def root() -> Path:
    return Path(os.environ.get(ENV) or DEFAULT)


def release_key(name: str) -> tuple[int, ...]:
    """6.12.15 < 7.2.8 < 7.4.0-beta.0.3 (numbers in order; the pre-release's own numbers come last)."""
    return tuple(int(n) for n in re.findall(r"\d+", name))


def versions() -> list[tuple[str, Path]]:
    found = [(p.name, p) for p in root().glob("*") if (p / "emhttp").is_dir()]
    return sorted(found, key=lambda item: release_key(item[0]))


def at_least(version: str, oldest: str) -> bool:
    """Whether `version` is `oldest` or later (a pre-release counts as its release: 7.4.0-beta >= 7.4)."""
    return release_key(version)[:3] >= release_key(oldest)[:3]
