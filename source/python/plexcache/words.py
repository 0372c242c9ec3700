"""The phrases the log, the CLI and the notifications share: a size, and why a file is wanted. Pure text, so
the engine can write its log without loading the terminal's presentation (render)."""

from __future__ import annotations

from typing import Any, Optional

SOURCE_WORDS = {"playing": "playing now", "on_deck": "On Deck", "next_episode": "next episode",
                "watchlist": "watchlist", "rewatch": "watched again lately", "pinned": "pinned"}


def human_bytes(count: Optional[float]) -> str:
    """Decimal units, as Unraid's own pages show sizes (so the figures match the Main tab)."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def reason_words(reason: dict[str, Any]) -> str:
    """'On Deck, in progress' rather than 'On Deck (On Deck, in progress)': the detail, led by the source."""
    words = SOURCE_WORDS.get(reason.get("source", ""), reason.get("source", ""))
    detail = reason.get("detail") or ""
    if detail.lower().startswith(words.lower()):
        return detail
    return f"{words}, {detail}" if detail else words


def describe_reasons(reasons: list[dict[str, Any]]) -> str:
    """'alice: On Deck; bob: watchlist'. A reason one user has twice (the same next episode reached from On
    Deck and from what is playing) is said once."""
    said: list[str] = []
    for reason in reasons:
        words = f"{reason.get('user', '?')}: {reason_words(reason)}"
        if words not in said:
            said.append(words)
    return "; ".join(said)
