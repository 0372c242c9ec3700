"""Low-level reading of Plex through plexapi: counted sessions, error one-liners, plain records.

plexapi objects are heavy and re-fetch themselves when an attribute is missing; everything read here is
turned at once into small records, with plexapi's auto-reload switched off so that no hidden request
is ever made.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional
from xml.etree.ElementTree import ParseError

import requests
from plexapi import exceptions as plexexc

# One page large enough that a listing is one request however big the library (PMS serves any size).
PAGE = 100_000

SessionFactory = Callable[[float], requests.Session]


def default_session_factory(timeout: float) -> requests.Session:
    """The project's one session factory (plexcache.http), imported late so tests may replace it."""
    from plexcache.http import make_session

    return make_session(timeout)


class CountingSession:
    """Counts every HTTP request a session sends, failed ones included (demand.requests)."""

    def __init__(self, session: requests.Session) -> None:
        self.session = session
        self.count = 0
        lock = threading.Lock()
        send = session.send

        def counted(request: Any, **kwargs: Any) -> Any:
            with lock:
                self.count += 1
            return send(request, **kwargs)

        session.send = counted  # type: ignore[method-assign]


def describe_error(exc: BaseException) -> str:
    """One line saying what failed, without URLs (the RSS address is a secret) or tokens."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect"
    if isinstance(exc, plexexc.Unauthorized):
        return "HTTP 401 unauthorized (token rejected or revoked)"
    if isinstance(exc, plexexc.NotFound):
        return "HTTP 404 not found"
    if isinstance(exc, plexexc.BadRequest):
        match = re.match(r"\((\d{3})\)\s*(\w+)", str(exc))
        return f"HTTP {match.group(1)} {match.group(2)}" if match else "request refused"
    if isinstance(exc, ParseError):
        return "malformed XML in the response"
    if isinstance(exc, (ValueError, KeyError)) and "JSON" in type(exc).__name__ + str(exc):
        return "malformed JSON in the response"
    if isinstance(exc, requests.RequestException):
        return f"request failed ({type(exc).__name__})"
    if isinstance(exc, (AttributeError, TypeError, ValueError, LookupError)):
        return "empty or unexpected response"
    return f"{type(exc).__name__}"


# Exceptions that mean "this part of Plex could not be read" (not a bug in this program).
READ_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException, plexexc.PlexApiException, ParseError, AttributeError, TypeError,
    ValueError, KeyError, IndexError, LookupError)  # LookupError: an XML declaration naming an unknown encoding


def quiet(obj: Any) -> Any:
    """Switch off plexapi's auto-reload on an object so reading a missing attribute costs nothing."""
    try:
        obj._autoReload = False
    except AttributeError:
        pass
    return obj


def server_as(server: Any, token: str) -> Any:
    """A copy of the owner's PlexServer that sends another user's PMS token.

    plexapi's own switchUser builds a new PlexServer, which costs a request to `/` per user; the
    server's identity does not change with the token, so a shallow copy with the token swapped is enough.
    """
    clone = copy.copy(server)
    clone._token = token
    clone._server = clone  # plexapi objects query through `_server`, which points at the original
    clone.__dict__.pop("library", None)  # cached per token; never shared with the owner's view
    return clone


def epoch(value: Any) -> Optional[float]:
    """plexapi's datetimes (naive local time) back to epoch seconds."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Video:
    """A movie or an episode as far as demand cares."""

    rk: str
    kind: str  # movie | episode
    title: str
    section_id: Optional[int]
    files: tuple[str, ...]
    size: int
    added_at: Optional[float]
    view_count: int = 0
    view_offset: int = 0
    last_viewed: Optional[float] = None
    show_rk: Optional[str] = None
    season: Optional[int] = None
    episode: Optional[int] = None
    show_title: str = ""

    @property
    def code(self) -> str:
        if self.season is None or self.episode is None:
            return "S??E??"
        return f"S{self.season:02d}E{self.episode:02d}"

    @property
    def label(self) -> str:
        if self.kind == "episode":
            return f"{self.show_title} - {self.code} - {self.title}"
        return self.title


def video_record(obj: Any, section_id: Optional[int] = None) -> Optional[Video]:
    """A plexapi Movie/Episode as a Video record, or None for anything else."""
    quiet(obj)
    kind = getattr(obj, "type", None)
    if kind not in ("movie", "episode"):
        return None
    files: list[str] = []
    size = 0
    for media in getattr(obj, "media", None) or []:
        for part in getattr(media, "parts", None) or []:
            if part.file and part.file not in files:
                files.append(part.file)
                size += int(part.size or 0)
    sid = getattr(obj, "librarySectionID", None) or section_id
    record = Video(
        rk=str(obj.ratingKey), kind=kind, title=obj.title or "", section_id=int(sid) if sid else None,
        files=tuple(files), size=size, added_at=epoch(getattr(obj, "addedAt", None)),
        view_count=int(getattr(obj, "viewCount", 0) or 0), view_offset=int(getattr(obj, "viewOffset", 0) or 0),
        last_viewed=epoch(getattr(obj, "lastViewedAt", None)))
    if kind == "episode":
        show_rk = getattr(obj, "grandparentRatingKey", None)
        record = Video(**{**record.__dict__, "show_rk": str(show_rk) if show_rk is not None else None,
                          "season": getattr(obj, "parentIndex", None), "episode": getattr(obj, "index", None),
                          "show_title": getattr(obj, "grandparentTitle", "") or ""})
    return record


# ------------------------------------------------------------------ bulk listings, read as XML elements
#
# Building a plexapi object costs about a millisecond (attribute casts, lazy Media/Part lists); a library
# listing or a long show has thousands of them. Listings are therefore fetched with plexapi's query() (its
# auth, headers and error mapping) and read straight from the XML elements it returns.


def elements(server: Any, key: str) -> list[Any]:
    """Every item element of a PMS listing, paged with PAGE-sized pages (normally one request)."""
    out: list[Any] = []
    start = 0
    while True:
        data = server.query(key, headers={"X-Plex-Container-Start": str(start),
                                          "X-Plex-Container-Size": str(PAGE)})
        if data is None:
            raise ValueError("empty response")
        section = data.attrib.get("librarySectionID")
        page = [e for e in data if e.tag in ("Video", "Directory")]
        for elem in page:
            if section and "librarySectionID" not in elem.attrib:
                elem.attrib["librarySectionID"] = section
        out.extend(page)
        total = _int(data.attrib.get("totalSize")) or 0
        start += len(page)
        if not page or start >= total:
            return out


def _int(value: Optional[str]) -> Optional[int]:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _epoch(value: Optional[str]) -> Optional[float]:
    number = _int(value)
    return float(number) if number is not None else None


def element_record(elem: Any, section_id: Optional[int] = None) -> Optional[Video]:
    """A Video record from a listing's <Video> element (movie or episode); None for anything else."""
    a = elem.attrib
    kind = a.get("type")
    if kind not in ("movie", "episode") or not a.get("ratingKey"):
        return None
    files: list[str] = []
    size = 0
    for media in elem.findall("Media"):
        for part in media.findall("Part"):
            path = part.attrib.get("file")
            if path and path not in files:
                files.append(path)
                size += _int(part.attrib.get("size")) or 0
    sid = _int(a.get("librarySectionID")) or section_id
    return Video(rk=a["ratingKey"], kind=kind, title=a.get("title", ""), section_id=sid, files=tuple(files),
                 size=size, added_at=_epoch(a.get("addedAt")), view_count=_int(a.get("viewCount")) or 0,
                 view_offset=_int(a.get("viewOffset")) or 0, last_viewed=_epoch(a.get("lastViewedAt")),
                 show_rk=a.get("grandparentRatingKey") if kind == "episode" else None,
                 season=_int(a.get("parentIndex")) if kind == "episode" else None,
                 episode=_int(a.get("index")) if kind == "episode" else None,
                 show_title=a.get("grandparentTitle", ""))


def element_guids(elem: Any) -> list[str]:
    out = [elem.attrib["guid"]] if elem.attrib.get("guid") else []
    out += [g.attrib["id"] for g in elem.findall("Guid") if g.attrib.get("id") and g.attrib["id"] not in out]
    return out

