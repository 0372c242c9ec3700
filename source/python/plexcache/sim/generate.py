"""Large synthetic scenarios for benchmarks: many users, libraries, episodes, movies and watchlist items.

`generate(...)` returns a validated Scenario directly (no files written); `generate_dict(...)` returns the
compact scenario mapping, which can be dumped to YAML for a subprocess `sim serve`. Everything is derived
from `seed`, so two calls with the same arguments give the same world.
"""

from __future__ import annotations

import random
from typing import Any

from plexcache.sim.scenario import Scenario, from_dict


def generate_dict(users: int = 20, libraries: int = 4, episodes: int = 100_000, movies: int = 5_000,
                  watchlist: int = 20, seasons_per_show: int = 5, episodes_per_season: int = 10,
                  disks: int = 6, seed: int = 0) -> dict[str, Any]:
    """A scenario mapping: half the libraries movies, half shows (at least one of each when both are asked)."""
    rnd = random.Random(seed)
    n_movie_libs = max(1, libraries // 2) if movies else 0
    n_show_libs = max(1, libraries - n_movie_libs) if episodes else 0
    per_show = seasons_per_show * episodes_per_season
    n_shows = max(1, -(-episodes // per_show)) if episodes else 0
    libs: list[dict[str, Any]] = []
    path_map: dict[str, str] = {}
    shares: dict[str, Any] = {}
    for i in range(n_movie_libs):
        share = f"movies{i + 1}"
        shares[share] = {"useCache": "yes", "pool": "cache"}
        path_map[f"/data/{share}"] = share
        count = movies // n_movie_libs + (1 if i < movies % n_movie_libs else 0)
        libs.append({"id": len(libs) + 1, "type": "movie", "title": f"Movies {i + 1}", "locations": [f"/data/{share}"],
                     "movies": [{"title": f"Movie {i + 1}-{m + 1}", "year": 1970 + m % 55,
                                 "guids": [f"imdb://tt{9000000 + i * 100000 + m}", f"tmdb://{700000 + i * 100000 + m}"],
                                 "size": rnd.choice(["2G", "4G", "8G", "20G"])} for m in range(count)]})
    left = episodes
    show_titles: list[str] = []
    for i in range(n_show_libs):
        share = f"tv{i + 1}"
        shares[share] = {"useCache": "yes", "pool": "cache"}
        path_map[f"/data/{share}"] = share
        shows = []
        for s in range(n_shows // n_show_libs + (1 if i < n_shows % n_show_libs else 0)):
            if left <= 0:
                break
            n = min(per_show, left)
            left -= n
            full, rest = divmod(n, episodes_per_season)
            seasons = {k + 1: episodes_per_season for k in range(full)}
            if rest:
                seasons[full + 1] = rest
            title = f"Show {i + 1}-{s + 1}"
            show_titles.append(title)
            shows.append({"title": title, "year": 2000 + s % 25, "guids": [f"tvdb://{300000 + i * 100000 + s}"],
                          "seasons": seasons})
        libs.append({"id": len(libs) + 1, "type": "show", "title": f"TV {i + 1}", "locations": [f"/data/{share}"],
                     "shows": shows})
    user_list, watch, wls = _people(rnd, users, show_titles, libs, watchlist, episodes_per_season)
    return {"now": "2026-01-15T20:00:00Z",
            "server": {"name": "bench", "machineIdentifier": "b" * 40},
            "users": user_list,
            "unraid": {"disks": disks, "pools": ["cache"], "shares": shares, "pathMap": path_map},
            "libraries": libs, "watch": watch, "watchlists": wls}


def _people(rnd: random.Random, users: int, show_titles: list[str], libs: list[dict[str, Any]], watchlist: int,
            eps_per_season: int) -> Any:
    kinds = ["owner"] + [("home", "managed", "friend", "friend")[i % 4] for i in range(users - 1)]
    movie_titles = [(m["title"], m["year"]) for lib in libs if lib["type"] == "movie" for m in lib["movies"]]
    user_list, watch, wls = [], {}, {}
    for i, kind in enumerate(kinds):
        name = "owner" if kind == "owner" else f"user{i:02d}"
        user_list.append({"name": name, "kind": kind, "id": 1000 + i})
        watched: list[Any] = []
        progress: dict[str, Any] = {}
        for show in rnd.sample(show_titles, min(5, len(show_titles))):
            e = rnd.randint(1, eps_per_season - 1)
            watched.append({"item": f"{show} S01E01-S01E{e:02d}", "at": f"{rnd.randint(1, 240)}h"})
        for title, year in rnd.sample(movie_titles, min(2, len(movie_titles))):
            progress[f"{title} ({year})"] = {"offset": f"{rnd.randint(5, 80)}m", "at": f"{rnd.randint(1, 100)}h"}
        watch[name] = {"watched": watched, "progress": progress}
        items: list[Any] = [f"{t} ({y})" for t, y in rnd.sample(movie_titles, min(watchlist // 2, len(movie_titles)))]
        items += rnd.sample(show_titles, min(watchlist // 4, len(show_titles)))
        while len(items) < watchlist:
            items.append({"title": f"Elsewhere {i}-{len(items)}", "type": rnd.choice(["movie", "show"]),
                          "year": 2024, "guids": [f"imdb://tt{5000000 + i * 1000 + len(items)}"]})
        wls[name] = items
    return user_list, watch, wls


def generate(**kwargs: Any) -> Scenario:
    """A validated Scenario (see generate_dict for the arguments); nothing is written to disk."""
    return from_dict(generate_dict(**kwargs), source="<generated>")
