"""The demo is a real cycle told as it happens: it caches files, a second run does nothing, a watched episode
makes room for the next, and --keep leaves a tree the README's commands explore as written."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import yaml

from realtime import seconds, wait_for

pytestmark = pytest.mark.slow   # real cycles, many subprocesses or many examples


def run_cli(*args: str, cwd=None, env_extra=None, timeout: float = 240):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXCACHE")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "plexcache", *args], capture_output=True, text=True,
                          env=env, timeout=seconds(timeout), cwd=cwd)


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """One narrated demo kept in a folder given relative to the working directory, as people type it."""
    where = tmp_path_factory.mktemp("demo-cwd")
    result = run_cli("demo", "--keep", "kept", cwd=where)
    assert result.returncode == 0, result.stderr
    return where / "kept", result


def test_demo_json_reports_a_real_cycle():
    result = run_cli("--json", "demo")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    first, second = document["first_run"], document["second_run"]
    assert first["cached"] > 0 and first["failed"] == 0
    assert second["cached"] == 0 and second["moved_back"] == 0
    third, fourth = document["third_run"], document.get("fourth_run", {})
    assert third["cached"] >= 1, "the episode after the watched one's next five comes in"
    assert third["moved_back"] + fourth.get("moved_back", 0) >= 1, "the watched episode leaves, now or later"
    assert document["status"]["counts"]["files"] > 0


def test_demo_narrates_for_people(kept):
    _folder, result = kept
    for words in ("what everyone will watch next", "On Deck", "next episode", "changes nothing"):
        assert words in result.stdout
    assert "Traceback" not in result.stderr


def test_every_step_says_what_its_run_did(kept):
    """The words after each step are made from what that run did: each file it moved, or that nothing did."""
    _folder, result = kept
    steps = re.split(r"\n(?=\d\. )", result.stdout)
    later = [s for s in steps if s[:2] in ("5.", "6.")]
    assert later and "+ cached" in later[0], later
    for step in later:
        body = step.split("\n", 1)[1]
        assert re.search(r"^   [-+=x] |^   Nothing changed\.", body, re.M), step
        assert "moved back 0" not in step and "moves it back and caches what follows" not in step


def test_reasons_are_said_once(kept):
    _folder, result = kept
    for line in result.stdout.splitlines():
        parts = [p.strip() for p in line.split(";") if p.strip()]
        assert len(parts) == len(set(parts)), line


def test_kept_folder_explores_as_its_readme_says(kept):
    folder, result = kept
    settings = yaml.safe_load((folder / "settings.yaml").read_text())
    assert settings["paths"]["state_dir"].startswith(str(folder / "root"))
    pooled = [p for p in (folder / "root" / "mnt" / "cache").rglob("*") if p.is_file()]
    assert pooled, "the kept tree should hold the files the demo cached"
    readme = (folder / "README.txt").read_text()
    commands = [line.strip() for line in readme.splitlines() if line.startswith("  ")]
    assert all(c in result.stdout for c in commands), "the demo's last words and README.txt agree"
    serve = commands[0].rstrip("&").split()
    port = serve[serve.index("--port") + 1]
    assert settings["plex"]["url"] == f"http://127.0.0.1:{port}"
    env = {}
    for line in (c for c in commands if c.startswith("export ")):
        name, _, value = line.removeprefix("export ").split("#")[0].strip().partition("=")
        env[name] = value
    server = subprocess.Popen([sys.executable, "-m", "plexcache", *serve[1:]], stdout=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        assert wait_for(lambda: _listening(int(port)), 15)
        plan = run_cli("--json", "plan", env_extra=env)
        assert plan.returncode == 0, plan.stderr
        assert json.loads(plan.stdout)["unknown"] == []
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=seconds(30))


def test_demo_keep_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "something").write_text("mine")
    result = run_cli("demo", "--keep", str(tmp_path))
    assert result.returncode == 2 and "not empty" in result.stderr
    assert (tmp_path / "something").read_text() == "mine"


def test_sim_serve_on_a_busy_port_is_a_clear_error(tmp_path):
    import socket

    from plexcache.demo import default_scenario

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("sim", "serve", "--world", str(default_scenario()), "--port", str(port), timeout=60)
    assert result.returncode == 2 and f"port {port} is in use" in result.stderr
    assert "Traceback" not in result.stderr


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_readme_explore_commands_are_the_kept_demos():
    from pathlib import Path

    from plexcache.demo import explore_commands

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    expected = explore_commands(Path("DIR"), 0).replace(":0", ":PORT").replace("--port 0", "--port PORT")
    assert expected in readme
