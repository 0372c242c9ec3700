"""Translate the Plex paths of a Demand into Unraid user-share paths.

Plex (often in a container) sees media under its own prefixes (/data/tv); Unraid knows the same files as
/mnt/user/SHARE/REL. Settings list the prefixes; the longest prefix that matches whole path components
wins. A path no mapping covers is reported, never guessed: a wrong guess would move the wrong file.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from plexcache.config import PathMapping, Settings
from plexcache.demand import Demand, WantedFile

# How one Plex path maps: to (user-share path, share, rel), to nothing, or refused with the reason.
Translation = Union[tuple[Literal["ok"], tuple[str, str, str]], tuple[Literal["unmapped"], None],
                    tuple[Literal["refused"], str]]


@dataclass
class MappingResult:
    wanted: list[WantedFile] = field(default_factory=list)  # in demand order, one per distinct file
    unmapped: list[str] = field(default_factory=list)  # sorted, distinct Plex paths no mapping covers
    not_cacheable: list[tuple[str, str]] = field(default_factory=list)  # (Plex path, why), sorted
    playing: set[str] = field(default_factory=set)  # user-share paths of files being played now


def _norm(path: str) -> str:
    """Collapse doubled and trailing slashes so prefixes compare on components."""
    cleaned = posixpath.normpath(path) if path else path
    return "/" if cleaned == "//" else cleaned


def _under(path: str, prefix: str) -> Optional[str]:
    """The remainder of `path` below `prefix` ('' when equal), or None when not under it."""
    if prefix == "/":
        return path.lstrip("/")
    if path == prefix:
        return ""
    if path.startswith(prefix + "/"):
        return path[len(prefix) + 1:]
    return None


class PathMapper:
    """Longest-prefix matching over the configured mappings, on path components."""

    def __init__(self, mappings: list[PathMapping], user_root: str = "/mnt/user") -> None:
        self.user_root = _norm(user_root)
        self.mappings = sorted(mappings, key=lambda m: -len(_norm(m.plex)))

    def find(self, plex_path: str) -> Optional[tuple[PathMapping, str]]:
        """(mapping, remainder) of the longest mapping covering `plex_path`, or None."""
        path = _norm(plex_path)
        for mapping in self.mappings:
            rest = _under(path, _norm(mapping.plex))
            if rest is not None:
                return mapping, rest
        return None

    def share_path(self, mapping: PathMapping, rest: str) -> Optional[tuple[str, str, str]]:
        """(user-share path, share, rel) for a remainder under `mapping`, or None when the result is not a
        file inside a share under the user-share root (a settings mistake, never guessed around)."""
        if ".." in rest.split("/"):
            return None
        below = _under(_norm(mapping.share), self.user_root)
        if below is None:
            return None
        share, _, rel = "/".join(p for p in (below, rest) if p).partition("/")
        if not share or not rel:
            return None
        return f"{self.user_root}/{share}/{rel}", share, rel

    def translate(self, plex_path: str) -> Translation:
        """Classify one path: ("ok", (path, share, rel)), ("unmapped", None) or ("refused", why)."""
        found = self.find(plex_path)
        if found is None:
            return "unmapped", None
        mapping, rest = found
        if not mapping.cacheable:
            return "refused", f"under {mapping.plex}, which is mapped with cacheable: false"
        target = self.share_path(mapping, rest)
        if target is None:
            return "refused", (f"maps (through {mapping.plex} -> {mapping.share}) to no share folder "
                               f"under {self.user_root}")
        return "ok", target


def map_paths(demand: Demand, settings: Settings) -> MappingResult:
    """Every file of every demanded item as a WantedFile, plus what could not be mapped and why."""
    mapper = PathMapper(settings.plex.path_mappings, settings.paths.user_root)
    result = MappingResult()
    seen: set[str] = set()
    unmapped: set[str] = set()
    refused: dict[str, str] = {}
    for item in demand.items.values():
        for plex_path in item.plex_files:
            if plex_path in seen:
                continue
            seen.add(plex_path)
            found = mapper.translate(plex_path)
            if found[0] == "unmapped":
                unmapped.add(plex_path)
            elif found[0] == "refused":
                refused[plex_path] = found[1]
            else:
                path, share, rel = found[1]
                result.wanted.append(WantedFile(path=path, share=share, rel=rel, plex_path=plex_path, item=item))
    for plex_path in demand.playing:
        found = mapper.translate(plex_path)
        if found[0] == "ok":
            result.playing.add(found[1][0])
        elif found[0] == "unmapped":
            unmapped.add(plex_path)
    result.unmapped = sorted(unmapped)
    result.not_cacheable = sorted(refused.items())
    return result
