"""Plex paths to Unraid user-share paths: longest prefix on whole components, never a guess."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from plexcache.config import from_mapping
from plexcache.demand import Demand, DemandItem, Reason
from plexcache.pathmap import PathMapper, map_paths


def settings(*mappings: dict) -> object:
    return from_mapping({"plex": {"path_mappings": list(mappings)}})


def demand_of(*files: str, playing: tuple[str, ...] = ()) -> Demand:
    demand = Demand()
    for i, path in enumerate(files):
        item = DemandItem(rating_key=str(i), title=f"t{i}", kind="movie", library="Movies", plex_files=(path,), size=1)
        demand.add(item, Reason(user="admin", source="on_deck"))
    demand.playing = set(playing)
    return demand


MAPS = ({"plex": "/data", "share": "/mnt/user/media"},
        {"plex": "/data/tv", "share": "/mnt/user/tv"},
        {"plex": "/data/remote", "share": "/mnt/user/remote", "cacheable": False},
        {"plex": "/movies/", "share": "/mnt/user/movies/"})


def test_longest_prefix_wins_on_components():
    result = map_paths(demand_of("/data/tv/Show/S01E01.mkv", "/data/tvshows/Show/S01E01.mkv",
                                 "/movies/Heat/Heat.mkv"), settings(*MAPS))
    assert [(w.path, w.share, w.rel, w.plex_path) for w in result.wanted] == [
        ("/mnt/user/tv/Show/S01E01.mkv", "tv", "Show/S01E01.mkv", "/data/tv/Show/S01E01.mkv"),
        # /data/tv must not claim /data/tvshows: it falls to /data -> the media share's tvshows folder
        ("/mnt/user/media/tvshows/Show/S01E01.mkv", "media", "tvshows/Show/S01E01.mkv",
         "/data/tvshows/Show/S01E01.mkv"),
        ("/mnt/user/movies/Heat/Heat.mkv", "movies", "Heat/Heat.mkv", "/movies/Heat/Heat.mkv")]
    assert result.unmapped == [] and result.not_cacheable == []


def test_unmapped_reported_once_each_sorted_and_never_guessed():
    demand = demand_of("/other/b.mkv", "/other/a.mkv", "/mnt/user/tv/x.mkv", "/datax/y.mkv")
    demand.add(DemandItem(rating_key="9", title="dup", kind="movie", library="M", plex_files=("/other/b.mkv",),
                          size=1), Reason(user="bob", source="watchlist"))
    result = map_paths(demand, settings(*MAPS))
    assert result.wanted == []
    assert result.unmapped == ["/datax/y.mkv", "/mnt/user/tv/x.mkv", "/other/a.mkv", "/other/b.mkv"]


def test_not_cacheable_mapping_is_reported_with_its_reason():
    result = map_paths(demand_of("/data/remote/film.mkv"), settings(*MAPS))
    assert result.wanted == []
    assert result.not_cacheable == [
        ("/data/remote/film.mkv", "under /data/remote, which is mapped with cacheable: false")]


def test_share_must_be_a_folder_under_the_user_root():
    result = map_paths(demand_of("/pool/film.mkv", "/root/film.mkv"),
                       settings({"plex": "/pool", "share": "/mnt/cache/media"},
                                {"plex": "/root", "share": "/mnt/user"}))
    assert result.wanted == []
    assert [p for p, _ in result.not_cacheable] == ["/pool/film.mkv", "/root/film.mkv"]


def test_share_root_mapping_and_identity_mapping():
    # Plex reading /mnt/user directly (a native install): the share is the first folder below it.
    result = map_paths(demand_of("/mnt/user/tv/Show/e1.mkv", "/mnt/user/loose.mkv"),
                       settings({"plex": "/mnt/user", "share": "/mnt/user"}))
    assert [(w.path, w.share, w.rel) for w in result.wanted] == [("/mnt/user/tv/Show/e1.mkv", "tv", "Show/e1.mkv")]
    assert result.not_cacheable[0][0] == "/mnt/user/loose.mkv"  # a file directly in /mnt/user is in no share
    result = map_paths(demand_of("/mnt/user/tv/Show/e1.mkv", "/tv/e2.mkv"),
                       settings({"plex": "/mnt/user/tv", "share": "/mnt/user/tv"},
                                {"plex": "/tv", "share": "/mnt/user/tv"}))
    assert [(w.share, w.rel) for w in result.wanted] == [("tv", "Show/e1.mkv"), ("tv", "e2.mkv")]


def test_playing_files_are_translated_too():
    result = map_paths(demand_of(playing=("/data/tv/Show/e.mkv", "/nowhere/x.mkv")), settings(*MAPS))
    assert result.playing == {"/mnt/user/tv/Show/e.mkv"}
    assert result.unmapped == ["/nowhere/x.mkv"]


def test_dot_dot_never_escapes_the_share():
    result = map_paths(demand_of("/data/tv/../../etc/passwd"), settings(*MAPS))
    assert [w.path for w in result.wanted] == []
    assert result.unmapped == ["/data/tv/../../etc/passwd"]


segment = st.text(alphabet="abcdeftv", min_size=1, max_size=6)


@given(st.lists(segment, min_size=1, max_size=5), st.lists(segment, min_size=1, max_size=3))
def test_a_mapped_path_keeps_its_remainder(rest, prefix):
    plex_prefix = "/" + "/".join(prefix)
    mapper = PathMapper(from_mapping({"plex": {"path_mappings": [
        {"plex": plex_prefix, "share": "/mnt/user/share"}]}}).plex.path_mappings)
    path = plex_prefix + "/" + "/".join(rest)
    status, info = mapper.translate(path)
    assert status == "ok"
    assert info == ("/mnt/user/share/" + "/".join(rest), "share", "/".join(rest))
    # a sibling whose first component merely starts with the prefix's last component is not mapped
    assert mapper.translate(plex_prefix + "x/" + "/".join(rest))[0] == "unmapped"
