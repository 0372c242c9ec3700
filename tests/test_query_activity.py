"""Recent activity (`status.activity`) in the Dashboard's terms: each event at the moment its file was
done, with the title, the users and each user's reasons once, from the registry."""

from __future__ import annotations

from plexcache.demand import Reason
from plexcache.query import activity
from plexcache.state import ActivityHistory, Entry, Registry

PATH = "/mnt/user/tv/Show/S01E03.mkv"


def registry() -> Registry:
    reasons = [Reason(user="alice", source="next_episode", detail="after S01E01"),
               Reason(user="alice", source="next_episode", detail="after S01E02"),
               Reason(user="alice", source="watchlist"), Reason(user="bob", source="next_episode")]
    return Registry({PATH: Entry(path=PATH, share="tv", rel="Show/S01E03.mkv", pool="cache", title="Show S01E03",
                                 users=["alice", "bob"], reasons=reasons)})


def test_each_users_reason_is_given_once_with_the_title() -> None:
    history = ActivityHistory()
    history.add("cached", PATH, 100.0, size=5)
    [item] = activity(history.events, registry())
    assert item["title"] == "Show S01E03" and item["users"] == ["alice", "bob"]
    assert item["reasons"] == [{"user": "alice", "source": "next_episode"}, {"user": "alice", "source": "watchlist"},
                               {"user": "bob", "source": "next_episode"}]
    assert item["message"].startswith("Cached Show S01E03")


def test_each_event_has_the_time_its_file_was_done_not_the_runs_start() -> None:
    history = ActivityHistory()
    history.add("cached", PATH, 100.0, size=5)          # a run's clock: its start
    history.add("moved_back", "/mnt/user/tv/gone.mkv", 100.0, size=5)
    items = activity(history.events, registry())
    assert all(i["at"] == 100.0 and i["done_at"] > 100.0 for i in items)
    assert items[0]["title"] == "" and items[0]["message"].startswith("Moved back to the array gone.mkv")


def test_events_recorded_before_done_at_existed_keep_their_time() -> None:
    [item] = activity([{"time": 50.0, "kind": "cached", "path": PATH}], registry())
    assert item["at"] == 50.0 and item["done_at"] is None
