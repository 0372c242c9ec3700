"""The settings-page helpers: connection test, library and user pickers, PIN sign-in."""

from __future__ import annotations

import pytest

from plexcache import config as cfg
from plexcache.errors import PlexUnavailable, UsageError
from plexcache.plex import list_libraries, list_users, test_connection
from plexcache.plexauth import POLL_SECONDS, PinLogin, poll_pin, start_pin_login, wait_for_login
from test_plex_support import OWNER, settings_for, simulated


def test_connection_reports_server_owner_and_libraries(monkeypatch):
    with simulated(monkeypatch) as sim:
        info = test_connection(settings_for(sim))
        assert info == {"ok": True, "server": {"name": "tower", "version": sim.scenario.server.version,
                                               "machine_identifier": "5f1c2a9e8b7d4c3f2a1b0c9d8e7f6a5b4c3d2e1f"},
                        "owner": OWNER, "libraries": 3}


@pytest.mark.parametrize("fault", [401, "drop", "garbage"])
def test_connection_failure_is_one_line_without_secrets(monkeypatch, fault):
    with simulated(monkeypatch) as sim:
        sim.inject("/", fault, host="pms")
        settings = settings_for(sim)
        with pytest.raises(PlexUnavailable) as err:
            test_connection(settings)
    message = str(err.value)
    assert "\n" not in message and settings.plex.token not in message
    assert err.value.exit_code == 3


def test_libraries_picker(monkeypatch):
    with simulated(monkeypatch) as sim:
        assert list_libraries(settings_for(sim)) == [
            {"id": "1", "title": "Movies", "type": "movie", "locations": ["/data/movies"]},
            {"id": "2", "title": "TV Shows", "type": "show", "locations": ["/data/tv"]},
            {"id": "3", "title": "Anime", "type": "show", "locations": ["/data/anime"]}]


def test_users_picker(monkeypatch):
    with simulated(monkeypatch) as sim:
        users = list_users(settings_for(sim))
    assert users == [{"name": OWNER, "kind": "owner", "id": "1001"},
                     {"name": "partner", "kind": "home", "id": "1002"},
                     {"name": "kid", "kind": "managed", "id": "1003"},
                     {"name": "alice", "kind": "friend", "id": "2001"},
                     {"name": "bob", "kind": "friend", "id": "2002"}]


def test_users_picker_without_plex_tv(monkeypatch):
    with simulated(monkeypatch) as sim:
        sim.inject("/api/users/", 502, host="plex.tv")
        with pytest.raises(PlexUnavailable, match="user list"):
            list_users(settings_for(sim))


def test_pin_sign_in(monkeypatch):
    with simulated(monkeypatch) as sim:
        pin = start_pin_login()
        assert len(pin.code) == 4 and pin.id
        assert poll_pin(pin) is None  # not yet entered at plex.tv/link
        sim.authorise_pin(int(pin.id))
        again = PinLogin.from_json(pin.to_json())  # the page polls from a later command
        assert poll_pin(again) == sim.owner_token
        polls = sim.find("/api/v2/pins/*", method="GET")
        assert {r.query.get("X-Plex-Client-Identifier") for r in polls} <= {None}
        assert sim.count("/api/v2/pins", method="POST") == 1


def test_pin_expired_or_unknown(monkeypatch):
    with simulated(monkeypatch):
        pin = start_pin_login()
        stale = PinLogin(id=pin.id, code=pin.code, client_id=pin.client_id, expires_at=0)
        with pytest.raises(PlexUnavailable, match="expired"):
            poll_pin(stale)
        gone = PinLogin(id="999", code="ABCD", client_id=pin.client_id, expires_at=pin.expires_at)
        with pytest.raises(PlexUnavailable, match="no longer knows"):
            poll_pin(gone)


def test_interactive_sign_in_stores_the_token_or_gives_up(monkeypatch, tmp_path):
    path = tmp_path / "settings.yaml"
    with simulated(monkeypatch) as sim:
        settings = settings_for(sim)
        settings.plex.token = ""
        cfg.save(settings, path)
        pin = start_pin_login()
        with pytest.raises(UsageError, match="not entered within 0 s"):
            wait_for_login(pin, path, timeout=0)
        pauses = []

        def pause(seconds: float) -> None:  # the user enters the code while we wait
            pauses.append(seconds)
            sim.authorise_pin(int(pin.id))

        wait_for_login(pin, path, timeout=60, pause=pause)
        assert pauses == [POLL_SECONDS] and cfg.load(path).plex.token == sim.owner_token
