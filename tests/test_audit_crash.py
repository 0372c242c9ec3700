"""A crash (SIGKILL at a mover step, PLEXCACHE_CRASH_AT) during an operation or during an audit fix leaves a
journal record; the audit reports it as interrupted, and recovery repairs it with nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from plexcache import engine
from plexcache.media.crash import CRASH_ENV
from realtime import seconds
from test_audit_support import EP1, EP2, HEAT, World, kinds


def cli(world: World, *args: str, crash: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXCACHE")}
    env["PLEXCACHE_CONFIG"] = str(world.settings_path)
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run([sys.executable, "-m", "plexcache", *args], capture_output=True, text=True, env=env,
                          timeout=seconds(120))


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path / "root")
    w.cache(EP1)
    return w


CACHE_SNIPPET = """
import sys
from plexcache.media.journal import Journal
from plexcache.media.mover import Mover
from plexcache.media.ops import CacheOp
Mover(Journal(sys.argv[1])).cache(CacheOp(sys.argv[2], sys.argv[3], key=sys.argv[4]))
"""


def crash_a_cache(world: World, step: str) -> None:
    env = {**os.environ, CRASH_ENV: step}
    proc = subprocess.run([sys.executable, "-c", CACHE_SNIPPET, str(world.journal().directory),
                           str(world.array(EP2)), str(world.pool(EP2)), world.user(EP2)], env=env, timeout=seconds(60))
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("step", ["cache.copied", "cache.placed"])
def test_interrupted_cache_is_found_and_rolled_back(world, step):
    before = world.snapshot()
    crash_a_cache(world, step)
    doc = world.audit()
    assert [f["kind"] for f in doc["findings"]] == ["interrupted"]  # the files in flux are not judged
    interrupted = next(f for f in doc["findings"] if f["kind"] == "interrupted")
    assert interrupted["fix"] == "recover" and str(world.array(EP2)) in interrupted["paths"]
    assert world.audit(cheap=True)["summary"]["interrupted"] == 1

    fixed = world.audit("recover")
    assert fixed["findings"] == [] and world.journal().is_empty()
    assert world.snapshot() == before
    assert fixed["history"][-1]["fix"] == "recover"


def test_interrupted_cache_past_its_commit_is_finished_and_registered(world):
    crash_a_cache(world, "cache.committed")
    world.audit("recover")
    assert world.journal().is_empty()
    assert world.pool(EP2).exists() and world.backup(EP2).exists() and not world.array(EP2, "disk2").exists()
    assert world.user(EP2) in world.registry()  # the engine's recovery registered it
    assert world.audit()["findings"] == []


@pytest.mark.parametrize("step", ["restore.journaled", "restore.renamed", "restore.committed", "restore.done"])
def test_crash_during_an_orphan_restore_fix_is_recovered(world, step):
    heat = world.array(HEAT)
    content = heat.read_bytes()
    os.rename(heat, str(heat) + ".plexcached")
    proc = cli(world, "audit", "--fix", "restore", crash=step)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    assert (heat.exists() or Path(str(heat) + ".plexcached").exists())  # never both gone
    found = {k for k, _ in kinds(world.audit())}
    assert found <= {"interrupted", "orphaned"}
    rec = cli(world, "--json", "audit", "--fix", "all-safe")
    assert rec.returncode == 0, rec.stderr
    assert json.loads(rec.stdout)["findings"] == []
    assert world.journal().is_empty()
    assert heat.read_bytes() == content and not Path(str(heat) + ".plexcached").exists()


@pytest.mark.parametrize("step", ["restore.renamed", "restore.committed"])
def test_crash_during_a_stale_entry_restore_is_recovered_and_unregistered(world, step):
    os.unlink(world.pool(EP1).with_suffix(".en.srt"))
    os.unlink(world.pool(EP1))
    proc = cli(world, "audit", "--fix", "restore", crash=step)
    assert proc.returncode == -signal.SIGKILL
    rec = cli(world, "audit", "--fix", "all-safe")
    assert rec.returncode == 0, rec.stderr
    assert world.audit()["findings"] == []
    assert world.array(EP1).exists() and not world.backup(EP1).exists()
    assert world.user(EP1) not in world.registry()


def test_cli_audit_json_carries_findings_and_history(world):
    os.rename(world.array(HEAT), str(world.array(HEAT)) + ".plexcached")
    proc = cli(world, "--json", "audit")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["ok"] and "history" in doc
    assert doc["findings"][0]["kind"] == "orphaned" and doc["findings"][0]["sizes"][0] > 0
    text = cli(world, "audit").stdout
    assert "orphaned" in text and "--fix restore" in text


@pytest.mark.parametrize("step", ["restore.committed", "restore.done"])
def test_a_kill_as_a_subtitles_lone_backup_is_put_back_leaves_the_next_run_nothing_to_warn_about(world, step):
    """The subtitle's pool copy went, its video stays cached: the restore fix puts the subtitle's backup back
    and it leaves the video's entry. Killed before the registry is saved, the next run's recovery takes it out
    of the video's entry (not a "subtitle left the pool" event as if something else had moved it)."""
    srt = world.user(EP1)[: -len(".mkv")] + ".en.srt"
    os.unlink(world.pool(EP1).with_suffix(".en.srt"))
    assert ("stale", srt) in kinds(world.audit())
    proc = cli(world, "audit", "--fix", "restore", crash=step)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    cycle = engine.Cycle(world.settings, action="run")
    cycle.recover()
    cycle.reconcile([])
    cycle.save()
    assert cycle.report.warnings == [] and not [e for e in cycle.books.history.events if e["kind"] == "dropped"]
    assert srt not in world.registry().get(world.user(EP1)).sidecars
    assert world.array(EP1).with_suffix(".en.srt").exists() and world.user(EP1) in world.registry()
    assert world.audit()["findings"] == []
