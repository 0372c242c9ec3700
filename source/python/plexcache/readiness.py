"""The set-up checklist: which steps between installing the plugin and a safe first run are done.

`checklist` is pure: settings plus a handful of cheap facts (gathered by `gather`: the share settings,
CA Mover Tuning's config, whether a run ever happened and, only when asked, one connection to Plex) give
the steps in the order a person takes them, each with its state and a sentence saying what to do. No array
disk is read: the share list comes from Unraid's configuration files.

A step is `done`, `todo` (not done yet) or `broken` (it was fine once, before the first run or since,
and is not now: a revoked token, a mapped share gone, Mover Tuning removed). The steps marked `required`
are those a run needs to be safe; `run` refuses while one of them is not done.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from plexcache import schedule
from plexcache.config import PathMapping, Settings
from plexcache.errors import PlexCacheError
from plexcache.state import StateStore
from plexcache.unraid import ShareInfo, read_shares

# a step's state, as the pages read it
DONE, TO_DO, BROKEN = "done", "todo", "broken"
# What a run needs before it may move anything: someone to ask, somewhere to put it, a mover that keeps away.
REQUIRED = ("plex", "mappings", "mover_tuning")


@dataclass
class SetupFacts:
    """What `checklist` judges, besides the settings. `plex` and `libraries` are None when Plex was not asked."""

    shares: dict[str, ShareInfo] = field(default_factory=dict)
    mover_tuning: dict[str, Any] = field(default_factory=dict)  # schedule.mover_tuning_status()
    ran_before: bool = False  # a run (or dry run) finished once, or files are managed
    plex: Optional[dict[str, Any]] = None  # plex.test_connection() answer
    plex_error: str = ""  # why Plex could not be read, when it was asked
    libraries: Optional[list[dict[str, Any]]] = None  # plex.list_libraries() answer


@dataclass
class Step:
    id: str
    title: str
    state: str
    detail: str
    required: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "state": self.state, "detail": self.detail,
                "required": self.required}


def checklist(settings: Settings, facts: SetupFacts) -> dict[str, Any]:
    """The `setup --json` document: the steps, the suggested mappings, and whether a run is safe."""
    suggested, unmatched = suggest_mappings(settings, facts)
    steps = [_plex_step(settings, facts), _libraries_step(settings, facts),
             _mappings_step(settings, facts, suggested, unmatched), _users_step(settings),
             _mover_tuning_step(settings, facts), _first_run_step(facts)]
    for step in steps:
        step.required = step.id in REQUIRED
        if step.state == TO_DO and facts.ran_before and step.id != "first_run":
            step.state = BROKEN
    missing = [s.title for s in steps if s.required and s.state != DONE]
    return {"steps": [s.to_json() for s in steps], "ready": not missing, "missing": missing,
            "complete": all(s.state == DONE for s in steps), "first_run_done": facts.ran_before,
            "plex_checked": facts.plex is not None or bool(facts.plex_error),
            "plex": facts.plex, "suggested_mappings": suggested, "unmatched_folders": unmatched,
            "ignore_list": settings.paths.exclusion_list}


def refusal(document: dict[str, Any]) -> str:
    """The sentence `run` ends with while the set-up is not safe to run."""
    return ("not set up yet, so nothing was moved. Still to do: " + "; ".join(document["missing"])
            + " (see `plexcache-r setup`, or the Dashboard's Get started list; a dry run is allowed)")


# --- the steps ------------------------------------------------------------------------------------


def _plex_step(settings: Settings, facts: SetupFacts) -> Step:
    title = "Sign in to Plex"
    if not settings.plex.token:
        return Step("plex", title, TO_DO, "not signed in yet: sign in with a PIN at plex.tv/link (or paste a token)")
    if facts.plex_error:
        return Step("plex", title, TO_DO, f"Plex cannot be read: {facts.plex_error}")
    if facts.plex is None:
        return Step("plex", title, DONE, f"signed in to {settings.plex.url} (not checked now)")
    server = facts.plex.get("server", {})
    return Step("plex", title, DONE, f"signed in to {server.get('name', 'Plex')} as {facts.plex.get('owner', '?')}")


def _libraries_step(settings: Settings, facts: SetupFacts) -> Step:
    title = "Choose the libraries"
    chosen = settings.plex.libraries
    if facts.libraries is not None:
        known = {lib["title"] for lib in facts.libraries} | {lib["id"] for lib in facts.libraries}
        gone = [name for name in chosen if name not in known]
        if gone:
            return Step("libraries", title, TO_DO, "not on the Plex server any more: " + ", ".join(gone))
        if not facts.libraries:
            return Step("libraries", title, TO_DO, "the Plex server has no movie or TV library")
    if not chosen:
        count = f" ({len(facts.libraries)})" if facts.libraries is not None else ""
        return Step("libraries", title, DONE, f"every movie and TV library{count}")
    return Step("libraries", title, DONE, ", ".join(chosen))


def _mappings_step(settings: Settings, facts: SetupFacts, suggested: list[dict[str, Any]],
                   unmatched: list[str]) -> Step:
    title = "Map Plex's folders to your shares"
    good, problems = [], []
    for mapping in settings.plex.path_mappings:
        why = mapping_problem(settings, mapping, facts.shares)
        if why:
            problems.append(f"{mapping.plex} → {mapping.share}: {why}")
        else:
            good.append(f"{mapping.plex} → {mapping.share}")
    if not good:
        if problems:
            detail = "no mapping leads to a share that can be cached: " + "; ".join(problems)
        elif suggested:
            detail = f"{len(suggested)} mapping(s) suggested from Plex's library folders"
        else:
            detail = "no mapping yet: tell which share holds each folder Plex reads (e.g. /data/tv → /mnt/user/tv)"
        return Step("mappings", title, TO_DO, detail)
    extra = [f"{len(suggested)} more suggested"] if suggested else []
    extra += [f"not covered: {', '.join(unmatched)}"] if unmatched else []
    return Step("mappings", title, DONE, "; ".join([", ".join(good), *problems, *extra]))


def _users_step(settings: Settings) -> Step:
    title = "Choose whose demand counts"
    u = settings.users
    groups = [(name, t) for name, t in (("owner", u.owner), ("home users", u.home), ("friends", u.friends))]
    on_deck = [name for name, t in groups if t.on_deck]
    watchlist = [name for name, t in groups if t.watchlist]
    overrides = [o.name for o in u.overrides if o.on_deck or o.watchlist]
    if not (on_deck or watchlist or overrides or u.remote_watchlist_rss):
        return Step("users", title, TO_DO, "nobody's On Deck or watchlist counts, so nothing would be cached")
    parts = [f"On Deck of the {', '.join(on_deck)}"] if on_deck else []
    parts += [f"watchlists of the {', '.join(watchlist)}"] if watchlist else []
    parts += [f"per-user choices for {', '.join(overrides)}"] if overrides else []
    return Step("users", title, DONE, "; ".join(parts))


def _mover_tuning_step(settings: Settings, facts: SetupFacts) -> Step:
    title = "Keep the mover away from cached files"
    problems = facts.mover_tuning.get("problems", [])
    if not problems:
        return Step("mover_tuning", title, DONE, "CA Mover Tuning reads the ignore list "
                    f"{settings.paths.exclusion_list}")
    if settings.schedule.mover_tuning_waived:
        return Step("mover_tuning", title, DONE, "waived in the settings: the mover is kept off the cached files "
                    "another way")
    return Step("mover_tuning", title, TO_DO, "; ".join(problems))


def _first_run_step(facts: SetupFacts) -> Step:
    title = "Preview the first run, then start it"
    if facts.ran_before:
        return Step("first_run", title, DONE, "done")
    return Step("first_run", title, TO_DO, "see which files would be cached and why, then start the run")


# --- path mappings ---------------------------------------------------------------------------------


def mapping_problem(settings: Settings, mapping: PathMapping, shares: dict[str, ShareInfo]) -> str:
    """Why a mapping cannot lead to a cached file ('' when it can), judged from the share settings alone."""
    if not mapping.cacheable:
        return "marked as not cacheable"
    root = posixpath.normpath(settings.paths.user_root)
    share_path = posixpath.normpath(mapping.share)
    if not share_path.startswith(root + "/"):
        return f"not under {root}"
    name = share_path[len(root) + 1:].split("/")[0]
    info = shares.get(name)
    if info is None:
        return f"there is no share named {name}"
    return "" if info.cacheable else info.why


def _covered(settings: Settings, folder: str) -> bool:
    folder = posixpath.normpath(folder)
    for mapping in settings.plex.path_mappings:
        prefix = posixpath.normpath(mapping.plex)
        if folder == prefix or folder.startswith(prefix.rstrip("/") + "/"):
            return True
    return False


def suggest_mappings(settings: Settings, facts: SetupFacts) -> tuple[list[dict[str, Any]], list[str]]:
    """Mappings for the chosen libraries' folders no mapping covers yet: the folder's deepest component that
    names an existing share is taken as that share (/data/media/tv with a share `tv` → /mnt/user/tv). Folders
    that name no share are listed apart: guessing there would cache the wrong files."""
    if facts.libraries is None:
        return [], []
    chosen = set(settings.plex.libraries)
    suggested: list[dict[str, Any]] = []
    unmatched: list[str] = []
    root = posixpath.normpath(settings.paths.user_root)
    for lib in facts.libraries:
        if chosen and lib["title"] not in chosen and lib["id"] not in chosen:
            continue
        for folder in lib.get("locations", []):
            folder = posixpath.normpath(folder)
            if _covered(settings, folder) or any(s["plex"] == folder for s in suggested) or folder in unmatched:
                continue
            share = _share_in(folder, facts.shares)
            if share is None:
                unmatched.append(folder)
                continue
            name, rest = share
            info = facts.shares[name]
            suggested.append({"plex": folder, "share": posixpath.join(root, name, rest).rstrip("/"),
                              "cacheable": True, "library": lib["title"],
                              "note": "" if info.cacheable else info.why})
    return suggested, sorted(unmatched)


def _share_in(folder: str, shares: dict[str, ShareInfo]) -> Optional[tuple[str, str]]:
    """(share, the rest of the folder below it) for the deepest component of `folder` that names a share."""
    parts = [p for p in folder.split("/") if p]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in shares:
            return parts[i], "/".join(parts[i + 1:])
    return None


# --- gathering the facts (I/O) --------------------------------------------------------------------


# Asks Plex for its identity and its libraries; the CLI passes it in only when asked to, so the checklist
# never loads plexapi for nothing.
PlexProbe = Callable[[Settings], tuple[Optional[dict[str, Any]], Optional[list[dict[str, Any]]]]]


def gather(settings: Settings, *, ask_plex: Optional[PlexProbe] = None) -> SetupFacts:
    """The facts `checklist` needs; Plex is only asked (one connection) when ask_plex is given."""
    store = StateStore(settings)
    facts = SetupFacts(shares=read_shares(settings), mover_tuning=schedule.mover_tuning_status(settings),
                       ran_before=store.load_last_run() is not None or len(store.load_registry()) > 0)
    if ask_plex is not None and settings.plex.token:
        _ask_plex(settings, facts, ask_plex)
    return facts


def _ask_plex(settings: Settings, facts: SetupFacts, ask_plex: PlexProbe) -> None:
    try:
        facts.plex, facts.libraries = ask_plex(settings)
    except PlexCacheError as exc:
        facts.plex, facts.libraries = None, None
        facts.plex_error = str(exc)


def setup_document(settings: Settings, *, ask_plex: Optional[PlexProbe] = None) -> dict[str, Any]:
    return checklist(settings, gather(settings, ask_plex=ask_plex))
