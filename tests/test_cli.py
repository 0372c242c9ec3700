"""The CLI contract: one clear line and the right exit code for bad input, JSON only on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from plexcache import config as cfg
from realtime import seconds


def cli(*args: str, stdin: str = "", config=None, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXCACHE")}
    if config is not None:
        env["PLEXCACHE_CONFIG"] = str(config)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "plexcache", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=seconds(60))


@pytest.fixture
def settings_file(tmp_path):
    path = tmp_path / "settings.yaml"
    settings = cfg.from_mapping({"plex": {"token": "tok-secret-1234"},
                                 "paths": {"log_dir": str(tmp_path / "log"), "state_dir": str(tmp_path / "state"),
                                           "volatile_dir": str(tmp_path / "tmp")}})
    cfg.save(settings, path)
    return path


def test_help_lists_every_contract_command():
    out = cli("--help").stdout
    for command in ("run", "plan", "status", "list", "evict", "pin", "live", "stop", "audit", "recover",
                    "config", "plex", "schedule", "demo", "sim"):
        assert f"  {command} " in out


def test_config_show_masks_token(settings_file):
    result = cli("config", "show", config=settings_file)
    assert result.returncode == 0
    assert "tok-secret-1234" not in result.stdout and cfg.MASK in result.stdout


def test_config_show_json_is_pure_json(settings_file):
    result = cli("--json", "config", "show", config=settings_file)
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["settings"]["plex"]["token"] == cfg.MASK


def test_config_set_invalid_changes_nothing(settings_file):
    before = settings_file.read_bytes()
    result = cli("--json", "config", "set", "--merge", stdin='{"cache": {"workers": 99}}', config=settings_file)
    assert result.returncode == 2
    assert json.loads(result.stdout)["problems"] == [
        {"key": "cache.workers", "message": "got 99, expected a value from 1 to 16"}]
    assert result.stderr.strip() == "plexcache-r: invalid setting cache.workers: got 99, expected a value from 1 to 16"
    assert settings_file.read_bytes() == before


def test_config_set_merge_keeps_masked_token(settings_file):
    result = cli("config", "set", "--merge", stdin=f'plex: {{token: "{cfg.MASK}"}}\ncache: {{workers: 3}}\n',
                 config=settings_file)
    assert result.returncode == 0, result.stderr
    saved = cfg.load(settings_file)
    assert saved.cache.workers == 3 and saved.plex.token == "tok-secret-1234"


def test_config_set_bad_yaml(settings_file):
    result = cli("config", "set", stdin="plex: [", config=settings_file)
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def test_invalid_settings_file_is_one_line(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("cache:\n  retention_hours: soon\n")
    result = cli("config", "show", config=path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "plexcache-r: invalid setting cache.retention_hours: got 'soon', expected a number"]


def test_unreadable_settings_file(tmp_path):
    path = tmp_path / "settings.yaml"
    path.mkdir()
    result = cli("config", "show", config=path)
    assert result.returncode == 2 and "cannot read settings" in result.stderr


def test_unknown_command_is_usage_error():
    result = cli("frobnicate")
    assert result.returncode == 2 and "No such command" in result.stderr and "Traceback" not in result.stderr


def test_stop_when_idle_exits_zero(settings_file):
    result = cli("stop", config=settings_file)
    assert result.returncode == 0 and "Nothing is running" in result.stdout


def test_pin_and_evict_read_their_paths_from_stdin_or_a_file(tmp_path):
    """The pages hand thousands of paths over this way: never on one command line."""
    mnt = tmp_path / "mnt"
    settings_file = tmp_path / "settings.yaml"
    cfg.save(cfg.from_mapping({"paths": {
        "pool_root": str(mnt), "disks_glob": str(mnt / "disk[0-9]*"), "user_root": str(mnt / "user"),
        "log_dir": str(tmp_path / "log"), "state_dir": str(tmp_path / "state"),
        "volatile_dir": str(tmp_path / "tmp")}}), settings_file)
    rels = ["tv/A b.mkv", "tv/line\nbreak.mkv", "movies/ü $(id).mkv"]
    for rel in rels:  # pins name files that exist: here on an array disk
        (mnt / "disk1" / rel).parent.mkdir(parents=True, exist_ok=True)
        (mnt / "disk1" / rel).write_bytes(b"x")
    names = [str(mnt / "user" / rel) for rel in rels]
    result = cli("--json", "pin", "--paths-from", "-", "--null", stdin="\0".join(names), config=settings_file)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changed"] == names
    listed = tmp_path / "paths.txt"
    listed.write_text(f"{names[0]}\n\n{names[2]}\n")
    result = cli("--json", "pin", "--off", "--paths-from", str(listed), config=settings_file)
    assert json.loads(result.stdout)["changed"] == [names[0], names[2]]
    for args in (["pin"], ["pin", "--paths-from", str(tmp_path / "missing")], ["evict", "--all", "--paths-from", "-"],
                 ["pin", "--paths-from", "-", "--null"]):
        result = cli(*args, config=settings_file)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
    assert "missing" in cli("pin", "--paths-from", str(tmp_path / "missing"), config=settings_file).stderr
