"""include/exec.php over HTTP, on each Unraid webGui release, behind that release's own local_prepend.php
(php's auto_prepend_file, as php-fpm runs it on Unraid): the CSRF check is Unraid's; GET never changes
anything; the action whitelist; array-typed parameters; managed-path checks; bulk actions over the whole
managed set; secrets masked; settings problems keyed; the log tail on an empty and a quiet log. No
request may leave a PHP warning behind. The CLI is the stand-in; its settings commands are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pages_harness import webgui
from pages_harness.client import Reply, call, get, post
from pages_harness.harness import Sandbox, Server, make_sandbox, namespace_unavailable
from realtime import seconds, wait_for

pytestmark = [pytest.mark.pages,
              pytest.mark.skipif(bool(namespace_unavailable()), reason=namespace_unavailable() or "")]


@pytest.fixture(scope="module", params=webgui.versions() or [None])
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Server]]:
    box = make_sandbox(tmp_path_factory.mktemp("endpoint"), request.param)
    with Server(box) as server:
        yield box, server


@pytest.fixture(autouse=True)
def no_php_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test ends with PHP's error log as it found it: a warning in a reply is a failure."""
    if "served" not in request.fixturenames:
        yield
        return
    box, _ = request.getfixturevalue("served")
    box.expect_php_errors(".")   # what an earlier test left is that test's failure, not this one's
    yield
    assert box.new_php_errors() == []


def managed(box: Sandbox) -> list[str]:
    return [f["path"] for f in box.cli_json("list")["files"]]


def pinned(box: Sandbox) -> set[str]:
    return {f["path"] for f in box.cli_json("list")["files"] if f["pinned"]}


def send_paths(server: Server, token: str, action: str, paths: list[str]) -> Reply:
    return post(server, token, action, paths=paths, count=len(paths))


def job_starts(box: Sandbox) -> dict[str, str]:
    """When each detached job last started (the endpoint writes NAME.started as it starts one)."""
    return {p.name: p.read_text() for p in (box.path("volatile_dir") / "web").glob("*.started")}


def job_done(box: Sandbox, server: Server, name: str) -> dict:
    assert wait_for(lambda: not get(server, "job", name=name).doc["running"], 120), f"{name} never ended"
    return get(server, "job", name=name).doc


# --- CSRF: Unraid's check in front ---------------------------------------------------------------------


def test_posts_with_the_token_reach_the_backend_through_unraids_check(served: tuple[Sandbox, Server]) -> None:
    """Run, Stop, Apply, Pin, Move back, Fix and the PIN sign-in, each as the page sends it."""
    box, server = served
    paths = managed(box)
    reply = post(server, box.token, "config_set", settings={"demand": {"next_episodes": 5}})
    assert reply.status == 200 and reply.doc["ok"], reply.body
    assert box.settings()["demand"]["next_episodes"] == 5
    assert send_paths(server, box.token, "pin", paths[:1]).doc["changed"] == paths[:1]
    assert send_paths(server, box.token, "unpin", paths[:1]).doc["ok"]
    stop = post(server, box.token, "stop").doc
    assert stop["ok"] and stop["running"] is False
    assert post(server, box.token, "run", dry_run=1).doc["started"]
    assert job_done(box, server, "run")["exit_code"] == 0
    assert send_paths(server, box.token, "evict", paths[-1:]).doc["started"]
    assert job_done(box, server, "evict")["exit_code"] == 0 and paths[-1] not in managed(box)
    assert post(server, box.token, "audit_fix", kinds=["unprotected"]).doc["started"]
    assert job_done(box, server, "audit_fix")["exit_code"] == 0
    assert post(server, box.token, "audit_fix", kinds=["keep-new:stray"]).doc["started"]   # a choice for one kind
    assert job_done(box, server, "audit_fix")["exit_code"] == 0
    assert post(server, box.token, "plex_login").doc["code"] == "K4T9"


@pytest.mark.parametrize("token", [None, "", "WRONG"], ids=["missing", "empty", "wrong"])
def test_a_post_without_a_valid_token_is_refused_by_unraid_and_changes_nothing(served: tuple[Sandbox, Server],
                                                                               token: str | None) -> None:
    box, server = served
    before, pins, started = box.config.read_bytes(), pinned(box), job_starts(box)
    requests = [{"action": "config_set", "settings": json.dumps({"demand": {"on_deck_items": 3}})},
                {"action": "pin", "paths": json.dumps(managed(box)[:1]), "count": "1"},
                {"action": "run"}]
    for data in requests:
        if token is not None:
            data["csrf_token"] = token
        reply = call(server, "POST", data)
        assert reply.refused_by_unraid, (data["action"], reply.status, reply.body)
    assert box.config.read_bytes() == before and pinned(box) == pins
    assert job_starts(box) == started, "no job may start"
    logged = box.unraid.syslog.read_text()
    assert "csrf_token" in logged, "Unraid logs each refusal to syslog"


def test_the_csrf_header_counts_only_where_unraid_accepts_it(served: tuple[Sandbox, Server]) -> None:
    """7.3 and later accept X-CSRF-Token; the pages send the token in the body, which every release reads."""
    box, server = served
    reply = call(server, "POST", {"action": "stop"}, headers={"X-CSRF-Token": box.token})
    if webgui.at_least(box.version, "7.3"):
        assert reply.status == 200 and reply.doc["ok"]
    else:
        assert reply.refused_by_unraid


def test_without_unraids_check_in_front_the_endpoint_checks_the_token_itself(tmp_path: Path) -> None:
    box = make_sandbox(tmp_path)
    before = box.config.read_bytes()
    with Server(box, prepend=False) as server:
        for token in (None, "", "WRONG"):
            data = {"action": "config_set", "settings": json.dumps({"demand": {"on_deck_items": 3}})}
            if token is not None:
                data["csrf_token"] = token
            reply = call(server, "POST", data)
            assert reply.status == 403 and reply.doc == {"ok": False, "error": "wrong csrf_token"}
        assert box.config.read_bytes() == before
        assert post(server, box.token, "stop").doc["ok"]
    assert box.php_errors() == []


# --- methods, whitelist, parameters --------------------------------------------------------------------


def test_methods_and_unknown_actions(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    assert call(server, "GET", {"action": "run"}).status == 405, "GET must never start anything"
    assert call(server, "GET", {"action": "config_set"}).status == 405
    assert call(server, "GET", {"action": "plex_login_poll"}).status == 405, "polling may store a token: POST only"
    assert post(server, box.token, "status").status == 405
    assert post(server, box.token, "setup").status == 405, "the checklist only reads"
    setup = get(server, "setup")
    assert setup.status == 200 and setup.doc["steps"][0]["id"] == "plex"
    for action in ("rm", "../../bin/sh", "", "status;id"):
        assert call(server, "GET", {"action": action}).status == 400
        assert post(server, box.token, action).status == 400
    assert get(server, "job", name="../../etc/passwd").status == 400


@pytest.mark.parametrize("fields", [
    [("action[]", "status")], [("action[]", "pin"), ("action[]", "run")],
    [("action", "log"), ("q[]", "x")], [("action", "log"), ("level[]", "INFO")], [("action", "log"), ("lines[]", "5")],
    [("action", "log"), ("offset[x]", "1")], [("action", "job"), ("name[]", "run")],
], ids=lambda f: "&".join(k for k, _ in f))
def test_array_parameters_get_one_clean_refusal(served: tuple[Sandbox, Server], fields: list) -> None:
    box, server = served
    for method in ("GET", "POST"):
        data = [*fields, ("csrf_token", box.token)] if method == "POST" else fields
        reply = call(server, method, data)
        assert reply.status == 400 and reply.content_type.startswith("application/json"), reply.body
        name = fields[-1][0].split("[")[0]
        assert reply.doc == {"ok": False, "error": f"{name} must be one value, not a list"}


@pytest.mark.parametrize("word", ["keep-new:stray:x", "keep-new:", ":stray", "keep new", "x" * 50,
                                  "keep:", "keep:relative/x.mkv", "keep:/mnt/disk1/a\x00b", "keep:/" + "x" * 4096])
def test_a_fix_word_that_is_no_fix_kind_or_choice_is_refused(served: tuple[Sandbox, Server], word: str) -> None:
    box, server = served
    started = job_starts(box)
    reply = post(server, box.token, "audit_fix", kinds=[word])
    assert reply.status == 400 and reply.doc["error"] == "unknown fix"
    assert job_starts(box) == started


def test_list_parameters_of_posts_are_refused_too(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    before = pinned(box)
    reply = call(server, "POST", {"action": "pin", "csrf_token": box.token, "paths": managed(box)[:2]})
    assert reply.status == 400 and reply.doc["error"] == "paths must be one value, not a list"
    reply = call(server, "POST", {"action": "config_set", "csrf_token": box.token, "settings": ["{}"]})
    assert reply.status == 400 and reply.doc["error"] == "settings must be one value, not a list"
    assert pinned(box) == before


def test_an_empty_settings_object_is_a_mapping(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    before = box.cli_json("config", "show")["settings"]
    reply = post(server, box.token, "config_set", settings={})
    assert reply.status == 200 and reply.doc["ok"], reply.body
    assert box.cli_json("config", "show")["settings"] == before
    for bad in ("[]", "[1, 2", "null", '"text"', "3"):
        reply = call(server, "POST", {"action": "config_set", "csrf_token": box.token, "settings": bad})
        assert reply.status == 400 and reply.doc["error"] == "the settings sent are not a JSON mapping", bad


# --- managed paths and bulk actions ---------------------------------------------------------------------


def test_only_managed_files_can_be_evicted_or_pinned(served: tuple[Sandbox, Server], tmp_path: Path) -> None:
    box, server = served
    before = managed(box)
    canary = tmp_path / "canary"
    bad_paths = {"evict": ["/etc/passwd", f"$(touch {canary})", "--all"],
                 "pin": [before[0] + "/../../../etc/passwd", "-rf"]}
    for action, bad in bad_paths.items():
        for path in bad:
            reply = send_paths(server, box.token, action, [before[0], path])
            assert reply.status == 400 and "not a file plexcache-r manages" in reply.doc["error"], (action, path)
    assert post(server, box.token, "evict_all").status == 400, "needs confirm=all"
    assert managed(box) == before and not canary.exists()
    reply = send_paths(server, box.token, "pin", [before[1]])
    assert reply.status == 200 and reply.doc["ok"] and reply.doc["changed"] == [before[1]]
    assert send_paths(server, box.token, "unpin", [before[1]]).doc["ok"]


def test_a_request_cut_short_is_refused_whole(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    paths, before = managed(box), pinned(box)
    cut = post(server, box.token, "pin", paths=json.dumps(paths)[:-40], count=len(paths))
    assert cut.status == 400 and "JSON list" in cut.doc["error"]
    short = post(server, box.token, "pin", paths=paths[:-1], count=len(paths))
    assert short.status == 400 and "cut short" in short.doc["error"]
    # PHP keeps the first max_input_vars (1,000) fields of a form and drops the rest without a word
    flood = [("action", "pin"), ("csrf_token", box.token), *[(f"x{i}", "1") for i in range(1200)],
             ("paths", json.dumps(paths[:1])), ("count", "1")]
    reply = call(server, "POST", flood)
    box.expect_php_errors("Input variables exceeded 1000")   # PHP's own warning as it cuts the form
    assert reply.status == 413 and "too many fields" in reply.doc["error"], reply.body
    assert pinned(box) == before


def test_bulk_pin_and_move_back_of_ten_thousand_files(tmp_path: Path) -> None:
    box = make_sandbox(tmp_path)
    box.extra_env["PCR_FAKE_FILES"] = "10000"
    paths = managed(box)
    assert len(paths) == 10000
    with Server(box) as server:
        reply = send_paths(server, box.token, "pin", paths)
        assert reply.status == 200 and len(reply.doc["changed"]) == 10000, reply.body[:300]
        assert pinned(box) == set(paths)
        assert len(send_paths(server, box.token, "unpin", paths).doc["changed"]) == 10000
        assert send_paths(server, box.token, "evict", paths).doc["started"]
        done = job_done(box, server, "evict")
        assert done["exit_code"] == 0 and done["result"]["moved_back"] == 10000
        assert managed(box) == []
    assert box.php_errors() == []


def test_a_php_warning_in_the_endpoint_is_a_json_answer(tmp_path: Path) -> None:
    """Whatever goes wrong inside exec.php reaches the page as JSON naming it, never as an empty HTTP 200."""
    box = make_sandbox(tmp_path)
    volatile = box.path("volatile_dir")
    volatile.parent.mkdir(parents=True, exist_ok=True)
    volatile.write_text("a file where the folder for job results belongs")
    with Server(box) as server:
        reply = post(server, box.token, "run")
        assert reply.status == 500 and reply.content_type.startswith("application/json")
        assert reply.doc["ok"] is False and "mkdir()" in reply.doc["error"] and "exec.php" in reply.doc["error"]
        logged = box.expect_php_errors("mkdir")
        assert logged, "the warning is in PHP's error log too"


# --- secrets and settings -----------------------------------------------------------------------------


def test_secrets_never_reach_the_browser_and_the_mask_keeps_them(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    reply = get(server, "config")
    assert reply.status == 200 and reply.doc["settings"]["plex"]["token"] == "********"
    settings = reply.doc["settings"]
    settings["demand"]["next_episodes"] = 4
    reply = post(server, box.token, "config_set", settings=settings)
    assert reply.status == 200 and reply.doc["ok"], reply.body
    saved = box.settings()
    assert saved["plex"]["token"] == "sandbox-secret-token" and saved["demand"]["next_episodes"] == 4
    for action in ("config", "status", "list", "log"):
        assert "sandbox-secret-token" not in get(server, action).body, action


def test_invalid_settings_come_back_keyed_and_nothing_is_written(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    before = box.config.read_bytes()
    bad = {"cache": {"min_free": "lots"}, "demand": {"on_deck_items": "ten"}, "plex": {"url": "plex.local"}}
    reply = post(server, box.token, "config_set", settings=bad)
    assert reply.status == 200 and reply.doc["ok"] is False and reply.doc["exit_code"] == 2
    keys = {p["key"] for p in reply.doc["problems"]}
    assert {"cache.min_free", "demand.on_deck_items"} <= keys
    assert box.config.read_bytes() == before


# --- the log --------------------------------------------------------------------------------------------


def test_the_log_tab_works_on_an_empty_log_and_a_quiet_tail(served: tuple[Sandbox, Server]) -> None:
    """The log is created empty at install; a live-tail poll usually finds nothing new."""
    box, server = served
    log = box.path("log_dir") / "plexcache-r.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = log.read_bytes() if log.exists() else None
    try:
        log.write_bytes(b"")
        reply = get(server, "log")
        empty = {"ok": True, "lines": [], "offset": 0, "size": 0, "runs": []}
        assert reply.status == 200 and reply.doc == empty, reply.body
        log.write_text("2026-01-01 10:00:00,000 INFO    plexcache.engine: one line\n")
        first = get(server, "log").doc
        assert len(first["lines"]) == 1
        quiet = get(server, "log", offset=first["offset"])
        assert quiet.status == 200 and quiet.doc["lines"] == [] and quiet.doc["offset"] == first["offset"]
    finally:
        if saved is not None:
            log.write_bytes(saved)


def test_log_tail_is_bounded_and_follows_new_lines(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    log = box.path("log_dir") / "plexcache-r.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        for i in range(40000):   # about 3 MB
            level = "WARNING" if i % 100 == 0 else "INFO"
            fh.write(f"2026-01-01 10:00:00,000 {level:<7} plexcache.engine: line {i} of the old log\n")
    doc = get(server, "log", lines=5000).doc
    assert len(doc["lines"]) == 2000, "at most 2000 lines whatever is asked"
    assert doc["lines"][-1].endswith("line 39999 of the old log")
    doc = get(server, "log", level="WARNING", q="line 399").doc
    assert doc["lines"] and all("WARNING" in line and "line 399" in line for line in doc["lines"])
    with log.open("a") as fh:
        fh.write("2026-01-01 10:00:01,000 ERROR   plexcache.mover: disk full on cache\n")
    doc = get(server, "log", offset=doc["offset"]).doc
    assert [line.split(": ", 1)[1] for line in doc["lines"]] == ["disk full on cache"]


# --- the harness itself ----------------------------------------------------------------------------------


def test_stopping_the_server_leaves_no_process_behind(tmp_path: Path) -> None:
    """php -S and its workers are one process group, killed whole; a CLI call in flight (`timeout` gives it a
    group of its own) and a detached job the page started (its own session) are killed too. The session-wide
    check in conftest.py relies on the same leaks.survivors()."""
    import contextlib
    import threading

    from pages_harness import leaks

    box = make_sandbox(tmp_path)
    box.extra_env.update(PCR_FAKE_STEP="5", PCR_FAKE_STATUS_WAIT="30")   # both still busy when the server stops
    with Server(box) as server:
        assert post(server, box.token, "run").doc["started"]
        def ask_status() -> None:
            with contextlib.suppress(OSError):   # the server goes away mid-answer
                call(server, "GET", {"action": "status"}, timeout=60)

        slow = threading.Thread(target=ask_status, daemon=True)
        slow.start()
        mine = server.marker   # other tests' servers may be running beside this one
        busy = lambda: [cmd for _, cmd in leaks.survivors(mine) if "fake_cli.py" in cmd]  # noqa: E731
        assert wait_for(lambda: any(" run" in c for c in busy()) and any(" status" in c for c in busy()))
        assert sum("php" in cmd and "-S" in cmd for _, cmd in leaks.survivors(mine)) > 1, "the server, its workers"
    assert leaks.survivors(mine) == []
    slow.join(seconds(30))
    assert not slow.is_alive()


def test_the_log_filters_by_date_range_and_by_run(served: tuple[Sandbox, Server]) -> None:
    """Each line names its run (the process that wrote it); the tail lists the runs it saw, and keeps only the
    lines of one run, or of a date range (a day, or down to the minute), with a traceback kept with its line."""
    box, server = served
    log = box.path("log_dir") / "plexcache-r.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    lines = ["2026-03-01 09:00:00,000 INFO    [101] plexcache.engine: run one starts",
             "2026-03-01 09:05:00,000 ERROR   [101] plexcache.mover: copy failed",
             "Traceback (most recent call last): of run one",
             "2026-03-02 23:59:59,000 INFO    [202] plexcache.engine: run two starts",
             "2026-03-03 00:00:01,000 INFO    [202] plexcache.engine: run two ends",
             "2026-03-04 10:00:00,000 INFO    plexcache.engine: a line from before runs were named"]
    log.write_text("\n".join(lines) + "\n")
    every = get(server, "log").doc
    assert every["lines"] == lines
    assert every["runs"] == [{"id": "101", "first": "2026-03-01 09:00:00", "last": "2026-03-01 09:05:00"},
                             {"id": "202", "first": "2026-03-02 23:59:59", "last": "2026-03-03 00:00:01"}]
    assert get(server, "log", run="101").doc["lines"] == lines[:3]
    assert get(server, "log", **{"from": "2026-03-02", "to": "2026-03-02"}).doc["lines"] == lines[3:4]
    assert get(server, "log", **{"from": "2026-03-01T09:01", "to": "2026-03-03T00:00"}).doc["lines"] == lines[1:5]
    assert get(server, "log", run="202", level="ERROR").doc["lines"] == []
    assert get(server, "log", run="x;1").status == 400
