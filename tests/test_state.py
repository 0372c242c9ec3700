"""Registry, activity history and last run: round trips, bounds, and writes only when changed."""

from __future__ import annotations

import json

import pytest

from plexcache.config import Settings
from plexcache.demand import Reason
from plexcache.errors import UsageError
from plexcache.exclusions import build_lines, write
from plexcache.state import ActivityHistory, Entry, Registry, StateStore


@pytest.fixture
def settings(tmp_path):
    s = Settings()
    s.paths.state_dir = str(tmp_path / "state")
    s.paths.pool_root = "/mnt"
    s.paths.user_root = "/mnt/user"
    s.paths.exclusion_list = str(tmp_path / "exclude.txt")
    s.paths.manual_exclusions = str(tmp_path / "manual.txt")
    return s


def entry(rel: str = "Show/S01/e1.mkv", sidecars=(), **kw) -> Entry:
    return Entry(path=f"/mnt/user/tv/{rel}", share="tv", rel=rel, pool="cache", disk="disk1", size=10,
                 mtime=1.5, cached_at=100.0, users=["alice"], reasons=[Reason("alice", "on_deck", 5.0, "On Deck")],
                 title="Show - S01E01", library="TV", kind="episode", sidecars=list(sidecars), backup=True,
                 rating_key="7",
                 recorded={f"/mnt/user/tv/{rel}": {"size": 10, "mtime_ns": 1_500_000_000, "blake2b": None}}, **kw)


def test_registry_round_trips_and_carries_schema(settings):
    store = StateStore(settings)
    reg = Registry({}, pins=["/mnt/user/tv/pinned.mkv"])
    reg.add(entry())
    assert store.save_registry(reg)
    doc = json.loads(store.registry_path.read_text())
    assert doc["schema"] == 1 and doc["pins"] == ["/mnt/user/tv/pinned.mkv"]
    back = store.load_registry()
    assert back.to_document() == reg.to_document()
    assert back.get("/mnt/user/tv/Show/S01/e1.mkv").reasons[0] == Reason("alice", "on_deck", 5.0, "On Deck")


def test_registry_is_written_only_when_changed(settings):
    store = StateStore(settings)
    reg = Registry()
    reg.add(entry())
    assert store.save_registry(reg)
    assert not store.save_registry(store.load_registry())
    reg.get("/mnt/user/tv/Show/S01/e1.mkv").pinned = True
    assert store.save_registry(reg)


def test_adding_a_pinned_path_marks_the_entry(settings):
    reg = Registry(pins=["/mnt/user/tv/Show/S01/e1.mkv"])
    reg.add(entry())
    assert reg.get("/mnt/user/tv/Show/S01/e1.mkv").pinned


def test_missing_files_give_empty_state_and_foreign_schema_is_refused(settings):
    store = StateStore(settings)
    assert len(store.load_registry()) == 0 and store.load_history().events == []
    assert store.load_last_run() is None
    store.registry_path.parent.mkdir(parents=True)
    store.registry_path.write_text('{"schema": 99, "files": {}}')
    with pytest.raises(UsageError, match="schema"):
        store.load_registry()


def test_history_is_bounded_newest_last(settings):
    history = ActivityHistory(limit=5)
    for i in range(12):
        history.add("cached", f"/p/{i}", when=float(i), size=i)
    assert [e["path"] for e in history.events] == [f"/p/{i}" for i in range(7, 12)]
    store = StateStore(settings)
    store.save_history(history)
    last = store.load_history().events[-1]
    assert last.pop("done_at") > 11.0, "when the file was done, by the wall clock"
    assert last == {"time": 11.0, "kind": "cached", "path": "/p/11", "size": 11}


def test_last_run_round_trip(settings):
    store = StateStore(settings)
    assert store.save_last_run({"exit_code": 0, "message": "ok"})
    assert not store.save_last_run({"exit_code": 0, "message": "ok"})
    assert store.load_last_run() == {"exit_code": 0, "message": "ok"}


def test_exclusion_list_pool_side_paths_manual_first_and_rewritten_only_on_change(settings, tmp_path):
    reg = Registry()
    e = entry(sidecars=["/mnt/user/tv/Show/S01/e1.en.srt"])
    reg.add(e)
    (tmp_path / "manual.txt").write_text("/mnt/cache/keep/this/\r\n# comment\nrelative/ignored\n")
    assert build_lines(settings, reg) == ["/mnt/cache/keep/this", "/mnt/cache/tv/Show/S01/e1.en.srt",
                                          "/mnt/cache/tv/Show/S01/e1.mkv"]
    assert write(settings, reg)
    assert (tmp_path / "exclude.txt").read_text().endswith("e1.mkv\n")
    assert not write(settings, reg)
    reg.remove(e.path)
    assert write(settings, reg)
    assert (tmp_path / "exclude.txt").read_text() == "/mnt/cache/keep/this\n"


def test_an_entry_changed_in_place_is_still_written(tmp_path):
    """The store skips unchanged writes by comparing with what it read; in-place edits must not fool it."""
    from plexcache.config import Settings
    from plexcache.state import Entry, Registry, StateStore

    settings = Settings()
    settings.paths.state_dir = str(tmp_path)
    store = StateStore(settings)
    registry = Registry()
    registry.add(Entry(path="/mnt/user/tv/a.mkv", share="tv", rel="a.mkv", pool="cache", users=["alice"]))
    store.save_registry(registry)
    loaded = StateStore(settings)
    again = loaded.load_registry()
    again.entries["/mnt/user/tv/a.mkv"].users.append("bob")
    assert loaded.save_registry(again) is True
    assert StateStore(settings).load_registry().entries["/mnt/user/tv/a.mkv"].users == ["alice", "bob"]
