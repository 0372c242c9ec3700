"""Titles pinned by rating key: searching Plex's titles (movies, shows, seasons) with its search endpoint, the
pins (kept by pinstore.py), and what a pinned title holds (the movie, or every episode of the
show or season) for discovery, which wants each file with the reason "pinned" (docs/cli.md, "Pin by title").

One request answers a search (`/hubs/search`), plus one per show found (its seasons, at most SEASON_LOOKUPS);
two requests check a key when it is pinned (what it is, what it holds), and one reads a pinned title's
files at each run.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Optional
from urllib.parse import urlencode

from plexapi import exceptions as plexexc
from plexapi.server import PlexServer

from plexcache.config import Settings
from plexcache.errors import PlexUnavailable, UsageError
from plexcache.http import SessionFactory, make_session
from plexcache.pinstore import PinnedTitle, load, save
from plexcache.plexread import (
    PLEX_ERRORS,
    Video,
    connect,
    describe_error,
    element_record,
    elements,
    library_sections,
    query,
)
from plexcache.runctl import RunLock

KINDS = ("movie", "show", "season")
SEASON_LOOKUPS = 5         # shows found whose seasons are listed with the answer (one request each)
MAX_QUERY = 100


def pin(settings: Settings, key: str, on: bool = True, *,
        session_factory: Optional[SessionFactory] = None) -> dict[str, Any]:
    """Pin (or unpin) a movie, show or season by its rating key. Pinning asks Plex what the key is first: an
    unknown key, another kind of item, a library not chosen or Plex unreadable is refused and nothing changes."""
    key = key.strip()
    if not key.isdigit():
        raise UsageError(f"{key!r} is not a Plex rating key (a number); find one with `plexcache-r plex search`")
    with RunLock(settings.paths.volatile_dir):
        titles = load(settings)
        if not on:
            gone = titles.pop(key, None)
            if gone is not None:
                save(settings, titles)
            return {"changed": gone is not None, "title": asdict(gone) if gone else None}
        if key in titles:
            return {"changed": False, "title": asdict(titles[key])}
        title, held = describe(settings, key, session_factory=session_factory)
        titles[key] = title
        save(settings, titles)
        return {"changed": True, "title": asdict(title), "files": len(held),
                "size": sum(v.size for v in held)}


# ------------------------------------------------------------------ Plex


def _server(settings: Settings, session_factory: Optional[SessionFactory], then: str = "") -> PlexServer:
    session = (session_factory or make_session)(settings.plex.timeout)
    try:
        server, _info = connect(settings.plex.url, settings.plex.token, session, settings.plex.timeout)
    except PLEX_ERRORS as exc:
        raise PlexUnavailable(f"cannot read Plex at {settings.plex.url}: {describe_error(exc)}{then}") from None
    return server


def _chosen(settings: Settings, server: PlexServer) -> dict[int, str]:
    """The movie and TV libraries the settings choose (all of them when none is named): id -> title."""
    wanted = {str(x).strip().lower() for x in settings.plex.libraries}
    return {s.id: s.title for s in library_sections(server) if s.kind in ("movie", "show")
            and (not wanted or str(s.id) in wanted or s.title.lower() in wanted)}


def describe(settings: Settings, key: str, *,
             session_factory: Optional[SessionFactory] = None) -> tuple[PinnedTitle, list[Video]]:
    """What a rating key is, as a title to pin, and the videos it holds now (so the person pinning a show sees
    how much it asks of the pool); UsageError when it is not a movie, show or season of a chosen library,
    PlexUnavailable when Plex cannot say."""
    server = _server(settings, session_factory, "; nothing was pinned")
    try:
        chosen = _chosen(settings, server)
        found = [e for e in query(server, f"/library/metadata/{key}", "the pinned title")
                 if e.tag in ("Video", "Directory")]
    except plexexc.NotFound:
        raise UsageError(f"Plex has no item with the rating key {key}; nothing was pinned") from None
    except PLEX_ERRORS as exc:
        raise PlexUnavailable(f"Plex could not say what {key} is: {describe_error(exc)}; nothing was pinned") from None
    if not found:
        raise UsageError(f"Plex has no item with the rating key {key}; nothing was pinned")
    a = found[0].attrib
    kind = a.get("type", "")
    if kind not in KINDS:
        raise UsageError(f"{key} is a {kind or 'item'} ({a.get('title', '')}); pin a movie, a show or a season")
    section = int(a.get("librarySectionID") or -1)
    if section not in chosen:
        raise UsageError(f"{a.get('title', key)} is in a library plexcache-r does not read (plex.libraries); "
                         "nothing was pinned")
    title = PinnedTitle(rating_key=key, kind=kind, title=_label(a), library=chosen[section], pinned_at=time.time())
    try:
        return title, videos(server, title)
    except PLEX_ERRORS as exc:
        raise PlexUnavailable(f"Plex could not list {title.title}: {describe_error(exc)}; nothing was pinned") \
            from None


def _label(a: dict[str, str]) -> str:
    """"Severance - Season 2", "Arrival (2016)", "Severance (2022)"."""
    if a.get("type") == "season":
        return f"{a.get('parentTitle', '')} - {a.get('title', '')}"
    year = f" ({a['year']})" if a.get("year") else ""
    return f"{a.get('title', '')}{year}"


def search(settings: Settings, text: str, limit: int = 10, *,
           session_factory: Optional[SessionFactory] = None) -> dict[str, Any]:
    """Movies, shows and seasons of the chosen libraries whose title matches, from Plex's search endpoint;
    each show with its seasons, and whether each is pinned already."""
    text = " ".join(text.split())
    if not text or len(text) > MAX_QUERY:
        raise UsageError(f"give a title to search for (1 to {MAX_QUERY} characters)")
    session = (session_factory or make_session)(settings.plex.timeout)
    server = _server(settings, lambda _timeout: session)
    pinned = load(settings)
    try:
        chosen = _chosen(settings, server)
        hubs = query(server, "/hubs/search?" + urlencode({"query": text, "limit": limit}), "the search")
        hits = [_hit(item, chosen, pinned) for hub in hubs if hub.tag == "Hub" and hub.get("type") in KINDS
                for item in hub if item.tag in ("Video", "Directory")]
        shows = {r["rating_key"] for r in hits if r is not None and r["kind"] == "show"}
        # a season of a show found too is listed under that show, not twice
        results = [r for r in hits if r is not None and r.get("show_key") not in shows]
        for show in [r for r in results if r["kind"] == "show"][:SEASON_LOOKUPS]:
            show["seasons"] = [s for s in (_hit(e, chosen, pinned) for e in
                                           elements(server, f"/library/metadata/{show['rating_key']}/children"))
                               if s is not None and s["kind"] == "season"]
    except PLEX_ERRORS as exc:
        raise PlexUnavailable(f"Plex could not search: {describe_error(exc)}") from None
    return {"query": text, "results": results, "plex_requests": session.sent}


def _hit(elem: Any, chosen: dict[int, str], pinned: dict[str, PinnedTitle]) -> Optional[dict[str, Any]]:
    a = elem.attrib
    kind, key = a.get("type", ""), a.get("ratingKey", "")
    section = int(a.get("librarySectionID") or -1)
    if kind not in KINDS or not key or section not in chosen:
        return None
    return {"rating_key": key, "kind": kind, "title": _label(a), "year": a.get("year"), "library": chosen[section],
            "episodes": int(a["leafCount"]) if a.get("leafCount", "").isdigit() else None,
            "pinned": key in pinned, **({"show_key": a.get("parentRatingKey", "")} if kind == "season" else {})}


def videos(server: PlexServer, title: PinnedTitle) -> list[Video]:
    """What a pinned title holds now: the movie, or every episode of the show or season (one request)."""
    key = f"/library/metadata/{title.rating_key}" + ("/allLeaves" if title.kind in ("show", "season") else "")
    return [v for v in (element_record(e) for e in elements(server, key)) if v is not None]
