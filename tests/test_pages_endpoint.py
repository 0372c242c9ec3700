"""include/exec.php over HTTP (php -S on loopback): CSRF, method rules, the action whitelist, managed-path
checks, secrets masked, settings problems keyed, bounded log tail. The CLI is the stand-in; the settings
commands inside it are the real ones."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pages_harness.harness import Sandbox, Server, make_sandbox

ENDPOINT = "/plugins/plexcache-r/include/exec.php"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Server]]:
    box = make_sandbox(tmp_path_factory.mktemp("endpoint"))
    with Server(box) as server:
        yield box, server


def call(server: Server, method: str, data: dict[str, Any]) -> tuple[int, dict]:
    pairs = []
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((f"{key}[]" if isinstance(value, list) else key, item))
    query = urllib.parse.urlencode(pairs)
    if method == "GET":
        req = urllib.request.Request(f"{server.url}{ENDPOINT}?{query}")
    else:
        req = urllib.request.Request(server.url + ENDPOINT, data=query.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def managed(box: Sandbox) -> list[str]:
    return [f["path"] for f in box.cli_json("list")["files"]]


def test_post_without_or_with_a_wrong_token_is_refused_and_changes_nothing(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    before = box.config.read_bytes()
    for token in (None, "WRONG", ""):
        data = {"action": "config_set", "settings": json.dumps({"demand": {"on_deck_items": 3}})}
        if token is not None:
            data["csrf_token"] = token
        status, doc = call(server, "POST", data)
        assert status == 403 and doc["error"] == "wrong csrf_token"
    status, doc = call(server, "POST", {"action": "pin", "paths": managed(box)[:1]})
    assert status == 403
    assert box.config.read_bytes() == before
    assert not any(f["pinned"] for f in box.cli_json("list")["files"])


def test_methods_and_unknown_actions(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    assert call(server, "GET", {"action": "run"})[0] == 405, "GET must never start anything"
    assert call(server, "GET", {"action": "config_set"})[0] == 405
    assert call(server, "GET", {"action": "plex_login_poll"})[0] == 405, "polling may store a token: POST only"
    assert call(server, "POST", {"action": "status", "csrf_token": box.token})[0] == 405
    for action in ("rm", "../../bin/sh", "", "status;id"):
        assert call(server, "GET", {"action": action})[0] == 400
        assert call(server, "POST", {"action": action, "csrf_token": box.token})[0] == 400
    assert call(server, "GET", {"action": "job", "name": "../../etc/passwd"})[0] == 400


def test_only_managed_files_can_be_evicted_or_pinned(served: tuple[Sandbox, Server], tmp_path: Path) -> None:
    box, server = served
    before = managed(box)
    canary = tmp_path / "canary"
    bad_paths = {"evict": ["/etc/passwd", f"$(touch {canary})", "--all"],
                 "pin": [before[0] + "/../../../etc/passwd", "-rf"]}
    for action, bad in bad_paths.items():
        for path in bad:
            status, doc = call(server, "POST", {"action": action, "csrf_token": box.token, "paths": [before[0], path]})
            assert status == 400 and "not a file plexcache-r manages" in doc["error"], (action, path)
    assert call(server, "POST", {"action": "evict_all", "csrf_token": box.token})[0] == 400, "needs confirm=all"
    assert managed(box) == before and not canary.exists()
    status, doc = call(server, "POST", {"action": "pin", "csrf_token": box.token, "paths": [before[1]]})
    assert status == 200 and doc["ok"] and doc["changed"] == [before[1]]
    assert call(server, "POST", {"action": "unpin", "csrf_token": box.token, "paths": [before[1]]})[1]["ok"]


def test_secrets_never_reach_the_browser_and_the_mask_keeps_them(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    status, doc = call(server, "GET", {"action": "config"})
    assert status == 200 and doc["settings"]["plex"]["token"] == "********"
    settings = doc["settings"]
    settings["demand"]["next_episodes"] = 4
    form = {"action": "config_set", "csrf_token": box.token, "settings": json.dumps(settings)}
    status, doc = call(server, "POST", form)
    assert status == 200 and doc["ok"], doc
    saved = box.settings()
    assert saved["plex"]["token"] == "sandbox-secret-token" and saved["demand"]["next_episodes"] == 4
    for action in ("config", "status", "list", "log"):
        body = json.dumps(call(server, "GET", {"action": action})[1])
        assert "sandbox-secret-token" not in body, action


def test_invalid_settings_come_back_keyed_and_nothing_is_written(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    before = box.config.read_bytes()
    bad = {"cache": {"min_free": "lots"}, "demand": {"on_deck_items": "ten"}, "plex": {"url": "plex.local"}}
    status, doc = call(server, "POST", {"action": "config_set", "csrf_token": box.token, "settings": json.dumps(bad)})
    assert status == 200 and doc["ok"] is False and doc["exit_code"] == 2
    keys = {p["key"] for p in doc["problems"]}
    assert {"cache.min_free", "demand.on_deck_items"} <= keys
    assert box.config.read_bytes() == before
    status, doc = call(server, "POST", {"action": "config_set", "csrf_token": box.token, "settings": "[1, 2"})
    assert status == 400 and box.config.read_bytes() == before


def test_log_tail_is_bounded_and_follows_new_lines(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    log = Path(box.settings()["paths"]["log_dir"]) / "plexcache-r.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        for i in range(40000):   # about 3 MB
            level = "WARNING" if i % 100 == 0 else "INFO"
            fh.write(f"2026-01-01 10:00:00,000 {level:<7} plexcache.engine: line {i} of the old log\n")
    status, doc = call(server, "GET", {"action": "log", "lines": 5000})
    assert status == 200 and len(doc["lines"]) == 2000, "at most 2000 lines whatever is asked"
    assert doc["lines"][-1].endswith("line 39999 of the old log")
    doc = call(server, "GET", {"action": "log", "level": "WARNING", "q": "line 399"})[1]
    assert doc["lines"] and all("WARNING" in line and "line 399" in line for line in doc["lines"])
    offset = doc["offset"]
    with log.open("a") as fh:
        fh.write("2026-01-01 10:00:01,000 ERROR   plexcache.mover: disk full on cache\n")
    doc = call(server, "GET", {"action": "log", "offset": offset})[1]
    assert [line.split(": ", 1)[1] for line in doc["lines"]] == ["disk full on cache"]
