"""The simulator against real Plex: each endpoint the product reads, served and compared with a recording.

For every endpoint a recording covers (tests/data/plex/, origins in its README), the simulator serves the same
request in the same form (XML or JSON) and must have every element and attribute the recording has, with values
of the same kind (integers as integers, booleans as 0/1 in XML and true/false in JSON, timestamps as epoch
seconds, rating keys as strings of digits; see simshape.py). Anything the recording has and the simulator lacks
is a difference unless it is listed below as deliberately absent, with the reason. Where only a schema exists
(the community spec's discover watchlist), the direction is reversed: everything the simulator serves must be
a property the schema names, or be listed with the reason it is served anyway.

docs/scenario.md ("Checked against real Plex") says which recording each endpoint is checked against and what
no recording covers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from realtime import seconds
from simshape import Shape, differences, json_shape, kind_clash, schema_shape, xml_shape

DATA = Path(__file__).parent / "data" / "plex"
KNOWN = set((DATA / "attribute_names.txt").read_text().split())
# Seen only in go-plex-client's shared_servers test strings (shape reference, MIT; not copied).
KNOWN |= {"invitedAt", "shared"}

# Detail a file cache never reads and the simulated world does not model; plexapi reads each lazily.
NOT_MODELLED = {
    "Extras": "trailers and other extras: simulated items have none",
    "Similar": "similar-title tags (recommendations)",
    "Review": "critics' reviews",
    "Rating": "per-source ratings (the item's rating attributes are served)",
    "Preferences": "per-item agent settings",
    "Collection": "collections: the simulated libraries have none",
    "Image": "artwork list of recent PMS versions (thumb and art attributes are served)",
    "MediaContainer@augmentationKey": "online extras lookup of recent PMS versions",
}
# The attributes a real server adds only for some media or some setups.
VALUE_DEPENDENT = {
    "Stream@anamorphic": "only for anamorphic video",
    "Stream@pixelAspectRatio": "only for anamorphic video",
    "Part@hasThumbnail": "only once Plex has made video preview thumbnails (off by default)",
    "Directory@primaryExtraKey": "only for a show with a trailer or theme extra",
    "Part@has64bitOffsets": "only for MP4 files (the simulated files are MKV)",
    "Part@optimizedForStreaming": "as Part@has64bitOffsets",
    "@pin": "only for a PIN-protected account: a digest of its PIN",
    "services@secret": "only the lyrics provider's entry carries a secret",
}


@dataclass(frozen=True)
class Case:
    """One endpoint against one recording. `path` may name {arrival}, {severance}, {season}, {machine} or {pin}
    (a new sign-in PIN)."""

    source: str
    path: str
    form: str = "xml"  # xml | json | json:ROOT (a bare plex.tv object or list)
    user: str = "admin"
    method: str = "GET"
    schema: str = ""  # for sources holding a schema: the operation in mit_spec_extract.json, or "yaml"
    absent: dict[str, str] = field(default_factory=dict)
    items_only: bool = False  # the recording lists the same items under another container (a season's)


SESSION_ABSENT = {
    "Part@width": "the recorded session transcodes; simulated sessions direct-play, and Plex puts the output's "
                  "size on the Part only when it transcodes",
    "Part@height": "as Part@width",
    "Part@optimizedForStreaming": "as Part@width",
    "Stream@bitrateMode": "as Part@width (the transcoded audio's mode)",
}

CASES = {
    # ------------------------------------------------------------------ PMS, XML (home-assistant, recorded)
    "root": Case("plex_server_base.xml", "/"),
    "sections": Case("library_sections.xml", "/library/sections"),
    "shows": Case("library_tvshows_all.xml", "/library/sections/2/all?type=2&includeGuids=1", absent={
        "MediaContainer@sortAsc": "an older PMS's listing attribute; the JSON recording of the same listing "
                                  "(rs_tv_library.json) has none",
        "MediaContainer@title": "as sortAsc: older PMS versions named the listing here (title1/title2 are served)",
        **VALUE_DEPENDENT}),
    "on deck (empty)": Case("empty_library.xml", "/library/onDeck"),
    "sessions": Case("session_base.xml", "/status/sessions", absent=SESSION_ABSENT),
    "accounts": Case("plex_server_accounts.xml", "/accounts"),
    # ------------------------------------------------------------------ PMS, JSON (plex-api.rs, recorded)
    "movies": Case("rs_movie_library.json", "/library/sections/1/all?type=1&includeGuids=1", "json",
                   absent=NOT_MODELLED),
    "shows (json)": Case("rs_tv_library.json", "/library/sections/2/all?type=2&includeGuids=1", "json",
                         absent=NOT_MODELLED),
    "seasons": Case("rs_tv_seasons.json", "/library/metadata/{severance}/children", "json"),
    "episodes": Case("rs_tv_episodes.json", "/library/metadata/{season}/children", "json"),
    "all leaves": Case("rs_tv_episodes.json", "/library/metadata/{severance}/allLeaves", "json", items_only=True),
    "episodes of shows": Case("rs_tv_episodes.json", "/library/sections/2/all?type=4&show.id={severance}", "json",
                              items_only=True),
    "movie": Case("rs_metadata_108.json", "/library/metadata/{arrival}", "json", absent=NOT_MODELLED),
    "movie in progress": Case("rs_metadata_182_1.json", "/library/metadata/{arrival}", "json", user="alice",
                              absent={**NOT_MODELLED, **VALUE_DEPENDENT}),
    # ------------------------------------------------------------------ PMS, documented examples
    "root (json)": Case("official_root.json", "/", "json", absent={
        'MediaContainer@ownerFeatures"': "a typo in the document for ownerFeatures, which is served"}),
    "identity": Case("official_identity.json", "/identity", "json"),
    "sections (json)": Case("official_sections.json", "/library/sections", "json"),
    "section": Case("official_section_movie.json", "/library/sections/1", "json", absent={
        "Directory/Filter": "the filter and sort description of each type: read only by clients that "
                            "build filter menus", "Directory/Sort": "as Directory/Filter"}),
    "hub search": Case("official_hubs_search.json", "/hubs/search?query=s&limit=3", "json", absent={
        "Hub/Directory": "the document's example lists its show under Directory; PMS's JSON puts every item "
                         "with a ratingKey under Metadata (as every recorded listing here), and so does the simulator",
        "Hub/Directory@more": "as Hub/Directory",
        "Hub/Metadata@more": "only in the document's hand-made example (its items carry no ratingKey either); the "
                             "hub's own `more` says whether it has more items"}),
    "sessions (json)": Case("official_sessions.json", "/status/sessions", "json", absent={
        "@details": "the document's placeholder for the attributes it omits"}),
    # with includeGuids=1, as plexapi asks (the example lists the episode's external ids)
    "on deck, next episode": Case("mit_library_ondeck.yaml", "/library/onDeck?includeGuids=1", "json",
                                  user="partner", schema="yaml"),
    "recently added": Case("mit_spec_extract.json", "/library/recentlyAdded", "json",
                           schema="GET /library/recentlyAdded", absent={
                               **VALUE_DEPENDENT, "MediaContainer/Type": "the filter description PMS adds for "
                               "includeMeta=1, which the product never asks for",
                               "MediaContainer/FieldType": "as MediaContainer/Type"}),
    # ------------------------------------------------------------------ plex.tv
    "account": Case("plextv_account.xml", "/_h/plex.tv/api/v2/user"),
    "account (json, Plex Pass)": Case("rs_user_info_plexpass.json", "/_h/plex.tv/api/v2/user", "json:user",
                                      absent=VALUE_DEPENDENT),
    "account (json, free)": Case("rs_user_info_free.json", "/_h/plex.tv/api/v2/user", "json:user", user="alice",
                                 absent=VALUE_DEPENDENT),
    "users": Case("plextv_shared_users.xml", "/_h/plex.tv/api/users/"),
    "resources": Case("rs_resources.json", "/_h/plex.tv/api/v2/resources", "json:resource"),
    "pin": Case("mit_spec_extract.json", "/_h/plex.tv/api/v2/pins", "json:pin", method="POST",
                schema="POST https://plex.tv/api/v2/pins"),
    "pin check": Case("mit_spec_extract.json", "/_h/plex.tv/api/v2/pins/{pin}", "json:pin",
                      schema="GET https://plex.tv/api/v2/pins/{pinID}"),
}

WATCHLIST_SCHEMA = "GET https://discover.provider.plex.tv/library/sections/watchlist/{filter}"
# Served on discover watchlist items beyond the community spec's list, and why.
WATCHLIST_EXTRA = {
    "Metadata/Guid": "the external ids, which discover sends with includeGuids=1 (the product matches by them)",
    "Metadata@titleSort": "plexapi reads it; without it plexapi would fetch the item again",
    "Metadata@primaryExtraKey": "as titleSort",
    "Metadata@librarySectionTitle": "as titleSort",
    "Metadata@librarySectionID": "as titleSort",
    "Metadata@librarySectionKey": "as titleSort",
}


def _load(case: Case) -> Shape:
    shape = _read(case)
    if case.items_only:
        shape = {p: a for p, a in shape.items() if p != "MediaContainer"}
    return shape


def _read(case: Case) -> Shape:
    raw = (DATA / case.source).read_text()
    if case.schema == "yaml":
        op = yaml.safe_load(raw)["get"]["responses"]["200"]["content"]["application/json"]
        return schema_shape(op["schema"])
    if case.schema:
        return schema_shape(json.loads(raw)["responses"][case.schema]["schema"], case.form.partition(":")[2])
    if case.form == "xml":
        # home-assistant's templates: fill their placeholders with values of the right kind
        return xml_shape(raw.replace("{user_id}", "1").replace("{name}", "x").replace("{machine_identifier}", "y"))
    return json_shape(raw, case.form.partition(":")[2])


def _refs(sim) -> dict[str, object]:
    items = sim.scenario.items
    top = {it.title: rk for rk, it in items.items() if it.type in ("movie", "show")}
    return {"arrival": top["Arrival"], "severance": top["Severance"],
            "season": items[top["Severance"]].children[1], "machine": sim.scenario.server.machine_identifier}


def _serve(sim, case: Case) -> Shape:
    path = case.path.format(pin=_new_pin(sim) if "{pin}" in case.path else "", **_refs(sim))
    token = sim.token(case.user, pms=not path.startswith("/_h/"))
    headers = {"X-Plex-Token": token, "X-Plex-Client-Identifier": "conformance"}
    if case.form != "xml":
        headers["Accept"] = "application/json"
    r = requests.request(case.method, sim.url + path, headers=headers, timeout=seconds(10))
    assert r.status_code in (200, 201), f"{case.method} {path}: HTTP {r.status_code}"
    if case.form == "xml":
        return xml_shape(r.content)
    return json_shape(r.content, case.form.partition(":")[2])


def _new_pin(sim) -> int:
    r = requests.post(sim.url + "/_h/plex.tv/api/v2/pins", headers={"Accept": "application/json",
                                                                    "X-Plex-Client-Identifier": "conformance"})
    return r.json()["id"]


@pytest.fixture
def world(sim):
    """The demo household, with alice part-way through Arrival a second time and playing it (session_base.xml
    records a movie seen before being played again)."""
    sim.set_watched("alice", "Arrival", at="30d")
    sim.set_offset("alice", "Arrival", 20 * 60000, at="2h")
    sim.add_session("alice", "Arrival", offset="20m")
    return sim


@pytest.mark.parametrize("name", sorted(CASES))
def test_served_like_the_recording(world, name):
    case = CASES[name]
    ours = _serve(world, case)
    found = differences(_load(case), ours, case.absent)
    assert not found, f"{case.source} vs {case.method} {case.path}:\n  " + "\n  ".join(found)


def test_discover_watchlist_serves_only_what_the_schema_names(world):
    # the spec describes the container's contents without its MediaContainer wrapper
    schema = schema_shape(json.loads((DATA / "mit_spec_extract.json").read_text())["responses"][WATCHLIST_SCHEMA]
                          ["schema"], "MediaContainer")
    ours = _serve(world, Case("", "/_h/discover.provider.plex.tv/library/sections/watchlist/all?includeGuids=1",
                              "json"))
    assert "MediaContainer/Metadata" in ours
    invented = []
    for path, attrs in ours.items():
        short = path.removeprefix("MediaContainer/")
        if short in WATCHLIST_EXTRA:
            continue
        if path not in schema:
            invented.append(f"{path}: element")
            continue
        for attr, kinds in attrs.items():
            if f"{short}@{attr}" in WATCHLIST_EXTRA:
                continue
            if attr not in schema[path]:
                invented.append(f"{path}@{attr}")
            elif kind_clash(schema[path][attr], kinds):
                invented.append(f"{path}@{attr}: schema {sorted(schema[path][attr])}, served {sorted(kinds)}")
    assert not invented, "served beyond the community spec's list:\n  " + "\n  ".join(invented)


ALL_PATHS = ["/", "/library/sections", "/library/sections/1", "/library/sections/2/all", "/library/sections/1/onDeck",
             "/library/onDeck", "/status/sessions", "/accounts", "/library/recentlyAdded",
             "/library/metadata/{arrival}", "/library/metadata/{severance}/allLeaves",
             "/library/metadata/{season}/children", "/_h/plex.tv/api/v2/user", "/_h/plex.tv/api/users/",
             "/_h/plex.tv/api/servers/{machine}/shared_servers", "/_h/plex.tv/api/v2/resources",
             "/_h/discover.provider.plex.tv/library/sections/watchlist/all"]


@pytest.mark.parametrize("path", ALL_PATHS)
def test_every_attribute_name_is_one_plex_uses(world, path):
    """Catches misspellings: every name served is in the official PMS document, the community spec or a
    recording."""
    ours = _serve(world, Case("", path))
    unknown = {p: sorted(set(a) - KNOWN) for p, a in ours.items() if set(a) - KNOWN}
    assert not unknown, f"attribute names no Plex source knows: {unknown}"


@pytest.mark.parametrize("path", ALL_PATHS)
def test_xml_booleans_are_never_empty(world, path):
    """plexapi's cast(bool, "") raises: a boolean is 1 or 0."""
    headers = {"X-Plex-Token": world.owner_token}
    text = requests.get(world.url + path.format(**_refs(world)), headers=headers, timeout=seconds(10)).text
    for attr in ("allowSync", "refreshing", "home", "restricted", "protected", "owned", "pending", "local", "relay",
                 "selected", "default", "forced", "mixedParents", "allLibraries", "hidden"):
        assert f'{attr}=""' not in text, (path, attr)


@pytest.mark.parametrize("path", ["/library/onDeck", "/status/sessions", "/library/sections", "/accounts",
                                  "/library/sections/2/all", "/_h/plex.tv/api/users/"])
def test_json_and_xml_are_one_model(world, path):
    """Same element paths and attribute names in both forms (metadata items are "Metadata" in JSON)."""
    xml = _serve(world, Case("", path))
    js = _serve(world, Case("", path, "json"))
    renamed: dict[str, set[str]] = {}
    for p, attrs in xml.items():
        parts = p.split("/")
        if len(parts) > 1 and "ratingKey" in xml.get(f"{parts[0]}/{parts[1]}", ()):
            parts[1] = "Metadata"
        renamed.setdefault("/".join(parts), set()).update(attrs)
    assert renamed == {p: set(a) for p, a in js.items()}


@pytest.mark.parametrize("path", ["/library/sections/1/all", "/library/onDeck",
                                  "/library/metadata/{severance}/allLeaves",
                                  "/_h/discover.provider.plex.tv/library/sections/watchlist/all"])
def test_listings_carry_external_ids_only_when_asked(world, path):
    """A listing names each item's external ids (Guid) only with includeGuids=1, which plexapi adds to every
    listing it reads; a client that forgets finds none on a real server either. An item's own metadata has them."""
    plain = _serve(world, Case("", path))
    asked = _serve(world, Case("", path + "?includeGuids=1"))
    assert not any(p.endswith("/Guid") for p in plain)
    assert any(p.endswith("/Guid") for p in asked)
    assert "MediaContainer/Video/Guid" in _serve(world, Case("", "/library/metadata/{arrival}"))
