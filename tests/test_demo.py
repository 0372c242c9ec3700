"""The demo is a real cycle: it caches files, a second run does nothing, --keep leaves a usable tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml


def run_cli(*args: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXCACHE")}
    return subprocess.run([sys.executable, "-m", "plexcache", *args], capture_output=True, text=True,
                          env=env, timeout=180)


def test_demo_json_reports_a_real_cycle():
    result = run_cli("--json", "demo")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    first, second = document["first_run"], document["second_run"]
    assert first["cached"] > 0 and first["failed"] == 0
    assert second["cached"] == 0 and second["moved_back"] == 0
    assert document["status"]["counts"]["files"] >= first["cached"]


def test_demo_narrates_for_people():
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    for words in ("what everyone will watch next", "On Deck", "next episode", "changes nothing"):
        assert words in result.stdout
    assert "Traceback" not in result.stderr


def test_demo_keep_leaves_world_tree_and_settings(tmp_path):
    keep = tmp_path / "demo"
    result = run_cli("demo", "--keep", str(keep))
    assert result.returncode == 0, result.stderr
    settings = yaml.safe_load((keep / "settings.yaml").read_text())
    assert settings["paths"]["state_dir"].startswith(str(keep / "root"))
    assert (keep / "world.yaml").is_file() and (keep / "README.txt").is_file()
    pooled = [p for p in (keep / "root" / "mnt" / "cache").rglob("*") if p.is_file()]
    assert pooled, "the kept tree should hold the files the demo cached"


def test_demo_keep_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "something").write_text("mine")
    result = run_cli("demo", "--keep", str(tmp_path))
    assert result.returncode == 2 and "not empty" in result.stderr
    assert (tmp_path / "something").read_text() == "mine"
