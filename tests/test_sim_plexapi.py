"""python-plexapi 4.18.3 against the simulator: every call parses with no extra (auto-reload) requests."""

from __future__ import annotations

import pytest
import requests
from plexapi import base as plexapi_base
from plexapi.exceptions import NotFound, Unauthorized
from plexapi.myplex import MyPlexAccount, MyPlexPinLogin
from plexapi.server import PlexServer

from plexcache.http import count_requests
from realtime import seconds


def rk_of(sim, title):
    return next(rk for rk, it in sim.scenario.items.items() if it.title == title and it.type in ("movie", "show"))


@pytest.fixture
def plex(sim, plex_session):
    server = PlexServer(sim.url, sim.owner_token, session=plex_session)
    sim.reset_log()
    return server


def test_root_and_sections(sim, plex):
    assert plex.friendlyName == "tower"
    assert plex.machineIdentifier == sim.scenario.server.machine_identifier
    sections = plex.library.sections()
    assert [(s.title, s.type) for s in sections] == [("Movies", "movie"), ("TV Shows", "show"), ("Kids TV", "show")]
    assert sections[1].locations == ["/data/tv"]
    assert sim.paths() == ["GET pms/library", "GET pms/library/sections"]


def test_movies_all_with_parts_guids_and_no_reload(sim, plex):
    movies = plex.library.section("Movies").all()
    heat = next(m for m in movies if m.title == "Heat")
    assert heat.locations == ["/data/movies/Heat (1995)/Heat (1995) - pt1.mkv",
                              "/data/movies/Heat (1995)/Heat (1995) - pt2.mkv"]
    arrival = next(m for m in movies if m.title == "Arrival")
    assert {g.id for g in arrival.guids} == {"imdb://tt2543164", "tmdb://329865"}
    parts = list(arrival.iterParts())
    assert parts[0].size == int(4.5 * 1024**3)
    subs = [s for s in parts[0].subtitleStreams()]
    assert subs and subs[0].key.startswith("/library/streams/")
    # attributes a demand engine reads, none of which may trigger a reload
    for m in movies:
        _ = (m.ratingKey, m.title, m.year, m.duration, m.viewOffset, m.viewCount, m.librarySectionID, m.guid,
             m.media[0].parts[0].file, m.addedAt, m.genres, m.directors)
    assert sim.count("/library/sections/1/all", host="pms") == 1
    assert sim.count("/library/metadata/*") == 0


def test_shows_seasons_episodes(sim, plex):
    tv = plex.library.section("TV Shows")
    shows = tv.all()
    bear = next(s for s in shows if s.title == "The Bear")
    assert bear.childCount == 3 and bear.leafCount == 19
    assert bear.locations == ["/data/tv/The Bear (2022)"]
    seasons = bear.seasons()
    assert [s.index for s in seasons] == [0, 1, 2]
    eps = seasons[1].episodes()
    assert [e.index for e in eps] == list(range(1, 9))
    e = eps[0]
    assert (e.grandparentTitle, e.parentIndex, e.seasonNumber, e.seasonEpisode) == ("The Bear", 1, 1, "s01e01")
    assert e.locations == ["/data/tv/The Bear (2022)/Season 01/The Bear (2022) - S01E01.mkv"]
    assert e.grandparentRatingKey == bear.ratingKey
    all_eps = bear.episodes()
    assert len(all_eps) == 19
    assert bear.episode(season=2, episode=3).index == 3
    slow = next(s for s in shows if s.title == "Slow Horses")
    assert len(slow.episodes()[0].locations) == 2  # a two-part episode
    assert sim.count("/library/metadata/*", host="pms") == sim.count("/library/metadata/*/*", host="pms")


def test_episode_search_type4_and_fetch_item(sim, plex):
    eps = plex.library.section("TV Shows").search(libtype="episode")
    assert len(eps) == 19 + 19 + 6
    assert sim.find("/library/sections/2/all")[0].query["type"] == "4"
    rk = rk_of(sim, "Severance")
    show = plex.fetchItem(rk)
    assert show.title == "Severance" and show.viewedLeafCount == 12
    deck = show.onDeck()
    assert (deck.parentIndex, deck.index, deck.viewOffset) == (2, 4, 12 * 60 * 1000)
    assert sim.count("/library/metadata/*", host="pms") == 2


def test_on_deck_auto_and_continue_watching(sim, plex):
    deck = plex.library.onDeck()
    assert [(i.type, i.title) for i in deck] == [("episode", "Episode 4"), ("movie", "Arrival")]
    assert deck[0].viewOffset == 12 * 60 * 1000 and deck[0].grandparentTitle == "Severance"
    assert deck[1].viewOffset == 40 * 60 * 1000 and deck[1].lastViewedAt is not None
    cw = plex.continueWatching()
    assert [i.ratingKey for i in cw] == [i.ratingKey for i in deck]
    tv_deck = plex.library.section("TV Shows").onDeck()
    assert [i.title for i in tv_deck] == ["Episode 4"]
    assert sim.count("/library/metadata/*") == 0


def test_per_user_views_via_shared_token(sim, plex, plex_session):
    alice = PlexServer(sim.url, sim.token("alice", pms=True), session=plex_session)
    deck = alice.library.onDeck()
    assert [(i.title, getattr(i, "grandparentTitle", None)) for i in deck] == [("Dune", None),
                                                                              ("Episode 3", "Slow Horses")]
    bob = PlexServer(sim.url, sim.token("bob", pms=True), session=plex_session)
    assert [(i.grandparentTitle, i.parentIndex, i.index) for i in bob.library.onDeck()] == [("The Bear", 2, 1)]
    kid = PlexServer(sim.url, sim.token("kid"), session=plex_session)  # a switched home token works on PMS
    assert [(i.parentIndex, i.index) for i in kid.library.onDeck()] == [(1, 8)]
    assert {r.user for r in sim.find("/library/onDeck")} == {"alice", "bob", "kid"}


def test_sessions_and_accounts(sim, plex):
    sessions = plex.sessions()
    assert len(sessions) == 1
    s = sessions[0]
    assert s.usernames == ["alice"] and s.player.title == "Roku Ultra" and s.player.state == "playing"
    assert s.locations == ["/data/tv/Slow Horses (2022)/Season 01/Slow Horses (2022) - S01E03.mkv"]
    assert s.viewOffset == 12 * 60 * 1000 and s.session.location == "lan"
    sid = sim.add_session("admin", "Dune", offset="30m")
    assert len(plex.sessions()) == 2
    assert sim.remove_session(sid) == 1
    accounts = plex.systemAccounts()
    assert [a.id for a in accounts] == [0, 1, 1002, 1003, 2001, 2002]
    assert sim.count("/status/sessions") == 2 and sim.count("/accounts") == 1


def test_myplex_users_tokens_switch(sim, plex_session):
    acct = MyPlexAccount(token=sim.owner_token, session=plex_session)
    assert acct.username == "admin" and acct.subscriptionActive is True
    users = {u.title: u for u in acct.users()}
    assert set(users) == {"partner", "kid", "alice", "bob"}
    assert users["kid"].home is True and users["kid"].username == "" and users["alice"].home is False
    assert users["alice"].servers[0].machineIdentifier == sim.scenario.server.machine_identifier
    mid = sim.scenario.server.machine_identifier
    assert users["alice"].get_token(mid) == "pms-alice"
    kid = acct.switchHomeUser("kid", pin="1234")
    assert kid.authToken == "tok-kid" and kid.restricted is True
    partner = acct.switchHomeUser(users["partner"])
    assert partner.authToken == "tok-partner"
    assert sim.count("/api/home/users/*/switch", method="POST", host="plex.tv") == 2


@pytest.mark.sim_errors_ok
def test_switch_home_user_wrong_pin(sim, plex_session):
    acct = MyPlexAccount(token=sim.owner_token, session=plex_session)
    with pytest.raises(Unauthorized):
        acct.switchHomeUser("kid", pin="0000")


def test_switch_user_via_server(sim, plex):
    alice = plex.switchUser("alice")
    assert alice._token == "pms-alice"
    assert [i.title for i in alice.library.onDeck()][:1] == ["Dune"]


def test_watchlist(sim, plex_session):
    acct = MyPlexAccount(token=sim.owner_token, session=plex_session)
    sim.reset_log()
    wl = acct.watchlist()
    assert [(w.title, w.type) for w in wl] == [("Dune", "movie"), ("Oppenheimer", "movie")]
    assert wl[0].guid == sim.scenario.items[rk_of(sim, "Dune")].guid
    assert sim.paths() == ["GET discover.provider.plex.tv/library/sections/watchlist/all",
                           "GET metadata.provider.plex.tv/"]
    # plexapi does not ask for includeGuids=1 here, so the external ids cost it one fetch of the item, as on a
    # real server (the product reads the listing itself, with includeGuids=1)
    assert {g.id for g in wl[1].guids} == {"imdb://tt15398776", "tmdb://872585"}
    assert sim.paths()[2:] == [f"GET metadata.provider.plex.tv/library/metadata/{wl[1].guid.rsplit('/', 1)[1]}"]
    alice = MyPlexAccount(token=sim.token("alice"), session=plex_session)
    shows = alice.watchlist(libtype="show")
    assert [(s.title, s.childCount) for s in shows] == [("The Bear", 3), ("Shogun", 1)]
    assert acct.onWatchlist(wl[0]) is True


def test_watchlist_paging_by_headers(sim, plex_session, monkeypatch):
    monkeypatch.setattr(plexapi_base, "X_PLEX_CONTAINER_SIZE", 1)
    acct = MyPlexAccount(token=sim.owner_token, session=plex_session)
    sim.reset_log()
    assert len(acct.watchlist()) == 2
    assert sim.count("/library/sections/watchlist/all") == 2


def test_paging_small_container(sim, plex, monkeypatch):
    monkeypatch.setattr(plexapi_base, "X_PLEX_CONTAINER_SIZE", 7)
    eps = plex.library.section("TV Shows").search(libtype="episode")
    assert len(eps) == 44 and len({e.ratingKey for e in eps}) == 44
    assert sim.count("/library/sections/2/all") == 7  # ceil(44 / 7)
    page = plex.library.section("TV Shows").search(libtype="episode", maxresults=3)
    assert len(page) == 3


def test_count_only_and_paging_attributes(sim):
    h = {"X-Plex-Token": sim.owner_token, "X-Plex-Container-Start": "0", "X-Plex-Container-Size": "0",
         "Accept": "application/json"}
    mc = requests.get(f"{sim.url}/library/sections/2/all?type=4", headers=h).json()["MediaContainer"]
    assert (mc["size"], mc["totalSize"], mc["offset"]) == (0, 44, 0) and "Metadata" not in mc
    q = f"{sim.url}/library/sections/2/all?type=4&X-Plex-Container-Start=40&X-Plex-Container-Size=10"
    mc = requests.get(q, headers={"X-Plex-Token": sim.owner_token, "Accept": "application/json"}).json()
    assert (mc["MediaContainer"]["size"], mc["MediaContainer"]["offset"]) == (4, 40)


@pytest.mark.sim_errors_ok
def test_episode_filters_by_show_and_the_tokens_watched_state(sim):
    """`show.id` takes a comma-separated OR list; `unwatched` is the requesting user's own state."""
    severance, bear = rk_of(sim, "Severance"), rk_of(sim, "The Bear")

    def episodes(token: str, query: str) -> list[tuple[str, int, int]]:
        h = {"X-Plex-Token": token, "Accept": "application/json"}
        mc = requests.get(f"{sim.url}/library/sections/2/all?type=4&{query}", headers=h).json()["MediaContainer"]
        found = [(m["grandparentTitle"], m["parentIndex"], m["index"]) for m in mc.get("Metadata", [])]
        return [e for e in found if e[1] > 0]  # specials aside

    both = episodes(sim.owner_token, f"show.id={severance},{bear}")
    assert {t for t, _, _ in both} == {"Severance", "The Bear"}
    owner_left = episodes(sim.owner_token, f"show.id={severance}&unwatched=1")
    assert len(owner_left) == 19 - 12 and owner_left[0][1:] == (2, 4)  # viewedLeafCount 12, deck at S02E04
    bob = sim.token("bob", pms=True)
    assert episodes(sim.owner_token, f"show.id={severance}&unwatched=0")[-1][1:] == (2, 3)
    assert episodes(bob, f"show.id={severance}&unwatched=0") == []  # bob has watched none of it
    assert len(episodes(bob, f"show.id={severance}&unwatched=1")) == 19
    unknown = requests.get(f"{sim.url}/library/sections/2/all?type=4&show.rating=9",
                           headers={"X-Plex-Token": sim.owner_token})
    assert unknown.status_code == 400


def test_json_variant(sim):
    h = {"X-Plex-Token": sim.owner_token, "Accept": "application/json"}
    r = requests.get(f"{sim.url}/library/onDeck", headers=h)
    assert r.headers["Content-Type"].startswith("application/json")
    items = r.json()["MediaContainer"]["Metadata"]
    assert items[0]["type"] == "episode" and items[0]["Media"][0]["Part"][0]["file"].endswith("S02E04.mkv")
    assert r.json()["MediaContainer"]["mixedParents"] is True
    s = requests.get(f"{sim.url}/status/sessions", headers=h).json()["MediaContainer"]["Metadata"][0]
    assert s["User"]["title"] == "alice" and s["Player"]["state"] == "playing"
    u = requests.get(f"{sim.url}/_h/plex.tv/api/v2/user", headers=h).json()
    assert u["username"] == "admin" and u["subscription"]["active"] is True


def test_xml_booleans_never_empty(sim):
    r = requests.get(f"{sim.url}/library/sections", headers={"X-Plex-Token": sim.owner_token})
    assert 'allowSync="1"' in r.text and 'refreshing="0"' in r.text
    assert 'allowSync=""' not in r.text


@pytest.mark.sim_errors_ok
def test_bad_token_401_and_unknown_404(sim, plex_session):
    with pytest.raises(Unauthorized):
        PlexServer(sim.url, "wrong-token", session=plex_session)
    plex = PlexServer(sim.url, sim.owner_token, session=plex_session)
    with pytest.raises(NotFound):
        plex.fetchItem(999999)
    with pytest.raises(NotFound):
        plex.query("/no/such/path")
    with pytest.raises(Unauthorized):
        MyPlexAccount(token="wrong", session=plex_session)
    assert requests.get(f"{sim.url}/identity").status_code == 200  # no token needed
    assert requests.get(f"{sim.url}/_h/nowhere.example/x").status_code == 404
    statuses = sorted(r.status for r in sim.errors())
    assert statuses == [401, 401, 404, 404, 404]


def test_pin_login(sim, plex_session):
    login = MyPlexPinLogin(session=plex_session)
    assert login.pin and len(login.pin) == 4
    assert login.checkLogin() is False
    sim.authorise_pin(int(login._id))
    assert login.checkLogin() is True and login.token == sim.owner_token


def test_pin_json_for_own_client(sim, plex_session):
    r = plex_session.post("https://plex.tv/api/v2/pins?strong=true", headers={"Accept": "application/json"})
    pin = r.json()
    assert r.status_code == 201 and pin["authToken"] is None
    requests.post(f"{sim.url}/_sim/pins/{pin['id']}/authorise", json={"user": "admin"})
    got = plex_session.get(f"https://plex.tv/api/v2/pins/{pin['id']}", headers={"Accept": "application/json"})
    assert got.json()["authToken"] == sim.owner_token
    assert count_requests(plex_session) == 2


def test_mark_played_and_timeline_change_state(sim, plex):
    dune = plex.fetchItem(rk_of(sim, "Dune"))
    dune.markPlayed()
    assert plex.fetchItem(dune.ratingKey).viewCount == 1
    dune.markUnplayed()
    assert plex.fetchItem(dune.ratingKey).viewCount == 0
    plex.query(f"/:/timeline?ratingKey={dune.ratingKey}&key=/library/metadata/{dune.ratingKey}&state=paused"
               f"&time=600000&duration={dune.duration}", method=plex._session.put)
    deck = plex.library.onDeck()
    assert deck[0].title == "Dune" and deck[0].viewOffset == 600000


def test_control_api_over_http(sim, plex):
    c = f"{sim.url}/_sim"
    sid = requests.post(f"{c}/sessions", json={"user": "bob", "item": "Heat", "offset": "10m"}).json()["id"]
    assert {s.title for s in plex.sessions()} == {"Heat", "Episode 3"}
    assert requests.delete(f"{c}/sessions/{sid}").json() == {"removed": 1}
    requests.post(f"{c}/watch", json={"user": "admin", "item": "Severance S02E04"})
    deck = plex.library.onDeck()
    assert (deck[0].parentIndex, deck[0].index, deck[0].viewOffset) == (2, 5, 0)
    requests.post(f"{c}/watch", json={"user": "admin", "item": "Arrival", "offset": "50m"})
    assert next(i for i in plex.library.onDeck() if i.type == "movie").viewOffset == 50 * 60000
    new = requests.post(f"{c}/episodes", json={"show": "Slow Horses", "season": 2, "count": 3}).json()["rks"]
    slow = plex.fetchItem(new[0]).show()
    assert [s.index for s in slow.seasons()] == [1, 2] and slow.leafCount == 9
    now = sim.world.now
    assert requests.post(f"{c}/clock", json={"advance": "2h"}).json()["now"] == now + 7200
    assert requests.post(f"{c}/faults", json={"path": "/status/sessions", "fault": 503, "times": 1}).ok
    assert requests.get(f"{sim.url}/status/sessions", headers={"X-Plex-Token": "tok-admin"}).status_code == 503
    log = requests.get(f"{c}/log").json()
    assert log[-1]["path"] == "/status/sessions" and log[-1]["status"] == 503 and log[-1]["fault"] == "503"
    assert all("tok-" not in str(e) for e in log)  # tokens never land in the log
    assert requests.post(f"{c}/nope").status_code == 404


def test_sorted_search_and_recently_added(sim, plex):
    sim.add_episodes("Slow Horses", 2, 2)
    tv = plex.library.section("TV Shows")
    recent = tv.recentlyAdded(maxresults=2, libtype="episode")
    assert [(e.grandparentTitle, e.parentIndex, e.index) for e in recent] == [("Slow Horses", 2, 1),
                                                                           ("Slow Horses", 2, 2)]
    titles = [m.title for m in plex.library.section("Movies").search(sort="titleSort:desc")]
    assert titles == sorted(titles, reverse=True)
    # per section: the Meta load (all + collections), then the search
    assert sim.count("/library/sections/*/all", host="pms") == 4
    assert sim.count("/library/sections/*/collections", host="pms") == 2


def test_resources_connect(sim, plex_session):
    acct = MyPlexAccount(token=sim.token("alice"), session=plex_session)
    res = acct.resource("tower")
    assert res.owned is False and "server" in res.provides
    assert res.connections[0].uri == sim.url
    server = res.connect(timeout=seconds(5))
    assert server.machineIdentifier == sim.scenario.server.machine_identifier
    assert sim.find("/", host="pms")[-1].user == "alice"


def test_concurrent_reads_while_world_changes(sim):
    """Readers on several threads while sessions and watch state change: no errors, no torn responses."""
    import threading
    import xml.etree.ElementTree as ET

    errors = []

    def reader():
        s = requests.Session()
        for _ in range(25):
            for path in ("/library/onDeck", "/status/sessions", "/library/sections/2/all?type=4"):
                r = s.get(sim.url + path, headers={"X-Plex-Token": sim.owner_token})
                try:
                    ET.fromstring(r.content)
                except ET.ParseError as exc:  # pragma: no cover - the failure being tested for
                    errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(40):
        sid = sim.add_session("bob", "Heat", offset=f"{i + 1}m")
        sim.set_watched("admin", f"The Bear S01E0{i % 8 + 1}", watched=i % 2 == 0)
        sim.remove_session(sid)
    for t in threads:
        t.join()
    assert errors == [] and sim.errors() == []


def test_plextv_v2_json_is_bare(sim, plex_session):
    h = {"X-Plex-Token": sim.owner_token, "Accept": "application/json"}
    res = plex_session.get("https://plex.tv/api/v2/resources", headers=h).json()
    assert res[0]["clientIdentifier"] == sim.scenario.server.machine_identifier
    assert res[0]["connections"][0]["uri"] == sim.url


@pytest.mark.slow
def test_bench_world_serves_every_user():
    """The benchmark world (20 users, 100,000 episodes, 5,000 movies): one request per user's On Deck."""
    from plexcache.sim.generate import generate
    from plexcache.sim.server import SimServer

    with SimServer(generate()) as big:
        s = requests.Session()
        for user in big.scenario.users.values():
            r = s.get(f"{big.url}/library/onDeck", headers={"X-Plex-Token": user.pms_token})
            assert r.status_code == 200 and "<Video " in r.text
        h = {"X-Plex-Token": big.owner_token, "X-Plex-Container-Start": "49900", "X-Plex-Container-Size": "100",
             "Accept": "application/json"}
        mc = s.get(f"{big.url}/library/sections/3/all?type=4", headers=h).json()["MediaContainer"]
        assert (mc["size"], mc["totalSize"]) == (100, 50000)
        assert big.count("*") == 21 and big.errors() == []


def test_library_recently_added(sim, plex):
    sim.advance("1h")
    new = sim.add_episodes("Severance", 2, 11)
    items = plex.library.recentlyAdded()
    assert items[0].ratingKey == new[0] and items[0].grandparentTitle == "Severance" and items[0].index == 11
    assert items[0].addedAt.timestamp() == sim.world.now
    assert len(items) == 5 + 44 + 24 + 1 and {i.type for i in items} == {"movie", "episode"}
    added = [i.addedAt for i in items]
    assert added == sorted(added, reverse=True)
    assert sim.count("/library/metadata/*") == 0
