"""Fuzzing discovery with damaged Plex answers: real payloads from the simulator, mutated on the way in.

One response of a full discovery run (any of them: PMS XML, plex.tv XML or JSON, the RSS feed) is damaged:
truncated, replaced by garbage, an error status, an attribute dropped or given a value of the wrong type, an
element removed. `plex.discover` must never raise, and must never lose demand silently: every item the
undamaged run found is either still there or all of its users' demand is marked unknown (an Unknown is what
stops the planner from moving files back on that user's account). A damaged answer is Plex's doing, never a
bug of this program: no Unknown may call it an internal error.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Optional

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import scenario_path
from plexcache import config as cfg
from plexcache.demand import Demand
from plexcache.http import make_session
from plexcache.plex import discover
from plexcache.sim.sandbox import build_tree
from plexcache.sim.scenario import load
from plexcache.sim.server import SimServer

pytestmark = pytest.mark.slow   # real cycles, many subprocesses or many examples

ATTR = re.compile(rb'\s([A-Za-z_][\w:.-]*)="([^"]*)"')
SELF_CLOSING = re.compile(rb"<[A-Za-z][^<>]*/>")
JUNK = [b"", b"abc", b"-1", b"1e400", b"NaN", b"99999999999999999999999", b"null", b"0", b"/", b"..", b"&amp;"]
STRUCTURAL = ("truncate", "garbage", "status", "empty")


class Damage:
    """Which response (by order) to damage, and how."""

    def __init__(self, index: int, kind: str, pick: int, junk: bytes, cut: float, status: int) -> None:
        self.index, self.kind, self.pick, self.junk, self.cut, self.status = index, kind, pick, junk, cut, status
        self.seen = 0
        self._count = threading.Lock()  # discovery reads in parallel: two answers must never get the same number
        self.applied: Optional[str] = None
        self.attr: Optional[str] = None   # the attribute (or JSON key) damaged, for the attribute kinds

    def __repr__(self) -> str:
        return f"Damage({self.index}, {self.kind}, pick={self.pick}, junk={self.junk!r}, cut={self.cut:.2f})"

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        with self._count:
            n, self.seen = self.seen, self.seen + 1
        if n != self.index:
            return response
        body = response.content
        self.applied = f"{self.kind} {response.request.method} {response.request.path_url.split('?')[0]}"
        if self.kind == "truncate":
            response._content = body[: int(len(body) * self.cut)]
        elif self.kind == "garbage":
            response._content = b"<MediaContainer><Video \x00\xff" + self.junk
        elif self.kind == "empty":
            response._content = b""
        elif self.kind == "status":
            response.status_code, response._content = self.status, b"<html>error</html>"
        elif self.kind in ("drop_attr", "retype_attr"):
            response._content = self._attr(body)
        elif self.kind == "drop_element":
            found = list(SELF_CLOSING.finditer(body))
            if found:
                m = found[self.pick % len(found)]
                self.attr = "<" + re.split(rb"[\s/>]", m.group()[1:], maxsplit=1)[0].decode() + ">"
                response._content = body[:m.start()] + body[m.end():]
        return response

    def _attr(self, body: bytes) -> bytes:
        if body.lstrip().startswith((b"{", b"[")):
            return self._json_attr(body)
        found = list(ATTR.finditer(body))
        if not found:
            return body
        m = found[self.pick % len(found)]
        self.attr = m.group(1).decode()
        if self.kind == "drop_attr":
            return body[:m.start()] + body[m.end():]
        return body[:m.start(2)] + self.junk + body[m.end(2):]

    def _json_attr(self, body: bytes) -> bytes:
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        spots: list[tuple[dict, str]] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    spots.append((node, k))
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(doc)
        if spots:
            holder, key = spots[self.pick % len(spots)]
            self.attr = key
            if self.kind == "drop_attr":
                del holder[key]
            else:
                holder[key] = self.junk.decode("latin-1")
        return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The demo household with every demand source on, and what an undamaged discovery finds."""
    mp = pytest.MonkeyPatch()
    scenario = load(scenario_path("demo"))
    sim = SimServer(scenario, timeout_sleep=0.2)
    url = sim.start()
    mp.setenv("PLEXCACHE_PLEX_REDIRECT", url)
    sb = build_tree(tmp_path_factory.mktemp("fuzzplex"), scenario)
    doc = cfg.merge(sb.settings_dict(url, sim.owner_token),
                    {"users": {"friends": {"on_deck": True, "watchlist": True}, "remote_watchlist_rss": True,
                               "rss_url": f"https://rss.plex.tv/{scenario.rss.get('friends', 'x')}"},
                     "plex": {"timeout": 2}})
    settings_ = cfg.from_mapping(doc)
    baseline = discover(settings_, session_factory=make_session, now=sim.world.now)
    yield sim, settings_, baseline
    sim.stop()
    mp.undo()


def _users_of(demand: Demand, rating_key: str) -> set[str]:
    return {r.user for r in demand.items[rating_key].reasons}


kinds = st.sampled_from(["truncate", "garbage", "status", "empty", "drop_attr", "retype_attr", "drop_element"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, 60), kind=kinds, pick=st.integers(0, 10_000), junk=st.sampled_from(JUNK),
       cut=st.floats(0.0, 0.99), status=st.sampled_from([400, 401, 403, 404, 429, 500, 503, 599]))
def test_damaged_answer_never_crashes_and_never_loses_demand_silently(world, index, kind, pick, junk, cut, status):
    sim, settings_, baseline = world
    index %= max(1, baseline.requests)
    damage = Damage(index, kind, pick, junk, cut, status)

    def factory(timeout: float) -> requests.Session:
        session = make_session(timeout)
        session.hooks["response"].append(damage.hook)
        return session

    demand = discover(settings_, session_factory=factory, now=sim.world.now)  # must not raise
    assert isinstance(demand, Demand)
    bugs = [u for u in demand.unknown if "internal error" in u.error]
    assert not bugs, f"{damage} ({damage.applied}): a damaged answer reported as a bug of this program: {bugs}"
    for item in demand.items.values():
        assert item.plex_files and all(isinstance(f, str) and f.startswith("/") for f in item.plex_files), item
    lost = [(rk, baseline.items[rk].title, sorted(_users_of(baseline, rk))) for rk in baseline.items
            if rk not in demand.items
            and not all(demand.user_unknown(u) for u in _users_of(baseline, rk))]
    if kind in STRUCTURAL:
        assert not lost, f"{damage} ({damage.applied}): demand lost without an Unknown: {lost}"
    elif lost:
        assert damage.attr in MAY_LOSE_ITEMS, f"{damage} ({damage.applied}): {damage.attr!r} damaged lost {lost}"


# A well-formed answer may lose an item silently only when what is missing or wrong is what names the item
# and its file (file, ratingKey, type) or where an episode sits in its show (the next episodes are counted
# from it); and, as found here, a user's `home` flag (Paddington 2, on a home user's watchlist) and a
# watchlist entry's `title` (the kid's Bluey episodes).
MAY_LOSE_ITEMS = {"file", "ratingKey", "type", "grandparentRatingKey", "parentIndex", "index", "home", "title"}
# Attributes of the answers discovery reads, none of which may lose an item when a server leaves it out.
NEVER_LOSE_ITEMS = ["addedAt", "duration", "grandparentKey", "grandparentTitle", "guid", "id", "key",
                    "lastViewedAt", "librarySectionID", "machineIdentifier", "parentRatingKey", "parentTitle",
                    "size", "username", "viewCount", "viewOffset", "year"]


def _rewrite_everywhere(name: str, value: Optional[str] = None) -> Any:
    """A response hook taking attribute (or JSON key) `name` out of every element of every answer, or giving it
    `value` wherever it is present."""
    attr = re.compile(rb"(\s" + re.escape(name.encode()) + rb'=)"[^"]*"')
    xml_value = b"" if value is None else rb'\1"' + value.encode() + b'"'

    def rewrite(node: Any) -> None:
        if isinstance(node, dict) and name in node:
            if value is None:
                del node[name]
            else:
                node[name] = value
        for child in node.values() if isinstance(node, dict) else node if isinstance(node, list) else ():
            rewrite(child)

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        body = response.content
        if body.lstrip().startswith((b"{", b"[")):
            doc = json.loads(body)
            rewrite(doc)
            response._content = json.dumps(doc).encode()
        else:
            response._content = attr.sub(xml_value, body)
        return response

    return hook


def _lost_when_rewritten(world: Any, name: str, value: Optional[str] = None) -> list[str]:
    sim, settings_, baseline = world

    def factory(timeout: float) -> requests.Session:
        session = make_session(timeout)
        session.hooks["response"].append(_rewrite_everywhere(name, value))
        return session

    demand = discover(settings_, session_factory=factory, now=sim.world.now)
    return [baseline.items[rk].title for rk in baseline.items if rk not in demand.items
            and not all(demand.user_unknown(u) for u in _users_of(baseline, rk))]


@pytest.mark.parametrize("name", NEVER_LOSE_ITEMS)
def test_an_answer_without_an_attribute_that_names_no_file_loses_no_item(world, name):
    assert _lost_when_rewritten(world, name) == []


@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_media_and_part_ids_of_any_value_lose_no_item(world, value):
    """Discovery names files by path and items by rating key; no `id` anywhere (Media, Part, account, user,
    library) may make an item vanish silently, whatever value a server gives it."""
    assert _lost_when_rewritten(world, "id", value) == []


def test_a_friend_whose_user_entry_lists_no_server_is_still_read_when_this_server_shares_with_them(world):
    """The user list's <Server> children and the shared-servers listing both say who may read this server;
    a friend missing from the first but given a token by the second is read (found by the fuzzer: alice's
    next episodes were lost when her <Server> element was left out)."""
    sim, settings_, baseline = world
    drop = re.compile(rb"<Server\b[^<>]*/>")

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if "plex.tv/api/users" in response.request.path_url:
            response._content = drop.sub(b"", response.content)
        return response

    def factory(timeout: float) -> requests.Session:
        session = make_session(timeout)
        session.hooks["response"].append(hook)
        return session

    demand = discover(settings_, session_factory=factory, now=sim.world.now)
    assert sorted(demand.items) == sorted(baseline.items) and not demand.unknown


@pytest.mark.parametrize("name", ["file", "ratingKey"])
def test_an_answer_without_what_names_the_files_loses_their_items(world, name):
    """What MAY_LOSE_ITEMS allows does happen: without it the items cannot be told apart."""
    assert _lost_when_rewritten(world, name)
