"""Load and validate a scenario: one YAML file describing a Plex world and the Unraid tree under it.

The file is compact on purpose (episode counts and a filename template instead of lists of files);
`load()` expands it into typed objects with every rating key, path, size and watch state resolved,
so the server and the sandbox never have to interpret YAML. See docs/scenario.md for the format.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from plexcache.errors import UsageError

USER_KINDS = ("owner", "home", "managed", "friend")
USE_CACHE = ("yes", "prefer", "only", "no")
MiB = 1024 * 1024
_UNITS = {"": 1, "B": 1, "K": 1024, "M": MiB, "G": 1024 * MiB, "T": 1024 * 1024 * MiB}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EP_REF = re.compile(r"^(?P<title>.+?)\s+S(?P<s>\d+)E(?P<e>\d+)(?:\s*-\s*S(?P<s2>\d+)E(?P<e2>\d+))?$", re.I)
_SEASON_REF = re.compile(r"^(?P<title>.+?)\s+S(?P<s>\d+)$", re.I)


# ---------------------------------------------------------------- typed model


@dataclass
class ServerInfo:
    name: str
    machine_identifier: str
    version: str


@dataclass
class User:
    name: str
    kind: str  # owner | home | managed | friend
    id: int  # plex.tv account id
    uuid: str
    token: str  # plex.tv token (home/managed: the token the home-user switch returns)
    pms_token: str  # PMS token (shared_servers accessToken); the owner's equals `token`
    email: str
    pin: Optional[str] = None
    shared: bool = True  # listed in shared_servers

    @property
    def home(self) -> bool:
        return self.kind in ("owner", "home", "managed")

    @property
    def restricted(self) -> bool:
        return self.kind == "managed"

    @property
    def account_id(self) -> int:
        """The id PMS uses for this user (sessions, /accounts): the owner is always 1 on PMS."""
        return 1 if self.kind == "owner" else self.id


@dataclass
class Sidecar:
    suffix: str  # "en.srt": file is <video stem>.en.srt
    language: str
    codec: str


@dataclass
class Part:
    id: int
    file: str  # Plex-side path
    size: int
    duration: int  # ms
    container: str
    disk: str  # where the Unraid copy lives: diskN or a pool name
    sidecars: list[Sidecar] = field(default_factory=list)

    def sidecar_path(self, car: Sidecar) -> str:
        stem = self.file.rsplit(".", 1)[0]
        return f"{stem}.{car.suffix}"


@dataclass
class Media:
    id: int
    duration: int
    container: str
    resolution: str
    parts: list[Part]


@dataclass
class Item:
    """A movie, show, season or episode. Attributes that do not apply stay at their defaults."""

    rk: int
    type: str  # movie | show | season | episode
    title: str
    section: int
    added_at: int
    year: Optional[int] = None
    guid: str = ""  # plex://...
    guids: list[str] = field(default_factory=list)  # imdb://, tmdb://, tvdb://
    media: list[Media] = field(default_factory=list)
    duration: int = 0
    index: Optional[int] = None  # season number / episode number
    parent: Optional[int] = None  # season rk for episodes, show rk for seasons
    grandparent: Optional[int] = None  # show rk for episodes
    children: list[int] = field(default_factory=list)  # seasons of a show, episodes of a season
    locations: list[str] = field(default_factory=list)  # show folder(s)
    template: str = ""  # shows: episode filename template, relative to the library's first location

    @property
    def plex_id(self) -> str:
        return self.guid.rsplit("/", 1)[-1]

    @property
    def parent_rk(self) -> int:
        """The season of an episode, the show of a season; asking a movie or a show is a scenario bug."""
        if self.parent is None:
            raise ValueError(f"{self.type} {self.rk} ({self.title}) has no parent")
        return self.parent

    @property
    def show_rk(self) -> int:
        """The show of an episode."""
        if self.grandparent is None:
            raise ValueError(f"{self.type} {self.rk} ({self.title}) belongs to no show")
        return self.grandparent

    def parts(self) -> list[Part]:
        return [p for m in self.media for p in m.parts]


@dataclass
class Library:
    id: int
    type: str  # movie | show
    title: str
    locations: list[str]
    uuid: str
    items: list[int] = field(default_factory=list)  # top-level rks (movies or shows), in order


@dataclass
class WatchState:
    view_count: int = 0
    view_offset: int = 0
    last_viewed_at: Optional[int] = None


@dataclass
class UserView:
    """What one user has watched, what is on their deck, what is on their watchlist."""

    state: dict[int, WatchState] = field(default_factory=dict)
    on_deck: Union[str, list[int]] = "auto"  # "auto" or explicit rks
    watchlist: list[WatchlistItem] = field(default_factory=list)


@dataclass
class WatchlistItem:
    guid: str  # plex://movie/<id> or plex://show/<id>
    type: str  # movie | show
    title: str
    year: Optional[int]
    guids: list[str]
    added_at: int
    rk: Optional[int] = None  # the local library item, when the server has it
    child_count: int = 1


@dataclass
class Session:
    id: str
    user: str
    rk: int
    view_offset: int
    state: str = "playing"
    player: str = "Living Room TV"
    product: str = "Plex for Roku"
    platform: str = "Roku"
    key: int = 0  # PMS's sessionKey: stable for the session's life, never reused


@dataclass
class Share:
    name: str
    use_cache: str
    pool: str
    pool2: str = ""


@dataclass
class Unraid:
    disks: int
    pools: list[str]
    shares: dict[str, Share]
    path_map: list[tuple[str, str]]  # (plex prefix, "share[/sub]"), longest prefix first
    fill_limit: int = MiB  # files up to this size get real deterministic content

    def to_share(self, plex_path: str) -> Optional[tuple[str, str]]:
        """Plex path -> (share, path relative to the share root), or None if unmapped."""
        for prefix, target in self.path_map:
            if plex_path == prefix or plex_path.startswith(prefix.rstrip("/") + "/"):
                rest = plex_path[len(prefix):].lstrip("/")
                share, _, sub = target.partition("/")
                return share, f"{sub}/{rest}".strip("/") if sub else rest
        return None


@dataclass
class Scenario:
    source: str
    now: int
    server: ServerInfo
    users: dict[str, User]
    libraries: dict[int, Library]
    items: dict[int, Item]
    views: dict[str, UserView]
    sessions: list[Session]
    unraid: Unraid
    rss: dict[str, str]  # {"own": feed id, "friends": feed id}
    next_rk: int = 0
    next_id: int = 0
    titles: dict[str, list[int]] = field(default_factory=dict)  # lower-case title -> movie/show rks

    def add_top(self, item: Item) -> None:
        """Register a movie or show (items by rk, the title index)."""
        self.items[item.rk] = item
        self.titles.setdefault(item.title.lower(), []).append(item.rk)

    @property
    def owner(self) -> User:
        return next(u for u in self.users.values() if u.kind == "owner")

    def all_parts(self) -> list[Part]:
        return [p for it in self.items.values() for p in it.parts()]

    def by_guid(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for it in self.items.values():
            if it.type in ("movie", "show"):
                out[it.guid] = it.rk
                for g in it.guids:
                    out.setdefault(g, it.rk)
        return out

    def new_rk(self) -> int:
        self.next_rk += 1
        return self.next_rk

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


# ---------------------------------------------------------------- small parsers


class _Ctx:
    """Carries the file name so every error names file and key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> UsageError:
        # one line, whatever the file holds: a key with a newline or a control character is shown quoted
        shown = key if key.isprintable() else repr(key)
        return UsageError(f"{self.source}: {shown}: {problem if problem.isprintable() else repr(problem)}")


def parse_size(value: Any) -> int:
    """'4.5G', '700M', '1024', 1024 -> bytes (binary units)."""
    if isinstance(value, bool):
        raise ValueError("not a size")
    if isinstance(value, (int, float)):
        return int(value)
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)i?B?\s*", str(value), re.I)
    if not m:
        raise ValueError(f"not a size: {value!r} (use e.g. 4.5G, 700M, 12345)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def parse_duration(value: Any) -> int:
    """'3h', '2d', '45m', '90s', '1h30m', 120 (seconds) -> seconds."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"not a duration: {value!r}")
        return int(value)
    text = str(value).strip().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(f"not a duration: {value!r} (use e.g. 45m, 3h, 2d, 1h30m)")
    return int(sum(float(n) * _SECONDS[u] for n, u in parts))


def parse_time(value: Any, now: int) -> int:
    """A relative age ('3h' = 3 hours before now) or an absolute ISO time -> epoch seconds."""
    if isinstance(value, (dt.datetime, dt.date)):
        return _to_epoch(value)
    text = str(value)
    if re.match(r"^\d{4}-\d\d-\d\d", text):
        return _to_epoch(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    return now - parse_duration(value)


def _to_epoch(value: Union[dt.datetime, dt.date]) -> int:
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return int(value.timestamp())


def stable_hex(*parts: Any, n: int = 24) -> str:
    """Deterministic hex id (plex ids are 24 hex digits, machine ids 40)."""
    return hashlib.sha1("\0".join(str(p) for p in parts).encode()).hexdigest()[:n]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _want(ctx: _Ctx, obj: Any, key: str, kind: type, what: str) -> Any:
    if not isinstance(obj, kind) or (kind is int and isinstance(obj, bool)):
        raise ctx.fail(key, f"expected {what}, got {type(obj).__name__}")
    return obj


def _only_keys(ctx: _Ctx, obj: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    for k in obj:
        if k not in allowed:
            raise ctx.fail(f"{key}.{k}", f"unknown key (allowed: {', '.join(allowed)})")


def _conv(ctx: _Ctx, key: str, fn: Any, value: Any) -> Any:
    try:
        return fn(value)
    except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: a number too large for a time
        raise ctx.fail(key, str(exc)) from None


# ---------------------------------------------------------------- loading


TOP_KEYS = ("now", "server", "users", "unraid", "libraries", "watch", "watchlists", "sessions", "rss")


def load(path: Union[str, Path]) -> Scenario:
    """Read and validate a scenario file; raises UsageError naming file, key and problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read scenario: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "?"
        raise UsageError(f"{path}: {where}: not valid YAML") from None
    return from_dict(data, source=str(path))


def from_dict(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate an already-parsed scenario mapping (used by load() and by generate.py)."""
    ctx = _Ctx(source)
    _want(ctx, data, "(top)", dict, "a mapping")
    _only_keys(ctx, data, "(top)", TOP_KEYS)
    # without `now` the world is anchored at the real current time (the demo runs on the real clock);
    # tests pin `now` so absolute timestamps are reproducible
    now = _conv(ctx, "now", lambda v: parse_time(v, 0), data["now"]) if "now" in data else int(time.time())
    sc = Scenario(source=source, now=now, server=_server(ctx, data.get("server") or {}),
                  users={}, libraries={}, items={}, views={}, sessions=[],
                  unraid=_unraid(ctx, data.get("unraid") or {}), rss={}, next_rk=100, next_id=0)
    _users(ctx, sc, data.get("users"))
    sc.views = {name: UserView() for name in sc.users}
    for i, lib in enumerate(_want(ctx, data.get("libraries") or [], "libraries", list, "a list")):
        _library(ctx, sc, lib, f"libraries[{i}]")
    _watch(ctx, sc, data.get("watch") or {})
    _watchlists(ctx, sc, data.get("watchlists") or {})
    _sessions(ctx, sc, data.get("sessions") or [])
    _rss(ctx, sc, data.get("rss") or {})
    return sc


def _server(ctx: _Ctx, d: Any) -> ServerInfo:
    _want(ctx, d, "server", dict, "a mapping")
    _only_keys(ctx, d, "server", ("name", "machineIdentifier", "version"))
    name = str(d.get("name", "tower"))
    return ServerInfo(name=name, machine_identifier=str(d.get("machineIdentifier") or stable_hex(name, n=40)),
                      version=str(d.get("version", "1.41.3.9314-a0bfb8370")))


def _unraid(ctx: _Ctx, d: Any) -> Unraid:
    _want(ctx, d, "unraid", dict, "a mapping")
    _only_keys(ctx, d, "unraid", ("disks", "pools", "shares", "pathMap", "fillLimit"))
    disks = _want(ctx, d.get("disks", 3), "unraid.disks", int, "a number of array disks")
    if not 1 <= disks <= 28:
        raise ctx.fail("unraid.disks", "must be between 1 and 28")
    pools = [str(p) for p in _as_list(d.get("pools", ["cache"]))]
    for p in pools:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", p) or re.fullmatch(r"disk\d+|user0?|disks|remotes", p):
            raise ctx.fail("unraid.pools", f"bad pool name {p!r}")
    shares: dict[str, Share] = {}
    for name, s in (_want(ctx, d.get("shares") or {}, "unraid.shares", dict, "a mapping")).items():
        key = f"unraid.shares.{name}"
        s = _want(ctx, s or {}, key, dict, "a mapping")
        _only_keys(ctx, s, key, ("useCache", "pool", "pool2"))
        use = s.get("useCache", "yes")
        use = ("yes" if use else "no") if isinstance(use, bool) else str(use)  # YAML 1.1 reads yes/no as booleans
        if use not in USE_CACHE:
            raise ctx.fail(f"{key}.useCache", f"must be one of {', '.join(USE_CACHE)}")
        pool = str(s.get("pool", pools[0] if pools else ""))
        if use != "no" and pool not in pools:
            raise ctx.fail(f"{key}.pool", f"unknown pool {pool!r} (pools: {', '.join(pools)})")
        shares[str(name)] = Share(str(name), use, pool, str(s.get("pool2", "")))
    pmap = []
    for prefix, target in (_want(ctx, d.get("pathMap") or {}, "unraid.pathMap", dict, "a mapping")).items():
        if not str(prefix).startswith("/"):
            raise ctx.fail(f"unraid.pathMap.{prefix}", "Plex path must be absolute")
        if str(target).split("/")[0] not in shares:
            raise ctx.fail(f"unraid.pathMap.{prefix}", f"unknown share {target!r}")
        pmap.append((str(prefix).rstrip("/") or "/", str(target).strip("/")))
    pmap.sort(key=lambda t: -len(t[0]))
    fill = _conv(ctx, "unraid.fillLimit", parse_size, d.get("fillLimit", MiB))
    return Unraid(disks=disks, pools=pools, shares=shares, path_map=pmap, fill_limit=fill)


def _users(ctx: _Ctx, sc: Scenario, raw: Any) -> None:
    raw = _want(ctx, raw or [], "users", list, "a list")
    ids = set()
    tokens = set()
    for i, u in enumerate(raw):
        key = f"users[{i}]"
        _want(ctx, u, key, dict, "a mapping")
        _only_keys(ctx, u, key, ("name", "kind", "id", "uuid", "token", "pmsToken", "email", "pin", "shared"))
        name = str(u.get("name") or "")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ctx.fail(f"{key}.name", "required: letters, digits, _ . - only")
        if name in sc.users:
            raise ctx.fail(f"{key}.name", f"duplicate user {name!r}")
        kind = u.get("kind", "friend")
        if kind not in USER_KINDS:
            raise ctx.fail(f"{key}.kind", f"must be one of {', '.join(USER_KINDS)}")
        uid = _want(ctx, u.get("id", 1000 + i), f"{key}.id", int, "an integer")
        if uid in ids:
            raise ctx.fail(f"{key}.id", f"duplicate id {uid}")
        ids.add(uid)
        token = str(u.get("token", f"tok-{name}"))
        pms = token if kind == "owner" else str(u.get("pmsToken", f"pms-{name}"))
        for t in {token, pms}:
            if t in tokens:
                raise ctx.fail(f"{key}.token", "token already used by another user")
            tokens.add(t)
        pin = u.get("pin")
        if pin is not None and kind not in ("home", "managed"):
            raise ctx.fail(f"{key}.pin", "only home and managed users have a PIN")
        email = "" if kind == "managed" else str(u.get("email", f"{name}@example.com"))
        sc.users[name] = User(name=name, kind=kind, id=uid, uuid=str(u.get("uuid") or stable_hex("uuid", name, n=16)),
                              token=token, pms_token=pms, email=email,
                              pin=None if pin is None else str(pin), shared=bool(u.get("shared", True)))
    owners = [u for u in sc.users.values() if u.kind == "owner"]
    if len(owners) != 1:
        raise ctx.fail("users", f"exactly one user must have kind: owner (found {len(owners)})")


LIB_KEYS = ("id", "type", "title", "locations", "defaultSize", "defaultDuration", "disk", "movies", "shows",
            "addedAt")


def _library(ctx: _Ctx, sc: Scenario, d: Any, key: str) -> None:
    _want(ctx, d, key, dict, "a mapping")
    _only_keys(ctx, d, key, LIB_KEYS)
    lid = _want(ctx, d.get("id", len(sc.libraries) + 1), f"{key}.id", int, "an integer")
    if lid in sc.libraries:
        raise ctx.fail(f"{key}.id", f"duplicate library id {lid}")
    ltype = d.get("type")
    if ltype not in ("movie", "show"):
        raise ctx.fail(f"{key}.type", "must be movie or show")
    locs = [str(x).rstrip("/") for x in _as_list(d.get("locations"))]
    if not locs or not all(x.startswith("/") for x in locs):
        raise ctx.fail(f"{key}.locations", "needs at least one absolute Plex path, e.g. [/data/movies]")
    lib = Library(id=lid, type=ltype, title=str(d.get("title", ltype.title() + "s")), locations=locs,
                  uuid=stable_hex("lib", lid, n=32))
    sc.libraries[lid] = lib
    defaults = _LibDefaults(
        size=_conv(ctx, f"{key}.defaultSize", parse_size, d.get("defaultSize", "4G" if ltype == "movie" else "1.5G")),
        duration=_conv(ctx, f"{key}.defaultDuration", parse_duration,
                       d.get("defaultDuration", "2h" if ltype == "movie" else "45m")) * 1000,
        disk=d.get("disk"),
        added=_conv(ctx, f"{key}.addedAt", lambda v: parse_time(v, sc.now), d.get("addedAt", "90d")),
    )
    wrong = "shows" if ltype == "movie" else "movies"
    if d.get(wrong):
        raise ctx.fail(f"{key}.{wrong}", f"a {ltype} library holds {ltype}s only")
    if ltype == "movie":
        for i, m in enumerate(_want(ctx, d.get("movies") or [], f"{key}.movies", list, "a list")):
            _movie(ctx, sc, lib, defaults, m, f"{key}.movies[{i}]")
    else:
        for i, s in enumerate(_want(ctx, d.get("shows") or [], f"{key}.shows", list, "a list")):
            _show(ctx, sc, lib, defaults, s, f"{key}.shows[{i}]")


@dataclass
class _LibDefaults:
    size: int
    duration: int
    disk: Optional[str]
    added: int


def _disk(ctx: _Ctx, sc: Scenario, value: Any, key: str, seed: int) -> str:
    """Validate a disk/pool name; default spreads files over the array deterministically."""
    if value is None:
        return f"disk{seed % sc.unraid.disks + 1}"
    name = str(value)
    m = re.fullmatch(r"disk(\d+)", name)
    if (m and 1 <= int(m.group(1)) <= sc.unraid.disks) or name in sc.unraid.pools:
        return name
    raise ctx.fail(key, f"unknown disk or pool {name!r} (disk1..disk{sc.unraid.disks}, "
                        f"pools: {', '.join(sc.unraid.pools)})")


def _plex_path(ctx: _Ctx, sc: Scenario, lib: Library, rel: str, key: str) -> str:
    path = rel if rel.startswith("/") else f"{lib.locations[0]}/{rel}"
    if not any(path.startswith(loc + "/") for loc in lib.locations):
        raise ctx.fail(key, f"{path!r} is not under the library's locations {lib.locations}")
    if sc.unraid.path_map and sc.unraid.to_share(path) is None:
        raise ctx.fail(key, f"{path!r} is not under any unraid.pathMap prefix")
    return path


def _sidecars(ctx: _Ctx, raw: Any, key: str) -> list[Sidecar]:
    out = []
    for s in _as_list(raw):
        s = str(s)
        m = re.fullmatch(r"(?:.*\.)?([a-z]{2,3})\.(srt|ass|ssa|vtt|sub|idx)|(srt|ass|ssa|vtt)", s)
        if not m:
            raise ctx.fail(key, f"bad subtitle sidecar {s!r} (use e.g. en.srt, forced.en.srt)")
        out.append(Sidecar(suffix=s, language=m.group(1) or "en", codec=m.group(2) or m.group(3)))
    return out


def _make_media(ctx: _Ctx, sc: Scenario, lib: Library, dfl: _LibDefaults, d: dict[str, Any], key: str,
                default_file: str, duration: int, seed: int) -> list[Media]:
    """One Media with one Part from file/size/disk, or explicit media: [{parts: [...]}, ...]."""
    raw_media = d.get("media")
    if raw_media is None:
        raw_media = [{"parts": [{k: d[k] for k in ("file", "size", "disk", "subtitles") if k in d}]}]
    medias = []
    for mi, m in enumerate(_want(ctx, raw_media, f"{key}.media", list, "a list")):
        mkey = f"{key}.media[{mi}]"
        _want(ctx, m, mkey, dict, "a mapping")
        _only_keys(ctx, m, mkey, ("parts", "resolution"))
        parts_raw = _want(ctx, m.get("parts") or [{}], f"{mkey}.parts", list, "a list")
        parts = []
        for pi, p in enumerate(parts_raw):
            pkey = f"{mkey}.parts[{pi}]"
            _want(ctx, p, pkey, dict, "a mapping")
            _only_keys(ctx, p, pkey, ("file", "size", "disk", "subtitles"))
            fname = p.get("file")
            if fname is None:
                fname = _numbered(default_file, mi, pi, len(parts_raw))
            path = _plex_path(ctx, sc, lib, str(fname), f"{pkey}.file")
            size = _conv(ctx, f"{pkey}.size", parse_size, p.get("size", dfl.size))
            disk = _disk(ctx, sc, p.get("disk", d.get("disk", dfl.disk)), f"{pkey}.disk", seed)
            parts.append(Part(id=sc.new_id(), file=path, size=size, duration=duration // len(parts_raw),
                              container=path.rsplit(".", 1)[-1].lower(), disk=disk,
                              sidecars=_sidecars(ctx, p.get("subtitles", d.get("subtitles")), f"{pkey}.subtitles")))
        medias.append(Media(id=sc.new_id(), duration=duration, container=parts[0].container,
                            resolution=str(m.get("resolution", "1080")), parts=parts))
    return medias


def _numbered(template: str, mi: int, pi: int, nparts: int) -> str:
    """Default names for extra versions (' - 720p') and multi-part files (' - pt2')."""
    stem, dot, ext = template.rpartition(".")
    if mi:
        stem += f" - version{mi + 1}"
    if nparts > 1:
        stem += f" - pt{pi + 1}"
    return f"{stem}{dot}{ext}"


MOVIE_KEYS = ("title", "year", "rk", "guid", "guids", "file", "size", "disk", "subtitles", "media", "duration",
              "addedAt")


def _movie(ctx: _Ctx, sc: Scenario, lib: Library, dfl: _LibDefaults, d: Any, key: str) -> None:
    _want(ctx, d, key, dict, "a mapping")
    _only_keys(ctx, d, key, MOVIE_KEYS)
    title = str(_want(ctx, d.get("title"), f"{key}.title", str, "a title"))
    year = d.get("year")
    rk = _rk(ctx, sc, d, key)
    duration = _conv(ctx, f"{key}.duration", parse_duration, d.get("duration", dfl.duration // 1000)) * 1000
    name = f"{title} ({year})" if year else title
    item = Item(rk=rk, type="movie", title=title, section=lib.id, year=year,
                added_at=_added(ctx, sc, d, key, dfl.added),
                guid=str(d.get("guid") or f"plex://movie/{stable_hex('movie', title, year)}"),
                guids=[str(g) for g in _as_list(d.get("guids"))], duration=duration)
    item.media = _make_media(ctx, sc, lib, dfl, d, key, f"{name}/{name}.mkv", duration, rk)
    sc.add_top(item)
    lib.items.append(rk)


def _added(ctx: _Ctx, sc: Scenario, d: dict[str, Any], key: str, default: int) -> int:
    """An item's addedAt: its own (an age or an ISO time), else the library's, which is already in epoch seconds
    (read again as an age, it would land in 1970)."""
    if "addedAt" not in d:
        return default
    added: int = _conv(ctx, f"{key}.addedAt", lambda v: parse_time(v, sc.now), d["addedAt"])
    return added


def _rk(ctx: _Ctx, sc: Scenario, d: dict[str, Any], key: str) -> int:
    if "rk" in d:
        rk: int = _want(ctx, d["rk"], f"{key}.rk", int, "an integer rating key")
        if rk in sc.items:
            raise ctx.fail(f"{key}.rk", f"duplicate rating key {rk}")
        sc.next_rk = max(sc.next_rk, rk)
        return rk
    rk = sc.new_rk()
    while rk in sc.items:
        rk = sc.new_rk()
    return rk


SHOW_KEYS = ("title", "year", "rk", "guid", "guids", "seasons", "specials", "template", "size", "disk",
             "episodes", "duration", "subtitles", "addedAt", "folder")
DEFAULT_TEMPLATE = "{show} ({year})/Season {s:02}/{show} ({year}) - S{s:02}E{e:02}.mkv"


def _show(ctx: _Ctx, sc: Scenario, lib: Library, dfl: _LibDefaults, d: Any, key: str) -> None:
    _want(ctx, d, key, dict, "a mapping")
    _only_keys(ctx, d, key, SHOW_KEYS)
    title = str(_want(ctx, d.get("title"), f"{key}.title", str, "a title"))
    year = d.get("year")
    rk = _rk(ctx, sc, d, key)
    added = _added(ctx, sc, d, key, dfl.added)
    show = Item(rk=rk, type="show", title=title, section=lib.id, year=year, added_at=added,
                guid=str(d.get("guid") or f"plex://show/{stable_hex('show', title, year)}"),
                guids=[str(g) for g in _as_list(d.get("guids"))])
    template = str(d.get("template", DEFAULT_TEMPLATE if year else DEFAULT_TEMPLATE.replace(" ({year})", "")))
    folder = d.get("folder") or template.split("/")[0].format(show=title, year=year, s=0, e=0)
    show.locations = [f"{lib.locations[0]}/{folder}"]
    show.template = template
    sc.add_top(show)
    lib.items.append(rk)
    seasons = _want(ctx, d.get("seasons") or {}, f"{key}.seasons", dict, "a mapping of season: episode count")
    counts = {}
    for s, n in seasons.items():
        if not isinstance(s, int) or s < 1:
            raise ctx.fail(f"{key}.seasons.{s}", "season numbers are integers >= 1 (specials: use specials:)")
        counts[s] = _want(ctx, n, f"{key}.seasons.{s}", int, "an episode count")
    if d.get("specials"):
        counts[0] = _want(ctx, d["specials"], f"{key}.specials", int, "an episode count")
    overrides = _want(ctx, d.get("episodes") or {}, f"{key}.episodes", dict, "a mapping SxxEyy: {...}")
    seen: set[str] = set()
    ep_dfl = _LibDefaults(size=_conv(ctx, f"{key}.size", parse_size, d.get("size", dfl.size)),
                          duration=_conv(ctx, f"{key}.duration", parse_duration,
                                         d.get("duration", dfl.duration // 1000)) * 1000,
                          disk=d.get("disk", dfl.disk), added=added)
    for s in sorted(counts):
        add_season(sc, show, s, counts[s], template, ep_dfl, overrides, seen, ctx=ctx, key=key,
                   subtitles=d.get("subtitles"))
    for k in overrides:
        if k not in seen:
            raise ctx.fail(f"{key}.episodes.{k}", "no such episode (check seasons: counts and the SxxEyy form)")


def add_season(sc: Scenario, show: Item, s: int, count: int, template: str, dfl: Any,
               overrides: Optional[dict[str, Any]] = None, seen: Optional[set[str]] = None,
               ctx: Optional[_Ctx] = None, key: str = "show", subtitles: Any = None) -> list[int]:
    """Create (or extend) season `s` of `show` with episodes up to `count`; returns new episode rks.

    Also used at runtime by the control API to add new episodes.
    """
    ctx = ctx or _Ctx(sc.source)
    overrides = overrides or {}
    seen = seen if seen is not None else set()
    lib = sc.libraries[show.section]
    season = next((sc.items[c] for c in show.children if sc.items[c].index == s), None)
    if season is None:
        season = Item(rk=sc.new_rk(), type="season", title="Specials" if s == 0 else f"Season {s}",
                      section=show.section, added_at=dfl.added, index=s, parent=show.rk,
                      guid=f"plex://season/{stable_hex('season', show.guid, s)}")
        sc.items[season.rk] = season
        show.children.append(season.rk)
        show.children.sort(key=lambda rk: sc.items[rk].index or 0)
    new = []
    for e in range(len(season.children) + 1, count + 1):
        code = f"S{s:02d}E{e:02d}"
        ov = None
        for k in (code, code.lower()):
            if k in overrides:
                ov = overrides[k]
                seen.add(k)
        ekey = f"{key}.episodes.{code}"
        ov = _want(ctx, ov or {}, ekey, dict, "a mapping")
        _only_keys(ctx, ov, ekey, ("size", "disk", "parts", "subtitles", "title", "file", "duration", "media"))
        ep = Item(rk=sc.new_rk(), type="episode", title=str(ov.get("title", f"Episode {e}")), section=show.section,
                  added_at=dfl.added, index=e, parent=season.rk, grandparent=show.rk, year=show.year,
                  guid=f"plex://episode/{stable_hex('episode', show.guid, s, e)}",
                  guids=[f"tvdb://{int(stable_hex('tvdb', show.guid, s, e, n=7), 16)}"])
        ep.duration = _conv(ctx, f"{ekey}.duration", parse_duration, ov.get("duration", dfl.duration // 1000)) * 1000
        default = template.format(show=show.title, year=show.year, s=s, e=e, title=ep.title)
        spec: dict[str, Any] = {k: ov[k] for k in ("size", "disk", "file", "media") if k in ov}
        spec.setdefault("subtitles", ov.get("subtitles", subtitles))
        if "parts" in ov and "media" not in ov:
            n = _want(ctx, ov["parts"], f"{ekey}.parts", int, "a number of parts")
            spec["media"] = [{"parts": [{} for _ in range(n)]}]
            if "file" in spec:
                default = str(spec.pop("file"))
        ep_dfl = _LibDefaults(size=dfl.size, duration=dfl.duration, disk=dfl.disk, added=dfl.added)
        if "media" in spec:
            for m in spec["media"]:
                for p in m.get("parts", []) if isinstance(m, dict) else []:
                    if isinstance(p, dict):
                        for k in ("size", "disk", "subtitles"):
                            if k in spec and k not in p:
                                p[k] = spec[k]
        ep.media = _make_media(ctx, sc, lib, ep_dfl, spec, ekey, default, ep.duration, ep.rk)
        sc.items[ep.rk] = ep
        season.children.append(ep.rk)
        new.append(ep.rk)
    return new


# ---------------------------------------------------------------- references to items


def resolve_ref(sc: Scenario, ref: Any) -> list[int]:
    """'Title', 'Title (Year)', 'Title S01', 'Title S01E02', 'Title S01E02-S01E05' or a rating key -> rks."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        if ref not in sc.items:
            raise ValueError(f"no item with rating key {ref}")
        return [ref]
    text = str(ref).strip()
    m = _EP_REF.match(text)
    if m:
        show = _find_top(sc, m.group("title"), "show")
        start = (int(m.group("s")), int(m.group("e")))
        end = (int(m.group("s2")), int(m.group("e2"))) if m.group("s2") else start
        eps = [rk for rk in episodes_of(sc, show.rk) if start <= _se(sc, rk) <= end]
        if not eps:
            raise ValueError(f"no episode {text!r}")
        return eps
    m = _SEASON_REF.match(text)
    if m and _has_title(sc, m.group("title"), "show"):
        show = _find_top(sc, m.group("title"), "show")
        eps = [rk for rk in episodes_of(sc, show.rk) if _se(sc, rk)[0] == int(m.group("s"))]
        if not eps:
            raise ValueError(f"no season {text!r}")
        return eps
    item = _find_top(sc, text, None)
    return episodes_of(sc, item.rk) if item.type == "show" else [item.rk]


def _se(sc: Scenario, ep_rk: int) -> tuple[int, int]:
    ep = sc.items[ep_rk]
    return sc.items[ep.parent_rk].index or 0, ep.index or 0


def episodes_of(sc: Scenario, show_rk: int) -> list[int]:
    """All episodes of a show in season/episode order (specials first, as Plex lists them)."""
    return [e for s in sc.items[show_rk].children for e in sc.items[s].children]


def _has_title(sc: Scenario, title: str, kind: Optional[str]) -> bool:
    try:
        _find_top(sc, title, kind)
        return True
    except ValueError:
        return False


def _find_top(sc: Scenario, title: str, kind: Optional[str]) -> Item:
    m = re.fullmatch(r"(.+?)\s*\((\d{4})\)", title)
    name, year = (m.group(1), int(m.group(2))) if m else (title, None)
    found = [sc.items[rk] for rk in sc.titles.get(name.lower(), ())]
    found = [it for it in found if (kind is None or it.type == kind) and (year is None or it.year == year)]
    if not found:
        raise ValueError(f"no {kind or 'movie or show'} titled {title!r}")
    if len(found) > 1:
        raise ValueError(f"{title!r} is ambiguous: add the year, e.g. '{name} ({found[0].year})'")
    return found[0]


# ---------------------------------------------------------------- per-user state


def _watch(ctx: _Ctx, sc: Scenario, d: Any) -> None:
    _want(ctx, d, "watch", dict, "a mapping user: {...}")
    for user, w in d.items():
        key = f"watch.{user}"
        if user not in sc.users:
            raise ctx.fail(key, f"unknown user {user!r}")
        w = _want(ctx, w or {}, key, dict, "a mapping")
        _only_keys(ctx, w, key, ("watched", "progress", "onDeck"))
        view = sc.views[user]
        _watched(ctx, sc, view, w.get("watched") or [], f"{key}.watched")
        _progress(ctx, sc, view, w.get("progress") or {}, f"{key}.progress")
        deck = w.get("onDeck", "auto")
        if deck == "auto":
            view.on_deck = "auto"
        else:
            rks: list[int] = []
            for i, ref in enumerate(_want(ctx, deck or [], f"{key}.onDeck", list, "'auto' or a list")):
                rks.extend(_conv(ctx, f"{key}.onDeck[{i}]", lambda r: resolve_ref(sc, r), ref))
            view.on_deck = rks


def _whole_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or value < 0:
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(value)


def _watched(ctx: _Ctx, sc: Scenario, view: UserView, raw: Any, key: str) -> None:
    """Each entry: a reference (watched 7 days ago) or {item: ref, at: 2d}. Ranges are watched in order."""
    for i, entry in enumerate(_want(ctx, raw, key, list, "a list")):
        ekey = f"{key}[{i}]"
        if isinstance(entry, dict):
            _only_keys(ctx, entry, ekey, ("item", "at", "count"))
            ref, at, count = entry.get("item"), entry.get("at", "7d"), entry.get("count", 1)
        else:
            ref, at, count = entry, "7d", 1
        rks = _conv(ctx, ekey, lambda r: resolve_ref(sc, r), ref)
        when = _conv(ctx, f"{ekey}.at", lambda v: parse_time(v, sc.now), at)
        count = _conv(ctx, f"{ekey}.count", _whole_number, count)
        for n, rk in enumerate(rks):
            # the last of a range is watched at `at`, earlier ones an hour apart before it
            view.state[rk] = WatchState(view_count=count, view_offset=0,
                                        last_viewed_at=when - (len(rks) - 1 - n) * 3600)


def _progress(ctx: _Ctx, sc: Scenario, view: UserView, raw: Any, key: str) -> None:
    """{ref: '20m'} or {ref: {offset: 20m, at: 3h}}: part-watched items."""
    _want(ctx, raw, key, dict, "a mapping item: offset")
    for ref, spec in raw.items():
        ekey = f"{key}.{ref}"
        spec = spec if isinstance(spec, dict) else {"offset": spec}
        _only_keys(ctx, spec, ekey, ("offset", "at"))
        rks = _conv(ctx, ekey, lambda r: resolve_ref(sc, r), ref)
        if len(rks) != 1:
            raise ctx.fail(ekey, "progress needs a single movie or episode")
        offset = _conv(ctx, f"{ekey}.offset", parse_duration, spec.get("offset", "10m")) * 1000
        if offset >= sc.items[rks[0]].duration:
            raise ctx.fail(f"{ekey}.offset", "offset is past the item's duration")
        at = _conv(ctx, f"{ekey}.at", lambda v: parse_time(v, sc.now), spec.get("at", "1h"))
        old = view.state.get(rks[0], WatchState())
        view.state[rks[0]] = WatchState(view_count=old.view_count, view_offset=offset, last_viewed_at=at)


def _watchlists(ctx: _Ctx, sc: Scenario, d: Any) -> None:
    _want(ctx, d, "watchlists", dict, "a mapping user: [items]")
    guid_map = sc.by_guid()
    for user, entries in d.items():
        key = f"watchlists.{user}"
        if user not in sc.users:
            raise ctx.fail(key, f"unknown user {user!r}")
        for i, e in enumerate(_want(ctx, entries or [], key, list, "a list")):
            sc.views[user].watchlist.append(_wl_item(ctx, sc, e, f"{key}[{i}]", guid_map, i))


def _wl_item(ctx: _Ctx, sc: Scenario, e: Any, key: str, guid_map: dict[str, int], i: int) -> WatchlistItem:
    """A library reference ('Dune (2021)', a guid) or an item the server does not have ({title, type, ...})."""
    added = sc.now - (i + 1) * 86400
    if isinstance(e, dict):
        _only_keys(ctx, e, key, ("title", "type", "year", "guid", "guids", "at"))
        if e.get("type") not in ("movie", "show"):
            raise ctx.fail(f"{key}.type", "must be movie or show")
        title = str(_want(ctx, e.get("title"), f"{key}.title", str, "a title"))
        guid = str(e.get("guid") or f"plex://{e['type']}/{stable_hex(e['type'], title, e.get('year'))}")
        guids = [str(g) for g in _as_list(e.get("guids"))]
        rk = next((guid_map[g] for g in [guid, *guids] if g in guid_map), None)
        at = _conv(ctx, f"{key}.at", lambda v: parse_time(v, sc.now), e["at"]) if "at" in e else added
        return WatchlistItem(guid=guid, type=e["type"], title=title, year=e.get("year"), guids=guids,
                             added_at=at, rk=rk)
    rk = guid_map.get(str(e))
    if rk is None:
        rks = _conv(ctx, key, lambda r: resolve_ref(sc, r), e)
        rk = rks[0] if len(rks) == 1 else sc.items[rks[0]].show_rk
        if sc.items[rk].type not in ("movie", "show"):
            raise ctx.fail(key, "watchlists hold movies and shows")
    it = sc.items[rk]
    return WatchlistItem(guid=it.guid, type=it.type, title=it.title, year=it.year, guids=list(it.guids),
                         added_at=added, rk=rk, child_count=max(1, len(it.children)))


def _sessions(ctx: _Ctx, sc: Scenario, raw: Any) -> None:
    for i, s in enumerate(_want(ctx, raw, "sessions", list, "a list")):
        key = f"sessions[{i}]"
        _want(ctx, s, key, dict, "a mapping")
        _only_keys(ctx, s, key, ("user", "item", "offset", "state", "player", "product", "platform", "id"))
        if not isinstance(s.get("user"), str) or s["user"] not in sc.users:
            raise ctx.fail(f"{key}.user", f"unknown user {s.get('user')!r}")
        rks = _conv(ctx, f"{key}.item", lambda r: resolve_ref(sc, r), s.get("item"))
        if len(rks) != 1:
            raise ctx.fail(f"{key}.item", "a session plays one movie or episode")
        state = s.get("state", "playing")
        if state not in ("playing", "paused", "buffering"):
            raise ctx.fail(f"{key}.state", "must be playing, paused or buffering")
        sc.sessions.append(Session(
            id=str(s.get("id", stable_hex("session", i, n=24))), user=s["user"], rk=rks[0],
            view_offset=_conv(ctx, f"{key}.offset", parse_duration, s.get("offset", "5m")) * 1000, state=state,
            player=str(s.get("player", "Living Room TV")), product=str(s.get("product", "Plex for Roku")),
            platform=str(s.get("platform", "Roku"))))


def _rss(ctx: _Ctx, sc: Scenario, d: Any) -> None:
    _want(ctx, d, "rss", dict, "a mapping")
    _only_keys(ctx, d, "rss", ("own", "friends"))
    for k in ("own", "friends"):
        if d.get(k) is not None:
            v = str(d[k])
            if not re.fullmatch(r"[A-Za-z0-9-]+", v):
                raise ctx.fail(f"rss.{k}", "feed id: letters, digits and - only")
            sc.rss[k] = v
