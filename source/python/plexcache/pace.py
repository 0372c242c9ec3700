"""Each viewer's pace: how many episodes of a show a user watches a day, and what follows from it.

Learned from what every run already sees: a user's On Deck episode of a show and the next episodes after it.
When a later run finds the On Deck episode moved n places down the queue seen before, the user watched n
episodes in between. A show seen for the first time starts from Plex's own history (when the user last
viewed each earlier episode), so a pace is known from the first run. The pace is the episodes watched over
the last WINDOW_DAYS (or since the show was first seen, if later), per day. Two figures follow, per user and show:

- ahead: next episodes to cache, ceil(pace x demand.pace_days), at least 1, at most
  demand.next_episodes; a show without enough history takes the user's fastest pace on their other shows
  (a binge watcher starting a new show), or, with none, START_AHEAD (or next_episodes, if fewer).
- due: next episodes likely watched before the next run, ceil(pace) (a daily run); only a due file wakes
  an array disk in standby (planner.due). Without any history of the user, cache.due_episodes.

Pure apart from `load`/`save` (pace.json in the state directory, written only when something moved).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from plexcache import fsutil
from plexcache.config import Settings
from plexcache.demand import Reason, WantedFile
from plexcache.errors import UsageError

SCHEMA = 1
FILE_NAME = "pace.json"
DAY = 86400.0
WINDOW_DAYS = 14
MIN_HISTORY_DAYS = 3.0  # less than this since a show was first seen: no pace yet (a quiet evening is no pace)
START_AHEAD = 5  # next episodes while a pace is not known yet: the fixed count earlier versions used
Key = tuple[str, str]  # (user, show folder SHARE/FIRST-DIR)


@dataclass
class Track:
    """One user's progress through one show."""

    queue: list[str]  # user-share paths: the On Deck episode, then the next episodes in order, as last seen
    since: float  # start of the observed window
    watched: list[tuple[float, int]] = field(default_factory=list)  # (when, episodes watched since the last move)

    def per_day(self, now: float) -> Optional[float]:
        span = (now - self.since) / DAY
        if span < MIN_HISTORY_DAYS:
            return None
        return sum(n for _, n in self.watched) / span

    def to_json(self) -> dict[str, Any]:
        return {"queue": self.queue, "since": self.since, "watched": [list(w) for w in self.watched]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Track:
        return cls(list(doc["queue"]), float(doc["since"]), [(float(t), int(n)) for t, n in doc.get("watched", [])])


def show_of(w: WantedFile) -> Optional[str]:
    """Episodes of one show share the show folder: SHARE/FIRST-DIR."""
    if w.item.kind != "episode" or "/" not in w.rel:
        return None
    return f"{w.share}/{w.rel.split('/', 1)[0]}"


def queues(wanted: Iterable[WantedFile]) -> dict[Key, list[str]]:
    """Per user and show: the On Deck (or playing) episode, then the next episodes by rank."""
    heads: dict[Key, str] = {}
    nexts: dict[Key, list[tuple[int, str]]] = {}
    for w in wanted:
        show = show_of(w)
        if show is None:
            continue
        for r in w.item.reasons:
            if r.source in ("on_deck", "playing"):
                heads.setdefault((r.user, show), w.path)
            elif r.source == "next_episode":
                nexts.setdefault((r.user, show), []).append((r.rank, w.path))
    return {key: [head] + [p for _, p in sorted(nexts.get(key, []))] for key, head in heads.items()}


def heads(wanted: Iterable[WantedFile]) -> dict[Key, str]:
    """Per user and show: the rating key of the On Deck (or playing) episode, as `queues` picks it."""
    out: dict[Key, str] = {}
    for w in wanted:
        show = show_of(w)
        for r in w.item.reasons:
            if show is not None and r.source in ("on_deck", "playing"):
                out.setdefault((r.user, show), w.item.rating_key)
    return out


def first_track(queue: list[str], now: float, views: Iterable[float]) -> Track:
    """A track for a show seen for the first time. Plex's own history (when the user last viewed each
    earlier episode) fills in the window before it, so a pace is known from the first run after install."""
    start = now - WINDOW_DAYS * DAY
    recent = sorted(t for t in views if start <= t <= now)
    if not recent:
        return Track(queue, now)
    # The window opens a day before the first view: viewing comes in evenings, and opening it at the first
    # view would count a week of evenings over six days.
    return Track(queue, max(start, recent[0] - DAY), [(t, 1) for t in recent])


def observe(tracks: dict[Key, Track], wanted: Iterable[WantedFile], now: float,
            viewed: Optional[Mapping[tuple[str, str], Iterable[float]]] = None) -> bool:
    """Update the tracks with this run's queues; True when anything worth saving changed. `viewed`: Plex's
    history, (user, rating key of the On Deck episode) -> when each earlier episode was last viewed."""
    wanted = list(wanted)
    head_keys = heads(wanted) if viewed else {}
    changed = False
    for key, queue in queues(wanted).items():
        old = tracks.get(key)
        if old is None:
            views = (viewed or {}).get((key[0], head_keys.get(key, "")), ())
            tracks[key] = first_track(queue, now, views)
            changed = True
            continue
        if queue[0] == old.queue[0]:
            continue  # still on the same episode (maybe part-watched): nothing learned, nothing to write
        # moved down the queue: that many watched; past its end (or elsewhere): at least the whole queue
        moved = old.queue.index(queue[0]) if queue[0] in old.queue else len(old.queue)
        old.watched.append((now, moved))
        old.queue = queue
        changed = True
    for track in tracks.values():
        start = now - WINDOW_DAYS * DAY
        if track.since < start:
            track.since = start
            track.watched = [w for w in track.watched if w[0] >= start]
    return changed


@dataclass(frozen=True)
class Lookahead:
    ahead: int  # next episodes to cache
    due: int  # next episodes due before the next run
    per_day: Optional[float]  # the learned pace (None: not enough history)


def lookahead(track: Optional[Track], settings: Settings, now: float,
              seed: Optional[float] = None) -> Lookahead:
    """The figures for one user and show. `seed`: the user's pace on their other shows, used while this show
    has too little history of its own (a binge watcher starting a new show keeps their pace)."""
    rate = track.per_day(now) if track is not None and settings.demand.pace else None
    cap = settings.demand.next_episodes
    if rate is None and seed is not None and settings.demand.pace:
        return _figures(seed, settings, None)
    if rate is None:
        return Lookahead(min(cap, START_AHEAD) if settings.demand.pace else cap, settings.cache.due_episodes, None)
    return _figures(rate, settings, round(rate, 2))


def _figures(rate: float, settings: Settings, shown: Optional[float]) -> Lookahead:
    ahead = min(settings.demand.next_episodes, max(1, math.ceil(rate * settings.demand.pace_days - 1e-9)))
    due = min(ahead, math.ceil(rate - 1e-9))
    return Lookahead(ahead, due, shown)


def user_paces(tracks: dict[Key, Track], now: float) -> dict[str, float]:
    """Each user's fastest learned pace on any show: the seed for a show of theirs without history yet."""
    out: dict[str, float] = {}
    for (user, _), track in tracks.items():
        rate = track.per_day(now)
        if rate is not None and rate > 0:
            out[user] = max(rate, out.get(user, 0.0))
    return out


def plan_ahead(tracks: dict[Key, Track], wanted: list[WantedFile], settings: Settings,
               now: float) -> tuple[list[WantedFile], dict[Key, Lookahead]]:
    """Trim each user's next episodes of each show to that user's lookahead; the lookaheads by (user, show)."""
    seeds = user_paces(tracks, now)
    looks = {key: lookahead(tracks.get(key), settings, now, seeds.get(key[0])) for key in queues(wanted)}
    out = []
    for w in wanted:
        show = show_of(w)
        reasons = [r for r in w.item.reasons if _keep(r, show, looks, settings)]
        if not reasons:
            continue
        if len(reasons) != len(w.item.reasons):
            w = dataclasses.replace(w, item=dataclasses.replace(w.item, reasons=reasons))
        out.append(w)
    return out, looks


def _keep(r: Reason, show: Optional[str], looks: dict[Key, Lookahead], settings: Settings) -> bool:
    if r.source != "next_episode" or show is None:
        return True
    look = looks.get((r.user, show))
    return r.rank < (look.ahead if look is not None else settings.demand.next_episodes)


def summary(settings: Settings, now: float) -> list[dict[str, Any]]:
    """The learned figures per user and show (for `status --json`), fastest first."""
    rows = []
    for (user, show), track in load(settings).items():
        look = lookahead(track, settings, now)
        if look.per_day is not None:
            rows.append({"user": user, "show": show, "episodes_per_day": look.per_day, "ahead": look.ahead,
                         "due": look.due})
    return sorted(rows, key=lambda r: (-r["episodes_per_day"], r["user"], r["show"]))


# ---------------------------------------------------------------- state


def path_of(settings: Settings) -> Path:
    return Path(settings.paths.state_dir) / FILE_NAME


def load(settings: Settings) -> dict[Key, Track]:
    """The tracks saved by earlier runs; an unreadable file only loses the history (it is advisory)."""
    try:
        doc = fsutil.read_json(path_of(settings), SCHEMA, {"schema": SCHEMA, "tracks": []})
    except UsageError:
        return {}
    tracks = {}
    for t in doc.get("tracks", []):
        try:
            tracks[(str(t["user"]), str(t["show"]))] = Track.from_json(t)
        except (KeyError, TypeError, ValueError):
            continue  # a damaged record only loses its history
    return tracks


def save(settings: Settings, tracks: dict[Key, Track]) -> None:
    doc = {"schema": SCHEMA, "tracks": [{"user": u, "show": s, **t.to_json()} for (u, s), t in sorted(tracks.items())]}
    fsutil.write_json_if_changed(path_of(settings), doc)
