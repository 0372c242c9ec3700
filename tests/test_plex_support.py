"""Shared pieces for the Plex discovery tests: a small world, the simulator, settings pointing at it.

Everything goes over HTTP: real plexapi, the project's session factory, the simulator redirecting plex.tv.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

import pytest

from plexcache.config import Settings, from_mapping, merge
from plexcache.demand import Demand
from plexcache.http import REDIRECT_ENV
from plexcache.sim.scenario import from_dict
from plexcache.sim.server import SimServer

OWNER = "admin"

# The owner has watched Severance S01E01-E02 (so E03 is On Deck); specials exist; Bluey has a watched
# episode for the home user; alice (friend) is part-way through Arrival; Heat has two parts; Dune has two
# versions. Titles are unique so tests can refer to items by title.
WORLD: dict[str, Any] = {
    "now": "2026-01-15T20:00:00Z",
    "server": {"name": "tower", "machineIdentifier": "5f1c2a9e8b7d4c3f2a1b0c9d8e7f6a5b4c3d2e1f"},
    "users": [
        {"name": OWNER, "kind": "owner", "id": 1001},
        {"name": "partner", "kind": "home", "id": 1002},
        {"name": "kid", "kind": "managed", "id": 1003},
        {"name": "alice", "kind": "friend", "id": 2001},
        {"name": "bob", "kind": "friend", "id": 2002},
    ],
    "libraries": [
        {"id": 1, "type": "movie", "title": "Movies", "locations": ["/data/movies"], "defaultSize": "4G",
         "movies": [
             {"title": "Arrival", "year": 2016, "guids": ["imdb://tt2543164", "tmdb://329865"]},
             {"title": "Dune", "year": 2021, "guids": ["imdb://tt1160419"],
              "media": [{"parts": [{"size": "8G"}]},
                        {"parts": [{"file": "Dune (2021)/Dune (2021) - 1080p.mkv", "size": "3G"}]}]},
             {"title": "Heat", "year": 1995, "guids": ["imdb://tt0113277"],
              "media": [{"parts": [{"file": "Heat (1995)/Heat - pt1.mkv", "size": "3G"},
                                   {"file": "Heat (1995)/Heat - pt2.mkv", "size": "3G"}]}]},
         ]},
        {"id": 2, "type": "show", "title": "TV Shows", "locations": ["/data/tv"], "defaultSize": "1G",
         "shows": [
             {"title": "Severance", "year": 2022, "guids": ["tvdb://371980"], "seasons": {1: 3, 2: 4},
              "specials": 2},
             {"title": "Bluey", "year": 2018, "guids": ["tvdb://353880"], "seasons": {1: 6}},
         ]},
        {"id": 3, "type": "show", "title": "Anime", "locations": ["/data/anime"], "defaultSize": "500M",
         "shows": [{"title": "Frieren", "year": 2023, "seasons": {1: 4}}]},
    ],
    "watch": {
        OWNER: {"watched": ["Severance S01E01-S01E02"]},
        "partner": {"watched": ["Bluey S01E01", "Severance S01E01"]},
        "alice": {"progress": {"Arrival": "30m"}},
    },
    "watchlists": {},
    "sessions": [],
    "rss": {"friends": "friends-feed"},
}


def world(**changes: Any) -> dict[str, Any]:
    """A copy of WORLD with top-level keys replaced (or deep-merged for dicts given as merge=...)."""
    data = copy.deepcopy(WORLD)
    data.update(copy.deepcopy(changes))
    return data


@contextmanager
def simulated(monkeypatch: pytest.MonkeyPatch, data: Optional[dict[str, Any]] = None,
              timeout_sleep: float = 2.0) -> Iterator[SimServer]:
    sim = SimServer(from_dict(data or world(), source="test-world"), timeout_sleep=timeout_sleep)
    with sim:
        monkeypatch.setenv(REDIRECT_ENV, sim.url)
        yield sim


def settings_for(sim: SimServer, patch: Optional[dict[str, Any]] = None) -> Settings:
    """Settings reading the simulator as its owner; home/friends toggles off unless the patch turns them on."""
    base = {"plex": {"url": sim.url, "token": sim.owner_token, "timeout": 1},
            "users": {"owner": {"on_deck": True, "watchlist": False},
                      "home": {"on_deck": False, "watchlist": False},
                      "friends": {"on_deck": False, "watchlist": False}}}
    return from_mapping(merge(base, patch or {}))


def table(demand: Demand) -> dict[str, list[tuple[str, str, str, int]]]:
    """Demand as {item title: sorted [(user, source, detail, rank)]}: easy to compare exactly."""
    return {item.title: sorted((r.user, r.source, r.detail, r.rank) for r in item.reasons)
            for item in demand.items.values()}


def unknowns(demand: Demand) -> list[tuple[str, str]]:
    return sorted((u.scope, u.source) for u in demand.unknown)


def ep(show: str, s: int, e: int) -> str:
    return f"{show} - S{s:02d}E{e:02d} - Episode {e}"


def test_world_loads_and_serves(monkeypatch):
    with simulated(monkeypatch) as sim:
        assert sim.url.startswith("http://127.0.0.1:")
        assert sim.scenario.owner.name == OWNER


def rating_key(sim: SimServer, title: str) -> str:
    """The rating key of a movie or show, as PMS writes it in listings and queries."""
    return str(next(rk for rk, it in sim.scenario.items.items() if it.title == title and it.type in ("movie", "show")))
