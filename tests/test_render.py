"""Human text made from the JSON documents: reasons and unknowns read as sentences."""

from __future__ import annotations

from plexcache.render import describe_reasons, human_bytes, reason_words, render_plan, unknown_words


def test_reason_words_lead_with_the_source_once():
    assert reason_words({"source": "on_deck", "detail": "On Deck, in progress"}) == "On Deck, in progress"
    assert reason_words({"source": "next_episode", "detail": "1st episode after S01E01"}) == \
        "next episode, 1st episode after S01E01"
    assert reason_words({"source": "watchlist", "detail": ""}) == "watchlist"
    assert describe_reasons([{"user": "alice", "source": "pinned", "detail": ""}]) == "alice: pinned"


def test_unknown_words_name_who_could_not_be_read():
    assert unknown_words({"scope": "(server)", "source": "server", "error": "cannot connect"}) == \
        "could not read Plex (server): cannot connect"
    assert unknown_words({"scope": "(other users)", "source": "users", "error": "HTTP 503"}) == \
        "could not read Plex's other users (users): HTTP 503"
    assert unknown_words({"scope": "alice", "source": "on_deck", "error": "timed out"}) == \
        "could not read on_deck for alice: timed out"


def test_human_bytes_and_plan_summary():
    assert [human_bytes(n) for n in (512, 1536, 3 * 1024**3)] == ["512 B", "1.5 KB", "3.0 GB"]
    text = render_plan({"actions": [{"action": "cache", "path": "/mnt/user/tv/a.mkv", "size": 1024**3,
                                     "title": "A", "reasons": [{"user": "bob", "source": "on_deck",
                                                                 "detail": "On Deck"}]}],
                        "unknown": [{"scope": "(server)", "source": "playing", "error": "timed out"}],
                        "summary": {"cache": 1, "bytes_to_cache": 1024**3}})
    assert "Will cache (1):" in text and "bob: On Deck" in text
    assert "could not read Plex (playing): timed out" in text and "1 to cache (1.0 GB)" in text
