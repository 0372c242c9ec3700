"""plexcache-r: keeps the media Plex users are about to watch on the Unraid cache pool.

The version lives in the file VERSION beside this one and nowhere else: the CLI, `status`, pyproject.toml,
build.sh (the package name and the .plg) all read it.
"""

from pathlib import Path

__version__ = (Path(__file__).parent / "VERSION").read_text(encoding="utf-8").strip()
