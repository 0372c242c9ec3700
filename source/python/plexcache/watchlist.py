"""Watchlists: the discover API for the owner and home users, the RSS feed for friends.

A watchlist names items by GUID (plex://, imdb://, tmdb://, tvdb://), never by the server's rating keys.
They are matched against ONE listing per library (an index built once per run), not searched one by one,
and never by title (a title match once cached the wrong film for a user of an older tool).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Optional

from plexcache.plexread import PAGE, Video, element_guids, element_record, elements

DISCOVER = "https://discover.provider.plex.tv"


@dataclass(frozen=True)
class Entry:
    """One watchlist entry: what it names, and when it was added when the source says so."""

    guids: tuple[str, ...]
    kind: str  # movie | show
    title: str
    added_at: Optional[float] = None
    author: str = ""  # RSS only: the plex.tv user id (or uuid) whose watchlist it is


@dataclass
class LibraryItem:
    """A movie (with its files) or a show (its rating key; episodes are read per user)."""

    rk: str
    kind: str  # movie | show
    title: str
    section_id: int
    video: Optional[Video] = None  # movies only


@dataclass
class GuidIndex:
    by_guid: dict[str, LibraryItem] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)  # items per section, for reports

    def add_section(self, server: Any, section_id: int, kind: str) -> None:
        """One request: every movie or show of a section with its GUIDs."""
        libtype = 1 if kind == "movie" else 2
        count = 0
        for elem in elements(server, f"/library/sections/{section_id}/all?includeGuids=1&type={libtype}"):
            if elem.attrib.get("type") != kind or not elem.attrib.get("ratingKey"):
                continue
            count += 1
            entry = LibraryItem(rk=elem.attrib["ratingKey"], kind=kind, title=elem.attrib.get("title", ""),
                                section_id=section_id,
                                video=element_record(elem, section_id) if kind == "movie" else None)
            for guid in element_guids(elem):
                self.by_guid.setdefault(guid, entry)
        self.sizes[section_id] = count

    def match(self, entry: Entry) -> Optional[LibraryItem]:
        for guid in entry.guids:
            found = self.by_guid.get(guid)
            if found is not None and found.kind == entry.kind:
                return found
        return None


def _epoch_attr(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def discover_watchlist(account: Any, token: str) -> list[Entry]:
    """A plex.tv user's own watchlist (owner or a switched home user), paged, one request per page.

    plexapi's account.watchlist() also builds a metadata-server object (one more request) and wraps
    every item; only the GUIDs are needed, so the same endpoint is read here with the user's token.
    """
    out: list[Entry] = []
    start = 0
    while True:
        headers = {"X-Plex-Token": token, "X-Plex-Container-Start": str(start),
                   "X-Plex-Container-Size": str(PAGE)}
        data = account.query(f"{DISCOVER}/library/sections/watchlist/all?includeCollections=1"
                             "&includeExternalMedia=1&includeGuids=1", headers=headers)
        if data is None:
            raise ValueError("empty response")
        elems = [e for e in data if e.attrib.get("type") in ("movie", "show")]
        for elem in elems:
            guids = [elem.attrib["guid"]] if elem.attrib.get("guid") else []
            guids += [g.attrib["id"] for g in elem.iter("Guid") if g.attrib.get("id")]
            out.append(Entry(guids=tuple(guids), kind=elem.attrib["type"], title=elem.attrib.get("title", ""),
                             added_at=_epoch_attr(elem.attrib.get("watchlistedAt"))))
        total = int(data.attrib.get("totalSize") or data.attrib.get("size") or len(elems))
        start += len(elems)
        if not elems or start >= total:
            return out


def parse_rss(body: str, content_type: str = "") -> tuple[list[Entry], Optional[str]]:
    """Entries of a watchlist RSS feed (XML, or JSON with ?format=json) and the next page's address."""
    if "json" in content_type or body.lstrip().startswith("{"):
        doc = json.loads(body)
        items = doc["items"]
        entries = [Entry(guids=tuple(str(g) for g in (it.get("guids") or [])), kind=_kind(it.get("category")),
                         title=str(it.get("title", "")), author=str(it.get("author") or ""))
                   for it in items]
        nxt = (doc.get("links") or {}).get("next")
        return [e for e in entries if e.kind], nxt
    root = ET.fromstring(body.encode("utf-8"))
    if root.tag != "rss" or root.find("channel") is None:
        raise ValueError("not an RSS document")
    entries = []
    for item in root.iter("item"):
        guids = tuple(g.text.strip() for g in item.findall("guid") if g.text and g.text.strip())
        kind = _kind(item.findtext("category"))
        if kind:
            entries.append(Entry(guids=guids, kind=kind, title=item.findtext("title") or "",
                                 author=(item.findtext("author") or "").strip()))
    return entries, None


def _kind(category: Any) -> str:
    text = str(category or "").lower()
    return "movie" if text == "movie" else "show" if text in ("show", "tv", "series") else ""


def first_unwatched(episodes: list[Video], count: int, specials: bool) -> list[Video]:
    """The first `count` episodes of a show this user has not watched, in Plex order."""
    out = []
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
    return sorted(placed, key=lambda e: (e.season, e.episode))
