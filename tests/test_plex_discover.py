"""Discovery against the simulated Plex: each user kind, each demand source, each filter, exact results."""

from __future__ import annotations

import pytest

from plexcache.demand import SERVER
from plexcache.plex import discover
from test_plex_support import OWNER, ep, rating_key, settings_for, simulated, table, unknowns, world

SEV_NEXT = {  # the owner's next episodes after Severance S01E03 cross into season 2
    ep("Severance", 2, n): [(OWNER, "next_episode", f"{o} episode after S01E03", n - 1)]
    for n, o in ((1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"))}


def test_owner_on_deck_and_next_episodes_across_seasons(monkeypatch):
    with simulated(monkeypatch) as sim:
        demand = discover(settings_for(sim), now=sim.world.now)
        assert table(demand) == {ep("Severance", 1, 3): [(OWNER, "on_deck", "On Deck", 0)], **SEV_NEXT}
        assert demand.unknown == []
        assert demand.users == [OWNER]
        item = demand.items[next(k for k, v in demand.items.items() if v.title == ep("Severance", 1, 3))]
        assert item.plex_files == ("/data/tv/Severance (2022)/Season 01/Severance (2022) - S01E03.mkv",)
        assert item.size == 1024 ** 3 and item.kind == "episode" and item.library == "TV Shows"
        # No plex.tv traffic when only the owner's On Deck is wanted.
        assert sim.count("*", host="plex.tv") == 0
        assert demand.requests == len(sim.requests)
        assert sim.errors() == []


def test_next_episodes_count_skip_watched_and_specials(monkeypatch):
    data = world(watch={OWNER: {"watched": ["Severance S01E01-S01E02", "Severance S02E01"]}})
    with simulated(monkeypatch, data) as sim:
        patch = {"demand": {"next_episodes": 2}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
        assert table(demand) == {
            ep("Severance", 1, 3): [(OWNER, "on_deck", "On Deck", 0)],
            ep("Severance", 2, 2): [(OWNER, "next_episode", "1st episode after S01E03", 0)],
            ep("Severance", 2, 3): [(OWNER, "next_episode", "2nd episode after S01E03", 1)]}


def test_specials_are_next_episodes_only_when_configured(monkeypatch):
    data = world(watch={OWNER: {"watched": ["Severance S00E01"]}, "partner": {}})
    with simulated(monkeypatch, data) as sim:
        # The deck after a watched special is S00E02 (explicit deck: the simulator never auto-decks specials).
        sim.scenario.views[OWNER].on_deck = [sim.scenario.by_guid()["tvdb://371980"] + 2]
        off = discover(settings_for(sim, {"demand": {"next_episodes": 2}}), now=sim.world.now)
        on = discover(settings_for(sim, {"demand": {"next_episodes": 2, "include_specials": True}}),
                      now=sim.world.now)
    assert table(off) == {
        ep("Severance", 0, 1): [(OWNER, "on_deck", "On Deck", 0)],
        ep("Severance", 1, 1): [(OWNER, "next_episode", "1st episode after S00E01", 0)],
        ep("Severance", 1, 2): [(OWNER, "next_episode", "2nd episode after S00E01", 1)]}
    assert table(on) == {
        ep("Severance", 0, 1): [(OWNER, "on_deck", "On Deck", 0)],
        ep("Severance", 0, 2): [(OWNER, "next_episode", "1st episode after S00E01", 0)],
        ep("Severance", 1, 1): [(OWNER, "next_episode", "2nd episode after S00E01", 1)]}


def test_in_progress_movie_multi_version_and_multi_part(monkeypatch):
    data = world(watch={OWNER: {"progress": {"Dune": {"offset": "20m", "at": "2h"},
                                             "Heat": {"offset": "5m", "at": "1h"}}}})
    with simulated(monkeypatch, data) as sim:
        demand = discover(settings_for(sim), now=sim.world.now)
    assert table(demand) == {"Heat": [(OWNER, "on_deck", "On Deck, in progress", 0)],
                             "Dune": [(OWNER, "on_deck", "On Deck, in progress", 1)]}
    files = {i.title: i.plex_files for i in demand.items.values()}
    assert files["Heat"] == ("/data/movies/Heat (1995)/Heat - pt1.mkv", "/data/movies/Heat (1995)/Heat - pt2.mkv")
    assert files["Dune"] == ("/data/movies/Dune (2021)/Dune (2021).mkv",
                             "/data/movies/Dune (2021)/Dune (2021) - 1080p.mkv")
    sizes = {i.title: i.size for i in demand.items.values()}
    assert sizes == {"Heat": 6 * 1024 ** 3, "Dune": 11 * 1024 ** 3}
    last = {i.title: i.reasons[0].last_active for i in demand.items.values()}
    assert last == {"Heat": sim.world.now - 3600, "Dune": sim.world.now - 7200}


def test_on_deck_limit_days_to_monitor_and_max_size(monkeypatch):
    data = world(watch={OWNER: {"watched": [{"item": "Severance S01E01", "at": "40d"}],
                                "progress": {"Dune": {"offset": "20m", "at": "2d"},
                                             "Heat": {"offset": "5m", "at": "1h"}}}})
    with simulated(monkeypatch, data) as sim:
        now = sim.world.now
        every = discover(settings_for(sim, {"demand": {"next_episodes": 0}}), now=now)
        recent = discover(settings_for(sim, {"demand": {"next_episodes": 0, "days_to_monitor": 30}}), now=now)
        one = discover(settings_for(sim, {"demand": {"next_episodes": 0, "on_deck_items": 1}}), now=now)
        small = discover(settings_for(sim, {"demand": {"next_episodes": 0, "max_item_size": "7GB"}}), now=now)
    assert sorted(table(every)) == sorted(["Heat", "Dune", ep("Severance", 1, 2)])
    assert sorted(table(recent)) == ["Dune", "Heat"]
    assert table(one) == {"Heat": [(OWNER, "on_deck", "On Deck, in progress", 0)]}
    assert sorted(table(small)) == sorted(["Heat", ep("Severance", 1, 2)])  # Dune's two versions: 11 GiB


def test_library_filter_by_title_or_id(monkeypatch):
    data = world(watch={OWNER: {"watched": ["Severance S01E01", "Frieren S01E01"]}})
    with simulated(monkeypatch, data) as sim:
        patch = {"demand": {"next_episodes": 0}}
        both = discover(settings_for(sim, patch), now=sim.world.now)
        anime = discover(settings_for(sim, {**patch, "plex": {"libraries": ["anime"]}}), now=sim.world.now)
        sim.reset_log()
        tv = discover(settings_for(sim, {**patch, "plex": {"libraries": ["2"]}}), now=sim.world.now)
        assert sim.count("/library/sections/3/*") == 0  # an unchosen library is never read
    assert sorted(table(both)) == sorted([ep("Severance", 1, 2), ep("Frieren", 1, 2)])
    assert sorted(table(anime)) == [ep("Frieren", 1, 2)]
    assert sorted(table(tv)) == [ep("Severance", 1, 2)]
    assert {i.library for i in both.items.values()} == {"TV Shows", "Anime"}


def test_home_and_managed_users_read_with_their_own_tokens(monkeypatch):
    data = world(watch={OWNER: {"watched": ["Severance S01E01-S01E02"]},
                        "partner": {"watched": ["Severance S01E01-S02E02"]},
                        "kid": {"watched": ["Bluey S01E01-S01E04"]}})
    with simulated(monkeypatch, data) as sim:
        patch = {"users": {"home": {"on_deck": True}}, "demand": {"next_episodes": 1}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
        # One switch per home user; each user's deck and episode list read with that user's token.
        assert sim.count("/api/home/users/*/switch", method="POST") == 2
        assert sim.count("/library/sections/2/onDeck", user="partner") == 1
        assert sim.count("/library/sections/2/onDeck", user="kid") == 1
        shows = sim.find("/library/sections/2/all", user="partner")  # the deck's shows, one listing
        assert [(r.query.get("type"), r.query.get("show.id"), r.query.get("unwatched")) for r in shows] == [
            ("4", rating_key(sim, "Severance"), None)]
        assert sim.count("/api/servers/*", host="plex.tv") == 0  # no friends wanted: no shared_servers
    assert table(demand) == {
        ep("Severance", 1, 3): [(OWNER, "on_deck", "On Deck", 0)],
        ep("Severance", 2, 1): [(OWNER, "next_episode", "1st episode after S01E03", 0)],
        ep("Severance", 2, 3): [("partner", "on_deck", "On Deck", 0)],
        ep("Severance", 2, 4): [("partner", "next_episode", "1st episode after S02E03", 0)],
        ep("Bluey", 1, 5): [("kid", "on_deck", "On Deck", 0)],
        ep("Bluey", 1, 6): [("kid", "next_episode", "1st episode after S01E05", 0)]}
    assert demand.users == [OWNER, "partner", "kid"]


def test_friends_through_one_shared_servers_listing(monkeypatch):
    data = world(watch={"alice": {"progress": {"Arrival": "30m"}}, "bob": {"watched": ["Bluey S01E01"]}})
    with simulated(monkeypatch, data) as sim:
        patch = {"users": {"friends": {"on_deck": True}}, "demand": {"next_episodes": 1}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
        assert sim.count("/api/servers/*/shared_servers") == 1  # not one per friend
        assert sim.count("/api/users/") == 1
        assert sim.count("/library/sections/1/onDeck", user="alice") == 1
        assert sim.count("/api/home/users/*/switch") == 0
    assert table(demand) == {
        "Arrival": [("alice", "on_deck", "On Deck, in progress", 0)],
        ep("Bluey", 1, 2): [("bob", "on_deck", "On Deck", 0)],
        ep("Bluey", 1, 3): [("bob", "next_episode", "1st episode after S01E02", 0)]}


def test_overrides_and_skip_list(monkeypatch):
    data = world(watch={"alice": {"progress": {"Arrival": "30m"}}, "bob": {"watched": ["Bluey S01E01"]},
                        "partner": {"watched": ["Bluey S01E01"]}})
    with simulated(monkeypatch, data) as sim:
        patch = {"users": {"owner": {"on_deck": False}, "friends": {"on_deck": True},
                           "overrides": [{"name": "partner", "on_deck": True, "watchlist": False},
                                         {"name": "ALICE", "on_deck": False, "watchlist": False}],
                           "skip": ["bob"]},
                 "demand": {"next_episodes": 0}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
        assert sim.count("*", user="alice") == 0 and sim.count("*", user="bob") == 0
    assert table(demand) == {ep("Bluey", 1, 2): [("partner", "on_deck", "On Deck", 0)]}
    assert demand.users == [OWNER, "partner"]


def test_owner_and_home_watchlists_matched_by_guid(monkeypatch):
    data = world(watchlists={
        OWNER: ["Dune (2021)", "Severance",
                # Plex's own id differs, the IMDb id matches: still the library's Arrival.
                {"title": "Arrival", "type": "movie", "guid": "plex://movie/0000000000000000000000aa",
                 "guids": ["imdb://tt2543164"], "at": "3d"},
                {"title": "Not Here", "type": "movie", "guids": ["imdb://tt9999999"], "at": "4d"}],
        "partner": ["Severance"]},
        watch={OWNER: {"watched": ["Severance S01E01"]}, "partner": {"watched": ["Severance S01E01-S01E02"]}})
    with simulated(monkeypatch, data) as sim:
        patch = {"users": {"owner": {"on_deck": False, "watchlist": True}, "home": {"watchlist": True}},
                 "demand": {"watchlist_episodes": 2}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
        # One listing per chosen library, however many items are watchlisted (no search per item), and one
        # listing of unwatched episodes per (user, library) holding a watchlisted show.
        listings = [r for r in sim.find("/library/sections/*/all", host="pms")]
        assert sum(r.query.get("type") in ("1", "2") for r in listings) == 3
        assert sorted((r.user, r.query.get("show.id")) for r in listings if r.query.get("type") == "4") == [
            (OWNER, "104"), ("partner", "104")]
        assert sim.count("/library/sections/watchlist/*", host="discover.provider.plex.tv") == 3  # owner, partner, kid
        assert sim.count("*", host="metadata.provider.plex.tv") == 0
    assert table(demand) == {
        "Dune": [(OWNER, "watchlist", "Watchlist", 0)],
        ep("Severance", 1, 2): [(OWNER, "watchlist", "Watchlist: 1st unwatched episode", 1)],
        ep("Severance", 1, 3): [(OWNER, "watchlist", "Watchlist: 2nd unwatched episode", 1),
                                ("partner", "watchlist", "Watchlist: 1st unwatched episode", 0)],
        ep("Severance", 2, 1): [("partner", "watchlist", "Watchlist: 2nd unwatched episode", 0)],
        "Arrival": [(OWNER, "watchlist", "Watchlist", 2)]}
    dune = next(i for i in demand.items.values() if i.title == "Dune")
    assert len(dune.plex_files) == 2
    assert all(r.last_active is None or r.last_active <= sim.world.now for i in demand.items.values()
               for r in i.reasons)


def test_a_watchlisted_movie_drops_off_once_its_user_has_watched_it(monkeypatch):
    data = world(watchlists={"partner": ["Dune (2021)", "Arrival", "Heat"], OWNER: ["Dune (2021)"]},
                 watch={"partner": {"watched": ["Dune (2021)"], "progress": {"Arrival": "30m"}}, OWNER: {}})
    with simulated(monkeypatch, data) as sim:
        patch = {"users": {"owner": {"on_deck": False, "watchlist": True}, "home": {"watchlist": True}}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
        batches = [r.path for r in sim.find("/library/metadata/*", user="partner")]
        assert len(batches) == 1 and len(batches[0].split(",")) == 3  # all three movies, one request
    assert table(demand) == {
        "Dune": [(OWNER, "watchlist", "Watchlist", 0)],  # the owner has not watched it
        "Arrival": [("partner", "watchlist", "Watchlist", 1)],  # started, not finished
        "Heat": [("partner", "watchlist", "Watchlist", 2)]}


@pytest.mark.sim_errors_ok
def test_unreadable_watched_state_keeps_the_movies_and_says_so(monkeypatch):
    data = world(watchlists={"partner": ["Dune (2021)"]}, watch={"partner": {"watched": ["Dune (2021)"]}})
    with simulated(monkeypatch, data) as sim:
        sim.inject("/library/metadata/*", 500, host="pms", token=sim.token("partner"))
        patch = {"users": {"owner": {"on_deck": False}, "home": {"watchlist": True}}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
    assert unknowns(demand) == [("partner", "watchlist")]
    assert table(demand) == {"Dune": [("partner", "watchlist", "Watchlist", 0)]}


def test_friends_watchlists_from_the_rss_feed(monkeypatch):
    data = world(watchlists={"alice": ["Dune (2021)"], "bob": ["Bluey"]},
                 watch={"bob": {"watched": ["Bluey S01E01"]}})
    with simulated(monkeypatch, data) as sim:
        patch = {"users": {"remote_watchlist_rss": True, "rss_url": "https://rss.plex.tv/friends-feed",
                           "overrides": [{"name": "bob", "on_deck": False, "watchlist": True}]},
                 "demand": {"watchlist_episodes": 1}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
        assert sim.count("/friends-feed", host="rss.plex.tv") == 1
        assert sim.count("/library/sections/*/onDeck", user="alice") == 0  # friends' On Deck is off
        episodes = sim.find("/library/sections/*/all", user="bob")
        assert [(r.query.get("type"), r.query.get("unwatched")) for r in episodes] == [("4", "1")]  # bob's state
    assert table(demand) == {
        "Dune": [("alice", "watchlist", "Watchlist (RSS)", 0)],
        ep("Bluey", 1, 2): [("bob", "watchlist", "Watchlist (RSS): 1st unwatched episode", 0)]}


def test_playing_sessions(monkeypatch):
    data = world(sessions=[{"user": "alice", "item": "Heat", "player": "Roku"},
                           {"user": OWNER, "item": "Bluey S01E03"}],
                 watch={})
    with simulated(monkeypatch, data) as sim:
        demand = discover(settings_for(sim, {"users": {"owner": {"on_deck": False}}}), now=sim.world.now)
        assert sim.count("/status/sessions") == 1
    assert table(demand) == {"Heat": [("alice", "playing", "playing on Roku", 0)],
                             ep("Bluey", 1, 3): [(OWNER, "playing", "playing on Living Room TV", 0)]}
    assert demand.playing == {"/data/movies/Heat (1995)/Heat - pt1.mkv", "/data/movies/Heat (1995)/Heat - pt2.mkv",
                              "/data/tv/Bluey (2018)/Season 01/Bluey (2018) - S01E03.mkv"}


def test_failure_of_the_whole_server_is_server_unknown(monkeypatch):
    with simulated(monkeypatch) as sim:
        sim.inject("/", 503, host="pms")
        demand = discover(settings_for(sim), now=sim.world.now)
    assert demand.server_unknown and demand.items == {}
    assert unknowns(demand) == [(SERVER, "server")]
    assert demand.requests == 1


def test_a_playing_episode_brings_its_next_episodes(monkeypatch):
    data = world(sessions=[{"user": "partner", "item": "Bluey S01E03"}], watch={"partner": {}})
    with simulated(monkeypatch, data) as sim:
        patch = {"users": {"owner": {"on_deck": False}, "home": {"on_deck": True}}, "demand": {"next_episodes": 2}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
        assert sim.count("/library/metadata/*/allLeaves", user="partner") == 1
    assert table(demand) == {
        ep("Bluey", 1, 3): [("partner", "playing", "playing on Living Room TV", 0)],
        ep("Bluey", 1, 4): [("partner", "next_episode", "1st episode after S01E03", 0)],
        ep("Bluey", 1, 5): [("partner", "next_episode", "2nd episode after S01E03", 1)]}


def rewatched(demand) -> dict[str, list[tuple[str, str, str, int]]]:
    return {title: reasons for title, reasons in table(demand).items() if any(r[1] == "rewatch" for r in reasons)}


FAVOURITES = {OWNER: {"watched": [{"item": "Heat", "at": "1d", "count": 2}, {"item": "Dune (2021)", "at": "2d",
                                                                            "count": 3},
                                  {"item": "Arrival", "at": "3d"}]}}


def test_movies_watched_again_lately_are_wanted_again_most_likely_first(monkeypatch):
    with simulated(monkeypatch, world(watch=FAVOURITES)) as sim:
        demand = discover(settings_for(sim), now=sim.world.now)
        capped = discover(settings_for(sim, {"demand": {"rewatch_items": 1}}), now=sim.world.now)
        listings = [r for r in sim.find("/library/sections/1/all") if r.query.get("sort") == "lastViewedAt:desc"]
        assert len(listings) == 2  # one listing of the user's recently watched movies per run and library
        off = discover(settings_for(sim, {"demand": {"rewatch_items": 0}}), now=sim.world.now)
    # Watched twice or more: favourites, the most recent first; with two of those the user has the habit, so
    # a movie watched once lately comes after them.
    assert rewatched(demand) == {"Heat": [(OWNER, "rewatch", "watched 2 times", 0)],
                                 "Dune": [(OWNER, "rewatch", "watched 3 times", 1)],
                                 "Arrival": [(OWNER, "rewatch", "watched once", 2)]}
    assert rewatched(capped) == {"Heat": [(OWNER, "rewatch", "watched 2 times", 0)]}
    assert rewatched(off) == {}


def test_one_movie_watched_twice_is_no_habit_and_old_favourites_are_forgotten(monkeypatch):
    watch = {OWNER: {"watched": [{"item": "Heat", "at": "1d", "count": 2}, {"item": "Arrival", "at": "1d"},
                                 {"item": "Dune (2021)", "at": "20d", "count": 5}]}}
    with simulated(monkeypatch, world(watch=watch)) as sim:
        demand = discover(settings_for(sim), now=sim.world.now)
    assert rewatched(demand) == {"Heat": [(OWNER, "rewatch", "watched 2 times", 0)]}


def test_the_next_episodes_listing_brings_plex_history_for_the_pace(monkeypatch):
    """When the user last viewed each episode before the On Deck one comes with the listing the next episodes
    are read from (no request of its own): the pace of a show seen for the first time (see test_pace)."""
    plain = world()
    timed = world(watch={OWNER: {"watched": [{"item": "Severance S01E01", "at": "4d"},
                                             {"item": "Severance S01E02", "at": "1d"}]}})
    with simulated(monkeypatch, plain) as sim:
        before = discover(settings_for(sim), now=sim.world.now)
    with simulated(monkeypatch, timed) as sim:
        demand = discover(settings_for(sim), now=sim.world.now)
        now = sim.world.now
    deck = next(k for k, v in demand.items.items() if v.title == ep("Severance", 1, 3))
    assert demand.viewed == {(OWNER, deck): (now - 4 * 86400, now - 86400)}
    assert demand.requests == before.requests
