"""Settings: one YAML file, schema-versioned, loaded into typed objects.

The schema is the dataclasses below. Each field's metadata carries its documentation, so the reference
table in docs/settings.md is generated from the same source that validates (it cannot drift).
Validation collects every problem, each naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import os
import re
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from plexcache.errors import SettingsError, UsageError
from plexcache.fsutil import atomic_write_bytes, atomic_write_text

SCHEMA_VERSION = 2
DEFAULT_CONFIG_PATH = "/boot/config/plugins/plexcache-r/settings.yaml"
CONFIG_ENV = "PLEXCACHE_CONFIG"
UNRAID_ROOT_ENV = "PLEXCACHE_UNRAID_ROOT"
MASK = "********"
# A secret in a row with no key of its own (a webhook's address) is shown as MASK + "#" + a short digest of
# it, so a saved form names which stored row each masked value stands for even after rows were removed or
# reordered. The digest tells nothing usable about the secret.
_FINGERPRINT_SEP = "#"


def is_mask(value: Any) -> bool:
    """Whether a value a form sent back is a masked secret (plain or fingerprinted)."""
    return isinstance(value, str) and (value == MASK or value.startswith(MASK + _FINGERPRINT_SEP))


def _fingerprinted(secret: str) -> str:
    return MASK + _FINGERPRINT_SEP + hashlib.sha256(secret.encode()).hexdigest()[:8]

Level = Literal["summary", "activity", "warnings", "errors"]
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|[KMGT]i?B?|B)?\s*$", re.IGNORECASE)
# Decimal like Unraid's own pages (500GB is 500 x 10^9 bytes, as the Main tab shows it); KiB..TiB are binary.
_POWERS = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4}


def doc(label: str, text: str, *, secret: bool = False, minimum: float | None = None,
        maximum: float | None = None, step: float | None = None, size: bool = False, row_key: str | None = None,
        words: dict[str, str] | None = None) -> dict[str, Any]:
    """Field metadata: the label a form shows (and a screen reader reads), documentation and the
    constraints validation applies. step: the granularity a form offers for a number. row_key (a list of
    rows): the field that tells one row from another, so a saved form's row is matched to its stored row.
    words: what a form shows for each value of a choice (in the order it offers them)."""
    return {"label": label, "doc": text, "secret": secret, "min": minimum, "max": maximum, "step": step,
            "size": size, "row_key": row_key, "words": words}


@dataclass
class PathMapping:
    plex: str = field(metadata=doc("Path in Plex", "Path prefix as Plex sees it (e.g. /data/tv)."))
    share: str = field(metadata=doc(
        "Unraid share path", "The same folder as an Unraid user-share path (e.g. /mnt/user/tv)."))
    cacheable: bool = field(default=True, metadata=doc("Cacheable",
        "Whether files under this mapping may be cached (false for e.g. a remote NAS)."))


@dataclass
class PlexSettings:
    url: str = field(default="http://127.0.0.1:32400", metadata=doc(
        "Plex server address", "Plex Media Server address."))
    token: str = field(default="", metadata=doc("Plex token",
        "Plex token of the server owner (set it with `plex login` or paste it).", secret=True))
    timeout: float = field(default=30.0, metadata=doc(
        "Request timeout (seconds)", "Seconds to wait for one Plex request.",
        minimum=1, maximum=600, step=1))
    libraries: list[str] = field(default_factory=list, metadata=doc("Libraries to watch",
        "Library titles or section ids to watch; empty means every movie and show library."))
    path_mappings: list[PathMapping] = field(default_factory=list, metadata=doc("Path mappings",
        "How Plex paths translate to Unraid share paths; the longest matching prefix wins.", row_key="plex"))


@dataclass
class UserToggles:
    on_deck: bool = field(default=True, metadata=doc("On Deck", "Cache what is On Deck (and next episodes)."))
    watchlist: bool = field(default=True, metadata=doc("Watchlist", "Cache what is on the watchlist."))


@dataclass
class UserOverride:
    name: str = field(metadata=doc("User", "Plex user name or title."))
    on_deck: bool = field(default=True, metadata=doc("On Deck", "Cache this user's On Deck."))
    watchlist: bool = field(default=True, metadata=doc("Watchlist", "Cache this user's watchlist."))
    pin: str = field(default="", metadata=doc("Plex Home PIN",
        "The user's Plex Home PIN, when the profile is protected by one (needed to read it).", secret=True))


@dataclass
class UserSettings:
    owner: UserToggles = field(default_factory=UserToggles, metadata=doc("Server owner", "The server owner."))
    home: UserToggles = field(default_factory=UserToggles, metadata=doc("Home and managed users",
        "Plex Home and managed users (read with their own tokens)."))
    friends: UserToggles = field(default_factory=lambda: UserToggles(on_deck=True, watchlist=False),
                                 metadata=doc("Friends", "Friends the server is shared with."))
    remote_watchlist_rss: bool = field(default=False, metadata=doc("Friends' watchlists by RSS",
        "Read friends' watchlists through the owner's RSS feed (all friends or none, as Plex allows)."))
    rss_url: str = field(default="", metadata=doc("Watchlist RSS address",
        "The friends' watchlist RSS feed address (from Plex Web, Watchlist, RSS).", secret=True))
    overrides: list[UserOverride] = field(default_factory=list, metadata=doc("Per-user exceptions",
        "Per-user toggles that win over the group defaults.", row_key="name"))
    skip: list[str] = field(default_factory=list, metadata=doc("Ignore these users", "Users ignored entirely."))


@dataclass
class DemandSettings:
    on_deck_items: int = field(default=10, metadata=doc("On Deck items per user",
        "On Deck items taken per user.", minimum=0, maximum=1000))
    next_episodes: int = field(default=20, metadata=doc("Next episodes after each one in progress",
        "Most episodes taken after each On Deck or in-progress episode; with pace on, each viewer gets the "
        "share of it their pace needs.", minimum=0, maximum=100))
    include_specials: bool = field(default=False, metadata=doc(
        "Count specials (season 0)", "Count season 0 (specials) as next episodes."))
    watchlist_episodes: int = field(default=3, metadata=doc("Episodes from a watchlisted show",
        "First unwatched episodes taken from a watchlisted show.", minimum=0, maximum=100))
    rewatch_items: int = field(default=5, metadata=doc("Favourite movies per user",
        "Cache this many of each user's favourite movies: watched at least twice, the last time within two "
        "weeks (a child's favourites); for a user with two or more of those, other movies watched in that time "
        "too. They come after everything else wanted (0 = none).", minimum=0, maximum=100))
    days_to_monitor: int = field(default=183, metadata=doc("Only On Deck watched within (days)",
        "Ignore On Deck items not watched within this many days (0 = no limit).", minimum=0, maximum=36500))
    pace: bool = field(default=True, metadata=doc("Learn each viewer's pace",
        "Learn each viewer's pace (episodes a day, per user and show) from run to run, and cache that many "
        "days of it ahead (at most next_episodes) instead of a fixed count.",
        words={"true": "Yes, cache as far ahead as each viewer watches", "false": "No, always the number above"}))
    pace_days: float = field(default=3.0, metadata=doc("Days of a viewer's pace to cache ahead",
        "Days of a viewer's pace to cache ahead (a faster viewer gets more episodes, a slow one fewer). A disk "
        "woken for a viewer's due episodes then sleeps through the next runs.",
        minimum=0.5, maximum=30, step=0.5))
    max_item_size: str = field(default="", metadata=doc("Skip items larger than",
        "Skip items larger than this (e.g. 40GB; sizes are decimal as Unraid shows them, 40GiB is binary); "
        "empty means no limit.", size=True))


@dataclass
class CacheSettings:
    retention_hours: float = field(default=12.0, metadata=doc("Keep cached at least (hours)",
        "Minimum hours a file stays cached before it may move back.", minimum=0, maximum=87600, step=0.5))
    move_back_watched: bool = field(default=True, metadata=doc("Move back once watched",
        "Move files back to the array once no user wants them any more."))
    eviction: Literal["priority", "age", "none"] = field(default="priority", metadata=doc("When space runs short",
        "When space runs short: move back the lowest priority first (priority), the oldest first (age; "
        "pinned titles still last), or never move back for space (none).", words={
        "priority": "Move back the lowest priority first", "age": "Move back the oldest first",
        "none": "Never move back for space"}))
    size_limit: str = field(default="", metadata=doc("Most space cached files may use",
        "Most space cached files may take (e.g. 500GB or 40%); empty means no limit.", size=True))
    min_free: str = field(default="10%", metadata=doc("Always leave free on the pool",
        "Free space always left on the pool (e.g. 100GB or 10%).", size=True))
    pool_size: str = field(default="", metadata=doc("Pool size (ZFS)",
        "The pool's usable size, for ZFS pools whose reported size moves with use; empty means as reported.",
        size=True))
    backups: bool = field(default=True, metadata=doc("Keep array original as backup",
        "Keep the array original as NAME.plexcached while cached (fast, safe move back)."))
    sidecar_extensions: list[str] = field(default_factory=lambda: [
        ".srt", ".ass", ".ssa", ".sub", ".idx", ".vtt", ".sup", ".smi"], metadata=doc(
        "Subtitle files that travel along",
        "Files next to a video whose name starts with the video's name and ends with one of these travel with it."))
    verify: bool = field(default=False, metadata=doc(
        "Verify every copy by hash", "Hash every copy and compare (slower, paranoid)."))
    hardlinks: Literal["skip", "copy"] = field(default="skip", metadata=doc("Hard-linked files",
        "Files with more than one hard link (e.g. still seeding): skip and report, or copy anyway.",
        words={"skip": "Skip and report", "copy": "Copy anyway"}))
    workers: int = field(default=2, metadata=doc("Parallel copies",
        "Parallel copies (never more than one per array disk).", minimum=1, maximum=16))
    spin_aware: bool = field(default=True, metadata=doc("Keep array disks asleep",
        "Keep array disks asleep: a disk in standby is woken only for a file due before the next run, and "
        "then everything wanted from it is read in that one wake; moving back waits until its disk is awake "
        "(unless the room is needed).",
        words={"true": "Yes, wake a disk only for what is due", "false": "No, read whatever is wanted"}))
    due_episodes: int = field(default=2, metadata=doc("Episodes due before the next run",
        "Next episodes after an On Deck one that count as due before the next run, for a viewer whose pace "
        "is not known yet (a learned pace replaces it).", minimum=0, maximum=100))


@dataclass
class ScheduleSettings:
    mode: Literal["off", "interval", "cron", "before_mover"] = field(default="before_mover", metadata=doc("Run",
        "When runs happen: never on their own, every N hours, a cron expression, or shortly before the mover.",
        words={"before_mover": "Shortly before the mover", "interval": "Every few hours",
               "cron": "Custom cron schedule", "off": "Only when started by hand"}))
    interval_hours: int = field(default=4, metadata=doc("Hours between runs", "Hours between runs (interval mode).",
                                                         minimum=1, maximum=168))
    cron: str = field(default="0 */4 * * *", metadata=doc("Cron expression", "Cron expression (cron mode)."))
    minutes_before_mover: int = field(default=10, metadata=doc("Minutes before the mover",
        "How long before the mover to start (before_mover mode). Close enough that the disks the run wakes "
        "are still spinning when the mover writes, so one wake serves both.", minimum=5, maximum=720))
    mover_tuning_waived: bool = field(default=False, metadata=doc("Run without Mover Tuning",
        "Run even though CA Mover Tuning does not read plexcache-r's ignore list (only when the mover never "
        "runs or is kept off the cached files another way). Off: runs wait until Mover Tuning reads the list, "
        "because the stock mover would move cached files back to the array.",
        words={"false": "No, wait until it reads the ignore list",
               "true": "Yes, the mover is kept off the cached files another way"}))


@dataclass
class Webhook:
    url: str = field(metadata=doc(
        "Webhook address", "Discord or Slack webhook address (the kind is told by the address).",
                                  secret=True))
    levels: list[Level] = field(default_factory=lambda: ["summary", "warnings", "errors"],
                                metadata=doc("What is sent", "What is sent: summary, activity, warnings, errors."))


@dataclass
class NotifySettings:
    unraid_levels: list[Level] = field(default_factory=lambda: ["warnings", "errors"], metadata=doc(
        "Unraid notifications",
        "What goes to Unraid's notifications: summary, activity, warnings, errors."))
    webhooks: list[Webhook] = field(default_factory=list, metadata=doc(
        "Discord or Slack webhooks", "Discord/Slack webhooks."))


@dataclass
class LiveSettings:
    enabled: bool = field(default=False, metadata=doc("Live mode",
        "Follow Plex activity and cache the next episodes as soon as playback starts.",
        words={"false": "Disabled", "true": "Enabled"}))
    notifications: bool = field(default=True, metadata=doc("Follow Plex notifications",
        "Listen to Plex's notification channel (a websocket) to see a play the moment it starts; "
        "polling takes over whenever the channel is down.", words={"true": "Yes", "false": "No, poll only"}))
    poll_seconds: int = field(default=15, metadata=doc("Live mode poll interval (seconds)",
        "Seconds between checks when Plex's notification channel is unavailable or turned off.",
        minimum=2, maximum=3600))
    recently_added: bool = field(default=False, metadata=doc("Cache newly added episodes",
        "Also cache newly added episodes of shows someone has On Deck."))


@dataclass
class PathSettings:
    pool_root: str = field(default="/mnt", metadata=doc("Pools mounted under", "Where pools are mounted (/mnt/POOL)."))
    disks_glob: str = field(default="/mnt/disk[0-9]*", metadata=doc("Array disks", "Array disks."))
    user_root: str = field(default="/mnt/user", metadata=doc("User shares", "The user-share union view."))
    shares_config_dir: str = field(default="/boot/config/shares", metadata=doc(
        "Share settings folder", "Share .cfg files."))
    emhttp_state_dir: str = field(default="/var/local/emhttp", metadata=doc("Unraid state folder",
        "Unraid's runtime state (var.ini: array and parity-check state)."))
    mover_pid: str = field(default="/var/run/mover.pid", metadata=doc(
        "Mover PID file", "Present while the mover runs."))
    state_dir: str = field(default="/boot/config/plugins/plexcache-r/state", metadata=doc("State folder",
        "Durable state: registry, history, journal."))
    volatile_dir: str = field(default="/tmp/plexcache-r", metadata=doc(
        "Progress and lock folder", "Progress, lock and stop flag."))
    log_dir: str = field(default="/var/log/plexcache-r", metadata=doc("Log folder", "Log files."))
    exclusion_list: str = field(default="/boot/config/plugins/plexcache-r/mover_exclude.txt", metadata=doc(
        "Mover Tuning ignore list",
        "The list CA Mover Tuning ignores (pool-side paths, one per line)."))
    manual_exclusions: str = field(default="/boot/config/plugins/plexcache-r/mover_exclude_manual.txt",
                                   metadata=doc(
        "Your own ignore entries", "Your own entries, copied into the exclusion list."))
    cron_file: str = field(default="/boot/config/plugins/plexcache-r/plexcache-r.cron", metadata=doc("Schedule file",
        "The plugin's schedule."))
    plugins_config_dir: str = field(default="/boot/config/plugins", metadata=doc("Plugin settings folder",
        "Where other plugins keep settings (to read CA Mover Tuning's)."))


@dataclass
class Settings:
    schema: int = field(default=SCHEMA_VERSION, metadata=doc("Settings format version", "Settings format version."))
    plex: PlexSettings = field(default_factory=PlexSettings, metadata=doc("Plex", "Plex connection."))
    users: UserSettings = field(default_factory=UserSettings, metadata=doc("Users", "Whose demand counts."))
    demand: DemandSettings = field(default_factory=DemandSettings, metadata=doc(
        "What to cache", "What counts as demand."))
    cache: CacheSettings = field(default_factory=CacheSettings, metadata=doc("Caching behaviour", "Caching and space."))
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings, metadata=doc("Schedule", "When runs happen."))
    notify: NotifySettings = field(default_factory=NotifySettings, metadata=doc("Notifications", "Notifications."))
    live: LiveSettings = field(default_factory=LiveSettings, metadata=doc("Live mode", "Live mode."))
    paths: PathSettings = field(default_factory=PathSettings, metadata=doc("Advanced", "Unraid paths."))
    dry_run: bool = field(default=False, metadata=doc(
        "Dry run only", "Plan and report, but never move a file.",
        words={"false": "No", "true": "Yes: plan and report, never move"}))
    log_level: Literal["debug", "info", "warning", "error"] = field(default="info", metadata=doc("Log level",
        "How much goes to the log."))


# --- sizes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """An absolute byte count or a share of the pool's total."""

    bytes: Optional[int] = None
    percent: Optional[float] = None

    def resolve(self, total: int) -> int:
        if self.percent is not None:
            return int(total * self.percent / 100)
        return self.bytes or 0


def parse_size(text: str) -> Optional[Size]:
    """'500GB', '1.5T', '40%', '2TiB' or a bare number of GB; '' means unset. ValueError on anything else.

    Units are decimal (GB = 10^9 bytes, as Unraid shows sizes); with an i (GiB) they are binary."""
    if not text.strip():
        return None
    match = SIZE_RE.match(text)
    if not match:
        raise ValueError("expected a size like 500GB, 1.5TB, 800MB or a share like 10%")
    number, unit = float(match.group(1)), (match.group(2) or "").upper()
    if unit == "%":
        if number > 100:
            raise ValueError("a share cannot be over 100%")
        return Size(percent=number)
    power = _POWERS[unit[:1] or "G"]
    base = 1024 if "I" in unit else 1000
    return Size(bytes=int(number * base**power))


# --- loading and validation ----------------------------------------------------------------------


def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text"}.get(tp, str(tp))


class _Validator:
    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def bad(self, key: str, message: str) -> None:
        self.problems.append((key, message))

    def build(self, cls: Any, data: Any, prefix: str) -> Any:
        if not isinstance(data, dict):
            self.bad(prefix.rstrip(".") or "(top level)", f"got {_show(data)}, expected a mapping")
            return None
        hints = _hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in data:
            if key not in fields:
                close = difflib.get_close_matches(str(key), fields, n=1)
                hint = f"; did you mean {prefix}{close[0]}?" if close else ""
                self.bad(f"{prefix}{_key_text(key)}", f"unknown setting{hint}")
        kwargs = {}
        for name, f in fields.items():
            key = f"{prefix}{name}"
            if name in data:
                kwargs[name] = self.value(hints[name], data[name], key, f.metadata)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.bad(key, "is required")
        try:
            return cls(**kwargs)
        except TypeError:
            return None

    def value(self, tp: Any, raw: Any, key: str, meta: Any) -> Any:
        origin = typing.get_origin(tp)
        if dataclasses.is_dataclass(tp):
            return self.build(tp, raw, key + ".")
        if origin is list:
            if not isinstance(raw, list):
                self.bad(key, f"got {_show(raw)}, expected {_type_name(tp)}")
                return []
            inner = typing.get_args(tp)[0]
            return [self.value(inner, item, f"{key}[{i}]", {}) for i, item in enumerate(raw)]
        if origin is Literal:
            allowed = typing.get_args(tp)
            if raw not in allowed:
                self.bad(key, f"got {_show(raw)}, expected {_type_name(tp)}")
            return raw
        return self.scalar(tp, raw, key, meta)

    def scalar(self, tp: Any, raw: Any, key: str, meta: Any) -> Any:
        ok = (isinstance(raw, bool) if tp is bool else
              isinstance(raw, int) and not isinstance(raw, bool) if tp is int else
              isinstance(raw, (int, float)) and not isinstance(raw, bool) if tp is float else
              isinstance(raw, str))
        if not ok:
            self.bad(key, f"got {_show(raw)}, expected {_type_name(tp)}")
            return raw
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and raw < lo) or (hi is not None and raw > hi):
            self.bad(key, f"got {raw}, expected a value from {lo:g} to {hi:g}")
        if meta.get("size"):
            try:
                parse_size(raw)
            except ValueError as exc:
                self.bad(key, f"got {raw!r}, {exc}")
        return float(raw) if tp is float else raw


def _key_text(key: Any) -> str:
    """A key as it can be shown on one line: plain names as they are, anything odd quoted."""
    text = str(key)
    return text if re.fullmatch(r"[\w.\-]+", text) else repr(key)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _masked_secrets(obj: Any, prefix: str = "") -> list[str]:
    """Keys of secrets whose value is still a mask: a saved form's mask that stood for no stored secret."""
    keys: list[str] = []
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), prefix + f.name
        if f.metadata.get("secret") and is_mask(value):
            keys.append(key)
        elif dataclasses.is_dataclass(value):
            keys += _masked_secrets(value, key + ".")
        elif isinstance(value, list):
            for i, row in enumerate(value):
                if dataclasses.is_dataclass(row):
                    keys += _masked_secrets(row, f"{key}[{i}].")
    return keys


def _check_semantics(settings: Settings, v: _Validator) -> None:
    """Rules that span fields or need more than a type."""
    for key in _masked_secrets(settings):
        v.bad(key, "stands for a stored value that is no longer there: enter it again")
    if not re.match(r"^https?://[^\s/]+", settings.plex.url):
        v.bad("plex.url", f"got {settings.plex.url!r}, expected an address like http://192.168.1.10:32400")
    seen: set[str] = set()
    # a row the validator refused stays None in the list
    for i, mapping in enumerate(typing.cast(list[Optional[PathMapping]], settings.plex.path_mappings)):
        if mapping is None:
            continue
        for side in ("plex", "share"):
            if not getattr(mapping, side).startswith("/"):
                v.bad(f"plex.path_mappings[{i}].{side}", "must be an absolute path starting with /")
        if mapping.plex.rstrip("/") in seen:
            v.bad(f"plex.path_mappings[{i}].plex", f"{mapping.plex!r} is mapped twice")
        seen.add(mapping.plex.rstrip("/"))
    for i, ext in enumerate(settings.cache.sidecar_extensions):
        if not re.match(r"^\.[A-Za-z0-9.]+$", ext):
            v.bad(f"cache.sidecar_extensions[{i}]", f"got {ext!r}, expected an extension like .srt")
    if settings.schedule.mode == "cron" and len(settings.schedule.cron.split()) != 5:
        v.bad("schedule.cron", f"got {settings.schedule.cron!r}, expected five fields like '0 */4 * * *'")
    for i, hook in enumerate(settings.notify.webhooks):
        if not hook.url.startswith("https://") and not is_mask(hook.url):
            v.bad(f"notify.webhooks[{i}].url", "expected an https:// webhook address")


# Settings that once named a program run as root (Unraid's notify and update_cron): whoever could save
# settings could choose what runs. Unraid's commands are facts (see unraid_command), so these keys are
# dropped on load, whatever they say, without a schema change (an older plugin still reads the file).
RETIRED_PATHS = ("notify_script", "update_cron")


def _drop_retired(data: dict[str, Any]) -> dict[str, Any]:
    paths = data.get("paths")
    if not isinstance(paths, dict) or not any(key in paths for key in RETIRED_PATHS):
        return data
    return {**data, "paths": {k: v for k, v in paths.items() if k not in RETIRED_PATHS}}


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older settings document up to SCHEMA_VERSION; unknown versions are refused."""
    version = data.get("schema", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise SettingsError([("schema", f"got {version!r}, this version reads 1 to {SCHEMA_VERSION}")])
    data = _drop_retired(data)
    if version == 1:
        # Version 1 kept the eviction mode and limits at the top level; they now live under cache.
        data = dict(data)
        if not isinstance(data.get("cache") or {}, dict):
            data["schema"] = 2
            return data  # not a mapping: validation names `cache` and what it expects
        cache = dict(data.get("cache") or {})
        for old, new in (("eviction_mode", "eviction"), ("cache_limit", "size_limit"),
                         ("min_free_space", "min_free")):
            if old in data:
                cache.setdefault(new, data.pop(old))
        if cache:
            data["cache"] = cache
        data["schema"] = 2
    return data


def from_mapping(data: Any) -> Settings:
    """Validate a settings document (already parsed) into Settings; SettingsError lists every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError([("(top level)", f"got {_show(data)}, expected a mapping of settings")])
    validator = _Validator()
    settings = validator.build(Settings, _migrate(data), "")
    if settings is not None:
        try:
            _check_semantics(settings, validator)
        except (TypeError, AttributeError, ValueError):
            pass  # a field of the wrong type is already reported; its cross-checks cannot run

    if validator.problems:
        raise SettingsError(validator.problems)
    return typing.cast(Settings, settings)


def parse_text(text: str, source: str = "settings") -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UsageError(f"{source} is not valid YAML or JSON{where}: fix the file or run "
                         "`plexcache-r config show` to see the current settings") from None


def config_path(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def unraid_command(path: str) -> str:
    """Where one of Unraid's own programs is (an absolute path on Unraid).

    These are facts of the platform, never settings: a setting would let whoever can save settings choose
    a program that runs as root. The demo and the tests set PLEXCACHE_UNRAID_ROOT to a sandbox tree that
    holds stand-ins at the same relative paths; on a server it is unset.
    """
    root = os.environ.get(UNRAID_ROOT_ENV, "")
    return os.path.join(root, path.lstrip("/")) if root else path


def load(path: Path) -> Settings:
    """Read and validate the settings file. A missing file gives the defaults, so a fresh install works."""
    if not path.exists():
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read settings {path}: {getattr(exc, 'strerror', exc)}") from None
    return from_mapping(parse_text(text, str(path)))


@dataclass
class Readable:
    """What can be read of a settings file that may be invalid: every good value (a bad one gives way to
    its default), the problems, and the file's own document (its raw values, for the form to show)."""

    settings: Settings
    problems: list[tuple[str, str]]
    raw: dict[str, Any]


def load_readable(path: Path) -> Readable:
    """The settings for commands that must work whatever the file holds (status, list, move back: files
    on the pool must always be reachable) and for the form that fixes it. Never raises SettingsError."""
    if not path.exists():
        return Readable(Settings(), [], {})
    try:
        raw = parse_text(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, UsageError) as exc:
        return Readable(Settings(), [("(file)", str(getattr(exc, "strerror", None) or exc))], {})
    if not isinstance(raw, dict):
        return Readable(Settings(), [("(top level)", f"got {_show(raw)}, expected a mapping of settings")], {})
    problems: list[tuple[str, str]] = []
    data = raw
    for _ in range(8):   # each pass drops the values named; a dropped row may leave one more to drop
        try:
            return Readable(from_mapping(data), problems, raw)
        except SettingsError as exc:
            problems += [p for p in exc.problems if p not in problems]
            trimmed = _without(data, [key for key, _ in exc.problems])
            if trimmed == data:
                break
            data = trimmed
    return Readable(Settings(), problems, raw)


def _without(data: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """The document without the values at these keys ("cache.min_free", "plex.path_mappings[1].plex"); a
    problem inside a row drops the whole row."""
    out = copy.deepcopy(data)
    rows: list[tuple[list[Any], int]] = []
    for key in keys:
        parts = [p for p in re.split(r"\.|\[(\d+)\]", key) if p]
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                rows.append((node, int(part)))
                break
            if not isinstance(node, dict) or part not in node:
                break
            if last:
                del node[part]
            else:
                node = node[part]
    unique = {(id(lst), i): (lst, i) for lst, i in rows}.values()
    for row_list, index in sorted(unique, key=lambda row: -row[1]):   # the last first: indexes stay true
        del row_list[index]
    return out


def mask_mapping(data: Any, cls: Any = Settings, keyless_row: bool = False) -> Any:
    """A settings document (a file's raw values) with every secret that is set shown as MASK (fingerprinted
    in a row without a key)."""
    if not (isinstance(data, dict) and dataclasses.is_dataclass(cls)):
        return data
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for key, value in data.items():
        f = fields.get(key)
        if f is not None and f.metadata.get("secret") and value:
            out[key] = _fingerprinted(str(value)) if keyless_row else MASK
        elif f is not None and _row_type(hints[key]) is not None and isinstance(value, list):
            keyless = f.metadata.get("row_key") is None
            out[key] = [mask_mapping(row, _row_type(hints[key]), keyless) for row in value]
        elif f is not None:
            out[key] = mask_mapping(value, hints[key])
        else:
            out[key] = value
    return out


def to_mapping(settings: Settings, *, mask: bool = False) -> dict[str, Any]:
    """Plain data for YAML/JSON; with mask, every secret that is set becomes MASK."""
    return typing.cast(dict[str, Any], _dump(settings, mask))


def _dump(obj: Any, mask: bool, keyless_row: bool = False) -> Any:
    if dataclasses.is_dataclass(obj):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if mask and f.metadata.get("secret") and value:
                out[f.name] = _fingerprinted(value) if keyless_row else MASK
            elif isinstance(value, list):
                keyless = f.metadata.get("row_key") is None
                out[f.name] = [_dump(item, mask, keyless) for item in value]
            else:
                out[f.name] = _dump(value, mask)
        return out
    if isinstance(obj, list):
        return [_dump(item, mask) for item in obj]
    return obj


def unmask(new: Any, old: Any) -> Any:
    """Put back secrets a page sent as MASK, so saving a masked form keeps the stored token and PINs."""
    return _combine(old, new, Settings, keep_missing=False)


def merge(base: Any, patch: Any) -> Any:
    """Deep-merge a partial settings document (a saved form) into the stored one.

    Mappings merge. A list replaces the stored list, but a row of a list of rows keeps every field it does
    not carry (one the form does not show, such as a Plex Home PIN) from the stored row it matches: by its
    row_key (the user's name), else by the fingerprint of its masked secret, else by position. A secret sent
    as MASK is the stored one; a fingerprint no stored row has is left as it is, so validation refuses it."""
    return _combine(base, patch, Settings, keep_missing=True)


def _combine(base: Any, patch: Any, cls: Any, *, keep_missing: bool) -> Any:
    if not (isinstance(patch, dict) and dataclasses.is_dataclass(cls)):
        return patch
    old = base if isinstance(base, dict) else {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    out = dict(old) if keep_missing else {}
    for key, value in patch.items():
        f = fields.get(key)
        if f is None:
            out[key] = value
        elif f.metadata.get("secret") and is_mask(value):
            out[key] = _stored_secret(old.get(key), value)
        elif dataclasses.is_dataclass(hints[key]):
            out[key] = _combine(old.get(key), value, hints[key], keep_missing=keep_missing)
        elif _row_type(hints[key]) is not None:
            out[key] = _combine_rows(old.get(key), value, _row_type(hints[key]), f.metadata.get("row_key"),
                                     keep_missing)
        else:
            out[key] = value
    return out


def _stored_secret(stored: Any, sent: str) -> Any:
    """The stored secret a masked value stands for; the mask itself when it stands for none."""
    if stored and (sent == MASK or _fingerprinted(str(stored)) == sent):
        return stored
    return sent


def _row_by_fingerprint(stored: list[Any], row: Any, cls: Any) -> Any:
    """The stored row whose secret a fingerprinted mask in `row` names, if any."""
    if not isinstance(row, dict):
        return None
    for f in dataclasses.fields(cls):
        sent = row.get(f.name)
        if f.metadata.get("secret") and is_mask(sent) and sent != MASK:
            return next((o for o in stored if isinstance(o, dict) and o.get(f.name)
                         and _fingerprinted(str(o[f.name])) == sent), None)
    return None


def _row_type(tp: Any) -> Any:
    """The dataclass of a list-of-rows type (list[UserOverride]), else None."""
    inner = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
    return inner if dataclasses.is_dataclass(inner) else None


def _combine_rows(old: Any, new: Any, cls: Any, row_key: Optional[str], keep_missing: bool) -> Any:
    if not isinstance(new, list):
        return new
    stored = old if isinstance(old, list) else []

    def match(i: int, row: Any) -> Any:
        if row_key is None:
            by_secret = _row_by_fingerprint(stored, row, cls)
            if by_secret is not None:
                return by_secret
            return stored[i] if i < len(stored) else None
        wanted = row.get(row_key) if isinstance(row, dict) else None
        return next((o for o in stored if isinstance(o, dict) and o.get(row_key) == wanted), None)

    return [_combine(match(i, row), row, cls, keep_missing=keep_missing) for i, row in enumerate(new)]


def secret_keys() -> list[str]:
    """Every secret setting, from the schema: plex.token, users.overrides[].pin, ..."""
    keys: list[str] = []

    def walk(cls: Any, prefix: str) -> None:
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            key = prefix + f.name
            if f.metadata.get("secret"):
                keys.append(key)
            elif dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], key + ".")
            elif _row_type(hints[f.name]) is not None:
                walk(_row_type(hints[f.name]), key + "[].")

    walk(Settings, "")
    return keys


def secret_values(settings: Settings) -> list[str]:
    """The values of every secret setting that is set (what the log scrubber hides)."""
    values: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, list):
            for item in obj:
                walk(item)
            return
        if not dataclasses.is_dataclass(obj):
            return
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("secret"):
                values.extend([value] if isinstance(value, str) and value else [])
            else:
                walk(value)

    walk(settings)
    return values


def dump_yaml(settings: Settings) -> str:
    header = "# plexcache-r settings; see docs/settings.md. Change them on the Settings page or with `config set`.\n"
    return header + yaml.safe_dump(to_mapping(settings), sort_keys=False, allow_unicode=True)


def keep_broken(path: Path) -> str:
    """Copy a settings file that cannot be read next to it before it is replaced; the copy's name."""
    copy_path = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    atomic_write_bytes(copy_path, path.read_bytes(), mode=0o600)
    return str(copy_path)


def save(settings: Settings, path: Path) -> None:
    atomic_write_text(path, dump_yaml(settings), mode=0o600)


def reference_rows() -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every setting, for the generated reference table."""
    rows: list[tuple[str, str, str, str]] = []
    _walk(Settings, "", rows)
    return rows


def _walk(cls: Any, prefix: str, rows: list[tuple[str, str, str, str]]) -> None:
    hints = _hints(cls)
    defaults = cls() if all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
                            for f in dataclasses.fields(cls)) else None
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            rows.append((key, "section", "", f.metadata["doc"]))
            _walk(tp, key + ".", rows)
            continue
        default = getattr(defaults, f.name) if defaults is not None else "(required)"
        rows.append((key, _type_name(tp), _dump(default, False) if default != "" else '""', f.metadata["doc"]))
        inner = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
        if inner is not None and dataclasses.is_dataclass(inner):
            _walk(inner, key + "[].", rows)


def reference_markdown() -> str:
    lines = ["# Settings reference", "",
             "Generated from the schema in `source/python/plexcache/config.py` by "
             "`plexcache-r config reference`; do not edit by hand.", "",
             "| key | type | default | what it does |", "|---|---|---|---|"]
    for key, tp, default, text in reference_rows():
        shown = "" if tp == "section" else f"`{yaml.safe_dump(default, default_flow_style=True).strip()}`"
        shown = shown.replace("\n...", "").replace("|", "\\|")
        lines.append(f"| `{key}` | {tp} | {shown} | {text} |")
    return "\n".join(lines) + "\n"


# --- the schema for forms -----------------------------------------------------------------------


def schema_keys() -> dict[str, dict[str, Any]]:
    """Every setting as a form needs it, keyed like problems ("cache.min_free", "plex.path_mappings[].plex"):
    its type, default, bounds, options and their words, whether it is secret, its label and help. The
    Settings page is built from this (`config schema`), so its controls cannot disagree with validation."""
    keys: dict[str, dict[str, Any]] = {}
    _schema_walk(Settings, Settings(), "", "", keys)
    return keys


def _schema_walk(cls: Any, defaults: Any, prefix: str, owner: str, keys: dict[str, dict[str, Any]]) -> None:
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp, key, meta = hints[f.name], prefix + f.name, f.metadata
        default = getattr(defaults, f.name) if defaults is not None else None
        # a group of fields shared by several sections (the users' toggles) names its section too
        label = f"{owner}: {meta['label']}" if owner else meta["label"]
        entry = {"type": _schema_type(tp, meta), "label": label, "help": meta["doc"], "secret": meta["secret"],
                 "default": _dump(default, False), "min": meta["min"], "max": meta["max"],
                 "step": meta["step"] if meta["step"] is not None else (1 if tp is int else None),
                 "options": _options(tp, meta), "words": meta["words"], "row_key": meta["row_key"]}
        keys[key] = entry
        if dataclasses.is_dataclass(tp):
            shared = sum(1 for other in hints.values() if other is tp) > 1
            _schema_walk(tp, default, key + ".", meta["label"] if shared else "", keys)
        elif _row_type(tp) is not None:
            _schema_walk(_row_type(tp), None, key + "[].", "", keys)


def _schema_type(tp: Any, meta: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "section"
    if _row_type(tp) is not None:
        return "rows"
    if typing.get_origin(tp) is list:
        return "multi" if typing.get_origin(typing.get_args(tp)[0]) is Literal else "list"
    if typing.get_origin(tp) is Literal:
        return "choice"
    if tp is str and meta["size"]:
        return "size"
    return {bool: "bool", int: "int", float: "float", str: "str"}[tp]


def _options(tp: Any, meta: Any) -> Optional[list[str]]:
    """The values a choice takes, in the order a form offers them (its words' order when it has words)."""
    inner = typing.get_args(tp)[0] if typing.get_origin(tp) is list else tp
    if typing.get_origin(inner) is Literal:
        values = [str(v) for v in typing.get_args(inner)]
    elif inner is bool:
        values = ["true", "false"]
    else:
        return None
    order = list(meta["words"] or [])
    return sorted(values, key=lambda v: order.index(v) if v in order else len(order) + values.index(v))
