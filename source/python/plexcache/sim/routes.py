"""URL routes of the simulator: which handler answers which path on which (virtual) host."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from plexcache.sim import plextv, pms
from plexcache.sim.payloads import Node, to_xml
from plexcache.sim.scenario import WatchlistItem, episodes_of, parse_duration

if TYPE_CHECKING:
    from plexcache.sim.server import SimServer, _Ctx

XML = "text/xml;charset=utf-8"


def _err(status: int, message: str = "") -> Exception:
    from plexcache.sim.server import HttpError
    return HttpError(status, message)


def _rk(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _err(404, "Not Found") from None


# ---------------------------------------------------------------- PMS


def pms_root(ctx: _Ctx) -> Node:
    ctx.need_user()
    return pms.root(ctx.world)


def pms_identity(ctx: _Ctx) -> Node:
    return pms.identity(ctx.world)  # a real server answers /identity without a token


def pms_library(ctx: _Ctx) -> Node:
    ctx.need_user()
    return pms.library_root(ctx.world)


def pms_sections(ctx: _Ctx) -> Node:
    ctx.need_user()
    return pms.sections(ctx.world)


# A section's browse listing, as the official PMS document's example has it (the last entry is per type).
BROWSE = (("all", "All {plural}"), ("unwatched", "Unwatched"), ("newest", "Recently Released"),
          ("recentlyAdded", "Recently Added"), ("recentlyViewed", "Recently Viewed"), ("onDeck", "On Deck"),
          ("collection", "By Collection"), ("genre", "By Genre"), ("year", "By Year"), ("decade", "By Decade"),
          ("contentRating", "By Content Rating"), ("rating", "By Rating"), ("firstCharacter", "By First Letter"),
          ("folder", "By Folder"))


def pms_section(ctx: _Ctx, sid: str) -> Node:
    """GET /library/sections/{id}: not the section itself (that is in /library/sections) but its browse listing."""
    ctx.need_user()
    lib = _lib(ctx, sid)
    plural = {"movie": "Movies", "show": "Shows"}[lib.type]
    node = pms.container(size=len(BROWSE) + 2, allowSync=False, art=f"/:/resources/{lib.type}-fanart.jpg",
                         content="secondary", identifier="com.plexapp.plugins.library", librarySectionID=lib.id,
                         mediaTagPrefix="/system/bundle/media/flags/", mediaTagVersion=1700000000, sortAsc=True,
                         thumb=f"/:/resources/{lib.type}.png", title1=lib.title, viewGroup="secondary",
                         viewMode=65592)
    for key, title in BROWSE:
        node.add(Node("Directory", {"key": key, "title": title.format(plural=plural),
                                    "secondary": True if key.startswith(("collection", "genre", "year", "decade",
                                                                         "content", "rating", "first")) else None}))
    num = pms.TYPE_NUM[lib.type]
    node.add(Node("Directory", {"key": f"search?type={num}", "prompt": f"Search {plural}", "search": True,
                                "title": "Search..."}))
    node.add(Node("Directory", {"key": f"/library/sections/{lib.id}/all?type={num}", "title": plural,
                                "type": str(num)}))
    return node


def _listing(ctx: _Ctx, node: Node, keys: list[Any], build: Callable[[Any], Node], always_total: bool = False) -> Node:
    """One page of a listing. Its items carry their external ids (Guid) only when asked with includeGuids=1, as
    on a real server (plexapi asks in every listing it reads); a single item's metadata always carries them."""
    if ctx.query.get("includeGuids") != "1":
        full = build

        def build(key: Any) -> Node:
            node = full(key)
            node.children = [c for c in node.children if c.tag != "Guid"]
            return node

    return ctx.page(node, keys, build, always_total=always_total)


def _lib(ctx: _Ctx, sid: str) -> Any:
    lib = ctx.world.sc.libraries.get(_rk(sid))
    if lib is None:
        raise _err(404, "Not Found")
    return lib


def pms_section_all(ctx: _Ctx, sid: str) -> Node:
    user = ctx.need_user()
    w = ctx.world
    lib = _lib(ctx, sid)
    wanted = ctx.query.get("type")
    if wanted in (None, "", "1" if lib.type == "movie" else "2"):
        keys = lib.items
    elif lib.type == "show" and wanted == "3":
        keys = [s for show in lib.items for s in w.sc.items[show].children]
    elif lib.type == "show" and wanted == "4":
        keys = w.section_episodes(lib.id)
    else:
        keys = []
    keys = _filtered(ctx, user, keys)
    node = pms.container(allowSync=True, art=f"/:/resources/{lib.type}-fanart.jpg",
                         identifier="com.plexapp.plugins.library", librarySectionID=lib.id,
                         librarySectionTitle=lib.title, librarySectionUUID=lib.uuid,
                         mediaTagPrefix="/system/bundle/media/flags/", mediaTagVersion=1700000000,
                         thumb=f"/:/resources/{lib.type}.png", title1=lib.title, title2="All",
                         viewGroup={"movie": "movie", "show": "show"}[lib.type], viewMode=65592,
                         nocache=True if lib.type == "show" else None)
    if ctx.query.get("includeMeta") == "1":
        node.add(_meta(lib))
    if ctx.query.get("sort"):
        keys = _sorted(ctx, user, keys, ctx.query["sort"])
    return _listing(ctx, node, keys, lambda rk: pms.item(w, user, w.sc.items[rk]))


def _filtered(ctx: _Ctx, user: str, keys: list[int]) -> list[int]:
    """The media-query filters the simulator understands: `unwatched=0|1` (the token's own watched state)
    and, for episodes, `show.id=RK[,RK...]` (a comma is OR). Any other scoped filter is refused with 400,
    as PMS refuses a field it does not know, so a client cannot rely on a filter nobody checked."""
    w = ctx.world
    for name, value in ctx.query.items():
        if name == "unwatched":
            want = value == "1"
            keys = [k for k in keys if _unwatched(ctx, user, k) == want]
        elif name == "show.id":
            if not all(v.isdigit() for v in value.split(",")):
                raise _err(400, f"show.id takes rating keys, got {value!r}")
            shows = {int(v) for v in value.split(",")}
            keys = [k for k in keys if w.sc.items[k].type == "episode" and w.sc.items[k].grandparent in shows]
        elif "." in name and not name.startswith("X-Plex"):
            raise _err(400, f"unknown filter field {name}")
    return keys


def _unwatched(ctx: _Ctx, user: str, rk: int) -> bool:
    st = ctx.world.state(user, rk)
    return not (st and st.view_count)


# Sort fields the simulator understands (plexapi validates `sort=` against the Meta block below).
SORTS = (("titleSort", "Title", "asc"), ("addedAt", "Date Added", "desc"),
         ("originallyAvailableAt", "Release Date", "desc"), ("lastViewedAt", "Date Viewed", "desc"),
         ("year", "Year", "desc"), ("index", "Episode", "asc"))
TYPES = {"movie": (("movie", 1),), "show": (("show", 2), ("season", 3), ("episode", 4))}


def _meta(lib: Any) -> Node:
    """The filter/sort description plexapi loads before a sorted search (sorts only; no filters)."""
    meta = Node("Meta")
    for i, (t, num) in enumerate(TYPES[lib.type]):
        tn = meta.add(Node("Type", {"key": f"/library/sections/{lib.id}/all?type={num}", "type": t,
                                    "title": t.title() + "s", "active": i == 0}))
        for key, title, direction in SORTS:
            tn.add(Node("Sort", {"default": direction if key == "titleSort" else None, "active": key == "titleSort",
                                 "defaultDirection": direction, "descKey": f"{key}:desc", "key": key,
                                 "title": title}))
        tn.add(Node("Field", {"key": "title", "title": "Title", "type": "string"}))
    ft = meta.add(Node("FieldType", {"type": "string"}))
    ft.add(Node("Operator", {"key": "=", "title": "is"}))
    return meta


def _sorted(ctx: _Ctx, user: str, keys: list[int], spec: str) -> list[int]:
    """Apply `sort=field[:dir][,field...]` (a libtype prefix like episode.addedAt is allowed)."""
    w = ctx.world
    out = list(keys)
    for part in reversed(spec.split(",")):
        field, _, direction = part.partition(":")
        field = field.rsplit(".", 1)[-1]
        if field not in {k for k, _, _ in SORTS}:
            raise _err(400, f"unknown sort field {field}")

        def value(rk: int, field: str = field) -> Any:
            it = w.sc.items[rk]
            if field == "lastViewedAt":
                st = w.state(user, rk)
                return (st.last_viewed_at or 0) if st else 0
            if field == "titleSort":
                return it.title.lower()
            if field == "originallyAvailableAt":
                return it.year or 0 if it.type != "episode" else it.added_at
            if field == "year":
                return it.year or 0
            return getattr(it, {"addedAt": "added_at"}.get(field, field)) or 0

        out.sort(key=value, reverse=direction == "desc")
    return out


def pms_collections(ctx: _Ctx, sid: str) -> Node:
    ctx.need_user()
    lib = _lib(ctx, sid)
    return ctx.page(pms.container(librarySectionID=lib.id, librarySectionTitle=lib.title), [], lambda k: k)


def _deck_container(ctx: _Ctx, keys: list[int], user: str) -> Node:
    w = ctx.world
    node = pms.container(allowSync=False, identifier="com.plexapp.plugins.library",
                         mediaTagPrefix="/system/bundle/media/flags/", mediaTagVersion=1700000000,
                         mixedParents=True, title1="On Deck")
    return _listing(ctx, node, keys, lambda rk: pms.deck_item(w, user, w.sc.items[rk]))


def pms_on_deck(ctx: _Ctx) -> Node:
    user = ctx.need_user()
    with ctx.world.lock:
        return _deck_container(ctx, ctx.world.on_deck(user), user)


def pms_section_on_deck(ctx: _Ctx, sid: str) -> Node:
    user = ctx.need_user()
    lib = _lib(ctx, sid)
    with ctx.world.lock:
        node = _deck_container(ctx, ctx.world.on_deck(user, lib.id), user)
    node.attrs["librarySectionID"] = lib.id
    return node


def pms_recently_added(ctx: _Ctx, sid: Optional[str] = None) -> Node:
    user = ctx.need_user()
    w = ctx.world
    lib = _lib(ctx, sid) if sid is not None else None
    node = pms.container(allowSync=True, identifier="com.plexapp.plugins.library",
                         mediaTagPrefix="/system/bundle/media/flags/", mediaTagVersion=1700000000,
                         mixedParents=True, title1="Recently Added")
    if lib is not None:
        node.attrs.update({"librarySectionID": lib.id, "librarySectionTitle": lib.title})
    keys = w.recently_added(lib.id if lib is not None else None)
    return _listing(ctx, node, keys, lambda rk: pms.mixed_item(w, user, w.sc.items[rk]))


def pms_continue_watching(ctx: _Ctx) -> Node:
    user = ctx.need_user()
    with ctx.world.lock:
        node = _deck_container(ctx, ctx.world.on_deck(user), user)
    node.attrs.update({"hubKey": "/hubs/continueWatching/items", "title1": "Continue Watching"})
    return node


def _items_for(ctx: _Ctx, ids: str) -> list[int]:
    rks = []
    for part in ids.split(","):
        rk = _rk(part)
        if rk not in ctx.world.sc.items:
            raise _err(404, "Not Found")
        rks.append(rk)
    return rks


def pms_metadata(ctx: _Ctx, ids: str) -> Node:
    user = ctx.need_user()
    w = ctx.world
    rks = _items_for(ctx, ids)
    node = pms.container(size=len(rks), allowSync=True, identifier="com.plexapp.plugins.library",
                         mediaTagPrefix="/system/bundle/media/flags/", mediaTagVersion=1700000000)
    lib = w.sc.libraries[w.sc.items[rks[0]].section]
    node.attrs.update({"librarySectionID": lib.id, "librarySectionTitle": lib.title,
                       "librarySectionUUID": lib.uuid})
    for rk in rks:
        it = w.sc.items[rk]
        el = node.add(pms.item(w, user, it))
        if ctx.query.get("includeOnDeck") == "1" and it.type in ("show", "season"):
            deck = _show_deck(ctx, user, it)
            if deck is not None:
                el.add(Node("OnDeck", {}, [pms.deck_item(w, user, w.sc.items[deck])]))
    return node


def _show_deck(ctx: _Ctx, user: str, it: Any) -> Optional[int]:
    """The show's On Deck episode: its entry in the user's deck, else its first unwatched regular episode."""
    w = ctx.world
    show_rk = it.rk if it.type == "show" else it.parent
    for rk in w.on_deck(user, it.section):
        ep = w.sc.items[rk]
        if ep.type == "episode" and ep.grandparent == show_rk and (it.type == "show" or ep.parent == it.rk):
            return rk
    for rk in episodes_of(w.sc, show_rk):
        ep = w.sc.items[rk]
        if w.sc.items[ep.parent_rk].index == 0 or (it.type == "season" and ep.parent != it.rk):
            continue
        st = w.state(user, rk)
        if st is None or st.view_count == 0:
            return rk
    return None


def pms_children(ctx: _Ctx, rk_s: str) -> Node:
    user = ctx.need_user()
    w = ctx.world
    it = w.sc.items.get(_rk(rk_s))
    if it is None:
        raise _err(404, "Not Found")
    lib = w.sc.libraries[it.section]
    node = pms.container(allowSync=True, identifier="com.plexapp.plugins.library", key=str(it.rk),
                         librarySectionID=lib.id, librarySectionTitle=lib.title, librarySectionUUID=lib.uuid,
                         mediaTagPrefix="/system/bundle/media/flags/", mediaTagVersion=1700000000, viewMode=458810)
    if it.type == "show":
        node.attrs.update({"art": f"/library/metadata/{it.rk}/art/{it.added_at}", "banner":
                           f"/library/metadata/{it.rk}/banner/{it.added_at}", "nocache": True, "parentIndex": 1,
                           "parentTitle": it.title, "parentYear": it.year, "summary": "",
                           "theme": f"/library/metadata/{it.rk}/theme/{it.added_at}",
                           "thumb": f"/library/metadata/{it.rk}/thumb/{it.added_at}", "title1": lib.title,
                           "title2": it.title, "viewGroup": "season"})
        if ctx.query.get("excludeAllLeaves") != "1" and ctx.paging()[0] == 0:
            node.add(Node("Directory", {"leafCount": w.leaf_count(it.rk), "thumb": node.attrs["thumb"],
                                        "viewedLeafCount": w.viewed_leaf_count(user, it.rk),
                                        "key": f"/library/metadata/{it.rk}/allLeaves", "title": "All episodes"}))
    elif it.type == "season":
        show = w.sc.items[it.parent_rk]
        node.attrs.update({"art": f"/library/metadata/{show.rk}/art/{show.added_at}", "banner":
                           f"/library/metadata/{show.rk}/banner/{show.added_at}", "grandparentContentRating": "TV-14",
                           "grandparentRatingKey": show.rk, "grandparentStudio": "Sim Studios",
                           "grandparentTheme": f"/library/metadata/{show.rk}/theme/{show.added_at}",
                           "grandparentThumb": f"/library/metadata/{show.rk}/thumb/{show.added_at}",
                           "grandparentTitle": show.title, "nocache": True, "parentIndex": it.index,
                           "parentTitle": show.title, "summary": "",
                           "theme": f"/library/metadata/{show.rk}/theme/{show.added_at}",
                           "thumb": f"/library/metadata/{it.rk}/thumb/{it.added_at}", "title1": show.title,
                           "title2": it.title, "viewGroup": "episode"})
    else:
        raise _err(404, "Not Found")
    keys = list(it.children)
    return _listing(ctx, node, keys, lambda rk: pms.item(w, user, w.sc.items[rk]))


def pms_all_leaves(ctx: _Ctx, rk_s: str) -> Node:
    user = ctx.need_user()
    w = ctx.world
    it = w.sc.items.get(_rk(rk_s))
    if it is None or it.type not in ("show", "season"):
        raise _err(404, "Not Found")
    keys = episodes_of(w.sc, it.rk) if it.type == "show" else list(it.children)
    show = it if it.type == "show" else w.sc.items[it.parent_rk]
    node = pms.container(allowSync=True, identifier="com.plexapp.plugins.library", key=str(it.rk),
                         mediaTagPrefix="/system/bundle/media/flags/", mediaTagVersion=1700000000,
                         mixedParents=True, title1=show.title, title2="All Episodes", viewGroup="episode",
                         **pms._lib_attrs(w, it))
    return _listing(ctx, node, keys, lambda rk: pms.item(w, user, w.sc.items[rk]))


def pms_sessions(ctx: _Ctx) -> Node:
    user = ctx.need_user()
    w = ctx.world
    with w.lock:
        sessions = w.sessions_for(user)
        node = pms.container()
        return ctx.page(node, list(range(len(sessions))), lambda i: pms.session(w, sessions[i], i))


def pms_accounts(ctx: _Ctx) -> Node:
    ctx.need_owner()
    node = pms.accounts(ctx.world)
    return node


def _timeline_target(ctx: _Ctx) -> int:
    key = ctx.query.get("ratingKey") or ctx.query.get("key", "")
    rk = _rk(str(key).rsplit("/", 1)[-1])
    if rk not in ctx.world.sc.items:
        raise _err(404, "Not Found")
    return rk


def pms_timeline(ctx: _Ctx) -> Node:
    user = ctx.need_user()
    rk = _timeline_target(ctx)
    state = ctx.query.get("state", "playing")
    offset = int(ctx.query.get("time") or 0)
    it = ctx.world.sc.items[rk]
    if state == "stopped" and it.duration and offset >= it.duration * 0.9:
        ctx.world.set_watched(user, rk)
    else:
        ctx.world.set_offset(user, rk, offset)
    return pms.container(size=0)


def pms_scrobble(ctx: _Ctx) -> None:
    ctx.world.set_watched(ctx.need_user(), _timeline_target(ctx))


def pms_unscrobble(ctx: _Ctx) -> None:
    ctx.world.set_watched(ctx.need_user(), _timeline_target(ctx), watched=False)


# ---------------------------------------------------------------- plex.tv


def _tv_user(ctx: _Ctx) -> Any:
    return ctx.world.sc.users[ctx.need_user()]


def tv_user(ctx: _Ctx) -> Any:
    u = _tv_user(ctx)
    if ctx.wants_json:
        return 200, "application/json", plextv.account_json(ctx.world, u)
    return plextv.account(ctx.world, u)


def tv_users(ctx: _Ctx) -> Node:
    u = _tv_user(ctx)
    if u.kind != "owner":
        return pms.container(friendlyName="myPlex", identifier="com.plexapp.plugins.myplex", size=0, totalSize=0)
    return plextv.users(ctx.world)


def tv_shared_servers(ctx: _Ctx, mid: str) -> Node:
    u = _tv_user(ctx)
    if u.kind != "owner":
        raise _err(401, "Unauthorized")
    if mid != ctx.world.sc.server.machine_identifier:
        raise _err(404, "Not Found")
    return plextv.shared_servers(ctx.world)


def tv_switch(ctx: _Ctx, uid: str) -> Node:
    u = _tv_user(ctx)
    if not u.home:
        raise _err(401, "Unauthorized")
    target = ctx.world.users_by_id.get(_rk(uid))
    if target is None or not target.home:
        raise _err(404, "Not Found")
    if target.pin is not None and ctx.query.get("pin") != target.pin:
        raise _err(401, "Invalid PIN")
    return plextv.switch(ctx.world, target)


def tv_home_users(ctx: _Ctx) -> Node:
    u = _tv_user(ctx)
    home = [x for x in ctx.world.sc.users.values() if x.home] if u.home else []
    node = pms.container(friendlyName="myPlex", identifier="com.plexapp.plugins.myplex", size=len(home),
                         machineIdentifier=ctx.world.sc.server.machine_identifier)
    for x in home:
        node.add(Node("User", {"id": x.id, "uuid": x.uuid, "admin": x.kind == "owner", "guest": False,
                               "restricted": x.restricted, "protected": x.pin is not None, "title": x.name,
                               "username": "" if x.restricted else x.name, "email": x.email,
                               "thumb": f"https://plex.tv/users/{x.uuid}/avatar?c=1"}))
    return node


def tv_resources(ctx: _Ctx) -> Any:
    node = plextv.resources(ctx.world, _tv_user(ctx), ctx.sim.url)
    if ctx.wants_json:  # plex.tv v2 JSON: a bare list of resources, connections as a list
        out = []
        for res in node.children:
            obj = dict(res.attrs)  # the owner's ownerId and sourceTitle are null, not left out
            obj["connections"] = [dict(c.attrs) for c in res.children[0].children]
            out.append(obj)
        return 200, "application/json", json.dumps(out).encode()
    return node


def tv_pin_create(ctx: _Ctx) -> Any:
    client = ctx.headers.get("X-Plex-Client-Identifier") or ctx.query.get("X-Plex-Client-Identifier") or "unknown"
    p = ctx.world.new_pin(client)
    return _pin_out(ctx, p, 201)


def tv_pin_get(ctx: _Ctx, pid: str) -> Any:
    p = ctx.world.pins.get(_rk(pid))
    if p is None:
        raise _err(404, "Not Found")
    return _pin_out(ctx, p, 200)


def _pin_out(ctx: _Ctx, p: dict[str, Any], status: int) -> Any:
    if ctx.wants_json:
        return status, "application/json", plextv.pin_json(p)
    return status, XML, to_xml(plextv.pin(p))


def tv_ping(ctx: _Ctx) -> Node:
    _tv_user(ctx)
    return pms.container(size=0)


# ---------------------------------------------------------------- discover / metadata


def _watchlist(ctx: _Ctx) -> list[WatchlistItem]:
    return ctx.world.sc.views[ctx.need_user()].watchlist


def discover_watchlist(ctx: _Ctx, flt: str) -> Node:
    items = list(_watchlist(ctx))
    if flt not in ("all", "available", "released"):
        raise _err(404, "Not Found")
    if flt == "available":
        items = [i for i in items if i.rk is not None]
    if flt == "released":
        this_year = time.gmtime(ctx.world.now).tm_year
        items = [i for i in items if i.year is None or i.year <= this_year]
    t = ctx.query.get("type")
    if t in ("1", "2"):
        items = [i for i in items if i.type == ("movie" if t == "1" else "show")]
    sort = ctx.query.get("sort", "watchlistedAt:desc")
    field, _, direction = sort.partition(":")
    keyf = {"titleSort": lambda i: i.title.lower(), "originallyAvailableAt": lambda i: i.year or 0,
            "rating": lambda i: 0}.get(field, lambda i: i.added_at)
    items.sort(key=keyf, reverse=direction != "asc")
    node = plextv.watchlist_container(len(items), 0)
    return _listing(ctx, node, items, lambda wl: plextv.watchlist_item(ctx.world, wl), always_total=True)


def discover_watchlist_action(ctx: _Ctx, action: str) -> None:
    user = ctx.need_user()
    pid = ctx.query.get("ratingKey", "")
    view = ctx.world.sc.views[user]
    if action == "removeFromWatchlist":
        before = len(view.watchlist)
        view.watchlist = [i for i in view.watchlist if i.guid.rsplit("/", 1)[-1] != pid]
        if len(view.watchlist) == before:
            raise _err(400, "Not on the watchlist")
        return None
    rk = ctx.world.by_plex_id(pid)
    if rk is None:
        raise _err(400, "Unknown item (the simulator can only add items the server has)")
    it = ctx.world.sc.items[rk]
    view.watchlist.append(WatchlistItem(guid=it.guid, type=it.type, title=it.title, year=it.year,
                                        guids=list(it.guids), added_at=ctx.world.now, rk=rk,
                                        child_count=max(1, len(it.children))))
    return None


def _find_wl(ctx: _Ctx, pid: str) -> Optional[WatchlistItem]:
    for u in ctx.world.sc.views.values():
        for wl in u.watchlist:
            if wl.guid.rsplit("/", 1)[-1] == pid:
                return wl
    return None


def metadata_root(ctx: _Ctx) -> Node:
    return plextv.provider_root()


def metadata_item(ctx: _Ctx, pid: str) -> Node:
    ctx.need_user()
    wl = _find_wl(ctx, pid)
    if wl is None:
        rk = ctx.world.by_plex_id(pid)
        if rk is None:
            raise _err(404, "Not Found")
        it = ctx.world.sc.items[rk]
        wl = WatchlistItem(guid=it.guid, type=it.type, title=it.title, year=it.year, guids=list(it.guids),
                           added_at=it.added_at, rk=rk, child_count=max(1, len(it.children)))
    node = pms.container(size=1, identifier="tv.plex.provider.metadata")
    node.add(plextv.watchlist_item(ctx.world, wl))
    return node


def metadata_user_state(ctx: _Ctx, pid: str) -> Node:
    user = ctx.need_user()
    mine = next((w for w in ctx.world.sc.views[user].watchlist if w.guid.rsplit("/", 1)[-1] == pid), None)
    return plextv.user_state(ctx.world, user, mine, pid, ctx.world.by_plex_id(pid))


# ---------------------------------------------------------------- RSS


def rss_feed(ctx: _Ctx, feed_id: str) -> Any:
    feeds = {v: k for k, v in ctx.world.sc.rss.items()}
    if feed_id not in feeds:
        raise _err(404, "Not Found")
    url = f"https://rss.plex.tv/{feed_id}"
    if ctx.query.get("format") == "json":
        return 200, "application/json", plextv.rss_json(ctx.world, feeds[feed_id], url)
    return 200, "application/rss+xml; charset=utf-8", plextv.rss_xml(ctx.world, feeds[feed_id], url)


# ---------------------------------------------------------------- table


def build_routes(sim: SimServer) -> dict[str, list[Any]]:
    def r(method: str, pattern: str, fn: Any) -> Any:
        return (method, re.compile(pattern), fn)

    n = r"(\d+)"
    return {
        "pms": [
            r("GET", "/", pms_root),
            r("GET", "/identity", pms_identity),
            r("GET", "/library/?", pms_library),
            r("GET", "/library/sections/?", pms_sections),
            r("GET", "/library/sections/all", pms_sections),
            r("GET", f"/library/sections/{n}/?", pms_section),
            r("GET", f"/library/sections/{n}/all", pms_section_all),
            r("GET", f"/library/sections/{n}/collections", pms_collections),
            r("GET", f"/library/sections/{n}/onDeck", pms_section_on_deck),
            r("GET", "/library/onDeck", pms_on_deck),
            r("GET", "/library/recentlyAdded", pms_recently_added),
            r("GET", f"/library/sections/{n}/recentlyAdded", pms_recently_added),
            r("GET", "/hubs/continueWatching/items", pms_continue_watching),
            r("GET", r"/library/metadata/([\d,]+)", pms_metadata),
            r("GET", f"/library/metadata/{n}/children", pms_children),
            r("GET", f"/library/metadata/{n}/allLeaves", pms_all_leaves),
            r("GET", "/status/sessions", pms_sessions),
            r("GET", "/accounts/?", pms_accounts),
            r("GET", "/:/timeline", pms_timeline),
            r("PUT", "/:/timeline", pms_timeline),
            r("POST", "/:/timeline", pms_timeline),
            r("GET", "/:/scrobble", pms_scrobble),
            r("PUT", "/:/scrobble", pms_scrobble),
            r("GET", "/:/unscrobble", pms_unscrobble),
            r("PUT", "/:/unscrobble", pms_unscrobble),
        ],
        "plex.tv": [
            r("GET", "/api/v2/user", tv_user),
            r("GET", "/api/users/?", tv_users),
            r("GET", r"/api/servers/([0-9a-f]+)/shared_servers", tv_shared_servers),
            r("POST", f"/api/home/users/{n}/switch", tv_switch),
            r("GET", "/api/home/users/?", tv_home_users),
            r("GET", "/api/v2/resources", tv_resources),
            r("POST", "/api/v2/pins", tv_pin_create),
            r("GET", f"/api/v2/pins/{n}", tv_pin_get),
            r("GET", "/api/v2/ping", tv_ping),
        ],
        "clients.plex.tv": [
            r("POST", "/api/v2/pins", tv_pin_create),
            r("GET", f"/api/v2/pins/{n}", tv_pin_get),
            r("GET", "/api/v2/user", tv_user),
        ],
        "discover.provider.plex.tv": [
            r("GET", "/library/sections/watchlist/([a-z]+)", discover_watchlist),
            r("PUT", "/actions/(addToWatchlist|removeFromWatchlist)", discover_watchlist_action),
        ],
        "metadata.provider.plex.tv": [
            r("GET", "/", metadata_root),
            r("GET", "/library/metadata/([0-9a-f]+)", metadata_item),
            r("GET", "/library/metadata/([0-9a-f]+)/userState", metadata_user_state),
        ],
        "rss.plex.tv": [
            r("GET", "/([A-Za-z0-9-]+)", rss_feed),
        ],
    }


# ---------------------------------------------------------------- control API (/_sim/...)


def control(sim: SimServer, method: str, path: str, data: dict[str, Any]) -> Any:
    """Drive the world from another process: JSON body (or query) in, JSON out."""
    with sim.world.lock:
        return _control(sim, method, path, data)


def _control(sim: SimServer, method: str, path: str, data: dict[str, Any]) -> Any:
    parts = path.strip("/").split("/")[1:]
    head = parts[0] if parts else ""
    if head == "log" and method == "GET":
        return sim.log_json()
    if head == "log" and method in ("POST", "DELETE"):
        sim.reset_log()
        return {"ok": True}
    if head == "sessions" and method == "POST":
        sid = sim.add_session(data["user"], _ref(data["item"]), data.get("offset", "5m"),
                              data.get("state", "playing"), data.get("player", "Living Room TV"))
        return {"id": sid}
    if head == "sessions" and method == "DELETE":
        return {"removed": sim.remove_session(parts[1] if len(parts) > 1 else None)}
    if head == "watch" and method == "POST":
        if "offset" in data:
            off = data["offset"]
            off_ms = off if isinstance(off, int) else parse_duration(off) * 1000
            return {"rk": sim.set_offset(data["user"], _ref(data["item"]), off_ms, data.get("at"))}
        return {"rks": sim.set_watched(data["user"], _ref(data["item"]), bool(data.get("watched", True)),
                                       data.get("at"))}
    if head == "episodes" and method == "POST":
        return {"rks": sim.add_episodes(_ref(data["show"]), int(data["season"]), int(data["count"]))}
    if head == "clock" and method == "POST":
        return {"now": sim.advance(data.get("advance", 0))}
    if head == "clock" and method == "GET":
        return {"now": sim.world.now}
    if head == "faults" and method == "POST":
        fault = data["fault"]
        fault = int(fault) if str(fault).isdigit() else fault
        times = data.get("times")
        sim.inject(data.get("path", "*"), fault, None if times is None else int(times), data.get("token"),
                   data.get("host"))
        return {"ok": True}
    if head == "faults" and method == "DELETE":
        sim.clear_faults()
        return {"ok": True}
    if head == "notifications" and method == "DELETE":
        sim.drop_notifications()
        return {"ok": True}
    if head == "pins" and len(parts) == 3 and parts[2] == "authorise" and method == "POST":
        sim.authorise_pin(int(parts[1]), data.get("user"))
        return {"ok": True}
    raise _err(404, f"no control endpoint {method} {path}")


def _ref(value: Any) -> Any:
    """Rating keys may arrive as strings from query strings."""
    return int(value) if isinstance(value, str) and value.isdigit() else value
