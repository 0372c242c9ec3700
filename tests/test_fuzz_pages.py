"""Fuzzing the pages' one PHP endpoint (include/exec.php behind Unraid's local_prepend.php, under php -S):
random actions, methods and path arguments. Unknown actions and paths plexcache-r does not manage are
refused with a JSON error, nothing changes (settings, managed files, pins), PHP never errors and no shell
text runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pages_harness.client import call, post
from pages_harness.harness import Sandbox, Server, make_sandbox, namespace_unavailable
from test_pages_endpoint import managed

pytestmark = [pytest.mark.pages,
              pytest.mark.skipif(bool(namespace_unavailable()), reason=namespace_unavailable() or "")]

ACTIONS = ["status", "config", "setup", "list", "plan", "audit", "log", "job", "evict", "pin", "unpin", "evict_all",
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
    reply = call(server, method, {"action": action, "csrf_token": box.token})
    assert reply.status == 400 and reply.doc["ok"] is False and reply.doc["error"]


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
    reply = post(server, box.token, action, paths=good + sent, count=len(good + sent))
    assert reply.status == 400 and reply.doc["ok"] is False, (action, sent, reply.body)
    assert _snapshot(box) == before
    assert not canary.exists()
    assert box.php_errors() == []
