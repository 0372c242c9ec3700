"""plex.tv, discover/metadata provider and RSS payloads.

No recorded sample exists for the home-user switch, the discover watchlist values or the RSS body; those
shapes follow python-plexapi 4.18.3's parsers and the consumers' parsers (Sonarr, Overseerr, PlexCache-R)
and are LOW CONFIDENCE (see docs/scenario.md). The account and users shapes follow the recorded
home-assistant fixtures.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, Optional

from plexcache.sim.payloads import Node
from plexcache.sim.pms import _slug, container
from plexcache.sim.scenario import User, WatchlistItem, stable_hex
from plexcache.sim.world import World


def account(w: World, u: User) -> Node:
    """/api/v2/user: scrobbleTypes, <subscription> and <profile> are required by plexapi."""
    home_size = sum(1 for x in w.sc.users.values() if x.home)
    node = Node("user", {"id": u.id, "uuid": u.uuid, "username": "" if u.kind == "managed" else u.name,
                         "title": u.name, "email": u.email, "friendlyName": u.name, "locale": "",
                         "confirmed": True, "joinedAt": w.now - 5 * 365 * 86400, "emailOnlyAuth": False,
                         "hasPassword": u.kind != "managed", "protected": u.pin is not None,
                         "thumb": f"https://plex.tv/users/{u.uuid}/avatar?c=1", "authToken": u.token,
                         "mailingListStatus": "unsubscribed", "mailingListActive": False, "scrobbleTypes": "",
                         "country": "US", "subscriptionDescription": "", "restricted": u.restricted,
                         "anonymous": "", "home": u.home, "guest": False,
                         "homeSize": home_size if u.home else 0, "homeAdmin": u.kind == "owner",
                         "maxHomeSize": 15, "rememberExpiresAt": w.now + 30 * 86400, "adsConsent": "",
                         "adsConsentSetAt": "", "adsConsentReminderAt": "", "experimentalFeatures": False,
                         "twoFactorEnabled": False, "backupCodesCreated": False})
    plan = "lifetime" if u.kind == "owner" else "free"
    sub = node.add(Node("subscription", {"active": u.kind == "owner", "subscribedAt": "2020-01-01 00:00:00 UTC"
                                         if u.kind == "owner" else "", "status": "Active" if u.kind == "owner"
                                         else "Inactive", "paymentService": "", "plan": plan}))
    sub.add(Node("features", {}, [Node("feature", {"id": "webhooks"})]))
    node.add(Node("profile", {"autoSelectAudio": True, "defaultAudioLanguage": "en", "defaultSubtitleLanguage": "en",
                              "autoSelectSubtitle": 0, "defaultSubtitleAccessibility": 0,
                              "defaultSubtitleForced": 0}))
    node.add(Node("entitlements", {}, [Node("entitlement", {"id": "all"})]))
    node.add(Node("roles", {}, [Node("role", {"id": "plexpass" if u.kind == "owner" else "user"})]))
    node.add(Node("subscriptions", {}))
    node.add(Node("services", {}))
    return node


_NULL_WHEN_EMPTY = ("locale", "anonymous", "adsConsent", "adsConsentSetAt", "adsConsentReminderAt",
                    "subscriptionDescription", "paymentService")


def account_json(w: World, u: User) -> bytes:
    """/api/v2/user as plex.tv writes JSON (a bare object, as recorded by plex-api.rs): not a rendering of the
    XML: nulls stay, features, entitlements and roles are lists of names, services a list of objects."""
    node = account(w, u)
    owner = u.kind == "owner"

    def attrs(n: Node) -> dict[str, Any]:
        return {k: (None if v == "" and k in _NULL_WHEN_EMPTY else v) for k, v in n.attrs.items()}

    out = attrs(node)
    sub = node.find("subscription")
    assert sub is not None
    out["subscription"] = {**attrs(sub), "subscribedAt": "2020-01-01T00:00:00Z" if owner else None,
                           "plan": "lifetime" if owner else None,
                           "features": [f.attrs["id"] for f in sub.children[0].children]}
    out["profile"] = {**attrs(node.find("profile") or Node("profile")), "defaultAudioAccessibility": 0,
                      "defaultAudioLanguages": None, "defaultSubtitleLanguages": None, "watchedIndicator": 1,
                      "mediaReviewsVisibility": 0, "mediaReviewsLanguages": None}
    out["entitlements"] = ["all"]
    out["roles"] = ["plexpass"] if owner else []
    out["subscriptions"] = [{"id": None, "mode": "lifetime", "renewsAt": None, "endsAt": None, "type": "plexpass",
                             "transfer": None, "state": "active"}] if owner else []
    out["pastSubscriptions"] = []
    out["trials"] = []
    out["services"] = [{"identifier": "epg", "endpoint": "https://epg.provider.plex.tv", "token": u.token,
                        "status": "online"}]
    if u.pin is not None:
        out["pin"] = stable_hex("pin", u.name, n=40)  # plex.tv sends a digest of the PIN, never the PIN
    return json.dumps(out).encode("utf-8")


def _server_share(w: World, u: User) -> Node:
    s = w.sc.server
    return Node("Server", {"id": 7000000 + u.id % 1000000, "serverId": 123456,
                           "machineIdentifier": s.machine_identifier, "name": s.name, "lastSeenAt": w.now,
                           "numLibraries": len(w.sc.libraries), "allLibraries": True, "owned": True,
                           "pending": False})


def users(w: World) -> Node:
    """/api/users/: friends and Plex Home members of the owner's account, each with <Server>."""
    others = [u for u in w.sc.users.values() if u.kind != "owner"]
    node = container(friendlyName="myPlex", identifier="com.plexapp.plugins.myplex",
                     machineIdentifier=w.sc.server.machine_identifier, totalSize=len(others), size=len(others))
    for u in others:
        managed = u.kind == "managed"
        un = node.add(Node("User", {"id": u.id, "title": u.name, "username": "" if managed else u.name,
                                    "email": u.email, "recommendationsPlaylistId": "",
                                    "thumb": f"https://plex.tv/users/{u.uuid}/avatar?c=1",
                                    "protected": u.pin is not None, "home": u.home, "spencer": False,
                                    "allowTuners": 0,
                                    "allowSync": False, "allowCameraUpload": False, "allowChannels": False,
                                    "allowSubtitleAdmin": False, "filterAll": "", "filterMovies": "",
                                    "filterMusic": "", "filterPhotos": "", "filterTelevision": "",
                                    "restricted": u.restricted}))
        if u.shared:
            un.add(_server_share(w, u))
    return node


def shared_servers(w: World) -> Node:
    """/api/servers/{machineId}/shared_servers: accessToken is the user's PMS token."""
    s = w.sc.server
    shared = [u for u in w.sc.users.values() if u.kind != "owner" and u.shared]
    node = container(friendlyName="myPlex", identifier="com.plexapp.plugins.myplex",
                     machineIdentifier=s.machine_identifier, size=len(shared))
    for u in shared:
        sn = node.add(Node("SharedServer", {"id": 9000000 + u.id % 1000000, "username": u.name, "email": u.email,
                                            "userID": u.id, "accessToken": u.pms_token, "name": s.name,
                                            "acceptedAt": w.now - 86400 * 100, "invitedAt": w.now - 86400 * 101,
                                            "allowSync": False, "allowCameraUpload": False, "allowChannels": False,
                                            "allowTuners": False, "allowSubtitleAdmin": False, "owned": False,
                                            "allLibraries": True, "filterAll": "", "filterMovies": "",
                                            "filterMusic": "", "filterPhotos": "", "filterTelevision": ""}))
        for lib in w.sc.libraries.values():
            sn.add(Node("Section", {"id": lib.id, "key": lib.id, "title": lib.title, "type": lib.type,
                                    "shared": True}))
    return node


def switch(w: World, u: User) -> Node:
    """POST /api/home/users/{id}/switch: plexapi reads only the root authenticationToken (low confidence)."""
    return Node("user", {"id": u.id, "uuid": u.uuid, "title": u.name, "username": "" if u.restricted else u.name,
                         "email": u.email, "thumb": f"https://plex.tv/users/{u.uuid}/avatar?c=1",
                         "hasPassword": not u.restricted, "authToken": u.token, "authenticationToken": u.token,
                         "restricted": u.restricted, "home": True, "homeAdmin": u.kind == "owner",
                         "protected": u.pin is not None})


def resources(w: World, u: User, base_url: str) -> Node:
    """/api/v2/resources: the one server, with a connection back to this simulator."""
    s = w.sc.server
    host, _, port = base_url.split("://", 1)[-1].partition(":")
    node = Node("MediaContainer", {"size": 1})
    res = node.add(Node("resource", {"name": s.name, "product": "Plex Media Server", "productVersion": s.version,
                                     "platform": "Linux", "platformVersion": "6.12", "device": "Docker",
                                     "clientIdentifier": s.machine_identifier, "createdAt": "2020-01-01T00:00:00Z",
                                     "lastSeenAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(w.now)),
                                     "provides": "server",
                                     "ownerId": None if u.kind == "owner" else w.sc.owner.id,
                                     "sourceTitle": None if u.kind == "owner" else w.sc.owner.name,
                                     "publicAddress": "203.0.113.7", "accessToken": u.pms_token,
                                     "owned": u.kind == "owner", "home": u.home, "synced": False, "relay": True,
                                     "presence": True, "httpsRequired": False, "publicAddressMatches": True,
                                     "dnsRebindingProtection": False, "natLoopbackSupported": False}))
    conns = res.add(Node("connections", {}))
    # plexapi tries only non-local connections of a server it does not own: offer both kinds
    for local in (True, False):
        conns.add(Node("connection", {"protocol": "http", "address": host, "port": int(port or 80),
                                      "uri": base_url, "local": local, "relay": False, "IPv6": False}))
    return node


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def pin(p: dict[str, Any]) -> Node:
    """A sign-in PIN (plex.tv v2): times as ISO text, and where plex.tv places the requester (community spec)."""
    node = Node("pin", {"id": p["id"], "code": p["code"], "product": "plexcache-r", "trusted": False,
                        "qr": f"https://plex.tv/api/v2/pins/qr/{p['code']}", "clientIdentifier": p["clientIdentifier"],
                        "expiresIn": max(0, p["expiresAt"] - p["createdAt"]), "createdAt": _iso(p["createdAt"]),
                        "expiresAt": _iso(p["expiresAt"]), "authToken": p["authToken"] or None,
                        "newRegistration": None})
    node.add(Node("location", {"code": "US", "continent_code": "NA", "country": "United States", "city": "Sim City",
                               "european_union_member": False, "time_zone": "America/New_York",
                               "postal_code": "10001", "in_privacy_restricted_country": False,
                               "in_privacy_restricted_region": False, "subdivisions": "New York",
                               "coordinates": "40.7, -74.0"}))
    return node


def pin_json(p: dict[str, Any]) -> bytes:
    """plex.tv v2 answers JSON as a bare object (no MediaContainer wrapper); nulls stay."""
    n = pin(p)
    return json.dumps({**n.attrs, "location": n.children[0].attrs}).encode("utf-8")


# ---------------------------------------------------------------- discover / metadata provider


def watchlist_item(w: World, wl: WatchlistItem) -> Node:
    pid = wl.guid.rsplit("/", 1)[-1]
    a = {"art": f"https://metadata-static.plex.tv/{pid}/art.jpg", "guid": wl.guid, "key": f"/library/metadata/{pid}",
         "primaryExtraKey": f"/library/metadata/{pid}/extras", "rating": 7.0, "ratingKey": pid, "studio": "Sim",
         "type": wl.type, "title": wl.title, "titleSort": wl.title, "slug": _slug(wl.title),
         "contentRating": "PG-13", "year": wl.year, "thumb":
         f"https://metadata-static.plex.tv/{pid}/thumb.jpg", "publicPagesURL":
         f"https://watch.plex.tv/{wl.type}/{_slug(wl.title)}", "originallyAvailableAt":
         f"{wl.year}-01-01" if wl.year else None, "addedAt": wl.added_at, "imdbRatingCount": 1000,
         # No watchlistedAt here: no source shows it on a watchlist item (the community spec's list lacks it,
         # plexapi reads it from userState only); when an item was watchlisted is in userState.
         "librarySectionTitle": "Watchlist", "librarySectionID": "watchlist", "librarySectionKey":
         "/library/sections/watchlist"}
    if wl.type == "movie":
        a["duration"] = 7200000
        tag = "Video"
    else:
        a["childCount"] = wl.child_count
        a["leafCount"] = wl.child_count * 10
        tag = "Directory"
    node = Node(tag, a)
    node.add(Node("Image", {"alt": wl.title, "type": "coverPoster", "url": a["thumb"]}))
    node.add(Node("Image", {"alt": wl.title, "type": "background", "url": a["art"]}))
    for g in wl.guids:
        node.add(Node("Guid", {"id": g}))
    return node


def watchlist_container(total: int, offset: int) -> Node:
    return container(librarySectionID="watchlist", librarySectionTitle="Watchlist", offset=offset, totalSize=total,
                     identifier="tv.plex.provider.discover", size=0)


def provider_root() -> Node:
    return container(size=0, friendlyName="Plex Metadata", identifier="tv.plex.provider.metadata",
                     machineIdentifier="tv.plex.provider.metadata", version="1.0")


def user_state(w: World, user: str, wl: Optional[WatchlistItem], plex_id: str, rk: Optional[int]) -> Node:
    st = w.state(user, rk) if rk else None
    node = container(size=1, identifier="tv.plex.provider.metadata")
    node.add(Node("UserState", {"ratingKey": plex_id, "type": wl.type if wl else "movie",
                                "viewCount": st.view_count if st else 0,
                                "viewOffset": st.view_offset if st else 0,
                                "viewState": "complete" if st and st.view_count else "unplayed",
                                "lastViewedAt": st.last_viewed_at if st else None,
                                "watchlistedAt": wl.added_at if wl else None}))
    return node


# ---------------------------------------------------------------- RSS


def _rss_guid(wl: WatchlistItem) -> str:
    for prefix in ("imdb://", "tmdb://", "tvdb://"):
        for g in wl.guids:
            if g.startswith(prefix):
                return g
    return wl.guid


def rss_items(w: World, feed: str) -> list[tuple[User, WatchlistItem]]:
    """(author user, item), newest first; at most 50 like the real feed."""
    who = [w.sc.owner] if feed == "own" else [u for u in w.sc.users.values() if u.kind == "friend"]
    out = [(u, wl) for u in who for wl in w.sc.views[u.name].watchlist]
    out.sort(key=lambda t: -t[1].added_at)
    return out[:50]


def rss_xml(w: World, feed: str, url: str) -> bytes:
    rss = Node("rss", {"version": "2.0", "xmlns:atom": "http://www.w3.org/2005/Atom",
                       "xmlns:media": "http://search.yahoo.com/mrss/"})
    ch = rss.add(Node("channel"))
    ch.add(Node("title", text="Watchlist" if feed == "own" else "Friends' Watchlists"))
    ch.add(Node("link", text="https://watch.plex.tv/watchlist"))
    ch.add(Node("description", text="Plex watchlist feed"))
    ch.add(Node("atom:link", {"href": url, "rel": "self", "type": "application/rss+xml"}))
    for u, wl in rss_items(w, feed):
        it = ch.add(Node("item"))
        it.add(Node("title", text=wl.title))
        it.add(Node("link", text=f"https://watch.plex.tv/{wl.type}/{_slug(wl.title)}"))
        it.add(Node("description", text=""))
        it.add(Node("category", text=wl.type))
        it.add(Node("guid", {"isPermaLink": "false"}, text=_rss_guid(wl)))
        it.add(Node("pubDate", text=email.utils.formatdate(wl.added_at, usegmt=True)))
        it.add(Node("author", text=str(u.id)))
        it.add(Node("media:thumbnail", {"url": f"https://metadata-static.plex.tv/{wl.guid.rsplit('/', 1)[-1]}.jpg"}))
    from plexcache.sim.payloads import to_xml
    return to_xml(rss)


def rss_json(w: World, feed: str, url: str) -> bytes:
    items = []
    for u, wl in rss_items(w, feed):
        items.append({"title": wl.title, "link": f"https://watch.plex.tv/{wl.type}/{_slug(wl.title)}",
                      "category": wl.type, "guids": [wl.guid, *wl.guids], "pubDate":
                      email.utils.formatdate(wl.added_at, usegmt=True), "author": str(u.id), "description": "",
                      "keywords": [], "credits": []})
    return json.dumps({"title": "Watchlist", "links": {"self": url, "next": None}, "items": items}).encode()
