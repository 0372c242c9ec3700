"""The titles pinned by rating key (movies, shows, seasons), kept in `state_dir/pinned_titles.json`: read by
discovery, `list` and the pages, changed by `pin --key` (titles.py). No Plex here, so `list` stays light."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from plexcache.config import Settings
from plexcache.fsutil import read_json, write_json_if_changed
from plexcache.layout import PINNED_TITLES_FILE

SCHEMA = 1
PINNED_USER = "(pinned)"   # the user a pin's reason names, as for a pinned file


@dataclass(frozen=True)
class PinnedTitle:
    """A movie, show or season pinned by its rating key, with the words it was pinned under."""

    rating_key: str
    kind: str
    title: str
    library: str = ""
    pinned_at: float = 0.0


def _path(settings: Settings) -> Path:
    return Path(settings.paths.state_dir) / PINNED_TITLES_FILE


def load(settings: Settings) -> dict[str, PinnedTitle]:
    titles = read_json(_path(settings), SCHEMA, remedy="fix it, or remove it to forget the pinned titles "
                       "(until then nothing pinned is moved back on their account)").get("titles") or {}
    return {key: PinnedTitle(rating_key=key, kind=str(t.get("kind", "")), title=str(t.get("title", "")),
                             library=str(t.get("library", "")), pinned_at=float(t.get("pinned_at") or 0))
            for key, t in titles.items() if isinstance(t, dict)}


def save(settings: Settings, titles: dict[str, PinnedTitle]) -> None:
    doc = {"schema": SCHEMA, "titles": {k: {f: v for f, v in asdict(t).items() if f != "rating_key"}
                                        for k, t in sorted(titles.items())}}
    write_json_if_changed(_path(settings), doc)


def listing(settings: Settings) -> list[dict[str, Any]]:
    """The pinned titles, newest first (for `list --json` and the Cached files tab)."""
    return [asdict(t) for t in sorted(load(settings).values(), key=lambda t: -t.pinned_at)]
