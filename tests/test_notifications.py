"""Plex's notification channel: the simulator's websocket as plexapi's alert listener sees it, and the
rules by which live mode decides that a notification is worth a look at Plex."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import requests
from plexapi.server import PlexServer

from plexcache.live import Notifications, Playback
from plexcache.sim.websocket import CLOSE, PING, PONG, accept_key, frame, read_frame
from realtime import wait_for

PATH = "/:/websockets/notifications"


@pytest.fixture
def alerts(sim, plex_session):
    """plexapi's own alert listener on the simulator, collecting every notification container."""
    received: list[dict] = []
    server = PlexServer(sim.url, sim.owner_token, session=plex_session)
    listener = server.startAlertListener(callback=received.append)
    assert wait_for(lambda: sim.notifications.open_channels == 1)
    yield received
    listener.stop()


def test_rfc6455_accept_key_and_frames():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # the RFC's own example
    assert frame(b"Hi") == b"\x81\x02Hi"
    assert frame(b"x" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert frame(b"x" * 70000)[:2] == b"\x81\x7f" and len(frame(b"x" * 70000)) == 70000 + 10


def test_a_play_and_its_end_arrive_as_playing_notifications(sim, alerts):
    sid = sim.add_session("bob", "Severance S01E01", offset="1m")
    sim.remove_session(sid)
    assert wait_for(lambda: len(alerts) == 2)
    start, end = (a["PlaySessionStateNotification"][0] for a in alerts)
    assert [a["type"] for a in alerts] == ["playing", "playing"]
    assert (start["state"], end["state"]) == ("playing", "stopped")
    assert start["sessionKey"] == end["sessionKey"] and start["viewOffset"] == 60_000
    sessions = requests.get(f"{sim.url}/status/sessions", headers={"X-Plex-Token": sim.owner_token,
                                                                   "Accept": "application/json"}).json()
    assert sessions["MediaContainer"]["size"] == 1  # alice's session from the scenario; bob's has ended


def test_session_keys_stay_stable_when_another_session_ends(sim):
    first = sim.add_session("bob", "Severance S01E01")
    sim.add_session("partner", "Slow Horses S01E01")
    before = {m["ratingKey"]: m["sessionKey"] for m in _sessions(sim)}
    sim.remove_session(first)
    after = {m["ratingKey"]: m["sessionKey"] for m in _sessions(sim)}
    assert all(before[rk] == key for rk, key in after.items())


def _sessions(sim) -> list[dict]:
    doc = requests.get(f"{sim.url}/status/sessions", headers={"X-Plex-Token": sim.owner_token,
                                                             "Accept": "application/json"}).json()
    return doc["MediaContainer"].get("Metadata", [])


def test_new_episodes_are_announced_created_then_processed(sim, alerts):
    new = sim.add_episodes("Slow Horses", 2, 2)
    assert wait_for(lambda: len(alerts) == 2)
    assert [a["type"] for a in alerts] == ["timeline", "timeline"]
    states = [[(e["itemID"], e["type"], e["state"]) for e in a["TimelineEntry"]] for a in alerts]
    assert states == [[(rk, 4, 0) for rk in new], [(rk, 4, 5) for rk in new]]


@pytest.mark.sim_errors_ok
def test_the_channel_needs_a_token_and_an_upgrade(sim):
    assert requests.get(f"{sim.url}{PATH}").status_code == 401
    assert requests.get(f"{sim.url}{PATH}", headers={"X-Plex-Token": sim.owner_token}).status_code == 400


def test_ping_close_and_a_dropped_channel(sim):
    """A raw client: the server answers a ping, ends on close, and a drop ends every channel."""
    host, port = sim.url.rsplit("/", 1)[-1].split(":")

    def connect() -> socket.socket:
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall((f"GET {PATH}?X-Plex-Token={sim.owner_token} HTTP/1.1\r\nHost: {host}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        return sock

    def masked(payload: bytes, opcode: int) -> bytes:
        key = b"\x01\x02\x03\x04"
        return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + bytes(
            b ^ key[i % 4] for i, b in enumerate(payload))

    sock = connect()
    sock.sendall(masked(b"are you there", PING))
    assert read_frame(sock) == (PONG, b"are you there")
    sim.add_session("bob", "Heat")
    opcode, body = read_frame(sock)
    assert opcode == 0x1 and json.loads(body)["NotificationContainer"]["type"] == "playing"
    sock.sendall(masked(b"\x03\xe8", CLOSE))
    assert read_frame(sock)[0] == CLOSE
    sock.close()
    assert wait_for(lambda: sim.notifications.open_channels == 0)

    sock = connect()
    assert wait_for(lambda: sim.notifications.open_channels == 1)
    sim.drop_notifications()
    assert read_frame(sock)[0] == CLOSE
    sock.close()


# ---------------------------------------------------------------- what live mode makes of them


def playing(key: str, rating_key: str, state: str = "playing") -> dict:
    return {"type": "playing", "size": 1, "PlaySessionStateNotification": [
        {"sessionKey": key, "ratingKey": rating_key, "state": state, "viewOffset": 0}]}


def timeline(kind: int, state: int, identifier: str = "com.plexapp.plugins.library") -> dict:
    return {"type": "timeline", "size": 1, "TimelineEntry": [
        {"identifier": identifier, "itemID": 9, "sectionID": 2, "type": kind, "state": state}]}


@pytest.mark.parametrize(("notes", "wanted"), [
    ([playing("7", "100")], (True, False)),                          # a new playback
    ([playing("1", "10")], (False, False)),                          # progress of one a poll has seen
    ([playing("1", "11")], (True, False)),                           # the same session moved on
    ([playing("1", "10", "stopped"), playing("1", "10")], (True, False)),  # stopped, then played again
    ([playing("1", "10", "paused")], (False, False)),
    ([timeline(4, 5)], (True, True)),                                # a new episode is ready
    ([timeline(1, 5)], (True, True)),                                # a new movie is ready
    ([timeline(4, 0)], (False, False)),                              # created, metadata not there yet
    ([timeline(2, 5)], (False, False)),                              # a show's own entry
    ([timeline(4, 5, "com.plexapp.system")], (False, False)),
    ([{"type": "activity", "size": 1}, {"type": "status", "size": 1}], (False, False)),
])
def test_which_notifications_call_for_a_look(notes, wanted):
    channel = Notifications(threading.Event())
    channel.observe({"1": Playback("alice", "10", "episode", "Show S01E01")})
    for note in notes:
        channel.on_alert(note)
    assert channel.take() == wanted
    assert channel.wake.is_set() == wanted[0]
    assert channel.take() == (False, False)  # taken once
    assert channel.received == len(notes)


def test_a_dropped_channel_is_not_logged_as_an_error(tmp_path):
    """plexapi reports every end of the channel as an error; the log keeps other plexapi errors."""
    import logging

    from plexcache import config as cfg
    from plexcache import logsetup

    root, level = logging.getLogger(), logging.getLogger().level
    logsetup.configure(cfg.from_mapping({"paths": {"log_dir": str(tmp_path)}}), quiet=True)
    try:
        logging.getLogger("plexapi").error("AlertListener Error: Connection to remote host was lost.")
        logging.getLogger("plexapi").error("Unknown search field: foo")
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_plexcache", False)]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    text = (tmp_path / logsetup.LOG_NAME).read_text()
    assert "Unknown search field" in text and "AlertListener" not in text
