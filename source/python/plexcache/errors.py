"""Errors that end a command, each tied to the exit code the CLI contract gives it."""

from __future__ import annotations


class PlexCacheError(Exception):
    """Base: a failure the user can act on. The message is one clear line."""

    exit_code = 1
    words = "finished, some files failed"  # how the pages name a run that ended so


class UsageError(PlexCacheError):
    """Bad usage, invalid settings, a bad scenario or world file."""

    exit_code = 2
    words = "refused: bad usage or invalid settings"


class SettingsError(UsageError):
    """Invalid settings: carries every problem found, each naming its key."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        first_key, first_msg = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"invalid setting {first_key}: {first_msg}{more}")


class PlexUnavailable(PlexCacheError):
    """Plex (or plex.tv) could not be read; nothing is evicted on its account."""

    exit_code = 3
    words = "Plex could not be read; nothing was moved back because of it"


class LockHeld(PlexCacheError):
    """Another run holds the lock."""

    exit_code = 4
    words = "another run is in progress"


class StopRequested(PlexCacheError):
    """A stop was asked for; the run ended cleanly after the current file."""

    exit_code = 5
    words = "stopped on request"


class EnvironmentRefuses(PlexCacheError):
    """The mover or a parity check is running, or the array is stopped."""

    exit_code = 6
    words = "refused: the mover or a parity check is running, or the array is stopped"


# Each exit code in words, for the pages (vocabulary) and the run history's lines (render).
EXIT_WORDS = {0: "finished", **{cls.exit_code: cls.words for cls in (
    PlexCacheError, UsageError, PlexUnavailable, LockHeld, StopRequested, EnvironmentRefuses)}}
