"""Simulator payloads against recorded responses (tests/data/plex/, origins in its README).

Compared: element paths (nesting) and attribute *names*; values are never compared. Each recorded file must
be matched except for a short, documented list of things the simulator deliberately leaves out. Every
attribute the simulator emits must be a known Plex attribute name (collected from the official PMS OpenAPI
document, the MIT-era community spec and the recorded fixtures), which catches misspellings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from simshape import json_shape, xml_shape

DATA = Path(__file__).parent / "data" / "plex"
KNOWN = set((DATA / "attribute_names.txt").read_text().split())
# Seen only in go-plex-client's shared_servers test strings (shape reference, MIT; not copied).
KNOWN |= {"invitedAt", "shared"}
# plexapi's UserState attribute; also put on discover watchlist items (low confidence, see docs/scenario.md).
KNOWN |= {"watchlistedAt"}

# Left out on purpose: tag kinds and extras a cache tool never reads, and version-specific attributes.
SKIPPED_PATHS = ("Extras", "Preferences", "Review", "Similar", "Collection", "Producer", "Rating",
                 "user/subscriptions")
SKIPPED_ATTRS = {"hasPremiumPrimaryExtra", "augmentationKey", "spencer", "photoAutoTag",
                 "requestParametersInCookie", "count", "role", "thumb", "tagKey", "anamorphic", "pixelAspectRatio",
                 "hasScalingMatrix", "bitrateMode", "height", "width", "optimizedForStreaming",
                 "banner", "nocache"}


def _load_fixture(name: str):
    raw = (DATA / name).read_text()
    if name.endswith(".json"):
        return json_shape(raw)
    return xml_shape(raw.replace("{user_id}", "1").replace("{name}", "x").replace("{machine_identifier}", "y"))


def _rk(sim, title):
    return next(rk for rk, it in sim.scenario.items.items() if it.title == title and it.type in ("movie", "show"))


def _cases(sim):
    sev = _rk(sim, "Severance")
    season = sim.scenario.items[sev].children[0]
    arrival = _rk(sim, "Arrival")
    mid = sim.scenario.server.machine_identifier
    return [
        ("library_sections.xml", "/library/sections", False),
        ("session_base.xml", "/status/sessions", False),
        ("plex_server_accounts.xml", "/accounts", False),
        ("plex_server_base.xml", "/", False),
        ("plextv_account.xml", "/_h/plex.tv/api/v2/user", False),
        ("plextv_shared_users.xml", "/_h/plex.tv/api/users/", False),
        ("rs_movie_library.json", "/library/sections/1/all", True),
        ("rs_tv_library.json", "/library/sections/2/all", True),
        ("rs_tv_seasons.json", f"/library/metadata/{sev}/children", True),
        ("rs_tv_episodes.json", f"/library/metadata/{season}/children", True),
        ("rs_metadata_108.json", f"/library/metadata/{arrival}", True),
        ("rs_metadata_182_1.json", f"/library/metadata/{arrival}", True),
        ("official_identity.json", "/identity", True),
        (None, f"/_h/plex.tv/api/servers/{mid}/shared_servers", False),
        (None, "/_h/discover.provider.plex.tv/library/sections/watchlist/all", False),
        (None, "/_h/plex.tv/api/v2/resources", False),
        (None, "/library/onDeck", False),
        (None, f"/library/metadata/{sev}/allLeaves", False),
    ]


def _fetch(sim, path, as_json):
    headers = {"X-Plex-Token": sim.owner_token}
    if as_json:
        headers["Accept"] = "application/json"
    r = requests.get(sim.url + path, headers=headers)
    assert r.status_code == 200, path
    return json_shape(r.content) if as_json else xml_shape(r.content)


def _skipped(path: str) -> bool:
    return any(part in SKIPPED_PATHS for part in path.split("/")) or any(path.endswith(p) for p in SKIPPED_PATHS)


@pytest.fixture
def movie_session(sim):
    """session_base.xml records a movie being played: play one too."""
    sim.remove_session()
    sim.add_session("alice", "Arrival", offset="20m")
    sim.set_watched("alice", "Arrival", at="30d")
    sim.set_offset("alice", "Arrival", 20 * 60000)
    return sim


@pytest.mark.parametrize("index", range(18))
def test_shape_matches_recording(movie_session, index):
    sim = movie_session
    fixture, path, as_json = _cases(sim)[index]
    ours = _fetch(sim, path, as_json)
    unknown = {p: sorted(a - KNOWN) for p, a in ours.items() if a - KNOWN}
    assert not unknown, f"attribute names no Plex source knows: {unknown}"
    if fixture is None:
        return
    recorded = _load_fixture(fixture)
    missing_paths = [p for p in recorded if p not in ours and not _skipped(p)]
    assert not missing_paths, f"{fixture}: elements the simulator lacks: {missing_paths}"
    for p, attrs in recorded.items():
        if _skipped(p) or p not in ours:
            continue
        lacking = attrs - ours[p] - SKIPPED_ATTRS
        # an episode has no movie-only attributes and vice versa; sessions are compared on a movie
        assert not lacking, f"{fixture} {p}: attributes the simulator lacks: {sorted(lacking)}"


def test_every_endpoint_xml_parses_and_has_no_empty_booleans(sim):
    bool_attrs = {"allowSync", "refreshing", "home", "restricted", "protected", "owned", "pending", "local",
                  "relay", "selected", "default", "forced", "mixedParents", "allLibraries"}
    for _, path, _ in _cases(sim):
        r = requests.get(sim.url + path, headers={"X-Plex-Token": sim.owner_token})
        for attr in bool_attrs:
            assert f'{attr}=""' not in r.text, (path, attr)


@pytest.mark.parametrize("path", ["/library/onDeck", "/status/sessions", "/library/sections", "/accounts",
                                  "/library/sections/2/all", "/_h/plex.tv/api/users/"])
def test_json_and_xml_are_one_model(sim, path):
    """Same element paths and attribute names in both forms (metadata items are "Metadata" in JSON)."""
    xml = _fetch(sim, path, False)
    js = _fetch(sim, path, True)
    renamed = {}
    for p, attrs in xml.items():
        parts = p.split("/")
        if len(parts) > 1 and "ratingKey" in xml.get(f"{parts[0]}/{parts[1]}", ()):
            parts[1] = "Metadata"
        renamed.setdefault("/".join(parts), set()).update(attrs)
    assert renamed == js
