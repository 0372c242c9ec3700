"""The live simulated world: a loaded Scenario plus the indexes and per-user views the server answers from.

Everything a response needs is looked up by key (rating key, guid, token) so a response costs time in
proportion to its own size, even for a world of 100,000 episodes. Mutations (watch state, sessions, new
episodes, the clock) go through methods here, under one lock, and drop only the caches they affect.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Optional

from plexcache.sim.scenario import (
    Item,
    Scenario,
    Session,
    User,
    WatchState,
    _LibDefaults,
    add_season,
    episodes_of,
    parse_duration,
    parse_time,
    resolve_ref,
    stable_hex,
)


class World:
    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        self.lock = threading.RLock()
        self.pms_tokens: dict[str, str] = {}
        self.tv_tokens: dict[str, str] = {}
        for u in scenario.users.values():
            self.pms_tokens[u.pms_token] = u.name
            self.pms_tokens[u.token] = u.name  # a plex.tv token of a server member also works on PMS
            self.tv_tokens[u.token] = u.name
        self.users_by_id = {u.id: u for u in scenario.users.values()}
        self.pins: dict[int, dict[str, Any]] = {}
        self.changes = 1000 + len(scenario.items)  # the library's change counter (contentChangedAt)
        self._section_eps: dict[int, list[int]] = {}
        self._recent: dict[Optional[int], list[int]] = {}
        self._viewed: dict[str, dict[int, int]] = {}
        self._leaf: dict[int, int] = {}
        self._show_pos: dict[int, dict[int, int]] = {}
        self._by_plex_id: dict[str, int] = {}
        self._reindex()
        for n, session in enumerate(scenario.sessions, start=1):
            session.key = n
        self._last_session_key = len(scenario.sessions)
        # Where notifications go (the server's websocket hub); the world only says what happened.
        self.publish: Callable[[dict[str, Any]], None] = lambda container: None

    # ------------------------------------------------------------ indexes

    def _reindex(self) -> None:
        self._section_eps.clear()
        self._recent.clear()
        self._leaf.clear()
        self._show_pos.clear()
        self._by_plex_id = {}
        for it in self.sc.items.values():
            if it.type in ("movie", "show"):
                self._by_plex_id[it.plex_id] = it.rk
        self.guid_map = self.sc.by_guid()

    @property
    def now(self) -> int:
        return self.sc.now

    def item(self, rk: int) -> Optional[Item]:
        return self.sc.items.get(rk)

    def by_plex_id(self, plex_id: str) -> Optional[int]:
        return self._by_plex_id.get(plex_id)

    def section_episodes(self, section: int) -> list[int]:
        eps = self._section_eps.get(section)
        if eps is None:
            eps = [e for show in self.sc.libraries[section].items for e in episodes_of(self.sc, show)]
            self._section_eps[section] = eps
        return eps

    def recently_added(self, section: Optional[int] = None) -> list[int]:
        """Movies and episodes, newest addedAt first (cached until the library changes)."""
        rks = self._recent.get(section)
        if rks is None:
            libs = [self.sc.libraries[section]] if section is not None else list(self.sc.libraries.values())
            rks = []
            for lib in libs:
                rks.extend(lib.items if lib.type == "movie" else self.section_episodes(lib.id))
            rks.sort(key=lambda rk: -self.sc.items[rk].added_at)
            self._recent[section] = rks
        return rks

    def leaf_count(self, rk: int) -> int:
        """Episodes under a show or season."""
        n = self._leaf.get(rk)
        if n is None:
            it = self.sc.items[rk]
            n = len(it.children) if it.type == "season" else sum(len(self.sc.items[s].children) for s in it.children)
            self._leaf[rk] = n
        return n

    def viewed_leaf_count(self, user: str, rk: int) -> int:
        counts = self._viewed.get(user)
        if counts is None:
            counts = {}
            for erk, st in self.sc.views[user].state.items():
                ep = self.sc.items.get(erk)
                if ep is None or ep.type != "episode" or st.view_count <= 0:
                    continue
                counts[ep.parent_rk] = counts.get(ep.parent_rk, 0) + 1
                counts[ep.show_rk] = counts.get(ep.show_rk, 0) + 1
            self._viewed[user] = counts
        return counts.get(rk, 0)

    def show_position(self, show_rk: int, ep_rk: int) -> tuple[list[int], int]:
        pos = self._show_pos.get(show_rk)
        if pos is None:
            pos = {e: i for i, e in enumerate(episodes_of(self.sc, show_rk))}
            self._show_pos[show_rk] = pos
        return episodes_of(self.sc, show_rk), pos[ep_rk]

    # ------------------------------------------------------------ per-user views

    def state(self, user: str, rk: int) -> Optional[WatchState]:
        return self.sc.views[user].state.get(rk)

    def on_deck(self, user: str, section: Optional[int] = None) -> list[int]:
        """Explicit list from the scenario, or 'auto': in-progress items plus each show's next episode."""
        view = self.sc.views[user]
        rks = self._auto_deck(user) if isinstance(view.on_deck, str) else list(view.on_deck)
        if section is not None:
            rks = [rk for rk in rks if self.sc.items[rk].section == section]
        return rks

    def deck_viewed_at(self, user: str, rk: int) -> Optional[int]:
        """The lastViewedAt an On Deck entry carries: its own, or for the next episode of a show (never viewed
        itself) when the user last watched that show, which is what orders a real On Deck."""
        st = self.state(user, rk)
        if st is not None and st.last_viewed_at is not None:
            return st.last_viewed_at
        it = self.sc.items[rk]
        if it.type != "episode":
            return None
        return max((s.last_viewed_at for erk, s in self.sc.views[user].state.items() if s.last_viewed_at
                    and self.sc.items.get(erk) is not None and self.sc.items[erk].grandparent == it.grandparent),
                   default=None)

    def _auto_deck(self, user: str) -> list[int]:
        entries: list[tuple[int, int]] = []  # (lastViewedAt, rk)
        latest: dict[int, tuple[int, int]] = {}  # show rk -> (lastViewedAt, episode rk)
        for rk, st in self.sc.views[user].state.items():
            it = self.sc.items.get(rk)
            if it is None or st.last_viewed_at is None:
                continue
            if it.type == "movie":
                if st.view_offset > 0:
                    entries.append((st.last_viewed_at, rk))
            elif it.type == "episode":
                cur = latest.get(it.show_rk)
                if cur is None or st.last_viewed_at > cur[0]:
                    latest[it.show_rk] = (st.last_viewed_at, rk)
        for show_rk, (at, rk) in latest.items():
            nxt = self._deck_episode(user, show_rk, rk)
            if nxt is not None:
                entries.append((at, nxt))
        entries.sort(key=lambda e: (-e[0], e[1]))
        return [rk for _, rk in entries]

    def _deck_episode(self, user: str, show_rk: int, last_rk: int) -> Optional[int]:
        """The show's deck entry: the last episode if part-watched, else the next unwatched regular episode."""
        st = self.sc.views[user].state[last_rk]
        if st.view_offset > 0:
            return last_rk
        eps, pos = self.show_position(show_rk, last_rk)
        for rk in eps[pos + 1:]:
            ep = self.sc.items[rk]
            if self.sc.items[ep.parent_rk].index == 0:
                continue  # specials never come up as the next episode
            nst = self.sc.views[user].state.get(rk)
            if nst is None or nst.view_count == 0 or nst.view_offset > 0:
                return rk
        return None

    def sessions_for(self, user: Optional[str]) -> list[Session]:
        """The owner sees every session; other users see their own."""
        if user is None or self.sc.users[user].kind == "owner":
            return list(self.sc.sessions)
        return [s for s in self.sc.sessions if s.user == user]

    # ------------------------------------------------------------ mutations

    def _touch(self, user: str) -> None:
        self._viewed.pop(user, None)

    def set_watched(self, user: str, ref: Any, watched: bool = True, at: Any = None) -> list[int]:
        with self.lock:
            self._need_user(user)
            rks = resolve_ref(self.sc, ref)
            when = self.now if at is None else parse_time(at, self.now)
            view = self.sc.views[user]
            for rk in rks:
                if watched:
                    old = view.state.get(rk, WatchState())
                    view.state[rk] = WatchState(view_count=old.view_count + 1, view_offset=0, last_viewed_at=when)
                else:
                    view.state.pop(rk, None)
            self._touch(user)
            return rks

    def set_offset(self, user: str, ref: Any, offset_ms: int, at: Any = None) -> int:
        with self.lock:
            self._need_user(user)
            rks = resolve_ref(self.sc, ref)
            if len(rks) != 1:
                raise ValueError("an offset needs a single movie or episode")
            when = self.now if at is None else parse_time(at, self.now)
            view = self.sc.views[user]
            old = view.state.get(rks[0], WatchState())
            view.state[rks[0]] = WatchState(view_count=old.view_count, view_offset=int(offset_ms),
                                            last_viewed_at=when)
            self._touch(user)
            for session in self.sc.sessions:
                if session.user == user and session.rk == rks[0]:
                    session.view_offset = int(offset_ms)
                    self.publish(playing(session, session.state))
            return rks[0]

    def add_session(self, user: str, ref: Any, offset: Any = "5m", state: str = "playing",
                    player: str = "Living Room TV", session_id: Optional[str] = None) -> str:
        with self.lock:
            self._need_user(user)
            rks = resolve_ref(self.sc, ref)
            if len(rks) != 1:
                raise ValueError("a session plays a single movie or episode")
            sid = session_id or stable_hex("session", len(self.sc.sessions), user, rks[0], self.now)
            offset_ms = offset if isinstance(offset, int) else parse_duration(offset) * 1000
            self._last_session_key += 1
            session = Session(id=sid, user=user, rk=rks[0], view_offset=offset_ms, state=state, player=player,
                              key=self._last_session_key)
            self.sc.sessions.append(session)
            self.publish(playing(session, state))
            return sid

    def remove_session(self, session_id: Optional[str] = None) -> int:
        """Remove one session by id, or all when id is None; returns how many were removed."""
        with self.lock:
            ended = [s for s in self.sc.sessions if session_id is None or s.id == session_id]
            self.sc.sessions = [s for s in self.sc.sessions if s not in ended]
            for session in ended:
                self.publish(playing(session, "stopped"))
            return len(ended)

    def add_episodes(self, show_ref: Any, season: int, count: int) -> list[int]:
        """Grow season `season` of a show to `count` episodes (creating the season if needed)."""
        with self.lock:
            rks = resolve_ref(self.sc, show_ref)
            first = self.sc.items[rks[0]]
            show = first if first.type == "show" else self.sc.items[first.show_rk]
            if show.type != "show":
                raise ValueError(f"{show_ref!r} is not a show")
            sample = self.sc.items[rks[0]] if first.type == "episode" else None
            size = sample.parts()[0].size if sample else 1536 * 1024 * 1024
            disk = sample.parts()[0].disk if sample else None
            dfl = _LibDefaults(size=size, duration=(sample.duration if sample else 45 * 60000), disk=disk,
                               added=self.now)
            new = add_season(self.sc, show, season, count, show.template, dfl)
            self.changes += len(new)
            self._reindex()
            # PMS announces an item when it is created and again once its metadata is processed.
            for state in (0, 5):
                self.publish(timeline([self.sc.items[rk] for rk in new], show.section, state, self.now))
            return new

    def advance(self, seconds: Any) -> int:
        with self.lock:
            self.sc.now += parse_duration(seconds)
            return self.sc.now

    def _need_user(self, user: str) -> User:
        if user not in self.sc.users:
            raise ValueError(f"unknown user {user!r}")
        return self.sc.users[user]

    # ------------------------------------------------------------ PIN sign-in

    def new_pin(self, client_id: str) -> dict[str, Any]:
        with self.lock:
            pid = 100000 + len(self.pins) + 1
            pin = {"id": pid, "code": stable_hex("pin", pid, n=4).upper(), "clientIdentifier": client_id,
                   "authToken": None, "createdAt": self.now, "expiresAt": self.now + 900}
            self.pins[pid] = pin
            return pin

    def authorise_pin(self, pid: int, user: Optional[str] = None) -> None:
        with self.lock:
            if pid not in self.pins:
                raise ValueError(f"no PIN {pid}")
            u = self.sc.users[user] if user else self.sc.owner
            self.pins[pid]["authToken"] = u.token


# ------------------------------------------------------------------ notification containers


def playing(session: Session, state: str) -> dict[str, Any]:
    """A `playing` notification for one session (state: playing, paused, buffering or stopped)."""
    return {"type": "playing", "size": 1, "PlaySessionStateNotification": [{
        "sessionKey": str(session.key), "clientIdentifier": f"{session.id}-player", "guid": "",
        "ratingKey": str(session.rk), "url": "", "key": f"/library/metadata/{session.rk}",
        "viewOffset": session.view_offset, "playQueueItemID": session.key, "state": state}]}


TYPE_NUMBERS = {"movie": 1, "show": 2, "season": 3, "episode": 4}


def timeline(items: list[Item], section: int, state: int, now: int) -> dict[str, Any]:
    """A `timeline` notification: library items created (state 0) or processed (state 5)."""
    entries = [{"identifier": "com.plexapp.plugins.library", "sectionID": section, "itemID": it.rk,
                "type": TYPE_NUMBERS.get(it.type, 0), "title": it.title, "state": state,
                **({"metadataState": "created"} if state == 0 else {}), "updatedAt": now} for it in items]
    return {"type": "timeline", "size": len(entries), "TimelineEntry": entries}
