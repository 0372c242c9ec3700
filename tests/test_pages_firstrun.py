"""From install to the first cached file, as a new user does it in Chromium: a fresh install (no token, no
mapping, no CA Mover Tuning) against the real `plexcache-r` and the Plex simulator, inside Unraid's own
template with every request through its local_prepend.php. The Dashboard's Get started panel is the only
guide: PIN sign-in, the suggested mappings, where to paste the ignore list, the preview, the first run. The
clicks on plexcache-r's pages from the first page view to the first cached file are counted and kept small;
what happens elsewhere (entering the code at plex.tv/link, pasting the path in Mover Tuning) is done here
the way the simulator and the sandbox let it be done."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from pages_harness import webgui
from pages_harness.browser import chromium, open_page, shot, tab
from pages_harness.fixtures import PAGE_MARKS
from pages_harness.harness import REAL_CLI, Sandbox, Server, make_sandbox

pytestmark = PAGE_MARKS

# The most clicks on plexcache-r's pages from the first view of the Dashboard to the first cached file.
CLICK_BUDGET = 5
SLOW = 120000   # ms: a guard for a CLI call that talks to Plex on a busy machine, not a measure


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Server, Any]]:
    from plexcache import config as cfg
    from plexcache.demo import default_scenario
    from plexcache.sim import SimServer, load
    from plexcache.sim.sandbox import build_tree

    root = tmp_path_factory.mktemp("fresh")
    world_file = root / "world.yaml"
    world_file.write_text(re.sub(r"(\d+(?:\.\d+)?)\s*G\b", r"\1M", default_scenario().read_text()))
    world = load(world_file)
    tree = build_tree(root / "root", world)
    with SimServer(world) as plex:
        box = make_sandbox(root, webgui.NEWEST_STABLE, cli=REAL_CLI, keep_settings=True)
        settings = tree.settings_dict(plex.url, "")       # installed: its paths, Plex's address, nothing else
        settings["plex"]["path_mappings"] = []
        settings["cache"] = {"min_free": "1MB"}   # the sandbox pool is this machine's disk, whatever it holds
        cfg.save(cfg.from_mapping(settings), box.config)
        box.extra_env["PLEXCACHE_PLEX_REDIRECT"] = plex.url
        with Server(box) as server:
            yield box, server, (plex, tree)
        assert box.php_errors() == []


class Clicks:
    """page.click, counted."""

    def __init__(self, page: Any) -> None:
        self.page, self.count = page, 0

    def __call__(self, selector: str) -> None:
        self.count += 1
        self.page.click(selector)


def step_state(page: Any, step: str) -> str:
    return page.get_attribute(f'#pcr-steps [data-step="{step}"]', "data-state")


def wait_step(page: Any, step: str, state: str = "done") -> None:
    page.wait_for_selector(f'#pcr-steps [data-step="{step}"][data-state="{state}"]', timeout=SLOW)


def test_fresh_install_to_the_first_cached_file(fresh: tuple[Sandbox, Server, Any]) -> None:
    box, server, (plex, tree) = fresh
    with chromium() as browser:
        page = open_page(browser, server)
        click = Clicks(page)
        page.wait_for_selector("#pcr-start:not([hidden]) #pcr-steps li", timeout=SLOW)
        # no red error on a fresh install: the panel says what to do, and Run now says why it waits
        assert "Not signed in yet" in page.inner_text("#pcr-plex") and not page.query_selector("#pcr-plex .red-text")
        assert "401" not in page.inner_text("#pcr-dashboard")
        assert page.is_disabled("#pcr-run") and "Sign in to Plex" in page.inner_text("#pcr-run-why")
        assert [step_state(page, s) for s in ("plex", "mappings", "mover_tuning", "first_run")] == ["todo"] * 4
        assert page.is_disabled("#pcr-start-preview")
        shot(page, "firstrun-dashboard")

        click("#pcr-start-signin")
        page.wait_for_function("/^[0-9A-F]{4}$/.test((document.getElementById('pcr-start-code') || {}).textContent)",
                               timeout=SLOW)
        code = page.inner_text("#pcr-start-code")
        pin = next(p for p in plex.world.pins.values() if p["code"] == code)
        plex.world.authorise_pin(pin["id"])   # the owner enters the code at plex.tv/link
        wait_step(page, "plex")
        assert "tower" in page.inner_text("#pcr-plex")
        assert plex.world.sc.owner.token not in page.content()

        page.wait_for_selector("#pcr-start-mappings")
        suggested = page.inner_text('#pcr-steps [data-step="mappings"] .pcr-suggest')
        assert "/data/tv" in suggested and str(tree.user / "tv") in suggested
        shot(page, "firstrun-signed-in")
        click("#pcr-start-mappings")
        wait_step(page, "mappings")
        assert box.settings()["plex"]["path_mappings"]

        ignore_list = page.input_value("#pcr-start-ignore-list")
        assert ignore_list == box.settings()["paths"]["exclusion_list"]
        assert "Ignore files listed inside of a text file" in page.inner_text('#pcr-steps [data-step="mover_tuning"]')
        tree.set_mover_tuning()   # what the person does in Settings > Scheduler > Mover Tuning, with that path
        click("#pcr-start-recheck")
        wait_step(page, "mover_tuning")
        page.wait_for_function("!document.getElementById('pcr-run').disabled")
        assert page.inner_text("#pcr-run-why") == ""

        click("#pcr-start-preview")
        page.wait_for_selector("#pcr-preview-moves tbody tr", timeout=SLOW)
        rows = page.locator("#pcr-preview-moves tbody tr")
        first = rows.first.inner_text()
        assert rows.count() > 0 and re.search(r"disk\d", first) and "Cache" in first
        assert "free now" in page.inner_text("#pcr-preview-space")
        shot(page, "firstrun-preview")
        click("#pcr-preview-run")
        page.wait_for_selector("#pcr-run-msg.pcr-ok", timeout=SLOW)
        cached = box.cli_json("list")["files"]
        assert cached, "the first run cached nothing"
        clicks = click.count
        page.wait_for_selector("#pcr-start", state="hidden", timeout=SLOW)   # every step done: the panel goes
        page.wait_for_function(f"document.getElementById('pcr-count').textContent === '{len(cached)}'", timeout=SLOW)
        shot(page, "firstrun-done")
        files_future(page, cached)
        logs_of_one_run(page)
        print(f"\nclicks from the first page view to the first cached file: {clicks}")
        assert clicks <= CLICK_BUDGET

        # a step that breaks later comes back as a warning with its button, and runs wait again
        (tree.boot / "config" / "plugins" / "ca.mover.tuning.plg").unlink()
        page.reload()
        page.wait_for_selector('#pcr-setup-warnings [data-step="mover_tuning"] #pcr-start-recheck', timeout=SLOW)
        assert page.is_hidden("#pcr-start") and page.is_disabled("#pcr-run")
        assert "Keep the mover away" in page.inner_text("#pcr-run-why")
        shot(page, "firstrun-broken-later")
        assert page.errors == []
        page.close()


def files_future(page: Any, cached: list[dict[str, Any]]) -> None:
    """The Cached files tab says when and why each file leaves and which goes first if space runs short, in the
    words and order of `list --json`."""
    tab(page, "files")
    page.wait_for_selector("#pcr-files-body tr[data-path]", timeout=SLOW)
    page.click('#pcr-files-table [data-sort="leaves"]')
    cells = "rows => rows.map(r => [r.dataset.path, r.querySelector('.pcr-leaves').innerText])"
    shown = page.eval_on_selector_all("#pcr-files-body tr[data-path]", cells)
    by_rank = sorted(cached, key=lambda f: (f["eviction_rank"] is None, f["eviction_rank"] or 0, f["path"]))
    assert [path for path, _ in shown] == [f["path"] for f in by_rank]
    first = by_rank[0]
    assert first["eviction_rank"] == 1 and first["leaves"].startswith("when ")
    assert shown[0][1].split("\n") == [first["leaves"], "first to go if space runs short"]
    shot(page, "firstrun-files-future")
    tab(page, "dashboard")


def logs_of_one_run(page: Any) -> None:
    """The Logs tab picks one run out of the log, and a date range with nothing in it shows nothing."""
    tab(page, "logs")
    page.wait_for_selector("#pcr-log-run option:nth-child(2)", state="attached", timeout=SLOW)
    run = page.eval_on_selector("#pcr-log-run option:nth-child(2)", "o => o.value")
    page.select_option("#pcr-log-run", run)
    page.wait_for_function("id => { const t = document.getElementById('pcr-log').innerText;"
                           " return t.includes(`[${id}]`) && !/\\[\\d+\\]/.test(t.replaceAll(`[${id}]`, '')); }",
                           arg=run, timeout=SLOW)
    shot(page, "firstrun-logs-one-run")
    page.fill("#pcr-log-to", "2000-01-01")
    page.wait_for_selector("#pcr-log :text('No log lines match.')", timeout=SLOW)
    page.fill("#pcr-log-to", "")
    page.select_option("#pcr-log-run", "")
    tab(page, "dashboard")
