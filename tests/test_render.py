"""Human text made from the JSON documents: reasons and unknowns read as sentences."""

from __future__ import annotations

from plexcache.render import render_plan, unknown_words
from plexcache.words import describe_reasons, human_bytes, reason_words


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
    assert [human_bytes(n) for n in (512, 1500, 3 * 10**9, 4 * 10**12)] == ["512 B", "1.5 KB", "3.0 GB", "4.0 TB"]
    text = render_plan({"actions": [{"action": "cache", "path": "/mnt/user/tv/a.mkv", "size": 10**9,
                                     "title": "A", "reasons": [{"user": "bob", "source": "on_deck",
                                                                 "detail": "On Deck"}]}],
                        "unknown": [{"scope": "(server)", "source": "playing", "error": "timed out"}],
                        "summary": {"cache": 1, "bytes_to_cache": 10**9}})
    assert "Will cache (1):" in text and "bob: On Deck" in text
    assert "could not read Plex (playing): timed out" in text and "1 to cache (1.0 GB)" in text


def test_progress_names_the_phase_until_there_is_something_to_copy():
    import io

    from plexcache.render import terminal_progress

    out = io.StringIO()
    draw = terminal_progress(out)
    draw({"phase": "discovering", "files_total": 0, "bytes_total": 0})
    assert "0/0" not in out.getvalue() and "Asking Plex" in out.getvalue()
    draw({"phase": "copying", "files_total": 3, "files_done": 1, "bytes_total": 3000, "bytes_done": 1000})
    assert "1/3 files" in out.getvalue().rsplit("\r", 1)[-1]


def test_audit_outcome_names_a_fix_once():
    from plexcache.render import render_audit

    text = render_audit({"findings": [], "fixes": [{"result": "ok", "fix": "protect", "action": "protect",
                                                   "path": "/mnt/user/tv/a.mkv", "message": "added"}]})
    assert "protect protect" not in text and "[ok] protect: /mnt/user/tv/a.mkv - added" in text


def test_a_report_says_its_counts_once_and_its_failures():
    from plexcache.render import render_report

    text = render_report({"message": "cached 2, moved back 1; 1 failed", "cached": 2, "moved_back": 1, "failed": 1,
                          "bytes_cached": 2000, "bytes_moved_back": 1000, "exit_code": 1,
                          "failures": ["/mnt/user/tv/b.mkv: disk full"]})
    assert text.lower().count("cached 2") == 1 and "x /mnt/user/tv/b.mkv: disk full" in text
    dry = render_report({"message": "dry run: would cache 3 and move back 0 file(s); nothing was moved",
                         "dry_run": True, "cached": 0, "exit_code": 0})
    assert dry.lower().count("dry run") == 1


def test_a_bulk_move_back_names_ten_files_and_counts_the_rest():
    from plexcache.render import render_report

    still = [{"path": f"/mnt/user/tv/{i}.mkv", "reasons": [{"user": "a", "source": "on_deck"}]} for i in range(25)]
    text = render_report({"message": "", "moved_back": 25, "exit_code": 0, "still_wanted": still})
    assert text.count("is still wanted") == 10 and "and 15 more still wanted" in text


def test_status_names_each_viewers_pace_fastest_first_and_counts_the_rest():
    from plexcache.render import pace_words, render_status

    paces = [{"user": "sam", "show": "tv/Severance (2022)", "episodes_per_day": 4.33, "ahead": 13, "due": 5},
             {"user": "robin", "show": "tv/Slow Horses (2022)", "episodes_per_day": 0.14, "ahead": 1, "due": 1}]
    paces += [{"user": f"u{n}", "show": f"tv/Show {n}", "episodes_per_day": 0.5, "ahead": 2, "due": 1}
              for n in range(12)]
    text = render_status({"pace": paces}, now=0)
    assert "  sam, Severance (2022): 4.3 episodes a day; 13 cached ahead, 5 due before the next run" in text
    assert "  robin, Slow Horses (2022): 1 episode a week; 1 cached ahead, 1 due before the next run" in text
    assert "  and 4 more (plexcache-r --json status)" in text
    assert "pace" not in render_status({"pace": []}, now=0).lower()
    assert [pace_words(x) for x in (1.0, 2.5, 0.3, 2.5 / 7, 0.05, 0.0)] == [
        "1 episode a day", "2.5 episodes a day", "2 episodes a week", "3 episodes a week",
        "1 episode every 3 weeks", "none lately"]
