"""The planner: demand + registry + filesystem facts + policy -> a Plan. A pure function, no I/O.

Every item carries its reasons (who wants it and why) or a `why` in plain words. The rules, in order:

1. Protected files never move back: pinned, being played or open, wanted by a user whose demand could
   not be read this run (or anything at all when Plex could not be read).
2. A managed file nobody wants any more goes back once it has been cached for retention_hours
   (if move_back_watched); files that never came from the array are released to the mover instead.
3. Space: per pool, everything that may stay or arrive competes for the room left above the free-space
   floor and under the size limit. Protected files are counted first; the rest is admitted best first
   (priority mode: pinned > playing > on deck > next episode > watchlist > favourite, then the most recently
   active, then queue rank; age mode: newest first). What does not fit is moved back (cached) or skipped (not
   cached); a show's later episodes are not cached after an earlier one did not fit, so no gaps appear.
4. Spin state (cache.spin_aware): an array disk in standby is woken only for a file due before the next
   run (see `urgency`); once it is woken, everything wanted from it is read in the same run. Files on a disk
   that stays asleep wait (skipped, with the reason), and so does moving back to it, unless the room is
   needed for a due file.

Because the room is computed from free space plus the bytes of managed files, it is the same before and
after the plan is carried out, which makes planning idempotent: a plan made right after applying a plan
has nothing to do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from plexcache.config import Settings, parse_size
from plexcache.demand import PRIORITY, Reason, WantedFile
from plexcache.state import Entry, Registry

CACHE, KEEP, MOVE_BACK, SKIP = "cache", "keep", "move_back", "skip"
# Hysteresis above the free-space floor: a file is cached only if it leaves this much more than the floor
# free (1% of the pool, at most 1 GB), while a cached file moves back for space only once the floor itself
# is broken. Without the band, free space hovering at the floor (downloads, appdata) cached and moved back
# the same file run after run.
BAND_FRACTION = 0.01
BAND_MAX = 10**9
UNWANTED = len(PRIORITY)  # priority of a file no one wants any more (lower number = wanted sooner)


@dataclass(frozen=True)
class FileStatus:
    """What the filesystem says about one user-share path (gathered by the engine through unraid)."""

    path: str
    size: int = 0
    pool: str = ""
    on_pool: bool = False
    on_array: bool = False
    cacheable: bool = True
    why: str = ""  # why not cacheable
    hardlinked: bool = False
    open: bool = False
    mounted: bool = True  # False: its pool is not mounted now, so nothing can be said or done about it
    held: str = ""  # why it stays on the pool until someone decides (its copies differ): never moved back
    disk: Optional[str] = None  # the array disk holding the original (disk1...), when it is on the array


@dataclass(frozen=True)
class PoolFacts:
    pool: str
    total: int
    free: int


@dataclass
class Situation:
    """Everything the planner is told about the world now: each file's status, the pools' space, what is
    playing, whose demand is unknown, which disks sleep and which episodes are due."""

    files: dict[str, FileStatus] = field(default_factory=dict)
    pools: dict[str, PoolFacts] = field(default_factory=dict)
    playing: frozenset[str] = frozenset()  # user-share paths being played now
    unknown_users: frozenset[str] = frozenset()
    server_unknown: bool = False
    asleep: frozenset[str] = frozenset()  # array disks in standby now (emhttp's disks.ini)
    due_next: dict[tuple[str, str], int] = field(default_factory=dict)  # (user, show folder) -> learned due


@dataclass
class PlanItem:
    action: str  # cache | keep | move_back | skip
    path: str
    size: int = 0
    pool: str = ""
    reasons: list[Reason] = field(default_factory=list)
    why: str = ""
    title: str = ""
    priority: int = UNWANTED
    wanted: Optional[WantedFile] = None
    adopt: bool = False  # keep: already on the pool, not managed yet: take it into the registry
    release: bool = False  # move_back: it never came from the array; drop it and leave it to the mover

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.action, "path": self.path, "size": self.size}
        if self.reasons:
            doc["reasons"] = [r.to_json() for r in self.reasons]
        if self.why:
            doc["why"] = self.why
        if self.title:
            doc["title"] = self.title
        if self.wanted is not None:
            item = self.wanted.item
            doc.update(kind=item.kind, rating_key=item.rating_key, library=item.library, users=item.users)
        return doc


@dataclass
class Plan:
    items: list[PlanItem] = field(default_factory=list)

    def of(self, action: str) -> list[PlanItem]:
        return [i for i in self.items if i.action == action]

    @property
    def has_actions(self) -> bool:
        return any(i.action in (CACHE, MOVE_BACK) for i in self.items)

    def summary(self) -> dict[str, int]:
        out = {a: len(self.of(a)) for a in (CACHE, MOVE_BACK, KEEP, SKIP)}
        out["bytes_to_cache"] = sum(i.size for i in self.of(CACHE))
        out["bytes_to_move_back"] = sum(i.size for i in self.of(MOVE_BACK))
        return out


# ---------------------------------------------------------------- helpers


def _best(reasons: Iterable[Reason]) -> int:
    return min((r.priority for r in reasons), default=UNWANTED)


def _recency(reasons: Iterable[Reason]) -> float:
    return max((r.last_active or 0.0 for r in reasons), default=0.0)


def _rank(reasons: Iterable[Reason]) -> int:
    return min((r.rank for r in reasons), default=0)


def _show_folder(item: PlanItem) -> Optional[str]:
    """Episodes of one show share the show folder: SHARE/FIRST-DIR."""
    if item.wanted is None or item.wanted.item.kind != "episode":
        return None
    first = item.wanted.rel.split("/", 1)[0]
    return f"{item.wanted.share}/{first}"


def _merge_wanted(wanted: Iterable[WantedFile]) -> dict[str, tuple[WantedFile, list[Reason]]]:
    """One record per path; a file two items point at keeps every reason."""
    out: dict[str, tuple[WantedFile, list[Reason]]] = {}
    for w in wanted:
        if w.path in out:
            reasons = out[w.path][1]
            reasons.extend(r for r in w.item.reasons if r not in reasons)
        else:
            out[w.path] = (w, list(w.item.reasons))
    return out


@dataclass
class _Occupant:
    item: PlanItem
    cached: bool  # in the registry now
    fixed: bool  # counted before anything else (protected, or never evicted for space)
    cached_at: float
    waits: bool = False  # cached, its disk stays asleep this run: moved back to make room for a due file only
    due: bool = True  # a candidate due before the next run (may take the room of a file that waits)


# ---------------------------------------------------------------- the plan


ADD_ONLY = "live mode only adds; moving back waits for the scheduled run"
# Live mode reacts as each episode starts, so only the episode after the one playing is worth waking a disk
# for: a viewer who stops before it has cost nothing, and one who goes on is met by the next reaction.
LIVE_DUE = 1
# A watchlist is worked through from its top: its first few items may be picked before the next run.
WATCHLIST_DUE = 3


def plan(wanted: Iterable[WantedFile], registry: Registry, facts: Situation, settings: Settings,
         now: float, *, add_only: bool = False) -> Plan:
    """Decide what to cache, keep, move back and skip. Pure: reads only its arguments.

    add_only (live mode): everything cached stays, and only what fits in the room left is added, so a
    reaction to playback during the day never wakes a disk to move something back."""
    demand = _merge_wanted(wanted)
    result = Plan()
    occupants: list[_Occupant] = []
    sleeping = staying_asleep(demand, registry, facts, settings, LIVE_DUE if add_only else None)
    for entry in registry.entries.values():
        _plan_entry(entry, demand.get(entry.path), facts, settings, now, result, occupants,
                    ADD_ONLY if add_only else "", sleeping)
    for path in sorted(demand):
        if path not in registry:
            _plan_candidate(demand[path], facts, settings, now, result, occupants, sleeping)
    _allocate(occupants, result, facts, settings)
    order = {MOVE_BACK: 0, CACHE: 1, KEEP: 2, SKIP: 3}
    result.items.sort(key=lambda i: (order[i.action], i.priority if i.action == CACHE else 0, i.path))
    return result


MUST, SHARED = 2, 1  # how due a file is: wakes its disk on its own / only while the run writes to the array anyway


def due(wanted: WantedFile, reasons: Iterable[Reason], settings: Settings, facts: Situation) -> bool:
    """Will someone likely want this before the next run? See `urgency`."""
    return urgency(wanted, reasons, settings, facts) > 0


def urgency(wanted: WantedFile, reasons: Iterable[Reason], settings: Settings, facts: Situation,
            episodes: Optional[int] = None) -> int:
    """MUST: pinned, playing and On Deck items, the next episodes the viewer's pace reaches before the next run
    (`cache.due_episodes` while it is not known), a user's favourites (played again and again: one wake caches
    one for many plays; the disk a play woke is asleep again by the nightly run). SHARED: the top of a
    watchlist, one of which may be picked: worth waking its disk only when parity spins this run anyway (a
    copy renames on its disk, a write, so the first disk a run wakes also wakes parity: two spin-ups to spare
    one viewer's wait would add spin-ups). 0: not due. `episodes`: the next episodes due, whatever the pace
    (live mode: only the one after what is playing; see LIVE_DUE)."""
    show = f"{wanted.share}/{wanted.rel.split('/', 1)[0]}"
    level = 0
    for r in reasons:
        if r.source in ("pinned", "playing", "on_deck", "rewatch"):
            return MUST
        ahead = facts.due_next.get((r.user, show), settings.cache.due_episodes) if episodes is None else episodes
        if r.source == "next_episode" and r.rank < ahead:
            return MUST
        if r.source == "watchlist" and r.rank < WATCHLIST_DUE:
            level = SHARED
    return level


def staying_asleep(demand: dict[str, tuple[WantedFile, list[Reason]]], registry: Registry, facts: Situation,
                   settings: Settings, episodes: Optional[int] = None) -> frozenset[str]:
    """The disks in standby this run leaves asleep: those holding no file due before the next run that is
    still to be read (a SHARED one counts only when parity spins anyway: it is awake, or a MUST file wakes a
    disk). A disk woken for one due file serves every other wanted file on it in the same wake."""
    if not settings.cache.spin_aware or not facts.asleep:
        return frozenset()
    wake: dict[str, int] = {}
    for path, (want, reasons) in demand.items():
        file = facts.files.get(path)
        if (path not in registry and file is not None and file.disk in facts.asleep and file.on_array
                and not file.on_pool):
            level = urgency(want, reasons, settings, facts, episodes)
            wake[file.disk] = max(level, wake.get(file.disk, 0))
    parity_spins = any(level == MUST for level in wake.values()) or not any(
        d.startswith("parity") for d in facts.asleep)
    woken = {d for d, level in wake.items() if level == MUST or (level == SHARED and parity_spins)}
    return facts.asleep - woken


def _protection(entry: Entry, facts: Situation, file: Optional[FileStatus]) -> str:
    if entry.pinned:
        return "pinned"
    if entry.path in facts.playing:
        return "being played"
    if file is not None and file.open:
        return "open by another program"
    if file is not None and file.held:
        return file.held
    if file is not None and not file.mounted:
        return f"pool {entry.pool} is not mounted"
    if facts.server_unknown:
        return "Plex could not be read, so nothing is moved back this run"
    unknown = sorted(set(entry.users) & facts.unknown_users)
    if unknown:
        return f"the demand of {', '.join(unknown)} could not be read, so it stays"
    return ""


def _plan_entry(entry: Entry, want: Optional[tuple[WantedFile, list[Reason]]], facts: Situation,
                settings: Settings, now: float, result: Plan, occupants: list[_Occupant],
                kept_because: str = "", sleeping: frozenset[str] = frozenset()) -> None:
    reasons = want[1] if want else []
    item = PlanItem(KEEP, entry.path, entry.size, entry.pool, reasons, title=entry.title,
                    priority=_best(reasons), wanted=want[0] if want else None)
    protected = _protection(entry, facts, facts.files.get(entry.path)) or kept_because
    released = entry.disk is None and not entry.backup  # never came from the array
    if protected:
        item.why = protected
        occupants.append(_Occupant(item, True, True, entry.cached_at))
        return
    if not want:
        held = entry.cached_at + settings.cache.retention_hours * 3600 - now
        if held > 0:
            item.why = f"no one wants it now; kept {math.ceil(held / 3600)} h more (retention)"
        elif settings.cache.move_back_watched and not released and entry.disk in sleeping:
            # The move back renames (or writes) on the disk: wait until it is awake for another reason.
            item.why = f"no one wants it now; moving it back waits until {entry.disk} is awake"
        elif settings.cache.move_back_watched:
            item.action, item.release = MOVE_BACK, released
            item.why = ("watched or no longer wanted" +
                        ("; released to the mover (it never came from the array)" if released else ""))
            result.items.append(item)
            return
        else:
            item.why = "no one wants it now; move_back_watched is off"
    # Files that never came from the array never move back for space: releasing them frees no room now.
    fixed = settings.cache.eviction == "none" or released
    occupants.append(_Occupant(item, True, fixed, entry.cached_at, waits=entry.disk in sleeping))


def _plan_candidate(want: tuple[WantedFile, list[Reason]], facts: Situation, settings: Settings, now: float,
                    result: Plan, occupants: list[_Occupant], sleeping: frozenset[str] = frozenset()) -> None:
    wanted, reasons = want
    file = facts.files.get(wanted.path)
    item = PlanItem(CACHE, wanted.path, file.size if file else 0, file.pool if file else "", reasons,
                    title=wanted.item.title, priority=_best(reasons), wanted=wanted)
    why = _skip_reason(wanted.path, file, facts, settings)
    if why:
        item.action, item.why = SKIP, why
        result.items.append(item)
        return
    if file is not None and file.on_pool:
        item.action, item.adopt, item.why = KEEP, True, "already on the pool; now managed"
        occupants.append(_Occupant(item, False, True, now))
        return
    if file is not None and file.disk in sleeping:
        item.action = SKIP
        item.why = f"waits: {file.disk} is in standby and nothing on it is due before the next run"
        result.items.append(item)
        return
    occupants.append(_Occupant(item, False, False, now, due=due(wanted, reasons, settings, facts)))


def _skip_reason(path: str, file: Optional[FileStatus], facts: Situation, settings: Settings) -> str:
    if file is None or not (file.on_pool or file.on_array):
        return "file not found on the pool or any array disk"
    if not file.cacheable:
        return file.why or "not cacheable"
    if path in facts.playing:
        return "being played"
    if file.open:
        return "open by another program"
    if file.on_pool and file.on_array:
        return "on the pool and on the array at once; run `plexcache-r audit` to resolve the duplicate"
    if file.hardlinked and settings.cache.hardlinks == "skip" and not file.on_pool:
        return "hard-linked (e.g. still seeding); set cache.hardlinks to copy to cache it anyway"
    if file.pool not in facts.pools:
        return f"pool {file.pool or '(none)'} is not mounted"
    return ""


def floor_band(total: int) -> int:
    """Bytes above the floor that new caching leaves free (see BAND_FRACTION)."""
    return min(int(total * BAND_FRACTION), BAND_MAX)


def _budget(pool: PoolFacts, settings: Settings, occupied: int) -> tuple[float, float]:
    """(room for managed files above the floor, size limit) on one pool."""
    floor_size = parse_size(settings.cache.min_free)
    limit_size = parse_size(settings.cache.size_limit)
    floor = floor_size.resolve(pool.total) if floor_size else 0
    limit = limit_size.resolve(pool.total) if limit_size else None
    room = pool.free + occupied - floor
    return room, limit if limit is not None else math.inf


def _freshness(occ: _Occupant) -> float:
    """Age mode's measure of a file: when it last mattered, the later of when it was cached and when its
    users were last active on it. A file not cached yet counts from that activity only: counted as "cached
    now", a file moved back for space came straight back the next run and pushed another out, run after run."""
    interest = _recency(occ.item.reasons)
    return max(occ.cached_at, interest) if occ.cached else interest


def _sort_key(occ: _Occupant, mode: str) -> tuple[Any, ...]:
    item = occ.item
    by_priority = (item.priority, -_recency(item.reasons), _rank(item.reasons), item.path)
    if mode == "age":
        # Pinned titles first (a pin means it stays), then wanted files before files no one wants (a watched
        # file kept for retention never pushes out one about to be watched); then the freshest first; at the
        # same freshness what is cached stays first.
        return (item.priority != PRIORITY["pinned"], item.priority == UNWANTED, -_freshness(occ), not occ.cached,
                *by_priority)
    return by_priority


def _allocate(occupants: list[_Occupant], result: Plan, facts: Situation, settings: Settings) -> None:
    """Fit what may stay or arrive into each pool, best first; what does not fit goes back or is skipped."""
    freed_by_plan: dict[str, int] = {}
    for item in result.of(MOVE_BACK):
        if not item.release:
            freed_by_plan[item.pool] = freed_by_plan.get(item.pool, 0) + item.size
    pools = sorted({o.item.pool for o in occupants})
    for pool in pools:
        members = [o for o in occupants if o.item.pool == pool]
        facts_pool = facts.pools.get(pool)
        occupied = freed_by_plan.get(pool, 0) + sum(o.item.size for o in members if o.cached or o.item.adopt)
        room: float
        limit: float
        if facts_pool is None:
            room, limit, band = sum(o.item.size for o in members if o.cached), math.inf, 0
        else:
            room, limit = _budget(facts_pool, settings, occupied)
            band = floor_band(facts_pool.total)
        used = sum(o.item.size for o in members if o.fixed)
        # Moving a file back wakes its disk (and parity): the room of one whose disk sleeps is taken only by a
        # file due before the next run, never to bring in something that could wait as well.
        waiting = sum(o.item.size for o in members if o.waits and not o.fixed)
        blocked: set[str] = set()
        for occ in sorted((o for o in members if not o.fixed), key=lambda o: _sort_key(o, settings.cache.eviction)):
            show = _show_folder(occ.item)
            # what is cached may fill up to the floor; what arrives must leave the band above it free
            floor_room = room if occ.cached else room - band
            held = 0 if occ.due or occ.waits else waiting
            if occ.waits:
                waiting -= occ.item.size
            if not occ.cached and show is not None and show in blocked:
                occ.item.action, occ.item.why = SKIP, "an earlier episode of this show did not fit"
            elif used + held + occ.item.size <= min(floor_room, limit):
                used += occ.item.size
            else:
                _no_room(occ, floor_room <= limit)
                if show is not None and _could_come_back(occ, facts, settings):
                    blocked.add(show)
        result.items.extend(o.item for o in members)


def _could_come_back(occ: _Occupant, facts: Situation, settings: Settings) -> bool:
    """Would this file be cached again once it is on the array? Only such a file keeps later episodes of its
    show out (no gaps in a season): a hard-linked one is skipped from the array, so the next run would cache
    the later episodes it had kept out, and the plan would not be the same twice."""
    file = facts.files.get(occ.item.path)
    return not (occ.cached and file is not None and file.hardlinked and settings.cache.hardlinks == "skip")


def _no_room(occ: _Occupant, floor_bound: bool) -> None:
    what = "the free-space floor (cache.min_free)" if floor_bound else "the size limit (cache.size_limit)"
    if occ.cached:
        occ.item.action = MOVE_BACK
        occ.item.why = f"making room: keeping it would break {what}; higher-priority files come first"
    else:
        occ.item.action = SKIP
        near = "come too close to" if floor_bound else "break"
        occ.item.why = f"not enough room: caching it would {near} {what}"


def eviction_order(registry: Registry, settings: Settings) -> dict[str, int]:
    """Each managed file's place in the queue a shortage of room moves back (1: the first to go), per pool,
    from the reasons it was last wanted for. The order is _allocate's own admission order reversed, so it is
    the one a run uses. Files a shortage never moves back are not in it: pinned ones, those that never came
    from the array (they are released instead), and every file while cache.eviction is none."""
    if settings.cache.eviction == "none":
        return {}
    occupants = [_Occupant(PlanItem(KEEP, e.path, e.size, e.pool, list(e.reasons), priority=_best(e.reasons)),
                           True, False, e.cached_at)
                 for e in registry.entries.values() if not e.pinned and (e.disk is not None or e.backup)]
    order: dict[str, int] = {}
    for pool in sorted({o.item.pool for o in occupants}):
        admitted = sorted((o for o in occupants if o.item.pool == pool),
                          key=lambda o: _sort_key(o, settings.cache.eviction))
        order.update({o.item.path: rank for rank, o in enumerate(reversed(admitted), start=1)})
    return order
