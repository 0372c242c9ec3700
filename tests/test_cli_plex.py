"""`plex test|libraries|users|login` as the settings page calls them: subprocess CLI against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plexcache import config as cfg
from realtime import seconds


@pytest.fixture
def settings_file(tmp_path, sandbox, sim):
    path = tmp_path / "settings.yaml"
    cfg.save(cfg.from_mapping(sandbox.settings_dict(sim.url, sim.owner_token)), path)
    return path


def cli(settings_file, *args):
    env = dict(os.environ, PLEXCACHE_CONFIG=str(settings_file))
    result = subprocess.run([sys.executable, "-m", "plexcache", "--json", *args], capture_output=True, text=True,
                            env=env, timeout=seconds(60))
    return result.returncode, json.loads(result.stdout), result.stderr


def test_plex_test_names_server_and_owner(settings_file, sim):
    code, document, _ = cli(settings_file, "plex", "test")
    assert code == 0
    assert document["server"]["name"] == "tower" and document["owner"] == "admin"
    assert document["libraries"] >= 2


def test_plex_libraries_and_users_for_pickers(settings_file):
    _, libraries, _ = cli(settings_file, "plex", "libraries")
    assert {lib["title"] for lib in libraries["libraries"]} >= {"Movies", "TV Shows"}
    _, users, _ = cli(settings_file, "plex", "users")
    kinds = {u["name"]: u["kind"] for u in users["users"]}
    assert kinds["admin"] == "owner" and kinds["alice"] == "friend" and kinds["kid"] == "managed"


@pytest.mark.sim_errors_ok
def test_plex_test_with_bad_token_exits_3_without_leaking(settings_file, sim):
    settings = cfg.load(settings_file)
    settings.plex.token = "wrong-token-value"
    cfg.save(settings, settings_file)
    code, document, stderr = cli(settings_file, "plex", "test")
    assert code == 3 and document["ok"] is False
    assert "wrong-token-value" not in stderr + json.dumps(document)


@pytest.mark.slow
def test_pin_login_start_then_poll_stores_token(settings_file, sim):
    settings = cfg.load(settings_file)
    settings.plex.token = ""
    cfg.save(settings, settings_file)
    code, started, _ = cli(settings_file, "plex", "login", "--start")
    assert code == 0 and started["code"] and "plex.tv/link" in started["link"]
    _, waiting, _ = cli(settings_file, "plex", "login", "--poll")
    assert waiting["signed_in"] is False
    volatile = Path(cfg.load(settings_file).paths.volatile_dir)
    pending = json.loads((volatile / "pin.json").read_text())
    sim.authorise_pin(int(pending["id"]))
    _, done, _ = cli(settings_file, "plex", "login", "--poll")
    assert done["signed_in"] is True
    token = cfg.load(settings_file).plex.token
    assert token and token not in json.dumps(done) and not (volatile / "pin.json").exists()
