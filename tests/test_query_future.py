"""Each cached file's future as `list --json` tells it: when and why it leaves, and its place in the queue a
shortage of room moves back, which must be the order the planner really uses."""

from __future__ import annotations

import time

import pytest

from plexcache.demand import Reason
from plexcache.planner import MOVE_BACK, eviction_order, plan
from plexcache.query import future
from plexcache.state import Registry
from test_planner import NOW, entry, episode, facts, settings, wanted


def crowd() -> tuple[list, Registry]:
    """Cached files wanted for every kind of reason, by users active at different times, cached at different
    times, and one nobody wants any more (kept for retention)."""
    wants = [wanted("Movie", "watchlist", kind="movie", rank=2, active=NOW - 900),
             wanted("Deck", "on_deck", user="bob", active=NOW - 50),
             wanted("Play", "playing", active=NOW - 10),
             episode("Show", 3, rank=1), episode("Show", 2, rank=0),
             wanted("Late", "watchlist", kind="movie", rank=0, active=NOW - 5000)]
    reg = Registry()
    for n, w in enumerate(wants):
        reg.add(entry(w.path, cached_at=NOW - 3600 * (n + 1), reasons=list(w.item.reasons)))
    reg.add(entry("/mnt/user/tv/Gone/gone.mkv", cached_at=NOW - 3600, users=()))
    return wants, reg


@pytest.mark.parametrize("mode", ["priority", "age"])
def test_the_first_to_go_are_those_the_planner_moves_back_when_room_runs_short(mode: str) -> None:
    wants, reg = crowd()
    ranks = eviction_order(reg, settings(eviction=mode))
    assert sorted(ranks.values()) == list(range(1, len(reg) + 1))
    paths = list(reg.entries)
    for short in range(1, len(reg)):
        s = settings(eviction=mode, size_limit=f"{len(reg) - short}GB", retention_hours=12)
        moved = {i.path for i in plan(wants, reg, facts(*paths, free=0), s, NOW).of(MOVE_BACK)}
        assert moved == {p for p, rank in ranks.items() if rank <= short}, (mode, short)


def test_pinned_files_and_files_from_no_array_disk_are_never_in_the_queue() -> None:
    _, reg = crowd()
    pinned = next(iter(reg.entries.values()))
    pinned.pinned = True
    reg.add(entry("/mnt/user/tv/New/new.mkv", disk=None, backup=False))
    ranks = eviction_order(reg, settings())
    assert pinned.path not in ranks and "/mnt/user/tv/New/new.mkv" not in ranks
    assert eviction_order(reg, settings(eviction="none")) == {}


def test_the_future_in_words() -> None:
    s = settings(retention_hours=12)
    show = entry("/mnt/user/tv/Show/Show - S02E04.mkv", cached_at=NOW - 86400, title="Show - S02E04 - Four",
                 reasons=[Reason("alice", "next_episode", NOW, "1st episode after S02E03")])
    assert future(show, 1, s, NOW) == {"leaves": "when alice finishes S02E04", "leaves_at": None,
                                       "eviction_rank": 1, "if_space_short": "first to go if space runs short"}
    fresh = entry("/mnt/user/tv/Old/old.mkv", cached_at=NOW - 3600, users=())
    doc = future(fresh, 3, s, NOW)
    end = NOW + 11 * 3600
    assert doc["leaves"] == f"retention ends {time.strftime('%a %H:%M', time.localtime(end))}"
    assert doc["leaves_at"] == end and doc["if_space_short"] == "number 3 to go if space runs short"
    assert future(entry(fresh.path, cached_at=NOW - 13 * 3600, users=()), 1, s, NOW)["leaves"].startswith(
        "at the next run")
    pinned = entry(fresh.path, pinned=True)
    assert future(pinned, None, s, NOW) == {"leaves": "stays while pinned", "leaves_at": None,
                                            "eviction_rank": None, "if_space_short": ""}
    both = entry("/mnt/user/movies/M/M.mkv", title="M", cached_at=NOW - 3600,
                 reasons=[Reason("bob", "watchlist"), Reason("alice", "watchlist")])
    assert future(both, 2, s, NOW)["leaves"].startswith("when alice and bob watch M or it leaves the watchlist, "
                                                        "and not before")


def test_a_title_pin_goes_only_when_the_pinned_titles_outgrow_the_pool() -> None:
    """A file wanted for a pinned title is still in the queue (a pinned show larger than the pool cannot all
    stay), but only behind everything else: its words must not read as if it were about to go."""
    pinned_title = entry("/mnt/user/tv/Bear/Bear - S02E01.mkv", title="The Bear - S02E01 - One",
                         reasons=[Reason("(pinned)", "pinned", NOW, "pinned: The Bear - Season 2")])
    doc = future(pinned_title, 25, settings(), NOW)
    assert doc["leaves"] == "stays while pinned" and doc["eviction_rank"] == 25
    assert doc["if_space_short"] == "goes only if the pinned titles outgrow the pool"


@pytest.mark.parametrize("mode", ["priority", "age"])
def test_pinned_titles_are_the_last_to_go_in_either_mode(mode: str) -> None:
    _, reg = crowd()
    pin = entry("/mnt/user/tv/Bear/Bear - S02E01.mkv", cached_at=NOW - 90 * 86400,   # cached long ago
                reasons=[Reason("(pinned)", "pinned", NOW - 90 * 86400, "pinned: The Bear - Season 2")])
    reg.add(pin)
    ranks = eviction_order(reg, settings(eviction=mode))
    assert ranks[pin.path] == len(reg)
