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
    result = cli("plan", config=path)   # a command that acts on the settings needs them valid
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "plexcache-r: invalid setting cache.retention_hours: got 'soon', expected a number"]


def test_unreadable_settings_file(tmp_path):
    path = tmp_path / "settings.yaml"
    path.mkdir()
    result = cli("plan", config=path)
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


def break_setting(settings_file) -> None:
    text = settings_file.read_text()
    assert "  min_free: 10%\n" in text
    settings_file.write_text(text.replace("  min_free: 10%\n", "  min_free: lots\n"))


def test_read_only_commands_work_with_an_invalid_settings_file(settings_file):
    """Files on the pool must always be reachable: status, list and the form's settings read what they can."""
    break_setting(settings_file)
    status = cli("--json", "status", config=settings_file)
    assert status.returncode == 0, status.stderr
    warnings = json.loads(status.stdout)["warnings"]
    assert any(w["code"] == "settings" and "Minimum free space" not in w["message"] and "cache.min_free" in w["message"]
               for w in warnings)
    listed = cli("--json", "list", config=settings_file)
    assert listed.returncode == 0 and json.loads(listed.stdout)["files"] == []
    shown = json.loads(cli("--json", "config", "show", config=settings_file).stdout)
    assert shown["ok"] is True and shown["settings"]["cache"]["min_free"] == "lots"
    assert shown["settings"]["plex"]["token"] == cfg.MASK and shown["settings"]["cache"]["workers"] == 2
    assert [p["key"] for p in shown["problems"]] == ["cache.min_free"]


def test_config_set_merge_validates_the_result_not_the_stored_file(settings_file):
    break_setting(settings_file)
    result = cli("--json", "config", "set", "--merge", stdin='{"cache": {"min_free": "5%"}}', config=settings_file)
    assert result.returncode == 0, result.stdout
    saved = cfg.load(settings_file)
    assert saved.cache.min_free == "5%" and saved.plex.token == "tok-secret-1234"


def test_config_set_over_a_file_that_is_not_yaml_keeps_a_copy_of_it(settings_file):
    settings_file.write_text("plex: {token: tok-secret-1234\n")
    broken = settings_file.read_bytes()
    shown = json.loads(cli("--json", "config", "show", config=settings_file).stdout)
    assert shown["ok"] is True and shown["problems"][0]["key"] == "(file)"
    result = cli("--json", "config", "set", "--merge", stdin='{"cache": {"workers": 3}}', config=settings_file)
    assert result.returncode == 0, result.stdout
    assert cfg.load(settings_file).cache.workers == 3
    copies = list(settings_file.parent.glob("settings.yaml.broken-*"))
    assert [c.read_bytes() for c in copies] == [broken]
    assert json.loads(result.stdout)["kept_broken"] == str(copies[0])


PLEX_SIDE = ("plexapi", "plexcache.engine", "plexcache.plex", "plexcache.plexread", "plexcache.live",
             "plexcache.media.mover", "requests")


@pytest.mark.parametrize("command", [("status",), ("list",), ("config", "show")])
def test_read_only_commands_never_import_plex(settings_file, command):
    """A poll of the Dashboard must not pay for importing plexapi (most of a second of CPU each time)."""
    probe = ("import sys\nfrom plexcache.cli import main\n"
             f"try:\n    main(['--config', {str(settings_file)!r}, '--json', *{list(command)!r}])\n"
             "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in ('plexapi', 'requests') "
             f"or m in {PLEX_SIDE!r}), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if not k.startswith("PLEXCACHE")})
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"
