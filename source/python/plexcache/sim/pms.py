"""Plex Media Server payloads: elements for items, sections, sessions and accounts, per user view.

Attribute names follow the official PMS OpenAPI schemas and the recorded fixtures (see
tests/data/README.md); the set is what python-plexapi 4.18.3 reads, so plexapi never needs to reload
an object to find an attribute. Attributes that a real server leaves out for a user (viewCount,
viewOffset, lastViewedAt when unwatched) are left out here too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from plexcache.sim.payloads import Node
from plexcache.sim.scenario import Item, Library, Part, Session, stable_hex
from plexcache.sim.world import World

TYPE_NUM = {"movie": 1, "show": 2, "season": 3, "episode": 4}
AGENT = {"movie": ("tv.plex.agents.movie", "Plex Movie"), "show": ("tv.plex.agents.series", "Plex TV Series")}
_RES = {"2160": (3840, 2160, "4k"), "1080": (1920, 1080, "1080"), "720": (1280, 720, "720"),
        "480": (720, 480, "sd"), "sd": (720, 480, "sd"), "4k": (3840, 2160, "4k")}


def _date(year: Optional[int]) -> Optional[str]:
    return f"{year}-01-01" if year else None


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d")


def container(**attrs: object) -> Node:
    return Node("MediaContainer", dict(attrs))


# ---------------------------------------------------------------- server-level


def root(w: World) -> Node:
    s, owner = w.sc.server, w.sc.owner
    node = container(size=3, allowCameraUpload=True, allowChannelAccess=True, allowMediaDeletion=True,
                     allowSharing=True, allowSync=True, allowTuners=False, backgroundProcessing=True,
                     certificate=True, companionProxy=True, countryCode="usa",
                     diagnostics="logs,databases,streaminglogs", eventStream=True, friendlyName=s.name,
                     hubSearch=True, itemClusters=True, livetv=0, machineIdentifier=s.machine_identifier,
                     mediaProviders=True, multiuser=True, musicAnalysis=2, myPlex=True,
                     myPlexMappingState="mapped", myPlexSigninState="ok", myPlexSubscription=True,
                     myPlexUsername=owner.email, offlineTranscode=1, ownerFeatures="home,pass,sync,webhooks",
                     photoAutoTag=True, platform="Linux", platformVersion="6.12.24-Unraid", pluginHost=True,
                     pushNotifications=False, readOnlyLibraries=False, requestParametersInCookie=True,
                     streamingBrainABRVersion=3, streamingBrainVersion=2, sync=True,
                     transcoderActiveVideoSessions=0, transcoderAudio=True, transcoderLyrics=True,
                     transcoderPhoto=True, transcoderSubtitles=True, transcoderVideo=True,
                     transcoderVideoBitrates="64,96,208,320,720,1500,2000,3000,4000,8000,10000,12000,20000",
                     transcoderVideoQualities="0,1,2,3,4,5,6,7,8,9,10,11,12",
                     transcoderVideoResolutions="128,128,160,240,320,480,768,720,720,1080,1080,1080,1080",
                     updatedAt=w.now, updater=True, version=s.version, voiceSearch=True)
    for key in ("library", "status", "accounts"):
        node.add(Node("Directory", {"count": 1, "key": key, "title": key}))
    return node


def identity(w: World) -> Node:
    return container(size=0, claimed=True,
                     machineIdentifier=w.sc.server.machine_identifier, version=w.sc.server.version)


def library_root(w: World) -> Node:
    node = container(size=len(w.sc.libraries), allowSync=False, art="/:/resources/library-art.jpg", content="",
                     identifier="com.plexapp.plugins.library", mediaTagPrefix="/system/bundle/media/flags/",
                     mediaTagVersion=1700000000, title1="Plex Library", title2="")
    for key, title in (("sections", "Library Sections"), ("recentlyAdded", "Recently Added Content"),
                       ("onDeck", "On Deck")):
        node.add(Node("Directory", {"key": key, "title": title}))
    return node


def section_dir(w: World, lib: Library) -> Node:
    agent, scanner = AGENT[lib.type]
    created = min((w.sc.items[rk].added_at for rk in lib.items[:1]), default=w.now) - 86400
    d = Node("Directory", {"allowSync": True, "art": f"/:/resources/{lib.type}-fanart.jpg",
                           "composite": f"/library/sections/{lib.id}/composite/{w.now}", "filters": True,
                           "refreshing": False, "thumb": f"/:/resources/{lib.type}.png", "key": str(lib.id),
                           "type": lib.type, "title": lib.title, "agent": agent, "scanner": scanner,
                           "language": "en-US", "uuid": lib.uuid, "updatedAt": w.now, "createdAt": created,
                           "scannedAt": w.now, "content": True, "directory": True,
                           # a change counter, not a time (1234 in the official example)
                           "contentChangedAt": w.changes, "hidden": False})
    for i, path in enumerate(lib.locations):
        d.add(Node("Location", {"id": lib.id * 100 + i, "path": path}))
    return d


def sections(w: World) -> Node:
    node = container(size=len(w.sc.libraries), allowSync=False, title1="Plex Library",
                     identifier="com.plexapp.plugins.library", mediaTagPrefix="/system/bundle/media/flags/",
                     mediaTagVersion=1700000000)
    for lib in w.sc.libraries.values():
        node.add(section_dir(w, lib))
    return node


def accounts(w: World) -> Node:
    users = [("", 0)] + [(u.name, u.account_id) for u in w.sc.users.values()]
    node = container(size=len(users), identifier="com.plexapp.system.accounts")
    for name, aid in sorted(users, key=lambda t: t[1]):
        node.add(Node("Account", {"id": aid, "key": f"/accounts/{aid}", "name": name, "defaultAudioLanguage": "en",
                                  "autoSelectAudio": True, "defaultSubtitleLanguage": "en", "subtitleMode": 1,
                                  "thumb": ""}))
    return node


# ---------------------------------------------------------------- items


def _lib_attrs(w: World, it: Item) -> dict[str, Any]:
    lib = w.sc.libraries[it.section]
    return {"librarySectionTitle": lib.title, "librarySectionID": lib.id,
            "librarySectionKey": f"/library/sections/{lib.id}"}


def _user_attrs(w: World, user: Optional[str], rk: int, attrs: dict[str, Any], offset: bool = True) -> None:
    st = w.state(user, rk) if user else None
    if st is None:
        return
    if st.view_count:
        attrs["viewCount"] = st.view_count
    if offset and st.view_offset:
        attrs["viewOffset"] = st.view_offset
    if st.last_viewed_at:
        attrs["lastViewedAt"] = st.last_viewed_at


def _guids(node: Node, it: Item) -> None:
    for g in it.guids:
        node.add(Node("Guid", {"id": g}))


def _media(it: Item, node: Node) -> None:
    for m in it.media:
        width, height, res = _RES.get(m.resolution, (1920, 1080, m.resolution))
        mn = node.add(Node("Media", {"id": m.id, "duration": m.duration, "bitrate": 8000, "width": width,
                                     "height": height, "aspectRatio": 1.78, "audioChannels": 6, "audioCodec": "eac3",
                                     "videoCodec": "hevc", "videoResolution": res, "container": m.container,
                                     "videoFrameRate": "24p", "audioProfile": "dolby digital plus",
                                     "videoProfile": "main 10", "optimizedForStreaming": False,
                                     "has64bitOffsets": False}))
        for p in m.parts:
            mn.add(_part(p))


def _part(p: Part) -> Node:
    pn = Node("Part", {"id": p.id, "key": f"/library/parts/{p.id}/1700000000/file.{p.container}",
                       "duration": p.duration, "file": p.file, "size": p.size, "audioProfile": "dolby digital plus",
                       "container": p.container, "videoProfile": "main 10"})
    pn.add(Node("Stream", {"id": p.id * 10 + 1, "streamType": 1, "default": True, "codec": "hevc", "index": 0,
                           "bitrate": 7000, "language": "English", "languageTag": "en", "languageCode": "eng",
                           "bitDepth": 10, "chromaLocation": "left", "chromaSubsampling": "4:2:0",
                           "codedHeight": 1088, "codedWidth": 1920, "colorPrimaries": "bt709", "colorRange": "tv",
                           "colorSpace": "bt709", "colorTrc": "bt709", "frameRate": 23.976, "height": 1080,
                           "hasScalingMatrix": False, "level": 120, "profile": "main 10", "refFrames": 1,
                           "scanType": "progressive",
                           "width": 1920, "displayTitle": "1080p (HEVC Main 10)",
                           "extendedDisplayTitle": "1080p (HEVC Main 10)"}))
    pn.add(Node("Stream", {"id": p.id * 10 + 2, "streamType": 2, "selected": True, "default": True,
                           "codec": "eac3", "index": 1, "channels": 6, "bitrate": 640, "language": "English",
                           "profile": "dolby digital plus", "samplingRate": 48000, "title": "Surround",
                           "languageTag": "en", "languageCode": "eng", "audioChannelLayout": "5.1(side)",
                           "displayTitle": "English (EAC3 5.1)", "extendedDisplayTitle": "English (EAC3 5.1)"}))
    for i, car in enumerate(p.sidecars):
        sid = p.id * 10 + 3 + i
        # external subtitles carry a stream key and no file path, as on a real server
        pn.add(Node("Stream", {"id": sid, "key": f"/library/streams/{sid}", "streamType": 3, "codec": car.codec,
                               "language": car.language, "languageTag": car.language[:2],
                               "languageCode": car.language, "format": car.codec, "displayTitle": car.language,
                               "extendedDisplayTitle": f"{car.language} ({car.codec.upper()} External)",
                               "forced": "forced" in car.suffix, "hearingImpaired": "sdh" in car.suffix}))
    return pn


def _tags(node: Node, it: Item, kinds: tuple[str, ...]) -> None:
    """A few tag children (Genre, Director, ...): plexapi reloads an item whose tag list it finds empty."""
    seed = it.rk
    for kind in kinds:
        tid = 10000 + (seed * 7 + len(kind)) % 5000
        name = _TAG_NAMES[kind][seed % 3]
        attrs = {"id": tid, "filter": f"{_FILTER.get(kind, kind.lower())}={tid}", "tag": name, "count": 1 + tid % 9}
        if kind == "Role":
            attrs.update({"tagKey": stable_hex("person", name), "role": f"{name}'s part",
                          "thumb": f"https://metadata-static.plex.tv/people/{stable_hex('thumb', name)}.jpg"})
        node.add(Node(kind, attrs))


_FILTER = {"Role": "actor"}
_TAG_NAMES = {"Genre": ("Drama", "Comedy", "Science Fiction"),
              "Director": ("A. Director", "B. Director", "C. Director"),
              "Writer": ("A. Writer", "B. Writer", "C. Writer"), "Producer": ("A. Producer", "B. Producer",
              "C. Producer"), "Country": ("United States of America", "United Kingdom", "Canada"),
              "Role": ("Lead Actor", "Second Actor", "Third Actor")}


def _art(rk: int, ts: int) -> dict[str, str]:
    return {"thumb": f"/library/metadata/{rk}/thumb/{ts}", "art": f"/library/metadata/{rk}/art/{ts}"}


def movie(w: World, user: Optional[str], it: Item) -> Node:
    a = {"ratingKey": str(it.rk), "key": f"/library/metadata/{it.rk}", "guid": it.guid, "slug": _slug(it.title),
         "studio": "Sim Pictures", "type": "movie", "title": it.title, "titleSort": it.title,
         **_lib_attrs(w, it), "contentRating": "PG-13", "summary": f"{it.title}: a simulated film.",
         "rating": 7.5, "audienceRating": 8.0, "hasPremiumPrimaryExtra": "1",  # a string, also in JSON
         "ratingImage": "rottentomatoes://image.rating.ripe", "audienceRatingImage":
         "rottentomatoes://image.rating.upright", "primaryExtraKey": f"/library/metadata/{it.rk}/extras",
         "year": it.year, "tagline": "", **_art(it.rk, it.added_at),
         "duration": it.duration, "originallyAvailableAt": _date(it.year), "addedAt": it.added_at,
         "updatedAt": it.added_at, "chapterSource": "media"}
    _user_attrs(w, user, it.rk, a)
    node = Node("Video", a)
    _media(it, node)
    _tags(node, it, ("Genre", "Country", "Director", "Writer", "Producer", "Role"))
    _guids(node, it)
    return node


def episode(w: World, user: Optional[str], it: Item) -> Node:
    season = w.sc.items[it.parent_rk]
    show = w.sc.items[it.show_rk]
    a = {"ratingKey": str(it.rk), "key": f"/library/metadata/{it.rk}",
         "parentRatingKey": str(season.rk), "grandparentRatingKey": str(show.rk), "guid": it.guid,
         "parentGuid": season.guid, "grandparentGuid": show.guid, "grandparentSlug": _slug(show.title),
         "type": "episode", "title": it.title, "titleSort": it.title,
         "grandparentKey": f"/library/metadata/{show.rk}", "parentKey": f"/library/metadata/{season.rk}",
         **_lib_attrs(w, it), "grandparentTitle": show.title, "parentTitle": season.title,
         "contentRating": "TV-14", "summary": "", "index": it.index, "parentIndex": season.index,
         "year": show.year, "parentYear": show.year, **_art(it.rk, it.added_at),
         "parentThumb": f"/library/metadata/{season.rk}/thumb/{season.added_at}",
         "grandparentThumb": f"/library/metadata/{show.rk}/thumb/{show.added_at}",
         "grandparentArt": f"/library/metadata/{show.rk}/art/{show.added_at}",
         "grandparentTheme": f"/library/metadata/{show.rk}/theme/{show.added_at}", "rating": 8.0,
         "duration": it.duration, "originallyAvailableAt": _iso(it.added_at), "addedAt": it.added_at,
         "updatedAt": it.added_at}
    _user_attrs(w, user, it.rk, a)
    node = Node("Video", a)
    _media(it, node)
    _tags(node, it, ("Director", "Writer"))
    _guids(node, it)
    return node


def show(w: World, user: Optional[str], it: Item) -> Node:
    leaves = w.leaf_count(it.rk)
    a = {"ratingKey": str(it.rk), "key": f"/library/metadata/{it.rk}/children", "guid": it.guid,
         "slug": _slug(it.title), "studio": "Sim Studios", "type": "show", "title": it.title, "titleSort": it.title,
         **_lib_attrs(w, it), "contentRating": "TV-14", "summary": "", "index": 1, "rating": 8.0,
         "year": it.year, **_art(it.rk, it.added_at), "theme": f"/library/metadata/{it.rk}/theme/{it.added_at}",
         "banner": f"/library/metadata/{it.rk}/banner/{it.added_at}",
         "duration": w.sc.items[w.sc.items[it.children[0]].children[0]].duration
         if it.children and w.sc.items[it.children[0]].children else 0,
         "originallyAvailableAt": _date(it.year), "leafCount": leaves,
         "viewedLeafCount": w.viewed_leaf_count(user, it.rk) if user else 0,
         "childCount": len(it.children), "addedAt": it.added_at, "updatedAt": it.added_at}
    _user_attrs(w, user, it.rk, a)
    node = Node("Directory", a)
    _tags(node, it, ("Genre", "Role"))
    _guids(node, it)
    for path in it.locations:
        node.add(Node("Location", {"path": path}))
    return node


def season(w: World, user: Optional[str], it: Item) -> Node:
    sh = w.sc.items[it.parent_rk]
    a = {"ratingKey": str(it.rk), "key": f"/library/metadata/{it.rk}/children", "parentRatingKey": str(sh.rk),
         "guid": it.guid, "parentGuid": sh.guid, "parentSlug": _slug(sh.title), "parentStudio": "Sim Studios",
         "type": "season", "title": it.title, "titleSort": it.title, **_lib_attrs(w, it),
         "parentKey": f"/library/metadata/{sh.rk}", "parentTitle": sh.title, "summary": "", "index": it.index,
         "parentIndex": 1, "year": sh.year, "parentYear": sh.year, **_art(it.rk, it.added_at),
         "parentThumb": f"/library/metadata/{sh.rk}/thumb/{sh.added_at}",
         "parentTheme": f"/library/metadata/{sh.rk}/theme/{sh.added_at}",
         "leafCount": w.leaf_count(it.rk), "viewedLeafCount": w.viewed_leaf_count(user, it.rk) if user else 0,
         "addedAt": it.added_at, "updatedAt": it.added_at}
    node = Node("Directory", a)
    return node


def item(w: World, user: Optional[str], it: Item) -> Node:
    return {"movie": movie, "episode": episode, "show": show, "season": season}[it.type](w, user, it)


def mixed_item(w: World, user: Optional[str], it: Item) -> Node:
    """An item of a list that mixes libraries (On Deck, Recently Added): it names its library in full."""
    node = item(w, user, it)
    node.attrs.update({"allowSync": True, "librarySectionUUID": w.sc.libraries[it.section].uuid})
    return node


def deck_item(w: World, user: str, it: Item) -> Node:
    """An On Deck entry: a next episode, never viewed itself, carries when its show was last watched."""
    node = mixed_item(w, user, it)
    viewed = w.deck_viewed_at(user, it.rk)
    if viewed is not None:
        node.attrs["lastViewedAt"] = viewed
    return node


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


# ---------------------------------------------------------------- sessions


def session(w: World, s: Session, index: int) -> Node:
    u = w.sc.users[s.user]
    node = item(w, s.user, w.sc.items[s.rk])
    node.attrs["sessionKey"] = str(s.key or index + 1)
    node.attrs["viewOffset"] = s.view_offset
    for m in node.children:
        if m.tag == "Media":
            m.attrs["selected"] = True
            m.attrs["protocol"] = "http"
            for p in m.children:
                p.attrs.update({"decision": "directplay", "selected": True, "protocol": "http", "bitrate": 8000})
                for st in p.children:
                    st.attrs.update({"decision": "copy", "location": "direct"})
    node.add(Node("User", {"id": str(u.account_id), "thumb": f"https://plex.tv/users/{u.uuid}/avatar",
                           "title": u.name}))
    node.add(Node("Player", {"address": "192.168.1.50", "device": s.platform, "machineIdentifier":
                             f"{s.id}-player", "model": "sim", "platform": s.platform, "platformVersion": "1.0",
                             "product": s.product, "profile": s.platform, "deviceClass": "stb", "protocolVersion": 1,
                             "remotePublicAddress": "203.0.113.7",
                             "state": s.state, "title": s.player, "vendor": "", "version": "8.0.0", "local": True,
                             "relayed": False, "secure": True, "userID": u.account_id}))
    node.add(Node("Session", {"id": s.id, "bandwidth": 9000, "location": "lan"}))
    return node
