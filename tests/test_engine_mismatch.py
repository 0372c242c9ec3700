"""A pool copy that no longer matches what was cached: the good original is never deleted on a guess.

The backup goes only when Plex lists the new pool copy with its size (an upgrade Sonarr/Radarr imported and
Plex rescanned) or the user chose "keep the new file" in the audit; until then both stay, the file stays on
the pool, the run warns (log and notification) and `audit` offers the two choices.
"""

from __future__ import annotations

import logging
import os

import pytest
import yaml

from plexcache import audit, engine
from plexcache.sim.scenario import from_dict
from plexcache.state import StateStore
from test_engine import DUNE, E04, WORLD, on_disk, on_pool, registry, run, user

BIG = 300 * 1024 * 1024
TRUNCATED = 100 * 1024 * 1024


@pytest.fixture
def scenario():
    world = yaml.safe_load(WORLD)
    dune = next(m for m in world["libraries"][0]["movies"] if m["title"] == "Dune")
    dune["size"] = "300M"  # sparse in the sandbox: the copy reads zeros, the disk stays empty
    return from_dict(world, source="test_engine_mismatch")


def _truncate_pool_copy(sb) -> None:
    os.truncate(on_pool(sb, DUNE), TRUNCATED)  # anything can do this: a failed import, another tool, a bad disk


def _mismatches(s) -> list[dict]:
    return [f for f in audit.audit(s)["findings"] if f["kind"] == "mismatch" and f["path"] == user(s, DUNE)]


def test_a_pool_copy_truncated_in_place_keeps_both_copies_and_holds_the_file(env, caplog):
    s, sb, _sim, now = env
    run(s, now)
    assert on_disk(sb, "disk2", DUNE + ".plexcached").stat().st_size == BIG
    _truncate_pool_copy(sb)
    with caplog.at_level(logging.WARNING, logger="plexcache.engine"):
        report = run(s, now + 60)
    assert any(user(s, DUNE) in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    held = [w for w in report.warnings if user(s, DUNE) in w]
    assert held and str(TRUNCATED) in held[0] and str(BIG) in held[0], report.warnings
    warning_calls = [c for c in sb.notifications() if "warning" in c]
    assert warning_calls and any(user(s, DUNE) in " ".join(c) for c in warning_calls), sb.notifications()
    found = _mismatches(s)
    assert found and found[0]["choices"] == ["keep-new", "keep-original"], found

    report = engine.evict(s, [user(s, DUNE)], now=now + 120)
    assert report.moved_back == 0 and any(user(s, DUNE) in w for w in report.warnings), report.to_json()
    assert on_disk(sb, "disk2", DUNE + ".plexcached").stat().st_size == BIG  # the good original is still there
    assert on_pool(sb, DUNE).stat().st_size == TRUNCATED
    assert not on_disk(sb, "disk2", DUNE).exists()  # the damaged copy never reached the array's live name
    assert user(s, DUNE) in registry(s)
    assert _mismatches(s), "the audit still shows it until someone chooses"


def test_restore_the_original_puts_the_backup_back_and_then_drops_the_pool_copy(env):
    s, sb, _sim, now = env
    run(s, now)
    _truncate_pool_copy(sb)
    run(s, now + 60)
    doc = audit.audit(s, fixes=["keep-original"])
    assert any(o["fix"] == "keep-original" and o["result"] == "ok" for o in doc["fixes"]), doc["fixes"]
    assert on_disk(sb, "disk2", DUNE).stat().st_size == BIG
    assert not on_disk(sb, "disk2", DUNE + ".plexcached").exists()
    assert not on_pool(sb, DUNE).exists()
    assert user(s, DUNE) not in registry(s)
    assert not _mismatches(s)


def test_keep_the_new_file_retires_the_backup_when_the_file_moves_back(env):
    s, sb, _sim, now = env
    run(s, now)
    _truncate_pool_copy(sb)
    run(s, now + 60)
    doc = audit.audit(s, fixes=["keep-new"])
    assert any(o["fix"] == "keep-new" and o["result"] == "ok" for o in doc["fixes"]), doc["fixes"]
    assert not _mismatches(s)
    report = engine.evict(s, [user(s, DUNE)], now=now + 120)
    assert report.moved_back == 1, report.to_json()
    assert on_disk(sb, "disk2", DUNE).stat().st_size == TRUNCATED
    assert not on_disk(sb, "disk2", DUNE + ".plexcached").exists()


def test_an_upgrade_plex_lists_with_its_new_size_retires_the_old_backup(env, scenario):
    s, sb, sim, now = env
    run(s, now)
    newer = b"new release " * 40_000
    on_pool(sb, E04).write_bytes(newer)  # Sonarr replaced it in place; Plex rescanned it
    part = next(p for i in scenario.items.values() for p in i.parts() if p.file == "/data/" + E04)
    part.size = len(newer)
    sim.world._reindex()
    report = run(s, now + 60)
    assert not [w for w in report.warnings if user(s, E04) in w], report.warnings
    assert registry(s).get(user(s, E04)).size == len(newer)
    report = engine.evict(s, [user(s, E04)], now=now + 120)
    assert report.moved_back == 1, report.failures
    assert on_disk(sb, "disk2", E04).read_bytes() == newer
    assert not on_disk(sb, "disk2", E04 + ".plexcached").exists()
    events = StateStore(s).load_history().events
    assert any(e["kind"] == "changed" and e["path"] == user(s, E04) for e in events)


def test_an_in_place_change_plex_does_not_list_is_held(env):
    s, sb, _sim, now = env
    run(s, now)
    on_pool(sb, E04).write_bytes(b"new release " * 40_000)  # Plex still lists the old size
    report = run(s, now + 60)
    assert any(user(s, E04) in w for w in report.warnings), report.warnings
    assert engine.evict(s, [user(s, E04)], now=now + 120).moved_back == 0
    assert on_disk(sb, "disk2", E04 + ".plexcached").is_file() and not on_disk(sb, "disk2", E04).exists()


def test_a_partial_pool_copy_beside_its_backup_is_never_adopted(env):
    """PlexCache-R's W1 state: a partial copy at the pool's live name, the good original as its backup."""
    s, sb, sim, now = env
    run(s, now)
    store = StateStore(s)
    reg = store.load_registry()
    reg.remove(user(s, DUNE))  # unknown to the registry, as after an import or a run killed before saving
    store.save_registry(reg)
    _truncate_pool_copy(sb)
    report = run(s, now + 60)
    assert user(s, DUNE) not in registry(s), "a partial copy was adopted as cached"
    assert "up to date" not in report.message
    assert any(user(s, DUNE) in w for w in report.warnings), report.warnings
    sim.set_watched("alice", "Dune (2021)")
    run(s, now + 120)
    assert not on_disk(sb, "disk2", DUNE).exists()  # the partial never reaches the array's live name
    assert on_disk(sb, "disk2", DUNE + ".plexcached").stat().st_size == BIG
    assert _mismatches(s)
