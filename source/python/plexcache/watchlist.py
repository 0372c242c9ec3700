"""Watchlists matched against the server's libraries, and the episodes they bring.

A watchlist names items by GUID (plex://, imdb://, tmdb://, tvdb://), never by the server's rating keys.
They are matched against ONE listing per library (an index built once per run), not searched one by one,
and never by title (a title match once cached the wrong film for a user of an older tool). Reading the
watchlists themselves (the discover API, the RSS feed) is plexread's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from plexcache.plexread import Entry, LibraryItem, PlexQuery, Video, library_items


@dataclass
class GuidIndex:
    by_guid: dict[str, LibraryItem] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)  # items per section, for reports

    def add_section(self, server: PlexQuery, section_id: int, kind: str) -> None:
        """One request: every movie or show of a section with its GUIDs."""
        items = library_items(server, section_id, kind)
        for item in items:
            for guid in item.guids:
                self.by_guid.setdefault(guid, item)
        self.sizes[section_id] = len(items)

    def match(self, entry: Entry) -> Optional[LibraryItem]:
        for guid in entry.guids:
            found = self.by_guid.get(guid)
            if found is not None and found.kind == entry.kind:
                return found
        return None


def first_unwatched(episodes: list[Video], count: int, specials: bool) -> list[Video]:
    """The first `count` episodes of a show this user has not watched, in Plex order."""
    out: list[Video] = []
    for ep in ordered(episodes):
        if len(out) >= count:
            break
        if (ep.season == 0 and not specials) or ep.view_count > 0:
            continue
        out.append(ep)
    return out


def ordered(episodes: list[Video]) -> list[Video]:
    """Season then episode order; episodes without numbers cannot be placed and are left out."""
    placed = [e for e in episodes if e.season is not None and e.episode is not None]
    return sorted(placed, key=lambda e: (e.season or 0, e.episode or 0))
