"""RULE 1: a failure is not an empty answer. Every kind of failure becomes an Unknown; the rest carries on."""

from __future__ import annotations

import pytest

from plexcache.demand import OTHER_USERS, SERVER
from plexcache.plex import discover
from test_plex_support import OWNER, ep, settings_for, simulated, table, unknowns, world

OWNER_DECK = ep("Severance", 1, 3)
FRIENDS = {"users": {"friends": {"on_deck": True}}, "demand": {"next_episodes": 0}}
BOTH_FRIENDS = world(watch={OWNER: {"watched": ["Severance S01E01-S01E02"]},
                            "alice": {"progress": {"Arrival": "30m"}}, "bob": {"watched": ["Bluey S01E01"]}})


@pytest.mark.parametrize("fault", [401, 500, "garbage", "truncated", "drop"])
def test_server_unreadable_is_server_unknown(monkeypatch, fault):
    with simulated(monkeypatch) as sim:
        sim.inject("/", fault, host="pms")
        demand = discover(settings_for(sim), now=sim.world.now)
    assert unknowns(demand) == [(SERVER, "server")]
    assert demand.items == {} and demand.server_unknown


def test_server_timeout_is_server_unknown_with_its_reason(monkeypatch):
    with simulated(monkeypatch, timeout_sleep=2.0) as sim:
        sim.inject("/library/sections", "timeout", host="pms")
        demand = discover(settings_for(sim), now=sim.world.now)
    assert [(u.scope, u.source, u.error) for u in demand.unknown] == [(SERVER, "server", "timed out")]


def test_sessions_unreadable_is_server_unknown_but_demand_is_kept(monkeypatch):
    with simulated(monkeypatch) as sim:
        sim.inject("/status/sessions", "garbage", host="pms")
        demand = discover(settings_for(sim, {"demand": {"next_episodes": 0}}), now=sim.world.now)
    assert unknowns(demand) == [(SERVER, "playing")]
    assert table(demand) == {OWNER_DECK: [(OWNER, "on_deck", "On Deck", 0)]}
    assert demand.unknown[0].error == "malformed XML in the response"


def test_user_list_unreadable_makes_every_other_user_unknown(monkeypatch):
    with simulated(monkeypatch) as sim:
        sim.inject("/api/users/", 503, host="plex.tv")
        demand = discover(settings_for(sim, FRIENDS), now=sim.world.now)
    assert unknowns(demand) == [(OTHER_USERS, "users")]
    assert demand.unknown[0].error == "HTTP 503 service_unavailable"
    assert table(demand) == {OWNER_DECK: [(OWNER, "on_deck", "On Deck", 0)]}  # the owner is still read
    assert not demand.server_unknown and not demand.user_unknown(OWNER)
    assert demand.user_unknown("alice") and demand.user_unknown("someone we could not list")


def test_plex_tv_account_revoked(monkeypatch):
    with simulated(monkeypatch) as sim:
        sim.inject("/api/v2/user", 401, host="plex.tv")
        patch = {"users": {"owner": {"watchlist": True}, "home": {"on_deck": True}}, "demand": {"next_episodes": 0}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
    assert sorted(unknowns(demand)) == sorted([(OTHER_USERS, "users"), (OWNER, "watchlist")])
    assert table(demand) == {OWNER_DECK: [(OWNER, "on_deck", "On Deck", 0)]}


def test_shared_servers_unreadable_makes_friends_unknown(monkeypatch):
    with simulated(monkeypatch, BOTH_FRIENDS) as sim:
        sim.inject("/api/servers/*/shared_servers", 500, host="plex.tv")
        demand = discover(settings_for(sim, FRIENDS), now=sim.world.now)
    assert unknowns(demand) == [("alice", "token"), ("bob", "token")]
    assert table(demand) == {OWNER_DECK: [(OWNER, "on_deck", "On Deck", 0)]}
    assert demand.users == [OWNER, "alice", "bob"]


@pytest.mark.parametrize("fault", [401, "truncated", 500])
def test_one_friends_token_failing_leaves_the_others(monkeypatch, fault):
    with simulated(monkeypatch, BOTH_FRIENDS) as sim:
        sim.inject("/library/sections/*/onDeck", fault, token=sim.token("alice", pms=True))
        demand = discover(settings_for(sim, FRIENDS), now=sim.world.now)
    assert unknowns(demand) == [("alice", "on_deck")]
    assert table(demand) == {OWNER_DECK: [(OWNER, "on_deck", "On Deck", 0)],
                             ep("Bluey", 1, 2): [("bob", "on_deck", "On Deck", 0)]}


def test_home_user_with_a_pin_cannot_be_switched_to(monkeypatch):
    data = world(users=[{"name": OWNER, "kind": "owner", "id": 1001},
                        {"name": "partner", "kind": "home", "id": 1002},
                        {"name": "kid", "kind": "managed", "id": 1003, "pin": "1234"}],
                 watch={"partner": {"watched": ["Bluey S01E01"]}, "kid": {"watched": ["Bluey S01E02"]}})
    with simulated(monkeypatch, data) as sim:
        patch = {"users": {"owner": {"on_deck": False}, "home": {"on_deck": True}},
                 "demand": {"next_episodes": 0}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
    assert unknowns(demand) == [("kid", "token")]
    assert demand.unknown[0].error == "protected by a Plex Home PIN; set it in the user's override to read it"
    assert table(demand) == {ep("Bluey", 1, 2): [("partner", "on_deck", "On Deck", 0)]}
    with simulated(monkeypatch, data) as sim:
        wrong = {**patch, "users": {**patch["users"], "overrides": [{"name": "kid", "pin": "0000"}]}}
        demand = discover(settings_for(sim, wrong), now=sim.world.now)
        assert [(u.scope, u.error) for u in demand.unknown] == [
            ("kid", "the Plex Home PIN in its override was refused")]
        right = {**patch, "users": {**patch["users"], "overrides": [{"name": "kid", "pin": "1234"}]}}
        demand = discover(settings_for(sim, right), now=sim.world.now)
        assert demand.unknown == []
        assert table(demand) == {ep("Bluey", 1, 2): [("partner", "on_deck", "On Deck", 0)],
                                 ep("Bluey", 1, 3): [("kid", "on_deck", "On Deck", 0)]}
        assert all("1234" not in str(r) for r in sim.requests if r.query.get("pin") is None)


def test_episode_list_failing_keeps_the_on_deck_item(monkeypatch):
    with simulated(monkeypatch) as sim:
        sim.inject("/library/sections/2/all", "truncated", host="pms")  # the On Deck show's episodes
        demand = discover(settings_for(sim), now=sim.world.now)
    assert unknowns(demand) == [(OWNER, "next_episode")]
    assert table(demand) == {OWNER_DECK: [(OWNER, "on_deck", "On Deck", 0)]}


def test_a_failing_listing_of_watched_movies_leaves_the_favourites_unknown(monkeypatch):
    """Without the user's recently watched movies their favourites are not known: said so (so nothing they
    were cached for moves back), and the rest of their demand stands."""
    with simulated(monkeypatch) as sim:
        sim.inject("/library/sections/1/all", "truncated", host="pms")
        demand = discover(settings_for(sim), now=sim.world.now)
    assert unknowns(demand) == [(OWNER, "rewatch")]
    assert table(demand)[OWNER_DECK] == [(OWNER, "on_deck", "On Deck", 0)]


def test_an_episode_listing_without_the_deck_episode_is_not_trusted(monkeypatch):
    """A server that answers `show.id` with nothing must not make the next episodes vanish from demand."""
    from plexcache.sim import routes

    real = routes._filtered

    def show_filter_finds_nothing(ctx, user, keys):
        return [] if "show.id" in ctx.query else real(ctx, user, keys)

    monkeypatch.setattr(routes, "_filtered", show_filter_finds_nothing)
    with simulated(monkeypatch) as sim:
        demand = discover(settings_for(sim, {"demand": {"next_episodes": 1}}), now=sim.world.now)
        assert sim.count("/library/metadata/*/allLeaves") == 1  # the show read on its own instead
    assert demand.unknown == []
    assert table(demand) == {OWNER_DECK: [(OWNER, "on_deck", "On Deck", 0)],
                             ep("Severance", 2, 1): [(OWNER, "next_episode", "1st episode after S01E03", 0)]}


WATCHING = world(watchlists={OWNER: ["Dune (2021)"], "alice": ["Heat"]})
WATCH_ON = {"users": {"owner": {"on_deck": False, "watchlist": True}}}


def test_watchlist_unreadable(monkeypatch):
    with simulated(monkeypatch, WATCHING) as sim:
        sim.inject("/library/sections/watchlist/*", 503, host="discover.provider.plex.tv")
        demand = discover(settings_for(sim, WATCH_ON), now=sim.world.now)
    assert unknowns(demand) == [(OWNER, "watchlist")]
    assert table(demand) == {}


def test_a_users_unwatched_episodes_unreadable_makes_only_their_watchlist_unknown(monkeypatch):
    data = world(watchlists={OWNER: ["Bluey"], "partner": ["Severance", "Dune (2021)"]})
    with simulated(monkeypatch, data) as sim:
        sim.inject("/library/sections/2/all", 500, host="pms", token=sim.token("partner"))
        patch = {"users": {"owner": {"on_deck": False, "watchlist": True}, "home": {"watchlist": True}},
                 "demand": {"watchlist_episodes": 1}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
    assert unknowns(demand) == [("partner", "watchlist")]
    assert table(demand) == {"Dune": [("partner", "watchlist", "Watchlist", 1)],
                             ep("Bluey", 1, 1): [(OWNER, "watchlist", "Watchlist: 1st unwatched episode", 0)]}


def test_library_listing_unreadable_makes_watchlists_unknown(monkeypatch):
    with simulated(monkeypatch, WATCHING) as sim:
        sim.inject("/library/sections/2/all", "garbage", host="pms")
        demand = discover(settings_for(sim, WATCH_ON), now=sim.world.now)
    assert unknowns(demand) == [(OWNER, "watchlist")]
    assert "library listing" in demand.unknown[0].error


@pytest.mark.parametrize("fault", [404, "garbage", "drop"])
def test_rss_feed_unreadable_makes_its_friends_unknown(monkeypatch, fault):
    with simulated(monkeypatch, WATCHING) as sim:
        sim.inject("/friends-feed", fault, host="rss.plex.tv")
        patch = {"users": {"owner": {"on_deck": False}, "remote_watchlist_rss": True,
                           "rss_url": "https://rss.plex.tv/friends-feed"}}
        demand = discover(settings_for(sim, patch), now=sim.world.now)
    assert unknowns(demand) == [("alice", "watchlist"), ("bob", "watchlist")]
    assert all("friends-feed" not in u.error for u in demand.unknown)  # the feed address is a secret
    assert table(demand) == {}


def test_errors_never_carry_tokens(monkeypatch):
    with simulated(monkeypatch, BOTH_FRIENDS) as sim:
        sim.inject("/library/sections/*/onDeck", 401)
        demand = discover(settings_for(sim, FRIENDS), now=sim.world.now)
        secrets = [u.token for u in sim.scenario.users.values()] + [u.pms_token for u in sim.scenario.users.values()]
    assert unknowns(demand) == [(OWNER, "on_deck"), ("alice", "on_deck"), ("bob", "on_deck")]
    assert not any(s in u.error for s in secrets for u in demand.unknown)
