"""What users will watch next: the data handed from Plex discovery to the planner.

A Demand is produced by plexcache.plex and is pure data. The rule that matters most lives here:
a part of the demand that could not be read is *unknown*, never empty, and the planner must not move
anything back on the strength of an unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

Source = Literal["playing", "on_deck", "next_episode", "watchlist", "rewatch", "pinned"]

# How soon a file will be watched, soonest first: a lower number is a higher priority.
PRIORITY: dict[str, int] = {"pinned": 0, "playing": 1, "on_deck": 2, "next_episode": 3, "watchlist": 4,
                            "rewatch": 5}
# A movie watched again within this many days is a favourite, likely to be played again soon.
REWATCH_DAYS = 14
SERVER = "(server)"
# plex.tv's user list could not be read: nobody but the owner can be named, so every other user's demand
# is unknown while the owner's own stays trusted.
OTHER_USERS = "(other users)"


@dataclass(frozen=True)
class Reason:
    """Why one user wants one item."""

    user: str
    source: Source
    last_active: Optional[float] = None  # epoch seconds: lastViewedAt, watchlistedAt or session start
    detail: str = ""  # human words, e.g. "2nd episode after S01E04"
    rank: int = 0  # position in that user's queue for this source (0 = watched soonest)

    @property
    def priority(self) -> int:
        return PRIORITY[self.source]

    def to_json(self) -> dict[str, object]:
        return {"user": self.user, "source": self.source, "last_active": self.last_active,
                "detail": self.detail, "rank": self.rank}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reason:
        return cls(user=data["user"], source=data["source"], last_active=data.get("last_active"),
                   detail=data.get("detail", ""), rank=data.get("rank", 0))


@dataclass
class DemandItem:
    """One Plex item (a movie or an episode) some user wants, with every file of every version."""

    rating_key: str
    title: str
    kind: Literal["movie", "episode"]
    library: str
    plex_files: tuple[str, ...]
    size: int
    reasons: list[Reason] = field(default_factory=list)
    added_at: Optional[float] = None
    part_sizes: tuple[int, ...] = ()  # the size Plex lists for each of plex_files (0: not listed)

    def plex_size(self, plex_path: str) -> Optional[int]:
        """The size Plex lists for this file, or None when it lists none."""
        # part_sizes is empty when the sizes were not read: then no file has one
        sizes = dict(zip(self.plex_files, self.part_sizes, strict=False))
        return sizes.get(plex_path) or None

    @property
    def users(self) -> list[str]:
        return sorted({r.user for r in self.reasons})

    @property
    def best_priority(self) -> int:
        return min((r.priority for r in self.reasons), default=len(PRIORITY))


@dataclass(frozen=True)
class Viewing:
    """One movie as a user's own watched state shows it: how often they watched it to the end, and when last."""

    key: str
    view_count: int
    last_viewed: float


def favourites(viewings: list[Viewing], now: float, most: int) -> list[Viewing]:
    """The movies a user rewatches, most likely first: those watched at least twice, the last time within
    REWATCH_DAYS. A user with two or more of them has the habit (a child with a few favourites), so their
    other movies watched within the window are likely again too, after those. At most `most`."""
    recent = [v for v in viewings if v.last_viewed >= now - REWATCH_DAYS * 86400 and v.view_count >= 1]
    again = [v for v in recent if v.view_count >= 2]
    if len(again) < 2:
        recent = again
    return sorted(recent, key=lambda v: (v.view_count < 2, -v.last_viewed, v.key))[:most]


@dataclass(frozen=True)
class Unknown:
    """A part of the demand that could not be read. `scope` is a user name, or SERVER for all of it."""

    scope: str
    source: str
    error: str


@dataclass(frozen=True)
class WantedFile:
    """A demanded file translated to its Unraid user-share path (/mnt/user/SHARE/REL)."""

    path: str
    share: str
    rel: str
    plex_path: str
    item: DemandItem


@dataclass
class Demand:
    items: dict[str, DemandItem] = field(default_factory=dict)
    unknown: list[Unknown] = field(default_factory=list)
    playing: set[str] = field(default_factory=set)  # Plex paths of files being played now
    users: list[str] = field(default_factory=list)  # every user considered, known or not
    requests: int = 0
    generated_at: float = 0.0
    owner: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (title, why) left out by a filter
    warnings: list[str] = field(default_factory=list)  # e.g. a chosen library the server does not have
    # Plex's own history: (user, rating key of an On Deck or playing episode) -> when the user last viewed
    # each earlier episode of its show (read with the next episodes, no request of its own; seeds the pace)
    viewed: dict[tuple[str, str], tuple[float, ...]] = field(default_factory=dict)

    @property
    def server_unknown(self) -> bool:
        return any(u.scope == SERVER for u in self.unknown)

    def user_unknown(self, user: str) -> bool:
        """True when anything of this user's demand could not be read (or nothing could be)."""
        if self.server_unknown or any(u.scope == user for u in self.unknown):
            return True
        return user != self.owner and any(u.scope == OTHER_USERS for u in self.unknown)

    def add(self, item: DemandItem, reason: Reason) -> None:
        """Record that `reason.user` wants `item`, merging with what is already known of it."""
        known = self.items.setdefault(item.rating_key, item)
        if reason not in known.reasons:
            known.reasons.append(reason)
