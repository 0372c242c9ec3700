"""Notifications: levels, the Unraid notify script, Discord/Slack payloads over real HTTP, no URL leaks."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import requests

from plexcache.config import UNRAID_ROOT_ENV, Settings, Webhook, unraid_command
from plexcache.notify import (
    NOTIFY_SCRIPT,
    Message,
    Notifier,
    discord_payload,
    run_messages,
    slack_payload,
    webhook_kind,
)


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 204

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        type(self).received.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    _Hook.received = []
    _Hook.status = 204
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_webhook_kind_is_told_by_the_address():
    assert webhook_kind("https://discord.com/api/webhooks/1/abc") == "discord"
    assert webhook_kind("https://hooks.slack.com/services/T/B/x") == "slack"
    assert webhook_kind("https://example.org/hook") == "generic"


def test_payloads_carry_counts_sizes_and_time():
    """Sizes in decimal units, as the pages, the CLI and Unraid's Main tab show them."""
    summary = {"started_at": 0, "finished_at": 125, "cached": 3, "bytes_cached": 3 * 10**9, "moved_back": 1,
               "bytes_moved_back": 15 * 10**8, "failed": 1, "exit_code": 1,
               "message": "cached 3, moved back 1; 1 failed",
               "warnings": ["pool nearly full"], "unknown": [{"scope": "bob", "source": "on_deck", "error": "401"}]}
    msgs = run_messages(summary, ["/mnt/user/tv/x.mkv: disk full"], ["cached: /mnt/user/tv/a.mkv"])
    assert [m.level for m in msgs] == ["summary", "activity", "warnings", "errors"]
    embed = discord_payload(msgs[0])["embeds"][0]
    values = {f["name"]: f["value"] for f in embed["fields"]}
    assert values == {"Cached": "3 (3.0 GB)", "Moved back": "1 (1.5 GB)", "Failed": "1", "Time": "2 min 5 s"}
    assert "demand of bob unknown" in "\n".join(msgs[2].lines)
    slack = slack_payload(msgs[3])
    assert slack["text"].startswith("plexcache-r: 1 file(s) failed")
    assert "disk full" in json.dumps(slack["blocks"])


def test_a_quiet_successful_run_sends_only_a_summary():
    msgs = run_messages({"exit_code": 0, "cached": 0, "message": "nothing to do"}, [], [])
    assert [m.level for m in msgs] == ["summary"]


def test_levels_route_messages_and_urls_never_reach_the_log(hook_server, caplog, tmp_path, monkeypatch):
    monkeypatch.setenv(UNRAID_ROOT_ENV, str(tmp_path))  # no notify there
    s = Settings()
    secret_a, secret_b = f"{hook_server}/discord.com/api/webhooks/1/SECRET", f"{hook_server}/fail/SECRET2"
    s.notify.webhooks = [Webhook(url=secret_a, levels=["summary", "errors"]),
                         Webhook(url=secret_b, levels=["errors"])]
    notifier = Notifier(s, session_factory=requests.Session)
    assert notifier.send(Message("activity", "moved")) == 0
    assert notifier.send(Message("summary", "run finished", fields=[("Cached", "1")])) == 1
    path, body = _Hook.received[-1]
    assert path.endswith("/discord.com/api/webhooks/1/SECRET") and body["embeds"][0]["title"] == "run finished"
    _Hook.status = 500
    with caplog.at_level(logging.DEBUG):
        assert notifier.send(Message("errors", "boom")) == 0
    assert notifier.errors == ["webhook 1 (discord) answered HTTP 500", "webhook 2 (generic) answered HTTP 500"]
    assert "SECRET" not in caplog.text


def test_unreachable_webhook_is_reported_without_its_address(caplog, tmp_path, monkeypatch):
    monkeypatch.setenv(UNRAID_ROOT_ENV, str(tmp_path))  # no notify there
    s = Settings()
    s.notify.webhooks = [Webhook(url="http://127.0.0.1:9/hooks.slack.com/TOKEN", levels=["errors"])]
    n = Notifier(s, session_factory=requests.Session, timeout=2)
    with caplog.at_level(logging.DEBUG):
        assert n.send(Message("errors", "x")) == 0
    assert n.errors and "TOKEN" not in n.errors[0] and "TOKEN" not in caplog.text
    assert "slack" in n.errors[0]


def test_unraid_notify_script_gets_level_importance_and_link(tmp_path, monkeypatch):
    """Unraid's own notify, where Unraid keeps it (here under a sandbox root): not a setting."""
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv(UNRAID_ROOT_ENV, str(tmp_path / "unraid"))
    script = Path(unraid_command(NOTIFY_SCRIPT))
    script.parent.mkdir(parents=True)
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {log}\n")
    script.chmod(0o755)
    s = Settings()
    s.notify.unraid_levels = ["warnings", "errors"]
    n = Notifier(s)
    assert n.send(Message("summary", "quiet")) == 0
    assert n.send(Message("errors", "Run failed", "2 files", [("Failed", "2")])) == 1
    line = log.read_text()
    assert "-e PlexCache-R errors" in line and "-i alert" in line and "-l /Settings/PlexCacheR" in line
    assert "-d 2 files -i" in line and "-m 2 files\\nFailed: 2" in line


def _real_notify(tmp_path: Path) -> Path:
    """Unraid's own notify script from the webGui fixture, run by php-cli in a private mount namespace whose
    /boot is a sandbox flash drive that sends notifications to tmp_path/notifications (nothing on this
    machine changes). Returns that folder; skips where the fixture, php or namespaces are missing."""
    import shutil
    import subprocess

    import unraid_webgui

    found = unraid_webgui.versions()
    if not found or not shutil.which("php") or not shutil.which("unshare"):
        pytest.skip(unraid_webgui.MISSING if not found else "php-cli or unshare missing")
    emhttp = found[-1][1] / "emhttp"
    docroot = tmp_path / "emhttp"
    docroot.mkdir()
    (docroot / "plugins").symlink_to(emhttp / "plugins")
    (docroot / "webGui").symlink_to(emhttp / "plugins" / "dynamix")  # a symlink on Unraid too
    boot = tmp_path / "boot" / "config" / "plugins" / "dynamix"
    boot.mkdir(parents=True)
    box = tmp_path / "notifications"
    (box / "unread").mkdir(parents=True)
    (box / "archive").mkdir()  # made at boot by `notify cron-init`
    (boot / "dynamix.cfg").write_text(f'[notify]\npath="{box}"\n')
    (tmp_path / "prepend.php").write_text(f'<?php $docroot = "{docroot}";\n')
    script = Path(unraid_command(NOTIFY_SCRIPT))
    script.parent.mkdir(parents=True)
    inner = (f'mount --bind {tmp_path / "boot"} /boot && exec php -d short_open_tag=1 '
             f'-d auto_prepend_file={tmp_path / "prepend.php"} {docroot / "webGui/scripts/notify"} "$@"')
    script.write_text(f"#!/bin/sh\nexec unshare -m --propagation private sh -c '{inner}' notify \"$@\"\n")
    script.chmod(0o755)
    probe = subprocess.run([str(script), "-e", "probe", "-s", "probe", "-d", "probe"], capture_output=True)
    if probe.returncode != 0 or not list((box / "archive").glob("probe*")):
        pytest.skip(f"cannot run Unraid's notify in a private mount namespace here: {probe.stderr[-300:]!r}")
    for made in box.glob("*/probe*"):
        made.unlink()
    return box


def _notify_file(folder: Path) -> dict:
    files = list(folder.glob("PlexCache*.notify"))
    assert len(files) == 1, files
    out = {}
    for line in files[0].read_text().splitlines():
        key, _, value = line.partition("=")
        out[key] = value.strip('"')
    return out


def test_unraids_real_notify_script_gets_every_warning_line(tmp_path, monkeypatch):
    monkeypatch.setenv(UNRAID_ROOT_ENV, str(tmp_path / "unraid"))
    box = _real_notify(tmp_path)
    s = Settings()
    s.notify.unraid_levels = ["warnings"]
    lines = ["/mnt/user/movies/Dune.mkv: the pool copy no longer matches what was cached",
             "pool cache is not mounted at /mnt/cache"]
    summary = {"warnings": lines, "unknown": [], "exit_code": 0}
    warnings = [m for m in run_messages(summary, [], []) if m.level == "warnings"]
    assert Notifier(s).send_all(warnings) == 1
    shown, archived = _notify_file(box / "unread"), _notify_file(box / "archive")
    assert shown["importance"] == "warning" and shown["subject"] == "plexcache-r: warnings"
    assert lines[0] in shown["description"] and "1 more" in shown["description"]  # the bell's one line
    assert archived["message"] == "<br>".join(lines)  # every line, as Unraid breaks them
