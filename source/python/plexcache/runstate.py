"""What one command knows while it runs: the settings, the books (registry, history, disks), where each
file was found, and the report being built. The cycle's parts (reconcile, operations) share it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, Optional

from plexcache import pace
from plexcache.config import Settings
from plexcache.demand import OTHER_USERS, SERVER, Demand
from plexcache.layout import BACKUP_SUFFIX
from plexcache.media.ops import RestoreOp
from plexcache.pathmap import MappingResult
from plexcache.report import RunReport
from plexcache.session import Books, Progress
from plexcache.state import ActivityHistory, Registry
from plexcache.unraid import Location

log = logging.getLogger(__name__)


class RunState:
    """The state of one command: settings, layout, registry and history, and the report being built."""

    def __init__(self, settings: Settings, *, now: Optional[float] = None, dry_run: bool = False,
                 action: str = "run", progress: Optional[Progress] = None,
                 session_factory: Optional[Callable[..., Any]] = None) -> None:
        self.settings = settings
        self.now = time.time() if now is None else now
        self.books = Books(settings, self.now)
        self.store = self.books.store
        self.registry: Registry = self.books.registry
        self.history: ActivityHistory = self.books.history
        self.unraid = self.books.unraid
        self.progress = progress or Progress(None, None)
        self.session_factory = session_factory
        self.report = RunReport(action=action, started_at=self.now, dry_run=dry_run)
        self._clock = time.monotonic()  # finished_at = started_at + elapsed, also when `now` is injected
        self.locations: dict[str, Location] = {}
        self.mapping = MappingResult()
        self.demand = Demand()
        self.unmounted: set[str] = set()
        self.add_only = False  # live mode: cache what fits, move nothing back
        self.lookaheads: dict[tuple[str, str], pace.Lookahead] = {}  # learned pace by (user, show folder)
        self._made_dirs: Optional[set[str]] = None  # every pool folder the registry says we created
        self.blocked: dict[str, str] = {}  # candidates that must not be cached now, with why (stray backups)
        self.held: dict[str, str] = {}  # managed files kept on the pool until someone decides, with why
        self.moved_behind_our_back = 0
        self.left_behind: list[RestoreOp] = []  # subtitles still cached after their video left the pool

    def roots(self) -> list[str]:
        """Every disk and pool mount a file of ours may be on (or be carried to by Unraid's mover)."""
        return self.books.roots()

    @property
    def unknown_users(self) -> frozenset[str]:
        """Every user, named in the demand or in the registry, whose demand could not be read."""
        named = {u.scope for u in self.demand.unknown if u.scope not in (SERVER, OTHER_USERS)}
        named |= {user for entry in self.registry.entries.values() for user in entry.users}
        return frozenset(user for user in named if self.demand.user_unknown(user))

    def locate(self, path: str, pool: Optional[str] = None, disk: Optional[str] = None) -> Location:
        loc = self.locations.get(path)
        if loc is None or (pool and loc.pool != pool):
            loc = self.locations[path] = self.unraid.locate(path, pool, disk)
        return loc

    def _event(self, kind: str, path: str, detail: str) -> None:
        """A history event that is not a file moved by this run (recovered, adopted, dropped, retired, ...)."""
        self.books.event(kind, path, detail)

    def _subtitles_beside(self, video: str) -> list[str]:
        """Names of the subtitles in a video's folder whose name is the video's stem plus '.' (strict, so
        another episode's subtitles never ride along); backups are not subtitles."""
        folder, name = os.path.split(video)
        stem = os.path.splitext(name)[0] + "."
        exts = tuple(e.lower() for e in self.settings.cache.sidecar_extensions)
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return []
        return [n for n in names if n != name and n.startswith(stem) and n.lower().endswith(exts)
                and not n.endswith(BACKUP_SUFFIX) and os.path.isfile(os.path.join(folder, n))]

    def _pool_sidecars(self, loc: Location, user_path: str) -> list[str]:
        """User-share paths of the subtitles beside a video on the pool, for a video taken under management
        where it already is."""
        user_dir = os.path.dirname(user_path)
        return [os.path.join(user_dir, n) for n in self._subtitles_beside(loc.pool_path)]

    def _sidecars(self, loc: Location) -> list[tuple[str, str]]:
        """(array, pool) paths of the subtitles next to the video on its array disk."""
        folder, pool_folder = os.path.dirname(loc.array_path), os.path.dirname(loc.pool_path)
        return [(os.path.join(folder, n), os.path.join(pool_folder, n)) for n in self._subtitles_beside(loc.array_path)]

