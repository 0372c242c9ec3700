"""Live mode: react when someone presses play, instead of hours later at the next scheduled run.

Plex's notification websocket (plexapi's alert listener) says the moment a playback starts or new media is
processed; the watcher then reads `/status/sessions` (one request) to learn who plays what, since a
notification names a session and an item but not the user. While the channel is down (Plex restarting, a
network drop, or turned off in the settings) the same read runs every `live.poll_seconds`; while it is up,
a slow safety poll catches anything the channel missed. Recently added media is checked when Plex
announces it, and every few minutes anyway.

A change worth acting on triggers an ordinary cycle: the same discovery, planner, lock, journal and space
floors as a scheduled run, so live mode can do nothing a run could not. It never busy-loops: waits are at
least a second, notifications are coalesced, and failures back off exponentially up to BACKOFF_MAX.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

from plexapi.alert import AlertListener
from plexapi.server import PlexServer

from plexcache import engine, runs
from plexcache.config import Settings
from plexcache.errors import EnvironmentRefuses, LockHeld, PlexCacheError, UsageError
from plexcache.fsutil import remove_own_file, write_json_if_changed
from plexcache.http import SessionFactory, make_session
from plexcache.layout import LIVE_STATE_NAME, live_state_path
from plexcache.plexread import PLEX_ERRORS, PlexQuery, connect, describe_error, newest_added, sessions
from plexcache.runctl import LiveLock, live_running
from plexcache.state import StateStore

log = logging.getLogger(__name__)

SETTLE_SECONDS = 3.0  # let a burst of changes (a user skipping through episodes) settle into one cycle
RECENT_EVERY_SECONDS = 300.0
SAFETY_POLL_SECONDS = 120.0  # with the notification channel up, polls only catch what it missed
CHANNEL_CHECK_SECONDS = 15.0  # how often the loop looks whether the channel is still up (no request)
LIBRARY = "com.plexapp.plugins.library"
PROCESSED = 5  # a TimelineEntry state: the item's metadata is ready, so it shows in recently added
BACKOFF_MAX = 300.0
BUSY_RETRY = 30.0  # another run holds the lock: it will do the work; look again shortly
STATE_FILE = LIVE_STATE_NAME


@dataclass(frozen=True)
class Playback:
    """One playback session as far as caching cares: who plays what (and, for an episode, where in its show)."""

    user: str
    rating_key: str
    kind: str
    title: str
    show: str = ""
    position: tuple[int, int] = (0, 0)  # (season, episode)


@dataclass(frozen=True)
class PoolView:
    """What is on the pool, as live mode needs it: rating keys, and cached episode positions per show."""

    keys: frozenset[str] = frozenset()
    episodes: dict[str, frozenset[tuple[int, int]]] = field(default_factory=dict)

    def has_ahead(self, playing: Playback) -> bool:
        """Is any later episode of the same show on the pool (so the viewer has something to go on to)?"""
        return any(pos > playing.position for pos in self.episodes.get(playing.show, ()))


EPISODE_TITLE = re.compile(r"^(?P<show>.+) - S(?P<season>\d+)E(?P<episode>\d+)\b")


class CachedItem(Protocol):
    """What live mode reads of a registry entry."""

    @property
    def rating_key(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def kind(self) -> str: ...


class CycleReport(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class CycleFunction(Protocol):
    """An ordinary cycle (engine.run_cycle); live mode only ever asks it to add."""

    def __call__(self, settings: Settings, *, add_only: bool = ...) -> Optional[CycleReport]: ...


def pool_view(entries: Iterable[CachedItem]) -> PoolView:
    """Build the view from registry entries (titles read "Show - S01E02 - Name", as discovery writes them)."""
    keys: set[str] = set()
    episodes: dict[str, set[tuple[int, int]]] = {}
    for entry in entries:
        if entry.rating_key:
            keys.add(entry.rating_key)
        match = EPISODE_TITLE.match(entry.title or "")
        if entry.kind == "episode" and match:
            position = (int(match["season"]), int(match["episode"]))
            episodes.setdefault(match["show"], set()).add(position)
    return PoolView(frozenset(keys), {show: frozenset(p) for show, p in episodes.items()})


@dataclass
class LiveState:
    sessions: dict[str, Playback] = field(default_factory=dict)
    newest_added: Optional[float] = None
    pending: list[str] = field(default_factory=list)  # why a cycle is wanted, oldest first
    pending_since: Optional[float] = None
    failures: int = 0
    next_poll: float = 0.0
    last_poll: float = float("-inf")  # when sessions were last read successfully
    next_recent: float = 0.0
    cycles: int = 0
    last_cycle: Optional[dict[str, Any]] = None
    plays: int = 0  # playbacks seen starting since live mode started
    plays_from_pool: int = 0  # of which the file was on the pool: each one an array disk left asleep
    since: float = field(default_factory=time.time)


def session_changes(before: dict[str, Playback], after: dict[str, Playback],
                    pool: PoolView = PoolView()) -> list[str]:
    """Why the sessions changed in a way caching should act on (pure).

    Playback of something not on the pool counts: its array disk is awake anyway, and the next episodes
    usually sit on the same disk, so caching them now costs no extra spin-up. So does an episode played
    from the pool with nothing after it cached: the viewer is about to run out, and waking the disk now
    spares them the wait later. Anything else is left to the nightly run: it would wake a disk for nothing."""
    reasons = []
    for key, now in after.items():
        was = before.get(key)
        if was is not None and was.rating_key == now.rating_key:
            continue
        verb = "started" if was is None else "moved on to"
        if now.rating_key not in pool.keys:
            reasons.append(f"{now.user} {verb} {now.title}, which is not on the pool")
        elif now.kind == "episode" and not pool.has_ahead(now):
            reasons.append(f"{now.user} {verb} {now.title}, the last of {now.show} on the pool")
    return reasons


def read_sessions(server: PlexQuery) -> dict[str, Playback]:
    """Who plays what now, by session (movies and episodes: nothing else is ever cached)."""
    playing = {}
    for play in sessions(server):
        video = play.video
        playback = Playback(user=play.user or "?", rating_key=video.rk, kind=video.kind, title=video.title)
        if video.kind == "episode":
            position = (video.season or 0, video.episode or 0)
            title = f"{video.show_title} S{position[0]:02d}E{position[1]:02d}"
            playback = Playback(playback.user, video.rk, "episode", title, video.show_title, position)
        playing[play.key] = playback
    return playing


class Notifications:
    """Plex's notification channel through plexapi's alert listener. It only says *when* to look again.

    The listener runs on its own thread and ends when the connection does; `ensure()` starts it again
    with backoff. Its callbacks only set flags and the `wake` event, which the serving loop waits on.
    """

    def __init__(self, wake: threading.Event) -> None:
        self.wake = wake
        self.listener: Optional[AlertListener] = None
        self.received = 0
        self.failures = 0
        self.retry_at = 0.0
        self._lock = threading.Lock()
        self._playing: dict[str, str] = {}  # sessionKey -> ratingKey, as last seen
        self._poll = False
        self._recent = False

    @property
    def open(self) -> bool:
        """Is the websocket connected? plexapi's listener makes its WebSocketApp (`_ws`) when its thread
        starts, and the app its socket when it connects: until then each is None. (Private to plexapi and
        websocket-client, both pinned; the notification tests fail first if an upgrade changes them.)"""
        listener = self.listener
        if listener is None or not listener.is_alive():
            return False
        ws: Any = listener._ws  # plexapi declares it None only: it sets it in an unannotated method
        sock = ws.sock if ws is not None else None
        return sock is not None and bool(sock.connected)

    def ensure(self, server: PlexServer, now: float, retry_base: float) -> None:
        """Keep a listener running: start one if there is none, or again (with backoff) after it ended."""
        if self.listener is not None and self.listener.is_alive():
            self.confirm_open()
            return
        if self.listener is not None:  # it ended: Plex restarted, the network dropped, or it never connected
            self.listener = None
            self.failures += 1
            self.retry_at = now + min(BACKOFF_MAX, retry_base * 2 ** min(self.failures - 1, 10))
            log.info("live: Plex's notification channel closed; polling until it reopens")
        if now >= self.retry_at:
            self.listener = server.startAlertListener(callback=self.on_alert, callbackError=self.on_error)

    def confirm_open(self) -> None:
        """A channel seen connected has recovered: a later drop backs off from the start again."""
        if self.open:
            self.failures = 0

    def stop(self) -> None:
        listener, self.listener = self.listener, None
        ws: Any = listener._ws if listener is not None else None  # (typed as in `open`)
        if listener is not None and ws is not None:  # stop() needs the WebSocketApp its thread makes
            listener.stop()

    def observe(self, sessions: dict[str, Playback]) -> None:
        """What a poll saw is known: notifications that only repeat it need no other poll."""
        with self._lock:
            self._playing = {key: p.rating_key for key, p in sessions.items()}

    def on_alert(self, data: dict[str, Any]) -> None:
        """On the listener's thread: note whether this notification calls for a look, and wake the loop."""
        kind = data.get("type")
        poll = recent = False
        with self._lock:
            self.received += 1
            if kind == "playing":
                for note in data.get("PlaySessionStateNotification") or []:
                    key, rating_key = str(note.get("sessionKey")), str(note.get("ratingKey"))
                    if note.get("state") == "stopped":
                        self._playing.pop(key, None)
                    elif self._playing.get(key) != rating_key:  # a new playback, or it moved on
                        self._playing[key] = rating_key
                        poll = True
            elif kind == "timeline":
                recent = any(e.get("identifier") == LIBRARY and e.get("type") in (1, 4)
                             and e.get("state") == PROCESSED for e in data.get("TimelineEntry") or [])
            self._poll |= poll or recent
            self._recent |= recent
        if poll or recent:
            self.wake.set()

    def on_error(self, error: Exception) -> None:
        log.info("live: notification channel: %s", error)

    def take(self) -> tuple[bool, bool]:
        """(poll now?, check recently added now?), and forget them."""
        with self._lock:
            wanted = (self._poll, self._recent)
            self._poll = self._recent = False
            return wanted


class LiveWatcher:
    """The loop's state machine; `tick()` does at most one poll and at most one cycle, then says how long
    to wait. Tests drive `tick()` with a fake clock; `serve()` drives it for real."""

    def __init__(self, settings: Settings, *, cycle: CycleFunction = engine.run_cycle,
                 session_factory: SessionFactory = make_session,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.cycle = cycle
        self.clock = clock
        self.session = session_factory(settings.plex.timeout)
        self.state = LiveState()
        self.server: Optional[PlexServer] = None
        self.first_poll = True
        self.wake = threading.Event()  # set by notifications (and by stop): the serving loop waits on it
        self.notifications = Notifications(self.wake)

    @property
    def poll_seconds(self) -> float:
        return float(self.settings.live.poll_seconds)

    @property
    def poll_interval(self) -> float:
        """Seconds between polls: the setting, or the slow safety poll while notifications flow."""
        return max(self.poll_seconds, SAFETY_POLL_SECONDS) if self.notifications.open else self.poll_seconds

    def tick(self) -> float:
        """One step; returns the seconds to sleep before the next (never less than a second)."""
        now = self.clock()
        self.notifications.confirm_open()  # every step, not only at polls, which are minutes apart once it is
        poll, recent = self.notifications.take()
        if recent:
            self.state.next_recent = now
        if poll:
            self.state.next_poll = min(self.state.next_poll, now)
        if not self.state.failures:  # the channel may have closed since the last poll planned a long wait
            self.state.next_poll = min(self.state.next_poll, self.state.last_poll + self.poll_interval)
        if now >= self.state.next_poll:
            self._poll(now)
        if self.state.pending and now - (self.state.pending_since or now) >= SETTLE_SECONDS:
            self._run_cycle(now)
        wake = self.state.next_poll
        if self.state.pending:
            wake = min(wake, (self.state.pending_since or now) + SETTLE_SECONDS)
        if self.settings.live.notifications:
            wake = min(wake, now + CHANNEL_CHECK_SECONDS)
        return max(1.0, wake - self.clock())

    # ---------------------------------------------------------------- polling

    def _poll(self, now: float) -> None:
        try:
            server = self._connect()
            sessions = read_sessions(server)
            pool = self.pool_view()
            reasons = [] if self.first_poll else session_changes(self.state.sessions, sessions, pool)
            self._count_plays(sessions, pool)
            self.state.sessions = sessions
            self.notifications.observe(sessions)
            if self.settings.live.notifications:
                self.notifications.ensure(server, now, self.poll_seconds)
            if self.settings.live.recently_added and now >= self.state.next_recent:
                reasons += self._check_recent(server)
                self.state.next_recent = now + RECENT_EVERY_SECONDS
        except PLEX_ERRORS as exc:
            self._back_off(now, f"Plex could not be read: {describe_error(exc)}")
            self.server = None
            return
        except Exception:  # a bug in this program: said as one, with its traceback; the loop goes on
            log.exception("live: internal error while following Plex; please report it with this traceback")
            self._back_off(now, "internal error (see the traceback above)")
            self.server = None
            return
        if self.first_poll:
            reasons = session_changes({}, sessions, pool)
        self.first_poll = False
        self.state.failures = 0
        self.state.last_poll = now
        self.state.next_poll = now + self.poll_interval
        self._want(now, reasons)

    def _count_plays(self, sessions: dict[str, Playback], pool: PoolView) -> None:
        """Count playbacks as they start, and how many of them the pool served (spin-ups avoided)."""
        for key, now in sessions.items():
            was = self.state.sessions.get(key)
            if was is None or was.rating_key != now.rating_key:
                from_pool = now.rating_key in pool.keys
                self.state.plays += 1
                self.state.plays_from_pool += from_pool
                runs.count_play(self.settings, from_pool)

    def pool_view(self) -> PoolView:
        """What is on the pool now (read each poll: runs change the registry)."""
        try:
            return pool_view(StateStore(self.settings).load_registry().entries.values())
        except PlexCacheError as exc:
            log.warning("live: cannot read the registry (%s); treating nothing as cached", exc)
            return PoolView()

    def _connect(self) -> PlexServer:
        if self.server is None:
            plex = self.settings.plex
            self.server, _info = connect(plex.url, plex.token, self.session, plex.timeout)
        return self.server

    def _check_recent(self, server: PlexServer) -> list[str]:
        newest = newest_added(server)
        seen, self.state.newest_added = self.state.newest_added, newest
        if seen is not None and newest is not None and newest > seen:
            return ["new media was added to Plex"]
        return []

    def _want(self, now: float, reasons: list[str]) -> None:
        for reason in reasons:
            log.info("live: %s", reason)
        if reasons and not self.state.pending:
            self.state.pending_since = now
        self.state.pending.extend(reasons)

    # ---------------------------------------------------------------- acting

    def _run_cycle(self, now: float) -> None:
        why = "; ".join(self.state.pending)
        try:
            report = self.cycle(self.settings, add_only=True)
        except LockHeld:
            log.info("live: a run is in progress; looking again in %.0f s", BUSY_RETRY)
            self.state.pending_since = now + BUSY_RETRY - SETTLE_SECONDS
            return
        except EnvironmentRefuses as exc:
            self._back_off(now, str(exc), keep_pending=True)
            return
        except PlexCacheError as exc:
            self._back_off(now, str(exc), keep_pending=True)
            return
        self.state.cycles += 1
        document = report.to_json() if report is not None else {}
        self.state.last_cycle = {"why": why, "at": time.time(), "cached": document.get("cached", 0),
                                 "moved_back": document.get("moved_back", 0), "exit_code": document.get("exit_code")}
        log.info("live: cycle after %s: cached %s, moved back %s", why, document.get("cached", 0),
                 document.get("moved_back", 0))
        self.state.pending, self.state.pending_since = [], None

    def _back_off(self, now: float, why: str, keep_pending: bool = False) -> None:
        self.state.failures += 1
        delay = min(BACKOFF_MAX, self.poll_seconds * 2 ** min(self.state.failures, 10))
        log.warning("live: %s; trying again in %.0f s", why, delay)
        self.state.next_poll = now + delay
        if keep_pending and self.state.pending:
            self.state.pending_since = now + delay - SETTLE_SECONDS

    def status(self) -> dict[str, Any]:
        return {"schema": 1, "pid": os.getpid(), "updated_at": time.time(), "cycles": self.state.cycles,
                "sessions": [vars(p) for p in self.state.sessions.values()], "failures": self.state.failures,
                "pending": self.state.pending, "last_cycle": self.state.last_cycle,
                "plays": self.state.plays, "plays_from_pool": self.state.plays_from_pool,
                "since": self.state.since, "plex_requests": self.session.sent,
                "poll_seconds": self.settings.live.poll_seconds,
                "channel": "notifications" if self.notifications.open else "polling",
                "notifications": self.notifications.received}

    def close(self) -> None:
        self.notifications.stop()


# -------------------------------------------------------------------- the daemon


def state_path(settings: Settings) -> Path:
    return live_state_path(settings)


def serve(settings: Settings, *, stop: Optional[threading.Event] = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop` is set). One instance: a second one is refused (exit 4)."""
    if not settings.live.enabled:
        raise UsageError("live mode is off: turn on live.enabled in the settings first")
    stop = stop or threading.Event()
    lock = LiveLock(settings.paths.volatile_dir)
    lock.acquire()
    watcher = LiveWatcher(settings)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    # The loop sleeps on the watcher's wake event (notifications set it); stopping must wake it too.
    def wake_on_stop() -> None:
        stop.wait()
        watcher.wake.set()

    threading.Thread(target=wake_on_stop, name="live-stop", daemon=True).start()
    how = "Plex's notifications" if settings.live.notifications else f"a poll every {settings.live.poll_seconds} s"
    log.info("live: following Plex through %s", how)
    try:
        while not stop.is_set():
            wait = watcher.tick()
            write_json_if_changed(state_path(settings), watcher.status())
            watcher.wake.wait(wait)
            watcher.wake.clear()
    finally:
        watcher.close()
        runs.flush(settings)
        remove_own_file(state_path(settings))
        lock.release()
    log.info("live: stopped")


def running(settings: Settings) -> bool:
    """True while a live watcher holds its lock (for status and the Dashboard)."""
    return live_running(settings)
