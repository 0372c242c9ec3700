"""Run ids and the run history: one id in last_run.json, the activity events, the log lines and the history;
the history bounded; plays counted by day and since the latest run, once each even when a kill leaves them
waiting after the history took them in; the daily pool figure carried over."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plexcache import config, engine, runs
from plexcache.media.crash import CRASH_ENV
from plexcache.state import StateStore
from realtime import seconds
from test_engine import ARRIVAL, logfile, scenario, user  # noqa: F401  (fixtures: the engine's world)


def history(settings):
    return runs.document(settings)


def test_one_run_id_ties_last_run_events_log_lines_and_history(env, logfile):  # noqa: F811
    s, _sb, sim, now = env
    engine.run_cycle(s, now=now)
    sim.set_watched("admin", "Arrival (2016)")
    engine.evict(s, [user(s, "movies/Dune (2021)/Dune (2021).mkv")], now=now + 30)
    store = StateStore(s)
    last = store.load_last_run()
    doc = history(s)
    evict_run, first_run = doc["runs"]
    assert (first_run["kind"], evict_run["kind"]) == ("run", "evict")
    assert last["run_id"] == evict_run["id"] != first_run["id"]
    assert re.fullmatch(r"\d{8}-\d{6}-\d+(\.\d+)?", first_run["id"])
    events = store.load_history().events
    assert {e["run"] for e in events if e["kind"] == "cached"} == {first_run["id"]}
    assert {e["run"] for e in events if e["kind"] == "moved_back"} == {evict_run["id"]}
    assert first_run["cached"] == 5 and first_run["exit_code"] == 0 and first_run["bytes_cached"] > 0
    assert first_run["managed_bytes"] == sum(e.size for e in store.load_registry().entries.values()) + \
        evict_run["bytes_moved_back"]
    lines = logfile.read_text().splitlines()
    tagged = [line for line in lines if f"[{first_run['id']}]" in line]
    assert any("run finished in" in line for line in tagged)
    assert any(f"cached: {user(s, ARRIVAL)}" in line for line in tagged)
    assert all(f"[{evict_run['id']}]" in line for line in lines if "evict finished in" in line)
    activity = engine.status(s)["activity"]
    assert {a["run"] for a in activity if a["kind"] == "cached"} == {first_run["id"]}


def test_recover_and_a_dry_run_are_runs_too(env):
    s, _sb, _sim, now = env
    engine.run_cycle(s, now=now, dry_run=True)
    # a dry run leaves no pool figure: nothing was moved
    assert all(d["managed_bytes"] is None for d in history(s)["days"])
    engine.recover_only(s)
    recover, dry = history(s)["runs"]
    assert dry["dry_run"] and dry["kind"] == "run" and dry.get("managed_bytes") is None
    assert recover["kind"] == "recover" and recover["message"].startswith("nothing to recover")
    assert history(s)["days"][-1]["managed_bytes"] == 0


def test_the_history_is_bounded_by_count_and_age(env):
    s = env[0]
    now = time.time()
    for i in range(runs.KEEP_RUNS + 20):
        runs.record(s, {"id": f"r{i}", "kind": "run", "started_at": now - 60 + i * 0.01, "exit_code": 0})
    runs.record(s, {"id": "old", "kind": "run", "started_at": now - (runs.KEEP_DAYS + 1) * 86400})
    doc = runs.load(s)
    assert len(doc["runs"]) == runs.KEEP_RUNS and doc["runs"][-1]["id"] == f"r{runs.KEEP_RUNS + 19}"
    assert "old" not in {r["id"] for r in doc["runs"]}
    text = (StateStore(s).dir / "runs.json").read_text()
    assert json.loads(text)["schema"] == 1


def test_plays_count_by_day_and_since_the_latest_run_and_pool_space_carries_over(env):
    s = env[0]
    now = time.time()
    runs.record(s, {"id": "a", "kind": "run", "started_at": now - 3 * 86400, "finished_at": now - 3 * 86400,
                    "managed_bytes": 1000})
    runs.count_play(s, True, when=now - 2 * 86400)
    runs.record(s, {"id": "b", "kind": "live", "started_at": now - 3600, "finished_at": now - 3600,
                    "managed_bytes": 3000})
    runs.count_play(s, True, when=now)
    runs.count_play(s, False, when=now)
    doc = runs.document(s, days=5, now=now)
    days = doc["days"]
    assert len(days) == 5 and days[-1]["day"] == time.strftime("%Y-%m-%d", time.localtime(now))
    assert [d["managed_bytes"] for d in days] == [None, 1000, 1000, 1000, 3000]
    assert (days[-1]["plays_pool"], days[-1]["plays_array"]) == (1, 1)
    assert days[2]["plays_pool"] == 1
    b, a = doc["runs"]
    assert (b["plays"], b["plays_from_pool"]) == (2, 1) and (a["plays"], a["plays_from_pool"]) == (1, 1)


def test_a_health_fix_is_a_run_with_its_own_id(env):
    from pathlib import Path

    from plexcache import audit

    s, _sb, _sim, now = env
    engine.run_cycle(s, now=now)
    Path(s.paths.exclusion_list).unlink()       # the mover would move the cached files back
    audit.audit(s, fixes=["unprotected"])
    fix, first = history(s)["runs"][:2]
    assert fix["kind"] == "audit-fix" and fix["id"] != first["id"] and fix["exit_code"] == 0
    assert fix["fixed"] >= 1 and fix["message"].startswith("fixed ")


def test_a_play_waits_in_the_volatile_dir_until_the_next_run_writes_the_flash(env):
    """Live mode sees every play, but the state dir is on the flash, written at most once per run: a play is
    counted in the volatile dir, shown by `history` at once, and folded into runs.json by the next run (or
    when live mode stops)."""
    s = env[0]
    now = time.time()
    runs.record(s, {"id": "a", "kind": "run", "started_at": now - 60, "finished_at": now - 50,
                    "managed_bytes": 1000})
    on_flash = Path(s.paths.state_dir) / "runs.json"
    before = on_flash.read_bytes()
    runs.count_play(s, True, when=now)
    runs.count_play(s, False, when=now)
    assert on_flash.read_bytes() == before
    shown = runs.document(s, days=1, now=now)
    assert (shown["days"][0]["plays_pool"], shown["days"][0]["plays_array"]) == (1, 1)
    assert (shown["runs"][0]["plays"], shown["runs"][0]["plays_from_pool"]) == (2, 1)
    runs.record(s, {"id": "b", "kind": "run", "started_at": now + 10, "finished_at": now + 20})
    kept = runs.load(s)
    assert [(r["id"], r["plays"]) for r in kept["runs"]] == [("a", 2), ("b", 0)]
    again = runs.document(s, days=1, now=now + 30)          # folded once, not counted twice
    assert (again["days"][0]["plays_pool"], again["days"][0]["plays_array"]) == (1, 1)
    runs.count_play(s, True, when=now + 40)
    runs.flush(s)                                            # live mode stopping
    assert runs.load(s)["runs"][-1]["plays_from_pool"] == 1
    assert runs.document(s, days=1, now=now + 50)["days"][0]["plays_pool"] == 2


def _history_settings(tmp_path: Path) -> tuple[config.Settings, Path]:
    s = config.Settings()
    s.paths.state_dir = str(tmp_path / "state")
    s.paths.volatile_dir = str(tmp_path / "volatile")
    for d in (s.paths.state_dir, s.paths.volatile_dir):
        Path(d).mkdir(parents=True)
    path = tmp_path / "settings.yaml"
    config.save(s, path)
    return s, path


def _plays(settings) -> tuple[int, int]:
    run = runs.load(settings)["runs"][-1]
    return run["plays"], run["plays_from_pool"]


def test_plays_folded_once_even_when_their_file_outlives_the_fold(tmp_path):
    """A kill after runs.json is written and before plays.json goes leaves plays.json behind: the next
    fold must not count those plays again (nor may `history` show them twice meanwhile)."""
    s, _ = _history_settings(tmp_path)
    now = time.time()
    runs.record(s, {"id": "a", "kind": "run", "started_at": now - 60, "finished_at": now - 50})
    runs.count_play(s, True, when=now)
    runs.count_play(s, False, when=now)
    pending = Path(s.paths.volatile_dir) / "plays.json"
    left = pending.read_bytes()
    runs.flush(s)
    assert _plays(s) == (2, 1) and not pending.exists()
    pending.write_bytes(left)                        # as a kill before its removal leaves it
    assert runs.document(s, days=1, now=now)["runs"][0]["plays"] == 2
    runs.count_play(s, True, when=now + 1)           # and a play seen since
    runs.flush(s)
    assert _plays(s) == (3, 2) and not pending.exists()
    assert runs.document(s, days=1, now=now)["days"][0]["plays_pool"] == 2


@pytest.mark.parametrize("then", ["flush", "record"])
def test_a_kill_between_writing_the_history_and_removing_the_plays_counts_each_play_once(tmp_path, then):
    s, path = _history_settings(tmp_path)
    now = time.time()
    runs.record(s, {"id": "a", "kind": "run", "started_at": now - 60, "finished_at": now - 50})
    runs.count_play(s, True, when=now)
    on_flash = Path(s.paths.state_dir) / "runs.json"
    before = on_flash.read_bytes()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PLEXCACHE")}
    code = "import sys; from pathlib import Path; from plexcache import config, runs; " \
           "runs.flush(config.load(Path(sys.argv[1])))"
    proc = subprocess.run([sys.executable, "-c", code, str(path)], env={**base, CRASH_ENV: "runs.folded"},
                          capture_output=True, text=True, timeout=seconds(60))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert on_flash.read_bytes() != before and (Path(s.paths.volatile_dir) / "plays.json").exists()
    assert _plays(s) == (1, 1)
    if then == "flush":
        runs.flush(s)
        assert _plays(s) == (1, 1)
    else:
        runs.record(s, {"id": "b", "kind": "run", "started_at": now - 70, "finished_at": now - 65})
        assert [r["plays"] for r in runs.load(s)["runs"]] == [1, 0]
    assert runs.document(s, days=1, now=now)["days"][0]["plays_pool"] == 1


def test_a_damaged_history_is_set_aside_and_never_stops_a_run(env):
    """runs.json and the waiting plays only keep figures: unreadable, they go aside as NAME.unreadable and the
    figures start afresh; the run itself goes on and says nothing false about the media."""
    s, _sb, _sim, now = env
    state = StateStore(s).dir
    state.mkdir(parents=True, exist_ok=True)
    (state / "runs.json").write_text("{broken")
    pending = Path(s.paths.volatile_dir) / runs.PENDING_PLAYS_NAME
    pending.parent.mkdir(parents=True, exist_ok=True)
    pending.write_text("[1, 2")
    report = engine.run_cycle(s, now=now)
    assert report.exit_code == 0 and report.cached > 0
    assert (state / "runs.json.unreadable").read_text() == "{broken"
    assert [r["kind"] for r in history(s)["runs"]] == ["run"]
