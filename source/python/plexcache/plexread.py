"""Plex's answers as plain records: the one place where what Plex and plex.tv send is read.

Two kinds of failure leave this module, and callers treat both as "this part of Plex could not be read":
transport errors (requests' and plexapi's: refused, timed out, 401, 5xx) and PlexFormatError (an answer
came, but not in the shape this program reads: malformed XML or JSON, a field it cannot do without missing
or mistyped). Any other exception is a bug in this program and is left to propagate as one.

The boundary is narrow on purpose. plexapi is called only inside `plex_answer()`, and nothing but plexapi
or a parser runs there: whatever they raise (plexapi casts attributes and raises ValueError on a junk
boolean, TypeError on a status code it has no name for) is about the answer. The records are then built
by this module's own code from the XML elements, with helpers that never raise on odd values: they give
None, or PlexFormatError for a field the record cannot do without.

plexapi objects are heavy and re-fetch themselves when an attribute is missing, so apart from the server
and the account no plexapi object is built: answers are read straight from the XML elements that plexapi's
query() returns (its authentication, headers and HTTP error mapping), and no hidden request is ever made.
"""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, Optional, Protocol, TypeVar

import requests
from plexapi import exceptions as plexexc
from plexapi.myplex import MyPlexAccount
from plexapi.server import PlexServer
from plexapi.utils import parseXMLString

# One page large enough that a listing is one request however big the library (PMS serves any size).
PAGE = 100_000
USERS = "https://plex.tv/api/users/"
FRIEND_TOKENS = "https://plex.tv/api/servers/{machine}/shared_servers"
HOME_SWITCH = "https://plex.tv/api/home/users/{id}/switch"
DISCOVER = "https://discover.provider.plex.tv"
RSS_PAGES = 20  # a feed holds ~50 items a page; the bound only guards against a feed that links in a loop


class PlexFormatError(Exception):
    """Plex answered, but not in the shape this program reads. The message says what, in a few words."""


# "This part of Plex could not be read": everything else is a bug in this program.
PLEX_ERRORS: tuple[type[Exception], ...] = (requests.RequestException, plexexc.PlexApiException, PlexFormatError)

# What plexapi's parsing and Python's parsers raise on a damaged answer; caught only around a call into them.
_PARSER_ERRORS = (ET.ParseError, ValueError, TypeError, AttributeError, LookupError)


@contextmanager
def plex_answer(what: str) -> Iterator[None]:
    """Around a call into plexapi or a parser: what they raise while reading an answer is a format error."""
    try:
        yield
    except requests.RequestException:
        raise  # transport; some of requests' own errors are also ValueErrors
    except ET.ParseError as exc:
        raise PlexFormatError("malformed XML in the response") from exc
    except json.JSONDecodeError as exc:
        raise PlexFormatError("malformed JSON in the response") from exc
    except _PARSER_ERRORS as exc:
        raise PlexFormatError(f"unexpected answer ({what})") from exc


def describe_error(exc: BaseException) -> str:
    """One line saying what failed, without URLs (the RSS address is a secret) or tokens."""
    if isinstance(exc, PlexFormatError):
        return str(exc)
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
    if isinstance(exc, requests.RequestException):
        return f"request failed ({type(exc).__name__})"
    return type(exc).__name__


# ------------------------------------------------------------------ what is asked of plexapi


class PlexQuery(Protocol):
    """What reading needs of plexapi's PlexServer or MyPlexAccount: its authenticated query, which raises
    plexapi's HTTP errors and returns the parsed XML (None for an empty body)."""

    def query(self, key: str, /, method: Optional[Callable[..., Any]] = ..., headers: Optional[dict[str, str]] = ..., *,
              params: Optional[dict[str, str]] = ...) -> Any: ...


def query(source: PlexQuery, key: str, what: str, *, method: Optional[Callable[..., Any]] = None,
          headers: Optional[dict[str, str]] = None,
          params: Optional[dict[str, str]] = None) -> ET.Element:
    """The answer to one request as an XML element; an empty answer is a format error."""
    with plex_answer(what):
        data: Optional[ET.Element] = source.query(key, method, headers, params=params)
    if data is None:
        raise PlexFormatError(f"empty response ({what})")
    return data


def parse_xml(text: str, what: str) -> ET.Element:
    """A body read outside plexapi's query (plex.tv PINs), parsed the way plexapi parses it."""
    with plex_answer(what):
        data: Optional[ET.Element] = parseXMLString(text)
    if data is None:
        raise PlexFormatError(f"empty response ({what})")
    return data


@dataclass(frozen=True)
class ServerInfo:
    """Who the server is, from its answer to `/`."""

    name: str
    version: str
    machine: str  # machineIdentifier: shares and friends' tokens are keyed by it
    owner_login: str  # the plex.tv name it is signed in as ("" when not signed in)


def connect(url: str, token: str, session: requests.Session, timeout: float) -> tuple[PlexServer, ServerInfo]:
    """The server (one request to `/`) and its identity."""
    with plex_answer("the server's identity"):
        server = PlexServer(url, token, session=session, timeout=timeout)
        raw = (server.friendlyName, server.version, server.machineIdentifier, server.myPlexUsername)
    info = ServerInfo(*(_text(value) for value in raw))
    if not info.machine:
        raise PlexFormatError("the server did not give its identity")
    return server, info


def sign_in(token: str, session: requests.Session, timeout: float) -> tuple[MyPlexAccount, Optional[int]]:
    """The owner's plex.tv account (one request) and its plex.tv id."""
    with plex_answer("the plex.tv account"):
        account = MyPlexAccount(token=token, session=session, timeout=timeout)
        raw_id = account.id
    return account, _int(raw_id)


S = TypeVar("S", bound=PlexQuery)


def server_as(server: S, token: str) -> S:
    """A copy of the owner's PlexServer that sends another user's PMS token.

    plexapi's own switchUser builds a new PlexServer, which costs a request to `/` per user; the server's
    identity does not change with the token, so a shallow copy with the token swapped is enough. plexapi
    keeps the token and the server its objects query through as instance attributes.
    """
    clone = copy.copy(server)
    state = vars(clone)
    state["_token"] = token
    state["_server"] = clone  # plexapi objects query through `_server`, which points at the original
    return clone


# ------------------------------------------------------------------ values inside an answer


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> Optional[int]:
    """An integer attribute, or None for anything else (absent, empty, junk, NaN, absurdly long)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) <= 20:  # longer is no id, size or time Plex writes
        try:
            return int(value)
        except ValueError:  # not a number: the caller decides whether the field was needed
            return None
    return None


def _epoch(value: Optional[str]) -> Optional[float]:
    number = _int(value)
    return float(number) if number is not None else None


def _flag(value: Optional[str], what: str) -> bool:
    """A boolean attribute as Plex writes it; anything else is a format error (as plexapi treats it)."""
    if value in (None, "", "0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise PlexFormatError(f"{what} is neither true nor false")


# ------------------------------------------------------------------ libraries, accounts, users


@dataclass(frozen=True)
class Section:
    """A library: its id, title, type (movie, show, artist, photo) and the folders Plex reads."""

    id: int
    title: str
    kind: str
    locations: tuple[str, ...]


def library_sections(server: PlexQuery) -> list[Section]:
    sections = []
    for elem in query(server, "/library/sections", "the library list"):
        key = _int(elem.get("key"))
        if key is None:
            raise PlexFormatError("a library without a numeric id")
        locations = tuple(p for p in (loc.get("path") for loc in elem.iter("Location")) if p)
        sections.append(Section(key, elem.get("title", ""), elem.get("type", ""), locations))
    return sections


def system_accounts(server: PlexQuery) -> dict[int, str]:
    """PMS account id -> name (account 1 is the owner; sessions name their user by this id)."""
    names: dict[int, str] = {}
    for elem in query(server, "/accounts", "the server's accounts"):
        account_id, name = _int(elem.get("id")), elem.get("name")
        if account_id and name:
            names[account_id] = name
    return names


UserKind = Literal["home", "managed", "friend"]


@dataclass(frozen=True)
class AccountUser:
    """A user of the owner's plex.tv account: a Plex Home member or a friend."""

    id: int
    title: str
    username: str
    email: str
    thumb: str
    home: bool
    restricted: bool
    protected: bool  # a Plex Home PIN guards switching to this user
    servers: frozenset[str]  # machine identifiers of the servers shared with them

    @property
    def kind(self) -> UserKind:
        if self.home:
            return "managed" if self.restricted or not self.username else "home"
        return "friend"

    @property
    def name(self) -> str:
        return self.title or self.username or str(self.id)


def account_users(account: PlexQuery) -> list[AccountUser]:
    """Every home user and friend; a damaged entry makes the whole list unreadable (nobody is guessed)."""
    users = []
    for elem in query(account, USERS, "the user list"):
        if elem.tag != "User":
            continue
        user_id = _int(elem.get("id"))
        if user_id is None:
            raise PlexFormatError("a user without an id in the user list")
        users.append(AccountUser(
            id=user_id, title=elem.get("title", ""), username=elem.get("username", ""),
            email=elem.get("email", ""), thumb=elem.get("thumb", ""), home=_flag(elem.get("home"), "home"),
            restricted=elem.get("restricted", "0") not in ("0", "false", ""),
            protected=_flag(elem.get("protected"), "protected"),
            servers=frozenset(s.get("machineIdentifier", "") for s in elem.iter("Server"))))
    return users


@dataclass(frozen=True)
class FriendShare:
    """What the owner's server shares with one friend: their PMS token, and which libraries (None = all)."""

    token: str
    sections: Optional[frozenset[int]]


def friend_shares(account: PlexQuery, machine: str) -> dict[int, FriendShare]:
    """Every friend's share of this server from ONE shared_servers listing (plexapi reads it per friend)."""
    shares: dict[int, FriendShare] = {}
    for elem in query(account, FRIEND_TOKENS.format(machine=machine), "the shared servers"):
        user_id, token = _int(elem.get("userID")), elem.get("accessToken")
        if user_id is None or not token:
            continue
        listed = list(elem.iter("Section"))
        sections: Optional[frozenset[int]] = None
        if listed and elem.get("allLibraries") not in ("1", "true"):
            shared = (_int(s.get("key")) for s in listed if s.get("shared") in ("1", "true"))
            sections = frozenset(key for key in shared if key is not None)
        shares[user_id] = FriendShare(token, sections)
    return shares


def home_switch(account: PlexQuery, session: requests.Session, user_id: int, pin: str) -> str:
    """The token of a Plex Home user, from switching to them (with their Home PIN when they have one)."""
    params = {"pin": pin} if pin else None
    data = query(account, HOME_SWITCH.format(id=user_id), "the home-user switch", method=session.post,
                 params=params)
    token = data.get("authenticationToken")
    if not token:
        raise PlexFormatError("the home-user switch returned no token")
    return token


# ------------------------------------------------------------------ listings, read as XML elements
#
# Building a plexapi object costs about a millisecond (attribute casts, lazy Media/Part lists); a library
# listing or a long show has thousands of them. Listings are read straight from the elements instead.


def elements(server: PlexQuery, key: str) -> list[ET.Element]:
    """Every item element of a PMS listing, paged with PAGE-sized pages (normally one request)."""
    out: list[ET.Element] = []
    start = 0
    while True:
        data = query(server, key, "a listing", headers={"X-Plex-Container-Start": str(start),
                                                         "X-Plex-Container-Size": str(PAGE)})
        section = data.get("librarySectionID")
        page = [e for e in data if e.tag in ("Video", "Directory")]
        for elem in page:
            if section and "librarySectionID" not in elem.attrib:
                elem.set("librarySectionID", section)
        out.extend(page)
        total = _int(data.get("totalSize")) or 0
        start += len(page)
        if not page or start >= total:
            return out


VideoKind = Literal["movie", "episode"]
_VIDEO_KINDS: dict[str, VideoKind] = {"movie": "movie", "episode": "episode"}


@dataclass(frozen=True)
class Video:
    """A movie or an episode as far as demand cares."""

    rk: str
    kind: VideoKind
    title: str
    section_id: Optional[int]
    files: tuple[str, ...]
    size: int
    added_at: Optional[float]
    part_sizes: tuple[int, ...] = ()  # per file, as Plex lists it (0: no size listed)
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


def element_record(elem: ET.Element, section_id: Optional[int] = None) -> Optional[Video]:
    """A Video record from a listing's <Video> element (movie or episode); None for anything else."""
    a = elem.attrib
    kind = _VIDEO_KINDS.get(a.get("type", ""))
    rk = a.get("ratingKey")
    if kind is None or not rk:
        return None
    files: list[str] = []
    sizes: list[int] = []
    for media in elem.findall("Media"):
        for part in media.findall("Part"):
            path = part.get("file")
            if path and path not in files:
                files.append(path)
                sizes.append(_int(part.get("size")) or 0)
    size = sum(sizes)
    sid = _int(a.get("librarySectionID")) or section_id
    episode = kind == "episode"
    return Video(rk=rk, kind=kind, title=a.get("title", ""), section_id=sid, files=tuple(files),
                 size=size, part_sizes=tuple(sizes), added_at=_epoch(a.get("addedAt")),
                 view_count=_int(a.get("viewCount")) or 0,
                 view_offset=_int(a.get("viewOffset")) or 0, last_viewed=_epoch(a.get("lastViewedAt")),
                 show_rk=a.get("grandparentRatingKey") if episode else None,
                 season=_int(a.get("parentIndex")) if episode else None,
                 episode=_int(a.get("index")) if episode else None,
                 show_title=a.get("grandparentTitle", ""))


def _guids(elem: ET.Element) -> tuple[str, ...]:
    out = [elem.attrib["guid"]] if elem.get("guid") else []
    out += [g for g in (e.get("id") for e in elem.iter("Guid")) if g and g not in out]
    return tuple(out)


@dataclass(frozen=True)
class LibraryItem:
    """A movie (with its files) or a show (its rating key; episodes are read per user), with its GUIDs."""

    rk: str
    kind: str  # movie | show
    title: str
    section_id: int
    guids: tuple[str, ...] = ()
    video: Optional[Video] = None  # movies only


def library_items(server: PlexQuery, section_id: int, kind: str) -> list[LibraryItem]:
    """Every movie or show of a library with its GUIDs, in one request."""
    libtype = 1 if kind == "movie" else 2
    items = []
    for elem in elements(server, f"/library/sections/{section_id}/all?includeGuids=1&type={libtype}"):
        rk = elem.get("ratingKey")
        if elem.get("type") != kind or not rk:
            continue
        video = element_record(elem, section_id) if kind == "movie" else None
        items.append(LibraryItem(rk, kind, elem.get("title", ""), section_id, _guids(elem), video))
    return items


# ------------------------------------------------------------------ sessions and recently added


@dataclass(frozen=True)
class Playing:
    """One playback now: who (PMS account id and name), on which player, what."""

    key: str  # stable for as long as the playback lasts
    user_id: Optional[int]
    user: str
    player: str
    video: Video


def sessions(server: PlexQuery) -> list[Playing]:
    """What is being played now (movies and episodes; music and photos are not demand)."""
    out = []
    for elem in elements(server, "/status/sessions"):
        video = element_record(elem)
        if video is None:
            continue
        user = elem.find("User")
        user_id = _int(user.get("id")) if user is not None else None
        name = user.get("title", "") if user is not None else ""
        player = elem.find("Player")
        session = elem.find("Session")
        key = elem.get("sessionKey") or (session.get("id") if session is not None else None) \
            or f"{user_id}/{video.rk}"
        out.append(Playing(key, user_id, name, player.get("title", "") if player is not None else "", video))
    return out


def newest_added(server: PlexQuery) -> Optional[float]:
    """When the newest item was added (PMS lists recently added newest first; one page is enough)."""
    data = query(server, "/library/recentlyAdded", "recently added",
                 headers={"X-Plex-Container-Start": "0", "X-Plex-Container-Size": "50"})
    stamps = [s for s in (_epoch(e.get("addedAt")) for e in data) if s is not None]
    return max(stamps, default=None)


# ------------------------------------------------------------------ watchlists


@dataclass(frozen=True)
class Entry:
    """One watchlist entry: what it names, and when it was added when the source says so."""

    guids: tuple[str, ...]
    kind: str  # movie | show
    title: str
    added_at: Optional[float] = None
    author: str = ""  # RSS only: the plex.tv user id (or uuid) whose watchlist it is


def watchlist(account: PlexQuery, token: str) -> list[Entry]:
    """A plex.tv user's own watchlist (owner or a switched home user), paged, one request per page.

    plexapi's account.watchlist() also builds a metadata-server object (one more request) and wraps
    every item; only the GUIDs are needed, so the same endpoint is read here with the user's token.
    """
    out: list[Entry] = []
    start = 0
    while True:
        headers = {"X-Plex-Token": token, "X-Plex-Container-Start": str(start), "X-Plex-Container-Size": str(PAGE)}
        data = query(account, f"{DISCOVER}/library/sections/watchlist/all?includeCollections=1"
                              "&includeExternalMedia=1&includeGuids=1", "a watchlist", headers=headers)
        page = [e for e in data if e.get("type") in ("movie", "show")]
        out += [Entry(guids=_guids(e), kind=e.get("type", ""), title=e.get("title", ""),
                      added_at=_epoch(e.get("watchlistedAt"))) for e in page]
        total = _int(data.get("totalSize")) or _int(data.get("size")) or len(page)
        start += len(page)
        if not page or start >= total:
            return out


def rss_feed(session: requests.Session, url: str, timeout: float) -> list[Entry]:
    """Every entry of a watchlist RSS feed, following its next-page links."""
    entries: list[Entry] = []
    next_url: Optional[str] = url
    for _page in range(RSS_PAGES):
        if not next_url:
            break
        response = session.get(next_url, timeout=timeout)
        if response.status_code != 200:
            raise _status_error(response.status_code)
        page, next_url = parse_rss(response.text, response.headers.get("Content-Type", ""))
        entries.extend(page)
    return entries


def _status_error(status: int) -> plexexc.PlexApiException:
    """An HTTP error status as plexapi reports it (never with the address: the feed's is a secret)."""
    if status == 401:
        return plexexc.Unauthorized(f"({status}) unauthorized")
    if status == 404:
        return plexexc.NotFound(f"({status}) not_found")
    try:
        name = HTTPStatus(status).phrase.lower().replace(" ", "_")
    except ValueError:  # a status with no standard name
        name = "error"
    return plexexc.BadRequest(f"({status}) {name}")


def parse_rss(body: str, content_type: str = "") -> tuple[list[Entry], Optional[str]]:
    """Entries of a watchlist RSS feed (XML, or JSON with ?format=json) and the next page's address."""
    if "json" in content_type or body.lstrip().startswith("{"):
        return _rss_json(body)
    with plex_answer("the RSS feed"):
        root = ET.fromstring(body.encode("utf-8"))
    if root.tag != "rss" or root.find("channel") is None:
        raise PlexFormatError("not an RSS document")
    entries = []
    for item in root.iter("item"):
        guids = tuple(g.text.strip() for g in item.findall("guid") if g.text and g.text.strip())
        kind = _kind(item.findtext("category"))
        if kind:
            entries.append(Entry(guids=guids, kind=kind, title=item.findtext("title") or "",
                                 author=(item.findtext("author") or "").strip()))
    return entries, None


def _rss_json(body: str) -> tuple[list[Entry], Optional[str]]:
    with plex_answer("the RSS feed"):
        doc = json.loads(body)
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise PlexFormatError("not a watchlist feed")
    entries = []
    for it in items:
        if not isinstance(it, dict):
            raise PlexFormatError("a feed entry that is not an object")
        guids = it.get("guids")
        entry = Entry(guids=tuple(str(g) for g in guids) if isinstance(guids, list) else (),
                      kind=_kind(it.get("category")), title=str(it.get("title", "")),
                      author=str(it.get("author") or ""))
        if entry.kind:
            entries.append(entry)
    links = doc.get("links")
    following = links.get("next") if isinstance(links, dict) else None
    return entries, following if isinstance(following, str) else None


def _kind(category: object) -> str:
    text = str(category or "").lower()
    return "movie" if text == "movie" else "show" if text in ("show", "tv", "series") else ""
