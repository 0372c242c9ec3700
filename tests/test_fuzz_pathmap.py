"""Fuzzing path mapping: a Plex path maps into exactly the share its longest covering mapping names, with
nothing outside it reachable (no '..', no '.', no empty component), or it is reported, never guessed."""

from __future__ import annotations

import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from plexcache.config import PathMapping
from plexcache.pathmap import PathMapper

USER_ROOT = "/mnt/user"
parts = st.sampled_from(["data", "tv", "movies", "a", "b", "..", ".", "", "Show (2020)", "Season 01", "x.mkv",
                         "ü", " ", "user", "mnt", "tv.plexcached", "-", "..."])
paths = st.lists(parts, min_size=0, max_size=7).map(lambda ps: "/" + "/".join(ps))
share_paths = st.one_of(
    st.lists(parts, min_size=0, max_size=4).map(lambda ps: USER_ROOT + "/" + "/".join(ps)),
    paths,  # shares not under the user root: a settings mistake that must be refused, not guessed around
)
mappings = st.lists(st.builds(PathMapping, plex=paths, share=share_paths, cacheable=st.booleans()), max_size=5)


def _covers(prefix: str, path: str) -> bool:
    prefix, path = posixpath.normpath(prefix), posixpath.normpath(path)
    prefix = "/" if prefix == "//" else prefix
    path = "/" if path == "//" else path
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


@settings(max_examples=400, deadline=None)
@given(mappings, paths)
def test_a_path_maps_inside_its_share_or_is_reported(maps, plex_path):
    mapper = PathMapper(maps, USER_ROOT)
    status, info = mapper.translate(plex_path)
    covering = [m for m in maps if _covers(m.plex, plex_path)]
    if not covering:
        assert status == "unmapped", (plex_path, info)
        return
    assert status in ("ok", "refused")
    if status == "refused":
        assert isinstance(info, str) and info
        return
    path, share, rel = info
    # The longest covering prefix decides; a mapping that is not cacheable never maps.
    best = max(covering, key=lambda m: len(posixpath.normpath(m.plex)))
    assert best.cacheable
    # Inside the share: clean components only, under a share folder directly below the user root.
    assert all(c not in ("", ".", "..") for c in rel.split("/")), rel
    assert share not in ("", ".", "..") and "/" not in share
    assert path == f"{USER_ROOT}/{share}/{rel}" and posixpath.normpath(path) == path
    # Nothing is guessed: the result is exactly the mapping's share folder plus the rest of the Plex path.
    norm = posixpath.normpath(plex_path)
    prefix = posixpath.normpath(best.plex)
    rest = norm[len(prefix):].lstrip("/") if prefix not in ("/", "//") else norm.lstrip("/")
    expected = posixpath.normpath(posixpath.normpath(best.share) + "/" + rest)
    assert path == expected, (path, expected)
