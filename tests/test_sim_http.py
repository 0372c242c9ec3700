"""plexcache.http: the session factory's redirect seam, request counting and default timeout."""

from __future__ import annotations

import pytest
import requests

from plexcache.http import PLEX_HOSTS, RedirectAdapter, count_requests, make_session
from realtime import seconds


def test_rewrite_rules():
    a = RedirectAdapter("http://127.0.0.1:5000", 5)
    assert a.rewrite("https://plex.tv/api/v2/user?x=1") == "http://127.0.0.1:5000/_h/plex.tv/api/v2/user?x=1"
    assert a.rewrite("https://discover.provider.plex.tv/library/sections/watchlist/all") == \
        "http://127.0.0.1:5000/_h/discover.provider.plex.tv/library/sections/watchlist/all"
    assert a.rewrite("https://rss.plex.tv/abc") == "http://127.0.0.1:5000/_h/rss.plex.tv/abc"
    assert a.rewrite("https://metadata.provider.plex.tv") == "http://127.0.0.1:5000/_h/metadata.provider.plex.tv/"
    assert a.rewrite("http://192.168.1.2:32400/library") == "http://192.168.1.2:32400/library"


def test_plexapi_hosts_are_covered():
    import pathlib
    import re

    import plexapi
    src = "".join(p.read_text() for p in pathlib.Path(plexapi.__file__).parent.glob("*.py"))
    hosts = set(re.findall(r"https://([a-z.]*plex\.tv)[/'\"]", src))
    # documentation links only, never requested
    hosts -= {"support.plex.tv", "forums.plex.tv", "developer.plex.tv"}
    assert hosts <= set(PLEX_HOSTS)


def test_redirect_counts_and_no_redirect_by_default(sim, monkeypatch):
    s = make_session(timeout=seconds(5))
    r = s.get("https://plex.tv/api/v2/user", headers={"X-Plex-Token": sim.owner_token})
    assert r.status_code == 200 and "<user " in r.text
    r = s.get("https://rss.plex.tv/0f4e9a1c-demo-own")
    assert "<rss" in r.text and "<category>movie</category>" in r.text
    assert count_requests(s) == 2
    assert [q.host for q in sim.requests] == ["plex.tv", "rss.plex.tv"]
    monkeypatch.delenv("PLEXCACHE_PLEX_REDIRECT")
    plain = make_session(timeout=seconds(5))
    with pytest.raises(requests.exceptions.ConnectionError):
        plain.get("https://plex.tv/api/v2/user")  # the test safety net refuses the real host
    assert count_requests(plain) == 1  # a request that failed was still sent: it counts


def test_rss_json_and_friends_feed(sim, plex_session):
    own = plex_session.get("https://rss.plex.tv/0f4e9a1c-demo-own?format=json").json()
    assert [i["title"] for i in own["items"]] == ["Dune", "Oppenheimer"]
    assert "imdb://tt15398776" in own["items"][1]["guids"]
    friends = plex_session.get("https://rss.plex.tv/7b2d5e80-demo-friends").text
    assert "<title>Shogun</title>" in friends and "<author>2001</author>" in friends


def test_default_timeout_applies(sim):
    sim.inject("/status/sessions", "timeout", times=1)
    s = make_session(timeout=0.2)
    with pytest.raises(requests.exceptions.Timeout):
        s.get(f"{sim.url}/status/sessions", headers={"X-Plex-Token": sim.owner_token})


def test_sim_serve_subprocess(tmp_path):
    """`plexcache-r sim serve` prints its URL and answers PMS, plex.tv and control requests until stopped."""
    import subprocess
    import sys
    from pathlib import Path

    world = Path(__file__).resolve().parents[1] / "source/python/plexcache/sim/scenarios/demo.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "plexcache", "sim", "serve", "--world", str(world), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        url = first.rsplit(" at ", 1)[1].strip()
        assert requests.get(f"{url}/identity", timeout=seconds(5)).status_code == 200
        r = requests.get(f"{url}/_h/plex.tv/api/users/", headers={"X-Plex-Token": "tok-admin"}, timeout=seconds(5))
        assert r.text.count("<User ") == 4
        log = requests.get(f"{url}/_sim/log", timeout=seconds(5)).json()
        assert [e["path"] for e in log] == ["/identity", "/api/users/"]
    finally:
        proc.terminate()
        proc.wait(timeout=seconds(10))
        proc.stdout.close()


def test_a_client_hanging_up_mid_request_leaves_no_traceback(sim, capfd):
    """A run killed on purpose (the soak, the crash tests) resets its connection: the simulator goes on
    without printing a traceback for it, and still answers the next client."""
    import socket
    import struct

    host, port = sim.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=seconds(5)) as conn:
        conn.sendall(b"GET /identity HTTP/1.1\r\nHost: x\r\n")  # headers not finished: the server is reading
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends a reset
    assert requests.get(f"{sim.url}/identity", timeout=seconds(5)).ok
    assert "Traceback" not in capfd.readouterr().err
