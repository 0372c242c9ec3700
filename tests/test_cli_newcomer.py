"""The terminal as a newcomer meets it: options where people type them, mistakes caught, reasons shown.

Every test runs the installed entry point (`python -m plexcache`) in a subprocess, as a user's shell would,
against a sandbox Unraid tree that one real cycle on the simulated household has filled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plexcache import config as cfg
from plexcache import engine
from plexcache.sim.sandbox import build_tree
from plexcache.sim.scenario import load
from plexcache.sim.server import SimServer
from realtime import seconds

pytestmark = pytest.mark.slow   # real cycles, many subprocesses or many examples

SCENARIO = Path(__file__).resolve().parents[1] / "source/python/plexcache/sim/scenarios/demo.yaml"


def cli(*args: str, config=None, stdin: str = "", env_extra=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXCACHE")}
    if config is not None:
        env["PLEXCACHE_CONFIG"] = str(config)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "plexcache", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=seconds(120))


@pytest.fixture(scope="module")
def household(tmp_path_factory):
    """One real cycle on the demo household; yields (settings path, sandbox, simulator, redirect env)."""
    root = tmp_path_factory.mktemp("household")
    world = load(SCENARIO)
    sandbox = build_tree(root / "root", world)
    server = SimServer(world)
    url = server.start()
    previous = os.environ.get("PLEXCACHE_PLEX_REDIRECT")
    os.environ["PLEXCACHE_PLEX_REDIRECT"] = url
    try:
        document = sandbox.settings_dict(url, server.owner_token)
        document["cache"] = {"size_limit": "40GB", "min_free": "0"}
        path = root / "settings.yaml"
        cfg.save(cfg.from_mapping(document), path)
        report = engine.run_cycle(cfg.load(path))
        assert report.exit_code == 0 and report.cached > 0
        yield path, sandbox, server, {"PLEXCACHE_PLEX_REDIRECT": url}
    finally:
        if previous is None:
            os.environ.pop("PLEXCACHE_PLEX_REDIRECT", None)
        else:
            os.environ["PLEXCACHE_PLEX_REDIRECT"] = previous
        server.stop()


# --- 1. global options before or after the command --------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["list"], ["audit"], ["plan"]])
def test_json_works_after_the_command(household, command):
    path, _sandbox, _server, env = household
    after = cli(*command, "--json", config=path, env_extra=env)
    assert after.returncode in (0, 1), after.stderr
    document = json.loads(after.stdout)
    assert document["ok"] is True


def test_config_after_the_command_is_the_same_as_before(household):
    path, _sandbox, _server, _env = household
    before = json.loads(cli("--json", "--config", str(path), "status").stdout)
    after = json.loads(cli("status", "--config", str(path), "--json").stdout)
    equals = json.loads(cli("status", f"--config={path}", "--json").stdout)
    assert before["counts"] == after["counts"] == equals["counts"] and before["counts"]["files"] > 0


def test_json_on_a_command_without_machine_output_says_so(household):
    path, _sandbox, _server, _env = household
    result = cli("live", "--json", config=path)
    assert result.returncode == 2
    assert "no machine output" in result.stderr and "Traceback" not in result.stderr


def test_a_value_that_looks_like_an_option_after_double_dash_is_left_alone(household):
    path, _sandbox, _server, _env = household
    result = cli("evict", "--", "--json", config=path)
    assert result.returncode == 2
    assert "--json is not a file plexcache-r manages" in result.stderr


# --- 2. a mistyped settings path -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_missing_settings_file_is_a_usage_error_naming_it(tmp_path, how):
    missing = tmp_path / "setings.yaml"
    if how == "option":
        result = cli("--config", str(missing), "status")
    else:
        result = cli("status", env_extra={"PLEXCACHE_CONFIG": str(missing)})
    assert result.returncode == 2
    assert str(missing) in result.stderr and "does not exist" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "log").exists()


def test_config_set_may_create_the_file_it_is_given(tmp_path):
    target = tmp_path / "new.yaml"
    result = cli("--config", str(target), "config", "set", stdin="cache: {workers: 3}\n")
    assert result.returncode == 0, result.stderr
    assert cfg.load(target).cache.workers == 3


# --- 3. pinning a path that does not exist ---------------------------------------------------------------


def test_pin_of_a_missing_file_is_refused_with_the_closest_names(household):
    path, sandbox, _server, _env = household
    wrong = sandbox.user / "movies" / "Arrival (2016)" / "Arival (2016).mkv"
    result = cli("pin", str(wrong), config=path)
    assert result.returncode == 2, result.stdout
    assert "does not exist" in result.stderr and "did you mean" in result.stderr
    assert "Arrival (2016).mkv" in result.stderr
    registry = json.loads((sandbox.state_dir / "registry.json").read_text())
    assert str(wrong) not in registry["pins"]


# --- 4. reasons shown, headers, status like the Dashboard ------------------------------------------------


def test_human_plan_shows_why_every_skipped_item_is_left_out(household):
    path, _sandbox, _server, env = household
    document = json.loads(cli("--json", "plan", config=path, env_extra=env).stdout)
    skipped = [a for a in document["actions"] if a["action"] == "skip"]
    assert skipped, "the demo household has a playing episode and a share the mover keeps on the pool"
    text = cli("plan", config=path, env_extra=env).stdout
    for action in skipped:
        assert action["why"] in text


def test_reasons_are_not_repeated(household):
    path, _sandbox, _server, env = household
    text = cli("list", config=path, env_extra=env).stdout
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(";") if p.strip()]
        assert len(parts) == len(set(parts)), line


def test_list_has_column_headers(household):
    path, _sandbox, _server, _env = household
    first = cli("list", config=path).stdout.splitlines()[0]
    for header in ("SIZE", "CACHED", "FILE"):
        assert header in first


def test_status_shows_the_limit_the_next_run_and_live_mode(household):
    path, _sandbox, _server, _env = household
    text = cli("status", config=path).stdout
    assert "limit 40.0 GB" in text or "40.0 GB limit" in text
    assert "Next run:" in text and "Live mode: off" in text


def test_evict_says_when_a_file_will_come_back(household):
    path, _sandbox, _server, env = household
    listed = json.loads(cli("--json", "list", config=path).stdout)["files"]
    wanted = next(f for f in listed if f["reasons"])
    result = cli("evict", wanted["path"], config=path, env_extra=env)
    assert result.returncode == 0, result.stderr
    assert "still wanted" in result.stdout and "next run" in result.stdout
    # one summary, not the message and then the same counts again
    assert result.stdout.count("moved back") == 1, result.stdout


# --- 5. no doubled words, one error line ---------------------------------------------------------------


def test_unexpected_error_with_verbose_does_not_ask_for_verbose(tmp_path):
    settings = tmp_path / "settings.yaml"
    cfg.save(cfg.from_mapping({"paths": {"state_dir": str(tmp_path / "state"), "log_dir": str(tmp_path / "log"),
                                          "volatile_dir": str(tmp_path / "v")}}), settings)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "registry.json").write_text('{"schema": 1, "files": {"/mnt/user/x": 7}}')
    plain = cli("list", config=settings)
    verbose = cli("-v", "list", config=settings)
    assert plain.returncode != 0 and "-v" in plain.stderr
    assert verbose.returncode == plain.returncode and "run with -v" not in verbose.stderr


def test_json_mode_writes_one_error_line(tmp_path):
    result = cli("--json", "status", "--sort", "size")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert json.loads(result.stdout)["ok"] is False
