"""Errors that tell the truth. What Plex would not give (a transport error, a damaged answer) is unknown
demand, said in a few words and without a traceback; a bug of this program reading Plex is unknown demand
too, but named as a bug and logged with its traceback. Neither ever moves a file back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from plexcache import config as cfg
from plexcache import engine, logsetup, plex
from plexcache.demand import OTHER_USERS, SERVER
from plexcache.http import make_session
from plexcache.plex import discover
from test_plex_support import OWNER, settings_for, simulated

FRIENDS = {"users": {"friends": {"on_deck": True}}}


def slip(*_args: Any, **_kwargs: Any) -> Any:
    raise TypeError("'NoneType' object is not subscriptable")  # what a slip in this program looks like


@pytest.mark.parametrize(("helper", "patch", "part", "user"), [
    ("ordered", {}, (OWNER, "on_deck"), OWNER),  # placing an On Deck show's next episodes
    ("sessions", {}, (SERVER, "playing"), OWNER),
    ("account_users", FRIENDS, (OTHER_USERS, "users"), "alice"),
    ("library_sections", {}, (SERVER, "server"), OWNER),
])
def test_a_bug_is_unknown_demand_named_as_one_with_its_traceback(monkeypatch, caplog, helper, patch, part, user):
    monkeypatch.setattr(plex, helper, slip)
    with simulated(monkeypatch) as sim, caplog.at_level(logging.WARNING):
        demand = discover(settings_for(sim, patch), now=sim.world.now)
    found = [u for u in demand.unknown if (u.scope, u.source) == part]
    assert len(found) == 1, demand.unknown
    assert found[0].error.startswith("internal error (TypeError)") and "please report" in found[0].error
    assert "subscriptable" not in found[0].error  # the message stays in the log, which scrubs secrets
    assert demand.user_unknown(user)  # so nothing of theirs is moved back
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None and errors[0].exc_info[0] is TypeError
    assert "please report" in errors[0].getMessage()


def rewriting(path: str, old: bytes, new: bytes) -> Any:
    """A session factory whose answers to `path` have `old` replaced by `new` (a damaged but valid answer)."""

    def factory(timeout: float) -> requests.Session:
        session = make_session(timeout)

        def hook(response: requests.Response, *_args: Any, **_kwargs: Any) -> requests.Response:
            if response.request.path_url.split("?")[0].endswith(path):
                response._content = response.content.replace(old, new)
            return response

        session.hooks["response"].append(hook)
        return session

    return factory


@pytest.mark.parametrize(("path", "old", "new", "patch", "part", "error"), [
    ("/library/sections", b'key="2"', b'key="two"', {}, (SERVER, "server"), "a library without a numeric id"),
    ("/api/users/", b'home="1"', b'home="maybe"', FRIENDS, (OTHER_USERS, "users"), "home is neither true nor false"),
    ("/status/sessions", b"<MediaContainer", b"<MediaContainer><Video", {}, (SERVER, "playing"),
     "malformed XML in the response"),
    ("/", b'machineIdentifier="', b'machineIdentifier="" x="', {}, (SERVER, "server"),
     "the server did not give its identity"),
])
def test_a_damaged_answer_is_unknown_demand_without_a_traceback(monkeypatch, caplog, path, old, new, patch, part,
                                                                 error):
    with simulated(monkeypatch) as sim, caplog.at_level(logging.INFO):
        demand = discover(settings_for(sim, patch), session_factory=rewriting(path, old, new), now=sim.world.now)
    assert [(u.scope, u.source, u.error) for u in demand.unknown] == [(*part, error)]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize("fault", ["truncated", "garbage", 500, "drop"])
def test_a_transport_or_format_failure_is_never_called_a_bug(monkeypatch, caplog, fault):
    with simulated(monkeypatch) as sim, caplog.at_level(logging.INFO):
        sim.inject("/library/sections/*/onDeck", fault, host="pms")
        demand = discover(settings_for(sim), now=sim.world.now)
    assert [(u.scope, u.source) for u in demand.unknown] == [(OWNER, "on_deck")]
    assert "internal error" not in demand.unknown[0].error
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.slow
def test_a_bug_in_discovery_moves_nothing_back(sim, sandbox, monkeypatch):
    settings = cfg.from_mapping(sandbox.settings_dict(sim.url, sim.owner_token))
    engine.run_cycle(settings)
    cached = {f["path"] for f in engine.list_files(settings)["files"]}
    assert cached
    monkeypatch.setattr(plex.Discovery, "on_deck", slip)  # every user's On Deck now fails the same way
    report = engine.run_cycle(settings)
    assert report.moved_back == 0
    assert {f["path"] for f in engine.list_files(settings)["files"]} >= cached
    assert any(u["error"].startswith("internal error") for u in report.unknown)


@pytest.fixture
def logged(tmp_path) -> Iterator[Any]:
    """logsetup.configure the way the CLI calls it, with -v or without; its handlers taken off afterwards."""
    root = logging.getLogger()
    level = root.level

    def configure(verbose: int, token: str = "") -> None:
        document = {"paths": {"log_dir": str(tmp_path)}, "plex": {"token": token}}
        logsetup.configure(cfg.from_mapping(document), verbose=verbose)

    yield configure
    for handler in [h for h in root.handlers if getattr(h, "_plexcache", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


@pytest.mark.parametrize("verbose", [0, 1])
def test_the_traceback_goes_to_the_log_and_to_stderr_only_with_verbose(logged, capsys, tmp_path, verbose):
    logged(verbose)
    try:
        slip()
    except TypeError:
        logging.getLogger("plexcache.plex").exception("internal error while reading on_deck; please report it")
    stderr = capsys.readouterr().err
    assert "plexcache-r: internal error while reading on_deck; please report it" in stderr
    assert ("Traceback (most recent call last)" in stderr) == bool(verbose)
    log_text = (tmp_path / logsetup.LOG_NAME).read_text()
    assert "Traceback (most recent call last)" in log_text and "TypeError" in log_text


def test_a_traceback_is_scrubbed_of_secrets(logged, tmp_path, capsys):
    secret = "a-token-value-1234"
    logged(1, token=secret)
    try:
        raise KeyError(secret)
    except KeyError:
        logging.getLogger("plexcache.plex").exception("internal error")
    assert secret not in (tmp_path / logsetup.LOG_NAME).read_text() + capsys.readouterr().err
