"""Each viewer's pace: learned from how far the On Deck episode moves between runs, it sets how far ahead
to cache and which next episodes are due (no I/O but the state file)."""

from __future__ import annotations

from plexcache import pace
from plexcache.config import Settings
from plexcache.demand import DemandItem, Reason, WantedFile

DAY = 86400.0
T0 = 1_800_000_000.0


def ep(show: str, n: int, user: str, source: str, rank: int = 0) -> WantedFile:
    rel = f"{show}/Season 01/{show} - S01E{n:02d}.mkv"
    item = DemandItem(rating_key=f"{show}{n}", title=f"{show} {n}", kind="episode", library="TV",
                      plex_files=(f"/data/{rel}",), size=1, reasons=[Reason(user, source, T0, rank=rank)])
    return WantedFile(f"/mnt/user/tv/{rel}", "tv", rel, f"/data/{rel}", item)


def demand(show: str, at: int, user: str = "sam", after: int = 12) -> list[WantedFile]:
    """What discovery hands over when `user` is at episode `at`: it On Deck, then `after` next episodes."""
    return [ep(show, at, user, "on_deck")] + [ep(show, at + 1 + r, user, "next_episode", r) for r in range(after)]


def settings(**demand_keys) -> Settings:
    s = Settings()
    for key, value in demand_keys.items():
        setattr(s.demand, key, value)
    return s


def nexts(wanted: list[WantedFile], user: str = "sam") -> int:
    return sum(1 for w in wanted for r in w.item.reasons if r.user == user and r.source == "next_episode")


def learn(tracks, show: str, positions: list[int], user: str = "sam") -> None:
    for day, at in enumerate(positions):
        pace.observe(tracks, demand(show, at, user), T0 + day * DAY)


def test_without_history_the_fixed_count_holds():
    s = settings(next_episodes=12)
    wanted, looks = pace.plan_ahead({}, demand("Show", 1), s, T0)
    assert nexts(wanted) == pace.START_AHEAD
    assert looks[("sam", "tv/Show")] == pace.Lookahead(pace.START_AHEAD, s.cache.due_episodes, None)
    assert nexts(pace.plan_ahead({}, demand("Show", 1), settings(next_episodes=3), T0)[0]) == 3
    tracks: dict = {}
    learn(tracks, "Show", [1, 6, 11, 16])
    fixed = settings(pace=False, next_episodes=10)
    assert nexts(pace.plan_ahead(tracks, demand("Show", 16), fixed, T0 + 3 * DAY)[0]) == 10
    # half a day without progress is not a pace yet
    assert pace.lookahead(tracks[("sam", "tv/Show")], settings(), T0 + 0.5 * DAY).per_day is None


def test_a_binge_watcher_gets_more_ahead_and_more_due():
    tracks: dict = {}
    learn(tracks, "Show", [1, 6, 11, 16])  # five episodes a night, three days
    s = settings(next_episodes=12, pace_days=2.0)
    look = pace.lookahead(tracks[("sam", "tv/Show")], s, T0 + 3 * DAY)
    assert look.per_day == 5.0 and look.ahead == 10 and look.due == 5
    wanted, _ = pace.plan_ahead(tracks, demand("Show", 16), s, T0 + 3 * DAY)
    assert nexts(wanted) == 10


def test_a_slow_viewer_gets_fewer_and_the_cap_bounds_a_fast_one():
    tracks: dict = {}
    learn(tracks, "Slow", [1, 1, 2, 2, 2, 3, 3, 3, 4])  # three episodes in eight days
    learn(tracks, "Fast", [1, 11, 21, 31], user="kim")  # ten a night
    s = settings(next_episodes=12, pace_days=2.0)
    slow = pace.lookahead(tracks[("sam", "tv/Slow")], s, T0 + 8 * DAY)
    assert slow.ahead == 1 and slow.due == 1
    fast = pace.lookahead(tracks[("kim", "tv/Fast")], s, T0 + 3 * DAY)
    assert fast.ahead == 12 and fast.due == 10


def test_paces_are_per_user_and_show():
    tracks: dict = {}
    learn(tracks, "Show", [1, 6, 11, 16])
    learn(tracks, "Show", [1, 1, 2, 2], user="kim")
    s = settings(pace_days=2.0)
    both = demand("Show", 16) + demand("Show", 2, user="kim")
    wanted, looks = pace.plan_ahead(tracks, both, s, T0 + 3 * DAY)
    assert looks[("sam", "tv/Show")].ahead == 10 and looks[("kim", "tv/Show")].ahead == 1
    assert nexts(wanted, "sam") == 10 and nexts(wanted, "kim") == 1


def test_an_unmoved_queue_changes_nothing_to_save(tmp_path):
    s = settings()
    s.paths.state_dir = str(tmp_path)
    tracks: dict = {}
    assert pace.observe(tracks, demand("Show", 1), T0)
    pace.save(s, tracks)
    again = pace.load(s)
    assert not pace.observe(again, demand("Show", 1), T0 + DAY)  # still on the same episode
    assert pace.observe(again, demand("Show", 3), T0 + 2 * DAY)
    pace.save(s, again)
    assert pace.load(s)[("sam", "tv/Show")].watched == [(T0 + 2 * DAY, 2)]


def test_a_damaged_state_file_only_loses_the_history(tmp_path):
    s = settings()
    s.paths.state_dir = str(tmp_path)
    (tmp_path / pace.FILE_NAME).write_text("{not json")
    assert pace.load(s) == {}


def test_the_learned_figures_are_summarised_for_status(tmp_path):
    s = settings(next_episodes=12, pace_days=2.0)
    s.paths.state_dir = str(tmp_path)
    tracks: dict = {}
    learn(tracks, "Show", [1, 6, 11, 16])
    pace.observe(tracks, demand("Fresh", 1), T0 + 3 * DAY)  # first seen just now: no pace yet, not listed
    pace.save(s, tracks)
    assert pace.summary(s, T0 + 3 * DAY) == [
        {"user": "sam", "show": "tv/Show", "episodes_per_day": 5.0, "ahead": 10, "due": 5}]


def test_a_new_show_starts_at_the_viewers_pace_on_other_shows():
    """A binge watcher who finishes one show and starts another keeps their pace: the new show is not held to
    the fixed start count (its next episodes ran out the first evening) while its own history builds up."""
    tracks: dict = {}
    learn(tracks, "Old", [1, 6, 11, 16])  # five episodes a night for three days
    s = settings(next_episodes=12, pace_days=2.0)
    now = T0 + 3 * DAY
    wanted, looks = pace.plan_ahead(tracks, demand("Old", 16) + demand("New", 1), s, now)
    assert looks[("sam", "tv/New")] == pace.Lookahead(10, 5, None)
    assert nexts([w for w in wanted if w.rel.startswith("New/")]) == 10
    # another viewer's pace says nothing about this one: the start count holds for them
    _, looks = pace.plan_ahead(tracks, demand("New", 1, user="kim"), s, now)
    assert looks[("kim", "tv/New")] == pace.Lookahead(pace.START_AHEAD, s.cache.due_episodes, None)


def test_by_default_a_woken_disk_serves_three_nights_of_a_binge():
    """A disk woken for a viewer's due episodes is filled three nights ahead, so it sleeps the next two runs."""
    tracks: dict = {}
    learn(tracks, "Show", [1, 4, 7, 10])  # three episodes a night
    look = pace.lookahead(tracks[("sam", "tv/Show")], Settings(), T0 + 3 * DAY)
    assert look.per_day == 3.0 and look.due == 3 and look.ahead == 9


def test_plex_history_gives_a_pace_from_the_first_run():
    """Plex's own history (when the user last viewed each earlier episode) seeds a show seen for the first
    time: a viewer at four episodes a day for a week gets that pace at once, not the fixed count."""
    week = [T0 - d * DAY - h * 3600 for d in range(7) for h in range(4)]  # 4 a day over the last 7 days
    wanted = demand("Show", 40)
    viewed = {("sam", "Show40"): tuple(week)}
    tracks: dict = {}
    pace.observe(tracks, wanted, T0, viewed)
    look = pace.lookahead(tracks[("sam", "tv/Show")], settings(next_episodes=20), T0)
    assert look.per_day is not None and 3.9 <= look.per_day <= 4.1
    assert look.ahead == 12 and look.due == 4


def test_plex_history_outside_the_window_or_too_short_is_no_pace():
    """Views older than the window count for nothing, and one evening is not a pace (as for our own record)."""
    old = tuple(T0 - 30 * DAY - h * 3600 for h in range(10))
    evening = tuple(T0 - h * 3600 for h in range(6))
    for views in (old, evening):
        tracks: dict = {}
        pace.observe(tracks, demand("Show", 40), T0, {("sam", "Show40"): views})
        assert pace.lookahead(tracks[("sam", "tv/Show")], settings(), T0).per_day is None
    # and a track already learned keeps its own record: the history only seeds a new one
    tracks = {}
    learn(tracks, "Show", [1, 2, 3, 4])  # one a day
    pace.observe(tracks, demand("Show", 4), T0 + 3.5 * DAY, {("sam", "Show4"): tuple(T0 - h * 60 for h in range(50))})
    assert pace.lookahead(tracks[("sam", "tv/Show")], settings(), T0 + 3.5 * DAY).per_day == round(3 / 3.5, 2)
