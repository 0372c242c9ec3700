"""Shared world for the audit and import tests (no tests here): a sandbox Unraid tree with two disks and a
`cache` pool, files cached the way a run caches them (the journaled mover, a registry entry, the ignore list),
and helpers to break that state on purpose and to snapshot the tree."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Optional

from plexcache import config as cfg
from plexcache import exclusions
from plexcache.audit import audit
from plexcache.layout import journal_dir
from plexcache.media.journal import Journal
from plexcache.media.mover import Mover
from plexcache.media.ops import CacheOp
from plexcache.sim.sandbox import build_tree
from plexcache.sim.scenario import from_dict
from plexcache.state import Entry, Registry, StateStore
from plexcache.unraid import Unraid

SCENARIO = {
    "users": [{"name": "admin", "kind": "owner", "id": 1, "token": "tok-admin"}],
    "unraid": {"disks": 2, "pools": ["cache"],
               "shares": {"tv": {"useCache": "yes", "pool": "cache"}, "movies": {"useCache": "yes", "pool": "cache"},
                          "kids": {"useCache": "prefer", "pool": "cache"}},
               "pathMap": {"/data/tv": "tv", "/data/movies": "movies", "/data/kids": "kids"}},
    "libraries": [
        {"id": 1, "type": "movie", "title": "Movies", "locations": ["/data/movies"], "defaultSize": "300K",
         "movies": [{"title": "Arrival", "year": 2016, "disk": "disk1", "subtitles": ["en.srt"]},
                    {"title": "Dune", "year": 2021, "disk": "disk2"},
                    {"title": "Heat", "year": 1995, "disk": "disk1"}]},
        {"id": 2, "type": "show", "title": "TV", "locations": ["/data/tv"], "defaultSize": "200K",
         "shows": [{"title": "Severance", "year": 2022, "seasons": {1: 4}, "disk": "disk2",
                    "subtitles": ["en.srt"]}]},
        {"id": 3, "type": "show", "title": "Kids", "locations": ["/data/kids"], "defaultSize": "100K",
         "shows": [{"title": "Bluey", "year": 2018, "seasons": {1: 2}, "disk": "disk1"}]},
    ],
}

ARRIVAL = ("movies", "Arrival (2016)/Arrival (2016).mkv")
ARRIVAL_SRT = ("movies", "Arrival (2016)/Arrival (2016).en.srt")
DUNE = ("movies", "Dune (2021)/Dune (2021).mkv")
HEAT = ("movies", "Heat (1995)/Heat (1995).mkv")
EP1 = ("tv", "Severance (2022)/Season 01/Severance (2022) - S01E01.mkv")
EP2 = ("tv", "Severance (2022)/Season 01/Severance (2022) - S01E02.mkv")
EP3 = ("tv", "Severance (2022)/Season 01/Severance (2022) - S01E03.mkv")


class World:
    """The sandbox plus settings pointing into it, and the ways tests cache and break files."""

    def __init__(self, root: Path, backups: bool = True, **cache: Any) -> None:
        self.sb = build_tree(root, from_dict(SCENARIO))
        doc = self.sb.settings_dict("http://127.0.0.1:9", "tok-admin")
        doc["cache"] = {"backups": backups, **cache}
        self.settings = cfg.from_mapping(doc)
        self.settings_path = root / "settings.yaml"
        cfg.save(self.settings, self.settings_path)
        self.mnt = self.sb.mnt

    # paths -------------------------------------------------------------------------------------

    def user(self, f: tuple[str, str]) -> str:
        return str(self.sb.user / f[0] / f[1])

    def pool(self, f: tuple[str, str]) -> Path:
        return self.mnt / "cache" / f[0] / f[1]

    def disk_of(self, f: tuple[str, str]) -> str:
        return next(d for d in ("disk1", "disk2") if (self.mnt / d / f[0] / f[1]).exists()
                    or (self.mnt / d / f[0] / (f[1] + ".plexcached")).exists())

    def array(self, f: tuple[str, str], disk: Optional[str] = None) -> Path:
        return self.mnt / (disk or self.disk_of(f)) / f[0] / f[1]

    def backup(self, f: tuple[str, str], disk: Optional[str] = None) -> Path:
        return Path(str(self.array(f, disk)) + ".plexcached")

    # state ---------------------------------------------------------------------------------------

    def registry(self) -> Registry:
        return StateStore(self.settings).load_registry()

    def save(self, registry: Registry) -> None:
        StateStore(self.settings).save_registry(registry)
        exclusions.write(self.settings, registry)

    def listed(self) -> list[str]:
        path = Path(self.settings.paths.exclusion_list)
        return path.read_text().splitlines() if path.exists() else []

    def journal(self) -> Journal:
        return Journal(journal_dir(self.settings))

    # caching the way a run does -----------------------------------------------------------------

    def cache(self, *files: tuple[str, str], sidecars: bool = True) -> None:
        """Cache each file (and its .en.srt, if any) through the mover; record it like the engine does."""
        unraid = Unraid.load(self.settings)
        registry = self.registry()
        mover = Mover(self.journal(), backups=self.settings.cache.backups)
        for f in files:
            loc = unraid.locate(self.user(f))
            pairs = []
            srt = Path(loc.array_path).with_suffix(".en.srt")
            if sidecars and srt.exists():
                pairs.append((str(srt), str(Path(loc.pool_path).with_suffix(".en.srt"))))
            result = mover.cache(CacheOp(loc.array_path, loc.pool_path, pairs, key=self.user(f), disk=loc.disk))
            recorded, side_paths = {}, []
            for i, moved in enumerate(result.files):
                user_path = self.user(f) if i == 0 else str(Path(self.user(f)).with_suffix(".en.srt"))
                if i:
                    side_paths.append(user_path)
                recorded[user_path] = {"size": moved.facts.size, "mtime_ns": moved.facts.mtime_ns, "blake2b": None}
            main = result.files[0]
            registry.add(Entry(path=self.user(f), share=f[0], rel=f[1], pool="cache", disk=loc.disk,
                               size=main.facts.size, mtime=main.facts.mtime_ns / 1e9, cached_at=1.0e9,
                               title=Path(f[1]).stem, sidecars=side_paths, backup=main.backup_path is not None,
                               recorded=recorded))
        self.save(registry)
        mover.checkpoint()  # as the engine does once the registry holds the finished operations

    # breaking things ---------------------------------------------------------------------------

    def copy_with_times(self, src: Path, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)

    def snapshot(self) -> dict[str, tuple[int, str]]:
        """Every file on the disks and pools (not the /mnt/user stand-in): relative path -> (size, hash)."""
        out = {}
        for volume in sorted(self.mnt.iterdir()):
            if volume.name == "user":
                continue
            for dirpath, _dirs, names in os.walk(volume):
                for name in names:
                    full = Path(dirpath) / name
                    data = full.read_bytes()
                    out[str(full.relative_to(self.mnt))] = (len(data), hashlib.blake2b(data).hexdigest())
        return out

    def audit(self, *fixes: str, cheap: bool = False) -> dict[str, Any]:
        return audit(self.settings, fixes=list(fixes), cheap=cheap)


def kinds(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, path) of every finding, sorted."""
    return sorted((f["kind"], f["path"]) for f in doc["findings"])


def rel(world: World, path: Path) -> str:
    return str(Path(path).relative_to(world.mnt))
