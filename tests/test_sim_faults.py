"""Fault injection: each kind, scoping by path/token/host, and the `times` budget."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import requests
from plexapi.exceptions import BadRequest, Unauthorized
from plexapi.server import PlexServer

from plexcache.http import make_session


@pytest.fixture
def plex(sim, plex_session):
    return PlexServer(sim.url, sim.owner_token, session=plex_session)


def test_status_fault_once_then_recovers(sim, plex):
    sim.inject("/library/onDeck", 500, times=1)
    with pytest.raises(BadRequest):
        plex.library.onDeck()
    assert len(plex.library.onDeck()) == 2
    rec = sim.find("/library/onDeck")
    assert [r.status for r in rec] == [500, 200] and rec[0].fault == "500"
    assert sim.errors() == []  # injected failures are not "unexpected"


def test_401_fault_only_for_one_token(sim, plex, plex_session):
    sim.inject("/library/onDeck", 401, token="pms-alice")
    assert len(plex.library.onDeck()) == 2
    alice = PlexServer(sim.url, "pms-alice", session=plex_session)
    with pytest.raises(Unauthorized):
        alice.library.onDeck()


def test_host_scoped_fault(sim, plex_session):
    sim.inject("/api/v2/user", 503, host="plex.tv")
    r = plex_session.get("https://plex.tv/api/v2/user", headers={"X-Plex-Token": sim.owner_token})
    assert r.status_code == 503
    assert requests.get(f"{sim.url}/identity").status_code == 200


def test_timeout(sim):
    sim.inject("/status/sessions", "timeout", times=1)
    s = make_session(timeout=0.3)
    with pytest.raises(requests.exceptions.Timeout):
        s.get(f"{sim.url}/status/sessions", headers={"X-Plex-Token": sim.owner_token})
    ok = s.get(f"{sim.url}/status/sessions", headers={"X-Plex-Token": sim.owner_token})
    assert ok.status_code == 200


def test_truncated_xml_fails_to_parse(sim, plex):
    sim.inject("/library/sections", "truncated")
    r = requests.get(f"{sim.url}/library/sections", headers={"X-Plex-Token": sim.owner_token})
    assert r.status_code == 200 and r.text.startswith("<?xml")
    with pytest.raises(ET.ParseError):
        ET.fromstring(r.content)
    with pytest.raises(ET.ParseError):
        plex.library.sections()


def test_garbage(sim, plex):
    sim.inject("/library/onDeck", "garbage")
    with pytest.raises(ET.ParseError):
        plex.library.onDeck()


def test_drop(sim):
    sim.inject("/accounts", "drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{sim.url}/accounts", headers={"X-Plex-Token": sim.owner_token})
    rec = sim.find("/accounts")[0]
    assert rec.status == 0 and rec.fault == "drop"


def test_glob_and_clear(sim, plex):
    sim.inject("/library/sections/*/all", 503)
    with pytest.raises(BadRequest):
        plex.library.section("Movies").all()
    sim.clear_faults()
    assert len(plex.library.section("Movies").all()) == 5


def test_unknown_fault_kind_rejected(sim):
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("/", "explode")


def test_truncated_cuts_the_real_answer(sim):
    sim.inject("/library/onDeck", "truncated", times=1)
    h = {"X-Plex-Token": sim.owner_token}
    cut = requests.get(f"{sim.url}/library/onDeck", headers=h).content
    full = requests.get(f"{sim.url}/library/onDeck", headers=h).content
    assert full.startswith(cut[:-1]) and len(cut) < len(full) and cut.endswith(b"<")
