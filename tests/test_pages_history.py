"""The Dashboard's History against the real `plexcache-r` and the Plex simulator (Chromium, Unraid's own
template and local_prepend.php): the runs with their outcome in words, each linked to its own log lines; the
chart of pool space and plays over 30 days with its text alternative; the empty and one-day states."""

from __future__ import annotations

import time

from pages_harness.browser import open_page, shot
from pages_harness.fixtures import PAGE_MARKS, browser_fixture, real_fixture
from pages_harness.harness import Sandbox, Server
from realtime import ms

pytestmark = PAGE_MARKS
browser = browser_fixture()
real = real_fixture("history")


def history_shown(page: object) -> None:
    page.locator("#pcr-runhist").scroll_into_view_if_needed()
    page.wait_for_selector("#pcr-runhist-body h4", timeout=ms(60))


def test_runs_are_listed_with_their_outcome_and_open_their_own_log_lines(browser: object,
                                                                          real: tuple[Sandbox, Server]) -> None:
    from plexcache import config as cfg
    from plexcache import runs

    box, server = real
    page = open_page(browser, server)
    history_shown(page)
    body = page.inner_text("#pcr-runhist-body")
    assert "No run yet" in body and "Nothing to draw yet" in body
    shot(page, "history-empty")
    page.close()

    dry = box.cli_json("run", "--dry-run")
    run = box.cli_json("run")
    assert run["exit_code"] == 0 and run["cached"] > 0 and run["run_id"] != dry["run_id"]
    settings = cfg.load(box.config)
    runs.count_play(settings, True)       # what live mode records as a playback starts
    runs.count_play(settings, False, when=time.time() - 2 * 86400)

    for theme in ("white", "black"):
        page = open_page(browser, server, theme=theme)
        history_shown(page)
        row = page.locator(f'#pcr-h-runs tr[data-run="{run["run_id"]}"]')
        text = row.inner_text()
        assert "Run" in text and "Finished" in text and f"cached {run['cached']}" in text
        assert "1 of 1 from the pool" in text
        assert "Dry run" in page.locator(f'#pcr-h-runs tr[data-run="{dry["run_id"]}"]').inner_text()
        # the run's files, from the activity that names it
        events = row.locator(".pcr-h-events")
        events.wait_for(timeout=ms(30))
        events.locator("summary").click()
        assert events.locator("li").count() == min(run["cached"], 50)
        assert all(t.startswith("Cached ") for t in events.locator("li").all_inner_texts())
        # the picture has words: a screen reader reads the summary, and the figures are a table
        chart = page.locator("#pcr-runhist svg[role=img]")
        summary = page.inner_text("#pcr-h-summary")
        assert chart.get_attribute("aria-labelledby") == "pcr-h-summary"
        assert "Cached files used" in summary and "1 of 2 plays were served from the pool" in summary
        assert "One day recorded so far" in summary
        assert page.locator("#pcr-runhist svg rect.pcr-h-pool").count() == 1
        assert page.locator("#pcr-runhist svg rect.pcr-h-from-array").count() == 1
        page.click(".pcr-h-figures summary")
        assert page.locator(".pcr-h-figures tbody tr").count() == 2
        shot(page, f"history-dashboard-{theme}")
        page.close()

    page = open_page(browser, server)
    history_shown(page)
    page.click(f'#pcr-h-runs tr[data-run="{run["run_id"]}"] a.pcr-link')
    page.wait_for_selector("#pcr-log span", timeout=ms(30))
    assert page.eval_on_selector("#pcr-log-run", "s => s.value") == run["run_id"]
    page.wait_for_function("document.getElementById('pcr-log').textContent.includes('run finished')", timeout=ms(30))
    lines = page.inner_text("#pcr-log").splitlines()
    assert lines and all(f"[{run['run_id']}]" in line for line in lines if line[:4].isdigit())
    assert not any(f"[{dry['run_id']}]" in line for line in lines)
    shot(page, "history-run-log")
    assert page.errors == []
    page.close()
