"""The household model: a library, five kinds of viewer, and the script of what they will watch.

Everything here is pure and seeded: the same household file gives the same library, the same scenario for
the Plex simulator and the same list of events (plays, new episodes, watchlist changes), so every policy
replays exactly the same month.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from plexcache.errors import UsageError

GB = 1000**3
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$", re.I)
_UNIT = {"": 1, "K": 1000, "M": 1000**2, "G": GB, "T": 1000**4}
KINDS = ("owner", "home", "managed", "friend")
BEHAVIOURS = ("binge", "weekly", "movies", "rewatch")

WORDS_A = ["Silent", "Broken", "Golden", "Last", "Hidden", "Northern", "Iron", "Crimson", "Quiet", "Wild", "Lost",
           "Burning", "Frozen", "Distant", "Electric", "Hollow", "Midnight", "Paper", "Glass", "Velvet"]
WORDS_B = ["Harbor", "Empire", "Signal", "Frontier", "Garden", "Station", "Kingdom", "Archive", "Circuit", "Valley",
           "Protocol", "Orchard", "Lighthouse", "Republic", "Mirror", "Canyon", "Voyage", "Theory", "Tides", "Code"]


def size_of(text: Any, where: str) -> int:
    """'4.5GB' / '800MB' / a number of bytes -> bytes (decimal units, as drives are sold)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    m = _SIZE.match(str(text))
    if not m:
        raise UsageError(f"household: {where}: expected a size like 4.5GB, got {text!r}")
    return int(float(m.group(1)) * _UNIT[m.group(2).upper()])


def clock_of(text: Any, where: str) -> int:
    """'20:30' -> seconds after midnight."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(text))
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise UsageError(f"household: {where}: expected a time like 20:30, got {text!r}")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60


def _pair(value: Any, where: str, conv: Any = float) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise UsageError(f"household: {where}: expected [low, high], got {value!r}")
    lo, hi = conv(value[0]), conv(value[1])
    if lo > hi:
        raise UsageError(f"household: {where}: low {value[0]!r} is above high {value[1]!r}")
    return lo, hi


# ------------------------------------------------------------------ the household file


@dataclass
class Viewer:
    name: str
    kind: str
    behaviour: str
    raw: dict[str, Any]

    def window(self) -> tuple[int, int]:
        lo, hi = self.raw.get("evenings", ["20:00", "22:00"])
        return clock_of(lo, f"{self.name}.evenings"), clock_of(hi, f"{self.name}.evenings")

    def get(self, key: str, default: Any) -> Any:
        return self.raw.get(key, default)


@dataclass
class Household:
    source: str
    seed: int
    days: int
    start: int
    scale: int
    server: dict[str, Any]
    library: dict[str, Any]
    viewers: list[Viewer]
    surprise_plays: float
    policies: dict[str, dict[str, Any]]

    @property
    def pool_bytes(self) -> int:
        return size_of(self.server.get("pool", "500GB"), "server.pool")

    @property
    def pool_other_bytes(self) -> int:
        return size_of(self.server.get("pool_other", "0"), "server.pool_other")

    @property
    def disks(self) -> int:
        return int(self.server.get("disks", 6))

    @property
    def nightly_at(self) -> int:
        return clock_of(self.server.get("nightly_at", "03:00"), "server.nightly_at")


def load_household(path: Union[str, Path], days: Optional[int] = None, seed: Optional[int] = None) -> Household:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"household {path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"household {path}: expected a mapping")
    viewers = []
    for i, u in enumerate(data.get("users") or []):
        if not isinstance(u, dict) or u.get("kind") not in KINDS or u.get("behaviour") not in BEHAVIOURS:
            raise UsageError(f"household {path}: users[{i}]: needs name, kind ({'/'.join(KINDS)}) and "
                             f"behaviour ({'/'.join(BEHAVIOURS)})")
        viewers.append(Viewer(str(u["name"]), u["kind"], u["behaviour"], u))
    if sum(v.kind == "owner" for v in viewers) != 1:
        raise UsageError(f"household {path}: exactly one user must be the owner")
    start = dt.datetime.fromisoformat(str(data.get("start", "2026-02-02T00:00:00Z")).replace("Z", "+00:00"))
    return Household(
        source=str(path), seed=int(data.get("seed", 1) if seed is None else seed),
        days=int(data.get("days", 28) if days is None else days), start=int(start.timestamp()),
        scale=max(1, int(data.get("scale", 1024))), server=dict(data.get("server") or {}),
        library=dict(data.get("library") or {}), viewers=viewers,
        surprise_plays=float(data.get("surprise_plays", 0.0)),
        policies={str(k): dict(v or {}) for k, v in (data.get("policies") or {"default": {}}).items()})


# ------------------------------------------------------------------ the library


@dataclass
class ShowSpec:
    title: str
    year: int
    seasons: dict[int, int]  # season -> episodes present at the start
    size: int  # real bytes per episode (before scaling)
    minutes: int
    disk: str
    airing: bool = False


@dataclass
class MovieSpec:
    title: str
    year: int
    size: int
    minutes: int
    disk: str


@dataclass
class Library:
    shows: list[ShowSpec]
    movies: list[MovieSpec]


def _titles(rng: random.Random, n: int) -> list[str]:
    combos = [f"{a} {b}" for a in WORDS_A for b in WORDS_B]
    rng.shuffle(combos)
    out = []
    for i in range(n):
        base = combos[i % len(combos)]
        out.append(base if i < len(combos) else f"{base} {i // len(combos) + 1}")
    return out


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    # Media sizes are skewed: many ordinary files, a few huge ones. Log-uniform is a fair simple shape.
    import math

    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def build_library(h: Household) -> Library:
    rng = random.Random(f"{h.seed}-library")
    lib = h.library
    s_lo, s_hi = _pair(lib.get("seasons", [1, 6]), "library.seasons", int)
    e_lo, e_hi = _pair(lib.get("episodes_per_season", [6, 22]), "library.episodes_per_season", int)
    z_lo, z_hi = _pair(lib.get("episode_size", ["0.9GB", "4.5GB"]), "library.episode_size",
                       lambda v: size_of(v, "library.episode_size"))
    m_lo, m_hi = _pair(lib.get("episode_minutes", [22, 60]), "library.episode_minutes", int)
    titles = _titles(rng, int(lib.get("shows", 60)) + int(lib.get("movies", 600)))
    shows = []
    for i in range(int(lib.get("shows", 60))):
        seasons = {s: rng.randint(e_lo, e_hi) for s in range(1, rng.randint(s_lo, s_hi) + 1)}
        shows.append(ShowSpec(titles[i], rng.randint(1995, 2025), seasons, int(_log_uniform(rng, z_lo, z_hi)),
                              rng.randint(m_lo, m_hi), f"disk{rng.randint(1, h.disks)}"))
    mz_lo, mz_hi = _pair(lib.get("movie_size", ["3GB", "65GB"]), "library.movie_size",
                         lambda v: size_of(v, "library.movie_size"))
    mm_lo, mm_hi = _pair(lib.get("movie_minutes", [85, 170]), "library.movie_minutes", int)
    movies = [MovieSpec(titles[len(shows) + i], rng.randint(1970, 2025), int(_log_uniform(rng, mz_lo, mz_hi)),
                        rng.randint(mm_lo, mm_hi), f"disk{rng.randint(1, h.disks)}")
              for i in range(int(lib.get("movies", 600)))]
    return Library(shows, movies)


# ------------------------------------------------------------------ events


@dataclass(frozen=True)
class EpisodeKey:
    show: str  # title
    season: int
    episode: int


@dataclass(frozen=True)
class MovieKey:
    title: str


Key = Union[EpisodeKey, MovieKey]


@dataclass
class Play:
    start: int
    end: int
    user: str
    key: Key
    finish: bool  # False: stopped midway, at offset_ms
    offset_ms: int = 0
    predictable: bool = True  # False when nothing could name it first: surprises, a new show's first episode


@dataclass
class Release:
    at: int
    show: str
    season: int
    count: int  # the season has this many episodes after the release


@dataclass
class WatchlistChange:
    at: int
    user: str
    add: Optional[str] = None  # movie title
    remove: Optional[str] = None


Event = Union[Play, Release, WatchlistChange]


@dataclass
class Script:
    """Initial watch state (for the scenario) and the events of every day, sorted by time."""

    # user -> (scenario ref, seconds before day 0) of what was watched before the replay starts
    watched: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    progress: dict[str, dict[str, str]] = field(default_factory=dict)
    watchlists: dict[str, list[str]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def plays(self) -> list[Play]:
        return [e for e in self.events if isinstance(e, Play)]


def event_time(e: Event) -> int:
    return e.start if isinstance(e, Play) else e.at


class _Evening:
    """One viewer's evening: plays follow each other from a random start time."""

    def __init__(self, h: Household, v: Viewer, rng: random.Random, day: int) -> None:
        lo, hi = v.window()
        self.t = h.start + day * 86400 + rng.randint(lo, hi)


def _ref(show: ShowSpec, s: int, e: int) -> str:
    return f"{show.title} ({show.year}) S{s:02d}E{e:02d}"


def _episodes(show: ShowSpec) -> list[tuple[int, int]]:
    return [(s, e) for s in sorted(show.seasons) for e in range(1, show.seasons[s] + 1)]


class ScriptWriter:
    def __init__(self, h: Household, lib: Library) -> None:
        self.h, self.lib, self.script = h, lib, Script()
        rng = random.Random(f"{h.seed}-airing")
        weekly = sum(int(v.get("shows", 4)) for v in h.viewers if v.behaviour == "weekly")
        self.airing = rng.sample(lib.shows, min(weekly, len(lib.shows)))
        for show in self.airing:
            show.airing = True
        self.free_shows = [s for s in lib.shows if not s.airing]

    def write(self) -> Script:
        for v in self.h.viewers:
            rng = random.Random(f"{self.h.seed}-{v.name}")
            {"binge": self.binge, "weekly": self.weekly, "movies": self.movies,
             "rewatch": self.rewatch}[v.behaviour](v, rng)
        self.surprises(random.Random(f"{self.h.seed}-surprise"))
        self.script.events.sort(key=lambda e: (event_time(e), not isinstance(e, Release)))
        return self.script

    def binge(self, v: Viewer, rng: random.Random) -> None:
        queue = rng.sample(self.free_shows, len(self.free_shows))
        show = queue.pop()
        eps = _episodes(show)
        pos = rng.randint(1, max(1, len(eps) - 3))  # already some way into the first show
        self.past_views(v, show, eps[:pos], _pair(v.get("episodes", [2, 4]), f"{v.name}.episodes", int), 1,
                        float(v.get("nights_off", 0.2)))
        resume = 0  # seconds into the episode at pos, when the last night stopped midway
        e_lo, e_hi = _pair(v.get("episodes", [2, 4]), f"{v.name}.episodes", int)
        for day in range(self.h.days):
            if rng.random() < float(v.get("nights_off", 0.2)):
                continue
            t = _Evening(self.h, v, rng, day).t
            if rng.random() < float(v.get("rewatch", 0.0)):
                movie = rng.choice(self.lib.movies)
                t = self._play(t, v.name, MovieKey(movie.title), movie.minutes * 60, 0, True, False)
            count = rng.randint(e_lo, e_hi)
            for n in range(count):
                if pos >= len(eps):
                    if not queue:
                        return
                    show, pos = queue.pop(), 0
                    eps = _episodes(show)
                # The next show is picked at random: nothing (no watchlist, no On Deck) names its first episode.
                known = pos > 0 or resume > 0
                length = show.minutes * 60
                if n == count - 1 and rng.random() < float(v.get("stops_midway", 0.2)):
                    # falls asleep: the episode stays On Deck with a position, resumed next time
                    at = min(length - 60, rng.randint(resume + 60, max(resume + 120, length * 4 // 5)))
                    t = self._play(t, v.name, EpisodeKey(show.title, *eps[pos]), at - resume, at, False, known)
                    resume = at
                    break
                t = self._play(t, v.name, EpisodeKey(show.title, *eps[pos]), length - resume, 0, True, known)
                pos, resume = pos + 1, 0

    def past_views(self, v: Viewer, show: ShowSpec, watched: list[tuple[int, int]], per_sitting: tuple[int, int],
                   every_days: int, days_off: float) -> None:
        """When the episodes watched before day 0 were watched (Plex's history, which the product reads): the
        last ones at the viewer's own pace over the last two weeks, the rest a month earlier. Its own random
        stream, so the script of the replayed days does not change with it."""
        rng = random.Random(f"{self.h.seed}-{v.name}-{show.title}-history")
        out = self.script.watched.setdefault(v.name, [])
        lo, hi = v.window()
        left, day = len(watched), every_days
        while left > 0 and day <= 14:
            if rng.random() >= days_off:
                n = min(left, rng.randint(*per_sitting))
                step = show.minutes * 60 + 300
                # an evening `day` days before day 0 (in seconds before it), over before day 0 begins
                t = max(day * 86400 - rng.randint(lo, hi), n * step)
                for k in range(n):
                    out.append((_ref(show, *watched[left - n + k]), t - k * step))
                left -= n
            day += every_days
        if left:
            first, last = watched[0], watched[left - 1]
            out.append((f"{_ref(show, *first)}-S{last[0]:02d}E{last[1]:02d}", 30 * 86400))

    def weekly(self, v: Viewer, rng: random.Random) -> None:
        n = int(v.get("shows", 4))
        mine = self.airing[:n]
        self.airing = self.airing[n:]
        lag_lo, lag_hi = _pair(v.get("lag_days", [0, 2]), f"{v.name}.lag_days", int)
        lo, hi = v.window()
        for show in mine:
            last_season = max(show.seasons)
            present = show.seasons[last_season]
            eps = _episodes(show)
            self.past_views(v, show, eps[:eps.index((last_season, present)) + 1], (1, 1), 7, 0.0)
            weekday = rng.randrange(7)
            count = present
            for day in range(self.h.days):
                if (day + self.h.start // 86400 + 3) % 7 != weekday:  # epoch day 0 was a Thursday
                    continue
                count += 1
                # Downloads land at any hour; one that lands after the nightly run waits a day for it.
                released = self.h.start + day * 86400 + rng.randrange(86400)
                self.script.events.append(Release(released, show.title, last_season, count))
                watch_day = day + rng.randint(lag_lo, lag_hi)
                t = self.h.start + watch_day * 86400 + rng.randint(lo, hi)
                if t <= released:
                    t += 86400
                if t < self.h.start + self.h.days * 86400:
                    self._play(t, v.name, EpisodeKey(show.title, last_season, count), show.minutes * 60, 0, True)

    def movies(self, v: Viewer, rng: random.Random) -> None:
        pool = rng.sample(self.lib.movies, len(self.lib.movies))
        watchlist = [pool.pop() for _ in range(int(v.get("watchlist", 12)))]
        self.script.watchlists[v.name] = [f"{m.title} ({m.year})" for m in watchlist]
        d_lo, d_hi = _pair(v.get("every_days", [1, 3]), f"{v.name}.every_days", int)
        day = rng.randint(0, d_hi)
        while day < self.h.days and watchlist:
            t = _Evening(self.h, v, rng, day).t
            movie = watchlist.pop(rng.randrange(min(3, len(watchlist))))  # one of the top three
            length = movie.minutes * 60
            if rng.random() < float(v.get("stops_midway", 0.2)):
                part = rng.randint(length // 5, length * 3 // 4)
                t2 = self._play(t, v.name, MovieKey(movie.title), part, part, False)
                t = self.h.start + (day + 1) * 86400 + rng.randint(*v.window())
                t = max(t, t2 + 3600)
                length -= part
            end = self._play(t, v.name, MovieKey(movie.title), length, 0, True)
            self.script.events.append(WatchlistChange(end, v.name, remove=movie.title))
            if pool:
                new = pool.pop()
                watchlist.append(new)
                self.script.events.append(WatchlistChange(end + 60, v.name, add=new.title))
            day += rng.randint(d_lo, d_hi) + (1 if t >= self.h.start + (day + 1) * 86400 else 0)

    def rewatch(self, v: Viewer, rng: random.Random) -> None:
        """A child with a few favourite movies, one or two of them most days, over and over. Predictable only
        from history: a favourite is watched, so it is never On Deck, next or on a watchlist."""
        favourites = rng.sample(self.lib.movies, int(v.get("favourites", 4)))
        p_lo, p_hi = _pair(v.get("plays", [1, 2]), f"{v.name}.plays", int)
        for day in range(self.h.days):
            if rng.random() < float(v.get("nights_off", 0.2)):
                continue
            t = _Evening(self.h, v, rng, day).t
            for _ in range(rng.randint(p_lo, p_hi)):
                movie = rng.choice(favourites)
                t = self._play(t, v.name, MovieKey(movie.title), movie.minutes * 60, 0, True, day > 0)

    def surprises(self, rng: random.Random) -> None:
        names = [v.name for v in self.h.viewers]
        for day in range(self.h.days):
            count = int(self.h.surprise_plays) + (rng.random() < self.h.surprise_plays % 1)
            for _ in range(count):
                t = self.h.start + day * 86400 + rng.randint(14 * 3600, 23 * 3600)
                user = rng.choice(names)
                if rng.random() < 0.7:
                    movie = rng.choice(self.lib.movies)
                    self._play(t, user, MovieKey(movie.title), movie.minutes * 60, 0, True, False)
                else:  # someone tries the first episode of a show nobody watches
                    show = rng.choice(self.free_shows)
                    self._play(t, user, EpisodeKey(show.title, *_episodes(show)[0]), show.minutes * 60, 0, True,
                               False)

    def _play(self, t: int, user: str, key: Key, seconds: int, offset_s: int, finish: bool,
              predictable: bool = True) -> int:
        seconds = max(60, int(seconds))
        self.script.events.append(Play(t, t + seconds, user, key, finish, offset_s * 1000, predictable))
        return t + seconds + 300  # a short break before the next one


def write_script(h: Household, lib: Library) -> Script:
    return ScriptWriter(h, lib).write()


# ------------------------------------------------------------------ the simulator scenario


def scenario_document(h: Household, lib: Library, script: Script) -> dict[str, Any]:
    """The Plex simulator's scenario (see docs/scenario.md): sizes divided by the household's scale."""
    users = []
    for i, v in enumerate(h.viewers):
        user: dict[str, Any] = {"name": v.name, "kind": v.kind, "id": 100 + i}
        users.append(user)
    shows = [{"title": s.title, "year": s.year, "seasons": dict(s.seasons), "size": max(1, s.size // h.scale),
              "disk": s.disk, "duration": f"{s.minutes}m"} for s in lib.shows]
    movies = [{"title": m.title, "year": m.year, "size": max(1, m.size // h.scale), "disk": m.disk,
               "duration": f"{m.minutes}m"} for m in lib.movies]
    start = dt.datetime.fromtimestamp(h.start, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "now": start,
        "server": {"name": "tower"},
        "users": users,
        "unraid": {"disks": h.disks, "pools": ["cache"], "fillLimit": 4096,
                   "shares": {"tv": {"useCache": "yes", "pool": "cache"},
                              "movies": {"useCache": "yes", "pool": "cache"}},
                   "pathMap": {"/data/tv": "tv", "/data/movies": "movies"}},
        "libraries": [
            {"id": 1, "type": "show", "title": "TV Shows", "locations": ["/data/tv"], "shows": shows,
             "addedAt": "400d"},
            {"id": 2, "type": "movie", "title": "Movies", "locations": ["/data/movies"], "movies": movies,
             "addedAt": "400d"},
        ],
        "watch": {u: {"watched": [{"item": ref, "at": f"{ago}s"} for ref, ago in refs]}
                  for u, refs in script.watched.items()},
        "watchlists": dict(script.watchlists),
    }
