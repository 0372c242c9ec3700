"""Live mode follows its setting on Apply, in Chromium against the real `plexcache-r` and the simulator
(Unraid's own template and local_prepend.php): turned on it starts, turned off it stops (its process is
gone), and a changed setting while it runs restarts it so the new value is the one it uses; the Dashboard
shows its real state: running, its pid and since when."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pages_harness.browser import open_settings, shot, tab
from pages_harness.client import post
from pages_harness.fixtures import PAGE_MARKS, browser_fixture, real_fixture
from pages_harness.harness import Sandbox, Server
from realtime import ms, seconds, wait_for

pytestmark = PAGE_MARKS
browser = browser_fixture()
real = real_fixture("live")

LIVE = '[data-key="live.enabled"]'
POLL = '[data-key="live.poll_seconds"]'
URL = '[data-key="plex.url"]'


@pytest.fixture(autouse=True)
def no_watcher_left(real: tuple[Sandbox, Server]) -> Iterator[None]:
    """A test that fails half-way does not leave its watcher to the next one (nor to the leak check)."""
    yield
    pid = live(real[0]).get("pid")
    if pid:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), base=30)


def live(box: Sandbox) -> dict:
    return box.cli_json("status")["live"]


def alive(pid: int) -> bool:
    try:
        return "plexcache" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


def apply(page: object) -> str:
    page.evaluate("document.getElementById('pcr-settings-msg').className = ''")
    page.click("#pcr-apply")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok", timeout=ms(60))
    return page.inner_text("#pcr-settings-msg")


def running_pid(box: Sandbox, other_than: int = 0) -> int:
    """The pid live mode runs as once its watcher has written its state (other than a former one)."""
    assert wait_for(lambda: (live(box).get("state") or {}).get("pid") not in (None, other_than), base=30)
    return int(live(box)["state"]["pid"])


def turn_on(browser: object, server: Server) -> tuple[object, int]:
    page = open_settings(browser, server)
    page.select_option(LIVE, "true")
    assert "Live mode is on" in apply(page)
    return page, running_pid(server.box)


def turn_off(page: object, box: Sandbox, pid: int) -> None:
    page.select_option(LIVE, "false")
    assert "Live mode is off" in apply(page)
    assert not live(box)["running"]
    assert wait_for(lambda: not alive(pid), base=30), f"live mode's process {pid} survived"


def test_apply_on_starts_it_and_the_dashboard_shows_its_pid_and_since_when(browser, real) -> None:
    box, server = real
    page, pid = turn_on(browser, server)
    assert alive(pid) and live(box)["pid"] == pid and live(box)["since"] > 0
    tab(page, "dashboard")
    page.wait_for_function(f"document.getElementById('pcr-live').textContent.indexOf('pid {pid}') >= 0",
                           timeout=ms(60))
    text = page.inner_text("#pcr-live")
    assert text.startswith("running") and "since" in text, text
    shot(page, "live-running")
    tab(page, "settings")
    turn_off(page, box, pid)
    assert page.errors == []
    page.close()


def test_apply_off_stops_it_and_the_dashboard_says_so(browser, real) -> None:
    box, server = real
    page, pid = turn_on(browser, server)
    turn_off(page, box, pid)
    tab(page, "dashboard")
    page.wait_for_function("document.getElementById('pcr-live').textContent === 'disabled'", timeout=ms(60))
    assert page.errors == []
    page.close()


def test_a_changed_setting_restarts_it_with_the_new_value(browser, real) -> None:
    box, server = real
    page, pid = turn_on(browser, server)
    before = int(live(box)["state"]["poll_seconds"])
    page.fill(POLL, str(before + 7))
    assert "restarted" in apply(page)
    new_pid = running_pid(box, other_than=pid)
    assert not alive(pid), "the watcher with the old settings is gone"
    assert live(box)["state"]["poll_seconds"] == before + 7
    # the Plex address too (the same simulator, named another way)
    url = page.input_value(URL)
    page.fill(URL, url.replace("127.0.0.1", "localhost"))
    assert "restarted" in apply(page)
    newest = running_pid(box, other_than=new_pid)
    assert not alive(new_pid) and alive(newest)
    # an Apply that changes nothing leaves it running as it is
    unchanged = post(server, box.token, "config_set", settings="{}").doc["live"]
    assert unchanged["restarted"] is False and live(box)["pid"] == newest
    page.fill(URL, url)
    assert "restarted" in apply(page)
    turn_off(page, box, running_pid(box, other_than=newest))
    assert page.errors == []
    page.close()


def test_apply_off_stops_a_watcher_started_by_hand(browser, real) -> None:
    """Live mode started outside the plugin's service (from a terminal): Apply off still stops it, found by
    the lock it holds."""
    box, server = real
    box.cli_json("config", "set", "--merge", stdin='{"live": {"enabled": true}}')
    proc = subprocess.Popen([str(box.cli), "--config", str(box.config), "live"], env=box.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert running_pid(box) == proc.pid
        page = open_settings(browser, server)
        turn_off(page, box, proc.pid)
        assert proc.wait(timeout=seconds(30)) is not None
        page.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
