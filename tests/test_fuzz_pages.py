"""Fuzzing the pages' one PHP endpoint (include/exec.php under php -S): random actions, methods and path
arguments. Unknown actions and paths plexcache-r does not manage are refused with a JSON error, nothing
changes (settings, managed files, pins), PHP never errors and no shell text runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pages_harness.harness import Sandbox, Server, make_sandbox
from test_pages_endpoint import call, managed

ACTIONS = ["status", "config", "list", "plan", "audit", "log", "job", "evict", "pin", "unpin", "evict_all",
           "audit_fix", "config_set", "stop"]
NASTY = ["", "rm", "status;id", "../../bin/sh", "$(id)", "`id`", "pin\nstatus", "PIN", "list ", "evict\x00",
         "%2e%2e", "config_set'", "run && id", "-h", "--all"]
bad_paths = st.one_of(st.sampled_from(["/etc/passwd", "-rf", "--all", "$(touch CANARY)", "`touch CANARY`",
                                       "/mnt/user/tv/../../etc/passwd", "", " ", "\x00", "/mnt/user/tv/x.mkv\n"]),
                      st.text(max_size=30))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Server]]:
    box = make_sandbox(tmp_path_factory.mktemp("fuzzpages"))
    with Server(box) as server:
        yield box, server


def _snapshot(box: Sandbox) -> tuple:
    files = box.cli_json("list")["files"]
    return box.config.read_bytes(), tuple(sorted((f["path"], f.get("pinned")) for f in files))


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.one_of(st.sampled_from(NASTY), st.text(max_size=12)), method=st.sampled_from(["GET", "POST"]))
def test_unknown_actions_are_refused(served, action, method):
    box, server = served
    if action in ACTIONS or action in ("run", "defaults", "plex_test", "plex_libraries", "plex_users",
                                       "plex_login"):
        return
    status, doc = call(server, method, {"action": action, "csrf_token": box.token})
    assert status == 400 and doc["ok"] is False and doc["error"]


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(["evict", "pin", "unpin"]), paths=st.lists(bad_paths, min_size=1, max_size=3),
       keep_good=st.booleans())
def test_paths_plexcache_r_does_not_manage_are_refused_and_nothing_changes(served, tmp_path_factory, action,
                                                                            paths, keep_good):
    box, server = served
    before = _snapshot(box)
    files = managed(box)
    good = files[:1] if keep_good else []
    canary = Path(box.root) / "CANARY"
    sent = [p.replace("CANARY", str(canary)) for p in paths]
    if any(p in files for p in sent):
        return
    status, doc = call(server, "POST", {"action": action, "csrf_token": box.token, "paths": good + sent})
    assert status == 400 and doc["ok"] is False, (action, sent, doc)
    assert _snapshot(box) == before
    assert not canary.exists()
    log = (Path(box.root) / "php-server.log").read_text(errors="replace")
    assert "Fatal" not in log and "Warning:" not in log
