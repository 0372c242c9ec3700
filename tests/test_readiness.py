"""The set-up checklist: pure judgement of settings and cheap facts, `setup --json` against the simulator, and
`run` refusing (exit 2, naming the missing steps) until a run is safe while a dry run and `plan` stay allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from plexcache import config as cfg
from plexcache.readiness import SetupFacts, checklist, refusal
from plexcache.unraid import classify

SHARES = {"tv": classify("tv", "yes", "cache"), "movies": classify("movies", "yes", "cache"),
          "backups": classify("backups", "no", "")}
TUNED: dict[str, Any] = {"problems": []}
UNTUNED: dict[str, Any] = {"problems": ["CA Mover Tuning is not installed: install it"]}
LIBRARIES = [{"id": "1", "title": "Movies", "type": "movie", "locations": ["/data/movies"]},
             {"id": "2", "title": "TV Shows", "type": "show", "locations": ["/data/media/tv/", "/data/anime"]}]
PLEX = {"ok": True, "server": {"name": "tower"}, "owner": "admin", "libraries": 2}


def settings(**plex: Any) -> cfg.Settings:
    return cfg.from_mapping({"plex": plex})


def steps(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in doc["steps"]}


def test_fresh_install_lists_every_step_and_is_not_ready() -> None:
    doc = checklist(settings(), SetupFacts(shares=SHARES, mover_tuning=UNTUNED))
    by_id = steps(doc)
    assert list(by_id) == ["plex", "libraries", "mappings", "users", "mover_tuning", "first_run"]
    assert [by_id[k]["state"] for k in ("plex", "mappings", "mover_tuning", "first_run")] == ["todo"] * 4
    assert by_id["libraries"]["state"] == by_id["users"]["state"] == "done"  # the defaults are a choice
    assert not doc["ready"] and not doc["complete"]
    assert doc["missing"] == ["Sign in to Plex", "Map Plex's folders to your shares",
                              "Keep the mover away from cached files"]
    assert "Still to do: Sign in to Plex; Map Plex's folders" in refusal(doc)


def test_ready_once_signed_in_mapped_to_a_cacheable_share_and_mover_kept_away() -> None:
    s = settings(token="t", path_mappings=[{"plex": "/data/tv", "share": "/mnt/user/tv"}])
    doc = checklist(s, SetupFacts(shares=SHARES, mover_tuning=TUNED))
    assert doc["ready"] and doc["missing"] == [] and not doc["complete"]  # the first run is still to come
    doc = checklist(s, SetupFacts(shares=SHARES, mover_tuning=TUNED, ran_before=True))
    assert doc["complete"]


@pytest.mark.parametrize("share, why", [("/mnt/user/nope", "no share named nope"),
                                        ("/mnt/user/backups", "array only"),
                                        ("/srv/tv", "not under /mnt/user")])
def test_a_mapping_that_leads_nowhere_does_not_count(share: str, why: str) -> None:
    s = settings(token="t", path_mappings=[{"plex": "/data/tv", "share": share}])
    doc = checklist(s, SetupFacts(shares=SHARES, mover_tuning=TUNED))
    assert steps(doc)["mappings"]["state"] == "todo" and why in steps(doc)["mappings"]["detail"]
    assert not doc["ready"]


def test_mover_tuning_can_be_waived_by_the_setting() -> None:
    s = cfg.from_mapping({"plex": {"token": "t", "path_mappings": [{"plex": "/data/tv", "share": "/mnt/user/tv"}]},
                          "schedule": {"mover_tuning_waived": True}})
    doc = checklist(s, SetupFacts(shares=SHARES, mover_tuning=UNTUNED))
    assert doc["ready"] and "waived" in steps(doc)["mover_tuning"]["detail"]


def test_a_step_that_breaks_after_the_first_run_is_broken_not_todo() -> None:
    s = settings(token="t", path_mappings=[{"plex": "/data/tv", "share": "/mnt/user/tv"}])
    doc = checklist(s, SetupFacts(shares=SHARES, mover_tuning=UNTUNED, ran_before=True,
                                  plex_error="HTTP 401: token rejected or revoked"))
    by_id = steps(doc)
    assert by_id["plex"]["state"] == by_id["mover_tuning"]["state"] == "broken"
    assert "revoked" in by_id["plex"]["detail"] and not doc["ready"]


def test_mappings_are_suggested_from_plex_folders_and_checked_against_the_shares() -> None:
    doc = checklist(settings(token="t"), SetupFacts(shares=SHARES, mover_tuning=TUNED, plex=PLEX,
                                                    libraries=LIBRARIES))
    assert [(m["plex"], m["share"]) for m in doc["suggested_mappings"]] == [
        ("/data/movies", "/mnt/user/movies"), ("/data/media/tv", "/mnt/user/tv")]
    assert doc["unmatched_folders"] == ["/data/anime"]   # no share of that name: never guessed
    assert steps(doc)["plex"]["detail"] == "signed in to tower as admin"
    covered = settings(token="t", path_mappings=[{"plex": "/data", "share": "/mnt/user/media"}])
    assert checklist(covered, SetupFacts(shares=SHARES, libraries=LIBRARIES))["suggested_mappings"] == []


def test_only_the_chosen_libraries_are_suggested_and_a_vanished_one_is_named() -> None:
    doc = checklist(settings(token="t", libraries=["Movies", "Old"]),
                    SetupFacts(shares=SHARES, mover_tuning=TUNED, plex=PLEX, libraries=LIBRARIES))
    assert [m["plex"] for m in doc["suggested_mappings"]] == ["/data/movies"]
    assert steps(doc)["libraries"]["state"] == "todo" and "Old" in steps(doc)["libraries"]["detail"]


def test_nobody_counting_is_a_step_to_do() -> None:
    off = {"on_deck": False, "watchlist": False}
    s = cfg.from_mapping({"users": {"owner": off, "home": off, "friends": off}})
    assert steps(checklist(s, SetupFacts()))["users"]["state"] == "todo"


# --- the command line ------------------------------------------------------------------------------


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PLEXCACHE_CONFIG"}
    env["PLEXCACHE_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "plexcache", *args], capture_output=True, text=True, env=env,
                          timeout=900)  # a guard against a hang, not a measure


@pytest.fixture
def fresh(tmp_path: Path, sandbox: Any, sim: Any) -> Path:
    """A fresh install on the sandbox server: its paths, the simulator's address, no token, no mapping."""
    data = sandbox.settings_dict(sim.url, "")
    data["plex"]["path_mappings"] = []
    path = tmp_path / "settings.yaml"
    cfg.save(cfg.from_mapping(data), path)
    return path


def test_run_refuses_on_a_fresh_install_and_names_what_is_missing(fresh: Path, sandbox: Any) -> None:
    result = cli(fresh, "--json", "run")
    assert result.returncode == 2, result.stderr
    error = json.loads(result.stdout)["error"]
    assert "Sign in to Plex" in error and "Map Plex's folders" in error and "Keep the mover away" in error
    assert not (sandbox.state_dir / "last_run.json").exists() and not list(sandbox.state_dir.iterdir())


def test_setup_suggests_mappings_and_run_starts_once_every_safe_step_is_done(fresh: Path, sandbox: Any,
                                                                            sim: Any) -> None:
    data = cfg.to_mapping(cfg.load(fresh))
    data["plex"]["token"] = sim.owner_token
    cfg.save(cfg.from_mapping(data), fresh)
    doc = json.loads(cli(fresh, "--json", "setup", "--check-plex").stdout)
    assert steps(doc)["plex"]["state"] == "done" and doc["suggested_mappings"]
    expected = {(m["plex"], m["share"]) for m in sandbox.settings_dict(sim.url, "")["plex"]["path_mappings"]}
    assert {(m["plex"], m["share"]) for m in doc["suggested_mappings"]} == expected   # as the server is set up
    data["plex"]["path_mappings"] = [{"plex": m["plex"], "share": m["share"]} for m in doc["suggested_mappings"]]
    cfg.save(cfg.from_mapping(data), fresh)
    assert cli(fresh, "run", "--dry-run").returncode == 0          # a dry run is always allowed
    refused = cli(fresh, "run")
    assert refused.returncode == 2 and "Still to do: Keep the mover away from cached files (" in refused.stderr
    sandbox.set_mover_tuning()
    done = cli(fresh, "--json", "run")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["cache"] > 0
    assert json.loads(cli(fresh, "--json", "setup").stdout)["complete"]


def test_live_refuses_like_run_until_a_run_is_safe(fresh: Path, sandbox: Any) -> None:
    data = cfg.to_mapping(cfg.load(fresh))
    data["live"]["enabled"] = True
    cfg.save(cfg.from_mapping(data), fresh)
    run, live = cli(fresh, "run"), cli(fresh, "live")
    assert (run.returncode, live.returncode) == (2, 2), live.stderr
    assert live.stderr == run.stderr and "Still to do: Sign in to Plex" in live.stderr
    assert not (sandbox.state_dir / "last_run.json").exists()
