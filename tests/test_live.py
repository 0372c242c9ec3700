"""Live mode against the simulator: playback starting triggers a real cycle; failures back off.

Most tests drive `tick()` with a fake clock and polling only (`notifications: false`), so what they check
does not depend on thread timing. The notification tests at the end use the real websocket channel
(plexapi's alert listener against the simulator's /:/websockets/notifications) and wait on real events.
"""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest

from plexcache import config as cfg
from plexcache import engine, live, runs
from plexcache.errors import EnvironmentRefuses, LockHeld, UsageError
from plexcache.live import LiveWatcher, Playback, pool_view, session_changes
from realtime import seconds, wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings_for(sandbox, sim, **live_settings) -> cfg.Settings:
    document = sandbox.settings_dict(sim.url, sim.owner_token)
    document["live"] = {"enabled": True, "poll_seconds": 10, "notifications": False, **live_settings}
    return cfg.from_mapping(document)


@pytest.fixture
def listening(sim, sandbox):
    """A watcher with the notification channel open (fake clock), closed after the test."""
    watcher, clock, calls = recording(settings_for(sandbox, sim, notifications=True, recently_added=True))
    watcher.tick()  # the first poll reads the sessions and opens the channel
    assert wait_for(lambda: watcher.notifications.open), "the notification channel did not open"
    step(watcher, clock, live.SETTLE_SECONDS)
    step(watcher, clock, 10)  # the poll planned before the channel opened; the next is a safety poll
    calls.clear()
    yield watcher, clock, calls
    watcher.close()


def recording(settings: cfg.Settings) -> tuple[LiveWatcher, Clock, list]:
    """A watcher on a fake clock whose cycles are only recorded (their options, e.g. add_only)."""
    clock, calls = Clock(), []
    return LiveWatcher(settings, clock=clock, cycle=lambda s, **kw: calls.append(kw)), clock, calls


def step(watcher: LiveWatcher, clock: Clock, seconds: float) -> None:
    clock.now += seconds
    watcher.tick()


def test_session_changes_are_pure_and_named():
    a = Playback("alice", "1", "episode", "Show S01E01")
    b = Playback("alice", "2", "episode", "Show S01E02")
    assert session_changes({}, {"s": a}) == ["alice started Show S01E01, which is not on the pool"]
    assert session_changes({"s": a}, {"s": b}) == ["alice moved on to Show S01E02, which is not on the pool"]
    assert session_changes({"s": a}, {}) == []
    assert session_changes({"s": a}, {"s": a}) == []


def test_playback_served_from_the_pool_acts_only_when_it_is_the_last_cached_episode():
    """A hit leaves the array asleep; only when nothing after it is cached is the disk worth waking now."""
    a = Playback("alice", "1", "episode", "Show S01E01", "Show", (1, 1))
    b = Playback("alice", "2", "episode", "Show S01E02", "Show", (1, 2))
    entries = [SimpleNamespace(rating_key=str(n), title=f"Show - S01E0{n} - Part {n}", kind="episode")
               for n in (1, 2)]
    pool = pool_view(entries)
    assert session_changes({}, {"s": a}, pool) == []
    assert session_changes({"s": a}, {"s": b}, pool) == ["alice moved on to Show S01E02, the last of Show on the pool"]
    movie = Playback("bob", "9", "movie", "Heat")
    assert session_changes({}, {"m": movie}, pool_view([SimpleNamespace(rating_key="9", title="Heat",
                                                                          kind="movie")])) == []


@pytest.mark.slow
def test_play_start_caches_the_next_episodes(sim, sandbox):
    settings = settings_for(sandbox, sim)
    engine.run_cycle(settings)  # the nightly run has happened
    before = {f["path"] for f in engine.list_files(settings)["files"]}
    clock = Clock()
    watcher = LiveWatcher(settings, clock=clock)
    watcher.tick()  # first poll: learns what already plays and acts on it once
    step(watcher, clock, live.SETTLE_SECONDS)
    cycles = watcher.state.cycles

    sim.add_session("bob", "Severance S01E01")
    step(watcher, clock, 10)  # next poll sees the new session
    assert watcher.state.pending == ["bob started Severance S01E01, which is not on the pool"]
    assert watcher.state.cycles == cycles  # settles before acting
    step(watcher, clock, live.SETTLE_SECONDS)
    assert watcher.state.cycles == cycles + 1 and watcher.state.pending == []
    assert [r["kind"] for r in runs.load(settings)["runs"]][-1] == "live"   # the run history tells them apart

    after = {f["path"] for f in engine.list_files(settings)["files"]}
    new = sorted(p.rsplit("/", 1)[-1] for p in after - before)
    assert watcher.status()["plays"] == watcher.state.plays >= 2  # alice's session and bob's
    assert watcher.state.plays_from_pool < watcher.state.plays, "bob's S01E01 was not on the pool"
    assert any("S01E02" in name for name in new), new
    assert not any("S01E01" in name and "Severance" in name for name in new), "the playing file is never moved"


@pytest.mark.slow
def test_a_play_from_the_pool_is_counted_as_a_spin_up_avoided(sim, sandbox):
    settings = settings_for(sandbox, sim)
    engine.run_cycle(settings)
    cached = engine.list_files(settings)["files"]
    movie = next(f for f in cached if f["kind"] == "movie")
    clock = Clock()
    watcher = LiveWatcher(settings, clock=clock, cycle=lambda s, **kw: None)
    watcher.tick()
    before = (watcher.state.plays, watcher.state.plays_from_pool)
    today = runs.document(settings, days=1)["days"][0]
    sim.add_session("bob", movie["title"])
    step(watcher, clock, 10)
    assert (watcher.state.plays, watcher.state.plays_from_pool) == (before[0] + 1, before[1] + 1)
    # the history keeps it: the day's plays from the pool, and the latest run's plays since
    after = runs.document(settings, days=1)
    assert after["days"][0]["plays_pool"] == today["plays_pool"] + 1
    assert after["runs"][0]["plays_from_pool"] >= 1


def test_quiet_polls_cost_one_request_and_trigger_nothing(sim, sandbox):
    watcher, clock, calls = recording(settings_for(sandbox, sim))
    watcher.tick()
    step(watcher, clock, live.SETTLE_SECONDS)
    calls.clear()
    sim.reset_log()
    for _ in range(5):
        step(watcher, clock, 10)
    assert calls == []
    assert sim.count("/status/sessions") == 5 and sim.count() == 5
    sim.add_session("bob", "Severance S01E01")
    step(watcher, clock, 10)
    step(watcher, clock, live.SETTLE_SECONDS)
    assert calls == [{"add_only": True}], "live cycles only add: moving back waits for the scheduled run"


@pytest.mark.sim_errors_ok
def test_plex_down_backs_off_and_recovers(sim, sandbox):
    watcher, clock, _calls = recording(settings_for(sandbox, sim))
    watcher.tick()
    sim.inject("/status/sessions", 500, times=3)
    waits = []
    for _ in range(3):
        clock.now = watcher.state.next_poll
        waits.append(watcher.tick())
    assert watcher.state.failures == 3
    assert waits == sorted(waits) and waits[-1] > waits[0] >= 10, "waits grow, never a busy loop"
    sim.add_session("bob", "Severance S01E01")
    clock.now = watcher.state.next_poll
    watcher.tick()
    assert watcher.state.failures == 0 and watcher.state.pending


def test_mover_running_defers_the_cycle(sim, sandbox):
    settings = settings_for(sandbox, sim)
    clock = Clock()
    outcomes = [EnvironmentRefuses("the mover is running"), LockHeld("busy"), None]

    def cycle(_settings, **_kw):
        outcome = outcomes.pop(0)
        if outcome:
            raise outcome
        return None

    watcher = LiveWatcher(settings, clock=clock, cycle=cycle)
    watcher.tick()
    sim.add_session("bob", "Severance S01E01")
    step(watcher, clock, 10)
    step(watcher, clock, live.SETTLE_SECONDS)  # refused: backs off, keeps the wish
    assert watcher.state.pending and watcher.state.failures == 1
    for _ in range(100):
        if not outcomes:
            break
        clock.now += watcher.tick()
    assert outcomes == [] and watcher.state.pending == [] and watcher.state.cycles == 1


def test_serve_refuses_when_disabled(sandbox, sim):
    settings = settings_for(sandbox, sim, enabled=False)
    with pytest.raises(UsageError, match="live mode is off"):
        live.serve(settings)


def test_serve_runs_once_and_stops_cleanly(sandbox, sim):
    settings = settings_for(sandbox, sim, poll_seconds=2)
    stop = threading.Event()
    thread = threading.Thread(target=live.serve, args=(settings,), kwargs={"stop": stop})
    thread.start()
    try:
        assert wait_for(lambda: live.running(settings) and live.state_path(settings).exists())
        with pytest.raises(LockHeld):
            live.serve(settings, stop=threading.Event())
    finally:
        stop.set()
        thread.join(seconds(10))
    assert not thread.is_alive() and not live.running(settings)
    assert not live.state_path(settings).exists()


@pytest.mark.slow
def test_new_episodes_of_a_show_being_watched_are_cached_as_they_arrive(sim, sandbox):
    """alice is watching Slow Horses (season 1 has 6 episodes); season 2 lands during the day."""
    settings = settings_for(sandbox, sim, recently_added=True)
    # The next episodes as counted, not as alice's pace trims them (she watched the season a week ago, a slow
    # pace by Plex's history): what is tested is that a new episode is seen as it lands.
    settings.demand.pace = False
    engine.run_cycle(settings)
    clock = Clock()
    watcher = LiveWatcher(settings, clock=clock)
    watcher.tick()
    step(watcher, clock, live.SETTLE_SECONDS)
    cycles = watcher.state.cycles
    sim.advance("1m")
    sim.add_episodes("Slow Horses", 2, 2)
    sandbox.add_missing_media()
    sandbox.refresh_user_view()
    clock.now += live.RECENT_EVERY_SECONDS
    watcher.tick()
    assert watcher.state.pending == ["new media was added to Plex"]
    step(watcher, clock, live.SETTLE_SECONDS)
    assert watcher.state.cycles == cycles + 1
    cached = [f["path"] for f in engine.list_files(settings)["files"]]
    assert any("Slow Horses" in p and "S02E01" in p for p in cached), cached


# ---------------------------------------------------------------- Plex's notification channel


def test_with_notifications_a_play_is_seen_at_once_and_quiet_costs_nothing(sim, listening):
    watcher, clock, calls = listening
    assert watcher.status()["channel"] == "notifications"
    sim.reset_log()
    for _ in range(10):  # 100 quiet seconds: no poll at all (the safety poll is minutes apart)
        step(watcher, clock, 10)
    assert sim.count("/status/sessions") == 0 and calls == []
    sim.add_session("bob", "Severance S01E01")
    assert wait_for(watcher.wake.is_set), "the play did not wake the watcher"
    watcher.tick()  # at the same instant: no poll interval has passed
    assert sim.count("/status/sessions") == 1
    assert watcher.state.pending == ["bob started Severance S01E01, which is not on the pool"]
    step(watcher, clock, live.SETTLE_SECONDS)
    assert calls == [{"add_only": True}]


def test_progress_of_a_known_playback_does_not_poll_again(sim, listening):
    watcher, clock, _calls = listening
    sim.add_session("bob", "Severance S01E01")
    assert wait_for(watcher.wake.is_set)
    watcher.tick()
    watcher.wake.clear()
    seen = watcher.notifications.received
    sim.reset_log()
    sim.set_offset("bob", "Severance S01E01", 20 * 60_000)  # PMS reports progress every few seconds
    assert wait_for(lambda: watcher.notifications.received > seen)
    step(watcher, clock, 1)
    assert sim.count("/status/sessions") == 0 and not watcher.wake.is_set()


def test_new_media_announced_by_plex_is_checked_at_once(sim, listening):
    watcher, _clock, _calls = listening
    watcher.wake.clear()
    sim.advance("1m")
    sim.add_episodes("Slow Horses", 2, 2)
    assert wait_for(watcher.wake.is_set)
    sim.reset_log()
    watcher.tick()  # well before the five-minute recently-added check would come round
    assert sim.count("/library/recentlyAdded") == 1
    assert watcher.state.pending == ["new media was added to Plex"]


@pytest.mark.sim_errors_ok
def test_a_dropped_channel_falls_back_to_polling_and_reconnects_with_backoff(sim, listening):
    watcher, clock, _calls = listening
    sim.inject("/:/websockets/notifications", 503)  # Plex restarting: the channel cannot reopen yet
    sim.drop_notifications()
    assert wait_for(lambda: not watcher.notifications.open)
    assert watcher.status()["channel"] == "polling"
    sim.reset_log()
    for _ in range(6):  # 60 s: polling at live.poll_seconds again, and two refused reconnects
        step(watcher, clock, 10)
        wait_for(lambda: watcher.notifications.listener is None or not watcher.notifications.listener.is_alive())
    assert sim.count("/status/sessions") == 6
    refused = sim.count("/:/websockets/notifications", status=503)
    assert 1 <= refused <= 3, "reconnects back off instead of hammering Plex"
    assert watcher.notifications.failures >= 2
    sim.clear_faults()
    clock.now = watcher.notifications.retry_at
    watcher.state.next_poll = clock.now
    watcher.tick()  # the poll succeeds and the channel is tried again
    assert wait_for(lambda: watcher.notifications.open)
    step(watcher, clock, 10)
    assert watcher.notifications.failures == 0 and watcher.poll_interval == live.SAFETY_POLL_SECONDS


@pytest.mark.slow
@pytest.mark.small_media  # the cycles copy what alice and bob play: gigabytes of holes read back otherwise
def test_serve_reacts_to_a_notification_long_before_any_poll(sim, sandbox):
    """The real loop, with a poll interval of an hour: only the notification can explain the cycle."""
    settings = settings_for(sandbox, sim, notifications=True, poll_seconds=3600)
    stop = threading.Event()
    thread = threading.Thread(target=live.serve, args=(settings,), kwargs={"stop": stop})
    thread.start()

    def state() -> dict:
        try:
            return json.loads(live.state_path(settings).read_text())
        except (OSError, ValueError):
            return {}

    try:
        # Up, and done with what already played when it started (alice's session: a cycle of its own).
        assert wait_for(lambda: sim.notifications.open_channels == 1 and state().get("pending") == [])
        cycles = state()["cycles"]
        sim.add_session("bob", "Severance S01E01")
        assert wait_for(lambda: state().get("cycles", 0) > cycles), state()
        assert "bob started Severance S01E01" in state()["last_cycle"]["why"]
    finally:
        stop.set()
        thread.join(seconds(10))
    assert not thread.is_alive()
    assert wait_for(lambda: sim.notifications.open_channels == 0)  # the server sees the close a moment later
