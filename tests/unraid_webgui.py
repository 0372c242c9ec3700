"""Where Unraid's own webGui releases are (the test fixture the plugin is run against, GPL-2.0, never copied
into the project): `$UNRAID_WEBGUI_ROOT`, else `<repo>/../shared/unraid-webgui`, one folder per release
(`6.12.15/`, `7.2.8/`, ...), each holding that release's `emhttp/`, `sbin/` and `etc/`.

    versions() -> [(version, path), ...]   every release found, oldest first; [] when there is none
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


def versions() -> list[tuple[str, Path]]:
    found = [(p.name, p) for p in root().glob("*") if (p / "emhttp").is_dir()]
    return sorted(found, key=lambda item: tuple(int(n) for n in re.findall(r"\d+", item[0])))
