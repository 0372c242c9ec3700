"""Discover the demand: what each Plex user is about to watch, with the reason for every item.

Sources, per user and each toggled in the settings: On Deck (and the next episodes after each On Deck
episode), the watchlist (discover API for the owner and home users, the RSS feed for friends), and what
is playing now. Two rules shape the code:

* A failure is not an empty answer. Whatever cannot be read (server, plex.tv, one user's token, one
  show) is recorded as an Unknown with its scope, and the rest carries on. What Plex would not give
  (plexread's PLEX_ERRORS) is named as such; a bug in this program reading one part is also recorded as an
  Unknown for that part, named "internal error" and logged with its traceback, so that it too never makes
  anything move back.
* Few requests. Everything that does not change within a run is read once: the user list, the friends'
  tokens, each library's listing (for watchlist matching). A user's On Deck shows are read together (one
  listing of their episodes per library), and so are their watchlisted shows (their unwatched episodes).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Optional

from plexapi import exceptions as plexexc
from plexapi.server import PlexServer

from plexcache import pinstore, titles
from plexcache.config import Settings, parse_size
from plexcache.demand import OTHER_USERS, SERVER, Demand, DemandItem, Reason, Unknown, Viewing, favourites
from plexcache.errors import PlexUnavailable, UsageError
from plexcache.http import CountingSession, SessionFactory, make_session
from plexcache.plexread import (
    PLEX_ERRORS,
    AccountUser,
    Entry,
    LibraryItem,
    PlexQuery,
    ServerInfo,
    Video,
    account_users,
    connect,
    describe_error,
    element_record,
    elements,
    friend_shares,
    home_switch,
    library_sections,
    query,
    rss_feed,
    server_as,
    sessions,
    sign_in,
    system_accounts,
    watchlist,
)
from plexcache.watchlist import GuidIndex, first_unwatched, ordered

__all__ = ["discover", "list_libraries", "list_users", "test_connection"]

log = logging.getLogger(__name__)

MAX_IDS = 200  # rating keys in one request address (about 1.5 KB)
RECENT_MOVIES = 50  # a user's most recently watched movies read for their favourites
WORKERS = 4  # users read side by side; PMS serves a handful of concurrent clients without strain


@dataclass
class _Findings:
    wants: list[tuple[DemandItem, Reason]] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)
    viewed: dict[tuple[str, str], tuple[float, ...]] = field(default_factory=dict)


class _UserBuffer(threading.local):
    """Inside a worker reading one user: where that user's findings go (None elsewhere)."""

    findings: Optional[_Findings] = None


@dataclass
class PlexUser:
    """A user whose demand counts, with the tokens read for them (never logged)."""

    name: str
    kind: str  # owner | home | managed | friend
    id: Optional[int]  # plex.tv id (None for the owner)
    on_deck: bool
    watchlist: bool
    pms_token: Optional[str] = None  # reads this user's view of the server
    tv_token: Optional[str] = None  # reads this user's plex.tv data (watchlist)
    sections: Optional[frozenset[int]] = None  # friends: the libraries shared with them (None = all)
    aliases: set[str] = field(default_factory=set)  # lower-case username/title/email for settings lookups
    protected: bool = False  # a Plex Home PIN guards switching to this user
    pin: str = ""  # that PIN, from the user's override (a secret: never logged)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _times(count: int) -> str:
    return "watched once" if count == 1 else f"watched {count} times"


def internal_error_text(exc: BaseException) -> str:
    """How an Unknown names a bug in this program: its kind only (a message might carry a secret)."""
    return f"internal error ({type(exc).__name__}); please report it (the log has the details)"


class Discovery:
    """One discovery run: its session, its caches, and the Demand it fills."""

    def __init__(self, settings: Settings, session_factory: SessionFactory, now: float) -> None:
        self.settings = settings
        self.now = now
        self.session: CountingSession = session_factory(settings.plex.timeout)
        self.demand = Demand(generated_at=now)
        self._server: Optional[PlexServer] = None
        self.info = ServerInfo("", "", "", "")
        self.account: Optional[PlexQuery] = None  # the owner's plex.tv account, when it is needed and answers
        self.sections: dict[int, str] = {}  # chosen section id -> title
        self.section_kinds: dict[int, str] = {}
        self.owner: Optional[PlexUser] = None
        self.users_by_id: dict[int, PlexUser] = {}
        self.account_name: dict[int, str] = {}  # PMS account id -> name (sessions carry the id)
        self._servers: dict[str, PlexServer] = {}
        self._leaves: dict[tuple[str, str], list[Video]] = {}  # (token, show) -> its episodes
        self._leaves_failed: dict[tuple[str, str], Exception] = {}
        self._index: Optional[GuidIndex] = None
        self._index_error: Optional[str] = None
        self._index_lock = threading.Lock()
        self._local = _UserBuffer()
        self.findings = _Findings()
        limit = parse_size(settings.demand.max_item_size)
        self.max_size = limit.bytes if limit is not None and limit.bytes else None

    @property
    def server(self) -> PlexServer:
        if self._server is None:
            raise RuntimeError("the server is read before discovery connected to it")
        return self._server

    # -------------------------------------------------------------- recording

    def unknown(self, scope: str, source: str, exc: BaseException | str) -> None:
        error = exc if isinstance(exc, str) else describe_error(exc)
        if scope.startswith("("):
            log.warning("could not read Plex (%s): %s", source, error)
        else:
            log.warning("could not read %s for %s: %s", source, scope, error)
        self._out().unknown.append(Unknown(scope=scope, source=source, error=error))

    def internal_error(self, source: str, scopes: tuple[str, ...], exc: Exception) -> None:
        """A bug in this program while reading `source`: logged once with its traceback, and every scope it
        touched recorded as unknown (so nothing is moved back because of it)."""
        log.error("internal error while reading %s for %s; nothing is moved back on its account; please "
                  "report it with this traceback", source, ", ".join(scopes), exc_info=exc)
        for scope in scopes:
            self._out().unknown.append(Unknown(scope=scope, source=source, error=internal_error_text(exc)))

    @contextmanager
    def part(self, source: str, *scopes: str) -> Iterator[None]:
        """Around one part of the demand: if it fails, each scope's `source` is unknown and the rest goes on.
        Finer steps inside catch what they can scope more narrowly."""
        try:
            yield
        except PLEX_ERRORS as exc:
            for scope in scopes:
                self.unknown(scope, source, exc)
        except UsageError as exc:  # a state file it needs is unreadable: as unknown as a Plex failure
            for scope in scopes:
                self.unknown(scope, source, str(exc))
        except Exception as exc:  # a bug in this program: see internal_error
            self.internal_error(source, scopes, exc)

    def want(self, video: Video, reason: Reason) -> None:
        if video.section_id is not None and video.section_id not in self.sections:
            return
        if not video.files:
            return
        if self.max_size is not None and video.size > self.max_size and reason.source != "playing":
            log.info("skipping %s: %d bytes is over demand.max_item_size", video.label, video.size)
            self.demand.skipped.append((video.label, "larger than demand.max_item_size"))
            return
        item = DemandItem(rating_key=video.rk, title=video.label, kind=video.kind,
                          library=self.sections.get(video.section_id or -1, ""), plex_files=video.files,
                          size=video.size, added_at=video.added_at, part_sizes=video.part_sizes)
        self._out().wants.append((item, reason))

    def _out(self) -> _Findings:
        """Where findings go: the current user's buffer inside a worker, else the run's own."""
        return self._local.findings or self.findings

    def merge(self, findings: _Findings) -> None:
        for item, reason in findings.wants:
            self.demand.add(item, reason)
        self.demand.unknown.extend(findings.unknown)
        self.demand.viewed.update(findings.viewed)
        findings.wants.clear()
        findings.unknown.clear()
        findings.viewed.clear()

    # -------------------------------------------------------------- server and libraries

    def connect(self) -> bool:
        plex = self.settings.plex
        try:
            self._server, self.info = connect(plex.url, plex.token, self.session, plex.timeout)
            sections = library_sections(self.server)
        except PLEX_ERRORS as exc:
            self.unknown(SERVER, "server", exc)
            return False
        wanted = {str(x).strip().lower() for x in plex.libraries}
        for section in sections:
            if section.kind not in ("movie", "show"):
                continue
            if wanted and str(section.id) not in wanted and section.title.lower() not in wanted:
                continue
            self.sections[section.id] = section.title
            self.section_kinds[section.id] = section.kind
        missing = wanted - {str(k) for k in self.sections} - {t.lower() for t in self.sections.values()}
        for name in sorted(missing):
            log.warning("plex.libraries names %r, which this server does not have (or is not movies/TV)", name)
            self.demand.warnings.append(f"plex.libraries names {name!r}, which this server does not have "
                                        "(or is not a movie or TV library)")
        return True

    def server_for(self, token: str) -> PlexServer:
        if token == self.settings.plex.token:
            return self.server
        if token not in self._servers:
            self._servers[token] = server_as(self.server, token)
        return self._servers[token]

    # -------------------------------------------------------------- users

    def toggles(self, kind: str, aliases: set[str]) -> Optional[tuple[bool, bool]]:
        """(on_deck, watchlist) for a user, or None when the user is skipped."""
        users = self.settings.users
        if aliases & {s.strip().lower() for s in users.skip}:
            return None
        group = users.owner if kind == "owner" else users.friends if kind == "friend" else users.home
        on_deck, watch = group.on_deck, group.watchlist
        if kind == "friend":
            watch = watch or users.remote_watchlist_rss
        for override in users.overrides:
            if override.name.strip().lower() in aliases:
                on_deck, watch = override.on_deck, override.watchlist
        return on_deck, watch

    def resolve_users(self) -> list[PlexUser]:
        """The owner, then the other users; a damaged answer anywhere in the list makes them all unknown."""
        users = self.owner_and_account()
        others: list[PlexUser] = []
        if self.account is not None and self.need_others():
            with self.part("users", OTHER_USERS):
                others = self.other_users(self.account)
        return users + others

    def need_others(self) -> bool:
        s = self.settings.users
        return (s.home.on_deck or s.home.watchlist or s.friends.on_deck or s.friends.watchlist
                or s.remote_watchlist_rss or any(o.on_deck or o.watchlist for o in s.overrides))

    def owner_and_account(self) -> list[PlexUser]:
        """The owner, and the owner's plex.tv account when anything needs plex.tv."""
        token = self.settings.plex.token
        name = read_owner(self.server, self.info, self.account_name)
        owner_toggles = self.toggles("owner", {name.lower(), "owner"}) or (False, False)
        owner = PlexUser(name=name, kind="owner", id=None, on_deck=owner_toggles[0], watchlist=owner_toggles[1],
                         pms_token=token, tv_token=token, aliases={name.lower(), "owner"})
        self.owner = owner
        self.demand.owner = name
        need_others = self.need_others()
        if not (need_others or owner.watchlist):
            return [owner]
        try:
            self.account, _ = sign_in(token, self.session, self.settings.plex.timeout)
        except PLEX_ERRORS as exc:
            # Without plex.tv nobody but the owner can be listed: every other user's demand is unknown.
            if owner.watchlist:
                self.unknown(owner.name, "watchlist", exc)
            if need_others:
                self.unknown(OTHER_USERS, "users", exc)
        return [owner]

    def other_users(self, account: PlexQuery) -> list[PlexUser]:
        """Home users and friends of this server, each with the token that reads them."""
        records = account_users(account)
        users = [u for u in (self.plex_user(record) for record in records) if u is not None]
        # Two answers say who may read this server: a friend's <Server> entries in the user list and the
        # shared-servers listing. A friend the first leaves out is read if the second gives them a token.
        unlisted = {r.id for r in records if r.kind == "friend" and self.info.machine not in r.servers}
        s = self.settings.users
        rss = s.remote_watchlist_rss and bool(s.rss_url)
        self.friend_tokens(account, [u for u in users if u.kind == "friend" and (u.on_deck or (u.watchlist and rss))],
                           unlisted)
        self.home_tokens(account, [u for u in users if u.kind in ("home", "managed")])
        return [u for u in users if u.id not in unlisted or u.pms_token]

    def plex_user(self, user: AccountUser) -> Optional[PlexUser]:
        # The RSS feed names a friend by plex.tv id or uuid; the uuid is only visible in the avatar address.
        uuid = re.search(r"/users/([0-9a-f]+)/avatar", user.thumb)
        aliases = {a.lower() for a in (user.title, user.username, user.email, str(user.id),
                                       uuid.group(1) if uuid else "") if a}
        toggles = self.toggles(user.kind, aliases)
        if toggles is None:
            return None
        pin = next((o.pin for o in self.settings.users.overrides if o.name.strip().lower() in aliases and o.pin), "")
        plex_user = PlexUser(name=user.name, kind=user.kind, id=user.id, on_deck=toggles[0], watchlist=toggles[1],
                             aliases=aliases, protected=user.protected, pin=pin)
        self.users_by_id[user.id] = plex_user
        return plex_user

    def friend_tokens(self, account: PlexQuery, friends: list[PlexUser], unlisted: set[int]) -> None:
        """Every friend's PMS token from ONE shared_servers listing. A friend whose user entry does not list
        this server (`unlisted`) and who has no share of it is not a user of this server: no demand, no
        warning."""
        if not friends:
            return
        try:
            shares = friend_shares(account, self.info.machine)
        except PLEX_ERRORS as exc:
            for friend in friends:
                if friend.id not in unlisted:
                    self.unknown(friend.name, "token", exc)
            return
        for friend in friends:
            share = shares.get(friend.id or -1)
            if share is None and friend.id in unlisted:
                continue
            if share is None:
                self.unknown(friend.name, "token", "no access token for this server in shared_servers")
                continue
            friend.pms_token, friend.sections = share.token, share.sections

    def home_tokens(self, account: PlexQuery, home: list[PlexUser]) -> None:
        """Switch to each home user once: the token serves both their server view and their watchlist."""
        for user in home:
            if not (user.on_deck or user.watchlist) or user.id is None:
                continue
            try:
                token = home_switch(account, self.session, user.id, user.pin)
            except PLEX_ERRORS as exc:
                if user.protected and isinstance(exc, plexexc.Unauthorized):
                    why = "the Plex Home PIN in its override was refused" if user.pin else \
                        "protected by a Plex Home PIN; set it in the user's override to read it"
                    self.unknown(user.name, "token", why)
                else:
                    self.unknown(user.name, "token", exc)
                continue
            user.pms_token = user.tv_token = token

    # -------------------------------------------------------------- On Deck and next episodes

    def episodes(self, token: str, show_rk: str) -> list[Video]:
        """A show's episodes as one user sees them (their viewCount): read with the user's other shows
        by read_shows(), or else on its own (a playing episode's show)."""
        key = (token, show_rk)
        if key in self._leaves_failed:
            raise self._leaves_failed[key]
        if key not in self._leaves:
            found = elements(self.server_for(token), f"/library/metadata/{show_rk}/allLeaves")
            self._leaves[key] = [v for v in (element_record(e) for e in found) if v is not None]
        return self._leaves[key]

    def read_shows(self, token: str, videos: list[Video]) -> None:
        """Every episode of the shows these episodes belong to, one listing per library, for episodes().

        A failed listing is remembered for its shows, so each reports it instead of asking again. A listing
        that lacks an episode the user has On Deck is not trusted for that show (a server answering the
        filter differently must not make next episodes vanish): episodes() then reads the show on its own.
        """
        by_section: dict[int, dict[str, set[str]]] = {}  # section -> show -> its episodes On Deck
        for video in videos:
            if video.kind == "episode" and video.show_rk and video.section_id is not None \
                    and (token, video.show_rk) not in self._leaves:
                by_section.setdefault(video.section_id, {}).setdefault(video.show_rk, set()).add(video.rk)
        for section_id, shows in sorted(by_section.items()):
            try:
                found = self.show_listing(token, section_id, sorted(shows), unwatched=False)
            except PLEX_ERRORS as exc:
                self._leaves_failed.update({(token, rk): exc for rk in shows})
                continue
            for rk, on_deck in shows.items():
                episodes = found.get(rk, [])
                if on_deck <= {e.rk for e in episodes}:
                    self._leaves[(token, rk)] = episodes
                else:
                    log.info("the episode listing of library %s lacks an On Deck episode of show %s; "
                             "reading the show on its own", section_id, rk)

    def show_listing(self, token: str, section_id: int, show_rks: list[str], unwatched: bool) -> dict[str, list[Video]]:
        """The episodes of some shows in one library, by show, in one listing.

        PMS filters episodes by their show (`show.id`, a comma meaning OR) and, with `unwatched`, by the
        token's own watched state. A very long list of shows reads the library whole rather than build an
        address PMS may refuse.
        """
        key = f"/library/sections/{section_id}/all?type=4" + ("&unwatched=1" if unwatched else "")
        if len(show_rks) <= MAX_IDS:
            key += "&show.id=" + ",".join(show_rks)
        wanted = set(show_rks)
        out: dict[str, list[Video]] = {}
        for elem in elements(self.server_for(token), key):
            video = element_record(elem, section_id)
            if video is not None and video.show_rk in wanted:
                out.setdefault(video.show_rk, []).append(video)
        return out

    def on_deck(self, user: PlexUser) -> None:
        server = self.server_for(user.pms_token or "")
        deck: list[Video] = []
        for section_id in self.sections:
            if user.sections is not None and section_id not in user.sections:
                continue
            try:
                found = elements(server, f"/library/sections/{section_id}/onDeck")
            except PLEX_ERRORS as exc:
                self.unknown(user.name, "on_deck", exc)
                return
            deck.extend(v for v in (element_record(e, section_id) for e in found) if v is not None)
        # PMS lists each section newest first; across sections the same order decides who gets a slot.
        deck.sort(key=lambda v: -(v.last_viewed or 0))
        self.read_shows(user.pms_token or "", deck)
        taken = 0
        for video in deck:
            if taken >= self.settings.demand.on_deck_items:
                break
            active = self.activity(user, video)
            if active is False:
                continue
            taken += 1
            self.on_deck_item(user, video, taken - 1, active if isinstance(active, float) else None)

    def activity(self, user: PlexUser, video: Video) -> float | bool:
        """When the user was last active on this item (or its show); False when too long ago."""
        last = video.last_viewed
        if last is None and video.kind == "episode" and video.show_rk:
            try:
                eps = self.episodes(user.pms_token or "", video.show_rk)
                last = max((e.last_viewed for e in eps if e.last_viewed), default=None)
            except PLEX_ERRORS:
                last = None  # the next-episode step reports the failure
        days = self.settings.demand.days_to_monitor
        if days and last is not None and last < self.now - days * 86400:
            return False
        return last if last is not None else True

    def on_deck_item(self, user: PlexUser, video: Video, rank: int, active: Optional[float]) -> None:
        detail = "On Deck, in progress" if video.view_offset else "On Deck"
        self.want(video, Reason(user=user.name, source="on_deck", last_active=active, detail=detail, rank=rank))
        self.next_episodes(user, video, active)

    def next_episodes(self, user: PlexUser, video: Video, active: Optional[float]) -> None:
        """The episodes after an On Deck or playing episode, in order, skipping what the user has watched."""
        wanted = self.settings.demand.next_episodes
        if video.kind != "episode" or not video.show_rk or wanted <= 0:
            return
        try:
            eps = ordered(self.episodes(user.pms_token or "", video.show_rk))
        except PLEX_ERRORS as exc:
            self.unknown(user.name, "next_episode", exc)
            return
        position = next((i for i, e in enumerate(eps) if e.rk == video.rk), None)
        if position is None:
            return
        views = tuple(sorted(e.last_viewed for e in eps[:position] if e.last_viewed))
        if views:
            self._out().viewed[(user.name, video.rk)] = views
        n = 0
        for ep in eps[position + 1:]:
            if n >= wanted:
                break
            if (ep.season == 0 and not self.settings.demand.include_specials) or ep.view_count > 0:
                continue
            n += 1
            self.want(ep, Reason(user=user.name, source="next_episode", last_active=active,
                                 detail=f"{_ordinal(n)} episode after {video.code}", rank=n - 1))

    # -------------------------------------------------------------- watchlists

    def index(self) -> Optional[GuidIndex]:
        """The GUID index of the chosen libraries, built on first use; None if a listing failed."""
        with self._index_lock:
            return self._build_index()

    def _build_index(self) -> Optional[GuidIndex]:
        if self._index is None and self._index_error is None:
            index = GuidIndex()
            try:
                for section_id, kind in self.section_kinds.items():
                    index.add_section(self.server, section_id, kind)
                self._index = index
            except PLEX_ERRORS as exc:
                self._index_error = f"library listing: {describe_error(exc)}"
        return self._index

    def watchlist_entries(self, user: PlexUser, entries: list[Entry], token: Optional[str], detail: str) -> None:
        index = self.index()
        if index is None:
            self.unknown(user.name, "watchlist", self._index_error or "library listing failed")
            return
        count = self.settings.demand.watchlist_episodes
        movies: dict[str, tuple[Reason, LibraryItem]] = {}
        shows: dict[str, tuple[Reason, LibraryItem]] = {}
        for rank, entry in enumerate(entries):
            found = index.match(entry)
            if found is None:
                continue  # not on this server (or not in a chosen library): nothing to cache
            if user.sections is not None and found.section_id not in user.sections:
                continue  # a library not shared with this friend: they cannot play it
            reason = Reason(user=user.name, source="watchlist", last_active=entry.added_at, detail=detail,
                            rank=rank)
            if found.video is not None:
                movies.setdefault(found.rk, (reason, found))
            elif count > 0:
                shows.setdefault(found.rk, (reason, found))
        self.watchlist_movies(user, token, movies)
        if not shows:
            return
        try:
            unwatched = self.unwatched_episodes(token or self.settings.plex.token, [s for _, s in shows.values()])
        except PLEX_ERRORS as exc:
            self.unknown(user.name, "watchlist", exc)
            return
        for show_rk, (reason, _show) in shows.items():
            for n, ep in enumerate(first_unwatched(unwatched.get(show_rk, []), count,
                                                   self.settings.demand.include_specials)):
                self.want(ep, Reason(user=user.name, source="watchlist", last_active=reason.last_active,
                                     detail=f"{detail}: {_ordinal(n + 1)} unwatched episode", rank=reason.rank))

    def watchlist_movies(self, user: PlexUser, token: Optional[str],
                         movies: dict[str, tuple[Reason, LibraryItem]]) -> None:
        """Watchlisted movies are wanted until the user has watched them to the end."""
        finished: set[str] = set()
        if movies and token:  # without the user's own token their watched state is not known: keep all
            try:
                finished = self.finished_movies(token, [movie for _, movie in movies.values()])
            except PLEX_ERRORS as exc:
                self.unknown(user.name, "watchlist", exc)  # keep them all; say that the state is unknown
        for rk, (reason, movie) in movies.items():
            if rk in finished:
                log.info("%s has watched %s: no longer wanted for their watchlist", user.name, movie.title)
            elif movie.video is not None:
                self.want(movie.video, reason)

    def finished_movies(self, token: str, movies: list[LibraryItem]) -> set[str]:
        """The movies this user has watched to the end (and not started again): one request for all of them
        (PMS answers `/library/metadata/1,2,3` with each in the token's own state), or past MAX_IDS one
        listing of the user's watched movies per library."""
        server = self.server_for(token)
        if len(movies) <= MAX_IDS:
            found = elements(server, "/library/metadata/" + ",".join(m.rk for m in movies))
        else:
            found = [e for section_id in sorted({m.section_id for m in movies})
                     for e in elements(server, f"/library/sections/{section_id}/all?type=1&unwatched=0")]
        return {v.rk for v in (element_record(e) for e in found) if v and v.view_count > 0 and not v.view_offset}

    def unwatched_episodes(self, token: str, shows: list[LibraryItem]) -> dict[str, list[Video]]:
        """The unwatched episodes of a user's watchlisted shows, by show: one listing per library, so a
        watchlist of any length costs the same (shows read already for On Deck are reused)."""
        out: dict[str, list[Video]] = {}
        by_section: dict[int, list[str]] = {}
        for show in shows:
            known = self._leaves.get((token, show.rk))
            if known is not None:
                out[show.rk] = known
            else:
                by_section.setdefault(show.section_id, []).append(show.rk)
        for section_id, rks in sorted(by_section.items()):
            out.update(self.show_listing(token, section_id, rks, unwatched=True))
        return out

    def own_watchlist(self, user: PlexUser) -> None:
        if self.account is None or not user.tv_token:
            return
        try:
            entries = watchlist(self.account, user.tv_token)
        except PLEX_ERRORS as exc:
            self.unknown(user.name, "watchlist", exc)
            return
        self.watchlist_entries(user, entries, user.pms_token, "Watchlist")

    def rss_watchlists(self, readers: list[PlexUser]) -> None:
        """Friends' watchlists from the owner's RSS feed: all friends or none, as Plex offers it."""
        users = self.settings.users
        if not (users.remote_watchlist_rss and users.rss_url and readers):
            return
        try:
            entries = rss_feed(self.session, users.rss_url, self.settings.plex.timeout)
        except PLEX_ERRORS as exc:
            for reader in readers:
                self.unknown(reader.name, "watchlist", f"RSS feed: {describe_error(exc)}")
            return
        by_author: dict[str, list[Entry]] = {}
        for entry in entries:
            by_author.setdefault(entry.author, []).append(entry)
        aliases = {a: f for f in readers for a in ({str(f.id)} | f.aliases)}
        for author, items in by_author.items():
            friend = aliases.get(author.lower())
            if friend is None:
                # A feed entry by someone not listed as a friend of this server (or skipped): ignore it.
                log.info("RSS watchlist: %d item(s) by an unknown or skipped user", len(items))
                continue
            self.watchlist_entries(friend, items, friend.pms_token, "Watchlist (RSS)")

    # -------------------------------------------------------------- favourites

    def rewatches(self, user: PlexUser) -> None:
        """The movies this user watches again and again (demand.favourites), from their own watched state:
        one listing per movie library of the movies they watched most recently."""
        most = self.settings.demand.rewatch_items
        server = self.server_for(user.pms_token or "")
        videos: dict[str, Video] = {}
        for section_id, kind in sorted(self.section_kinds.items()):
            if kind != "movie" or (user.sections is not None and section_id not in user.sections):
                continue
            found = query(server, f"/library/sections/{section_id}/all?type=1&unwatched=0&sort=lastViewedAt:desc",
                          "recently watched movies", headers={"X-Plex-Container-Start": "0",
                                                              "X-Plex-Container-Size": str(RECENT_MOVIES)})
            for elem in found:
                video = element_record(elem, section_id)
                if video is not None and video.kind == "movie" and video.last_viewed and not video.view_offset:
                    videos[video.rk] = video
        picks = favourites([Viewing(v.rk, v.view_count, v.last_viewed or 0.0) for v in videos.values()],
                           self.now, most)
        for rank, pick in enumerate(picks):
            self.want(videos[pick.key], Reason(user=user.name, source="rewatch", last_active=pick.last_viewed,
                                               detail=_times(pick.view_count), rank=rank))

    # -------------------------------------------------------------- sessions

    def sessions(self) -> None:
        """What is playing now: wanted, kept from the mover, and its next episodes read like On Deck's."""
        playing = sessions(self.server)
        readers = dict(self.users_by_id)
        if self.owner is not None:
            readers[1] = self.owner
        names = dict(self.account_name)
        names.update({uid: u.name for uid, u in self.users_by_id.items()})
        names[1] = self.owner.name if self.owner else names.get(1, "owner")
        for play in playing:
            video = play.video
            self.demand.playing.update(video.files)
            name = names.get(play.user_id or -1) or play.user or "someone"
            self.want(video, Reason(user=name, source="playing", last_active=self.now,
                                    detail=f"playing on {play.player or 'a player'}", rank=0))
            # A playing episode is in progress: its next episodes are wanted as much as an On Deck one's.
            viewer = readers.get(play.user_id or -1)
            if video.kind == "episode" and viewer is not None and viewer.on_deck and viewer.pms_token:
                self.next_episodes(viewer, video, self.now)

    def pinned_titles(self) -> None:
        """Titles pinned by rating key (movie, show, season): each file of each, wanted with the reason
        "pinned" (one request a title). A title that cannot be read leaves the pins' demand unknown, so
        nothing pinned is moved back on its account."""
        pinned: dict[str, pinstore.PinnedTitle] = {}
        with self.part("pinned", pinstore.PINNED_USER):
            pinned = pinstore.load(self.settings)  # unreadable: the pins' demand is unknown, as when Plex fails
        for title in pinned.values():
            with self.part("pinned", pinstore.PINNED_USER):
                for video in titles.videos(self.server, title):
                    self.want(video, Reason(user=pinstore.PINNED_USER, source="pinned", last_active=title.pinned_at,
                                            detail=f"pinned: {title.title}"))

    # -------------------------------------------------------------- the run

    def user_demand(self, user: PlexUser) -> _Findings:
        """One user's On Deck, next episodes and own watchlist, gathered in a buffer of their own."""
        findings = self._local.findings = _Findings()
        try:
            if user.on_deck and user.pms_token:
                with self.part("on_deck", user.name):
                    self.on_deck(user)
            if user.watchlist and user.kind != "friend":
                with self.part("watchlist", user.name):
                    self.own_watchlist(user)
            if user.on_deck and user.pms_token and self.settings.demand.rewatch_items:
                with self.part("rewatch", user.name):
                    self.rewatches(user)
            return findings
        finally:
            self._local.findings = None

    def read(self) -> None:
        """Everything, in an order that does not depend on timing."""
        if not self.connect():
            return
        users = [u for u in self.resolve_users() if u.on_deck or u.watchlist or u.kind == "owner"]
        self.demand.users = [u.name for u in users]
        self.merge(self.findings)
        # Users are independent: read them side by side (Plex answers each request in milliseconds but
        # the round trips add up), then merge in user order so the result does not depend on timing.
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="plex-user") as pool:
            for findings in pool.map(self.user_demand, users):
                self.merge(findings)
        readers = [u for u in users if u.kind == "friend" and u.watchlist]
        with self.part("watchlist", *(f.name for f in readers)):
            self.rss_watchlists(readers)
        with self.part("playing", SERVER):
            self.sessions()
        self.pinned_titles()

    def run(self) -> Demand:
        # Anything the parts did not catch (a bug between them) leaves the whole demand unknown.
        with self.part("server", SERVER):
            self.read()
        self.merge(self.findings)
        self.demand.requests = self.session.sent
        return self.demand


def discover(settings: Settings, *, session_factory: Optional[SessionFactory] = None,
             now: Optional[float] = None) -> Demand:
    """Read everything Plex says users are about to watch. Failures become Unknowns, never exceptions."""
    return Discovery(settings, session_factory or make_session, time.time() if now is None else now).run()


# ------------------------------------------------------------------ settings-page helpers


def read_owner(server: PlexQuery, info: ServerInfo, names: Optional[dict[int, str]] = None) -> str:
    """The owner's name as PMS gives it (account 1 of /accounts), which needs no plex.tv; falls back to
    the sign-in name. Fills `names` (PMS account id -> name) when given: sessions name users by id."""
    names = {} if names is None else names
    try:
        names.update(system_accounts(server))
    except PLEX_ERRORS as exc:
        log.info("cannot read the server's accounts (%s); using the sign-in name", describe_error(exc))
    return names.get(1) or info.owner_login or "owner"


def _connect(settings: Settings, session: CountingSession) -> tuple[PlexServer, ServerInfo]:
    try:
        return connect(settings.plex.url, settings.plex.token, session, settings.plex.timeout)
    except PLEX_ERRORS as exc:
        raise PlexUnavailable(f"cannot read Plex at {settings.plex.url}: {describe_error(exc)}; check plex.url "
                              "and plex.token (run `plexcache-r plex login` for a new token)") from None


def test_connection(settings: Settings, *, session_factory: Optional[SessionFactory] = None) -> dict[str, Any]:
    """Server identity, owner and library count; raises PlexUnavailable (one line) when Plex cannot be read."""
    server, info = _connect(settings, (session_factory or make_session)(settings.plex.timeout))
    try:
        sections = library_sections(server)
    except PLEX_ERRORS as exc:
        raise PlexUnavailable(f"Plex answered but its libraries cannot be read: {describe_error(exc)}") from None
    return {"ok": True, "server": {"name": info.name, "version": info.version, "machine_identifier": info.machine},
            "owner": read_owner(server, info), "libraries": len(sections)}


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def list_libraries(settings: Settings, *, session_factory: Optional[SessionFactory] = None) -> list[dict[str, Any]]:
    """Every movie and show library: id, title, type and the folders Plex reads (for the path mappings)."""
    server, _info = _connect(settings, (session_factory or make_session)(settings.plex.timeout))
    try:
        sections = library_sections(server)
    except PLEX_ERRORS as exc:
        raise PlexUnavailable(f"cannot list Plex libraries: {describe_error(exc)}") from None
    return [{"id": str(s.id), "title": s.title, "type": s.kind, "locations": list(s.locations)}
            for s in sections if s.kind in ("movie", "show")]


def list_users(settings: Settings, *, session_factory: Optional[SessionFactory] = None) -> list[dict[str, Any]]:
    """The owner, home/managed users and friends of this server, for the per-user toggles."""
    session = (session_factory or make_session)(settings.plex.timeout)
    server, info = _connect(settings, session)
    try:
        account, account_id = sign_in(settings.plex.token, session, settings.plex.timeout)
        listed = account_users(account)
    except PLEX_ERRORS as exc:
        raise PlexUnavailable(f"cannot read the user list from plex.tv: {describe_error(exc)}") from None
    out = [{"name": read_owner(server, info), "kind": "owner", "id": str(account_id)}]
    out += [{"name": user.title or user.username, "kind": user.kind, "id": str(user.id)}
            for user in listed if user.kind != "friend" or info.machine in user.servers]
    return out
