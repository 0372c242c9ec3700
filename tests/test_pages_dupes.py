"""The Maintenance tab's duplicates, in Chromium against the real `plexcache-r` (Unraid's own template and
local_prepend.php): a file live on two array disks shows both copies with their disk, size and time; Compare
contents says whether they hold the same bytes; Keep this copy keeps that one and sets the other aside, and a
file name made of markup is shown as text."""

from __future__ import annotations

import os
from pathlib import Path

from pages_harness.browser import confirm, open_page, shot, tab
from pages_harness.fixtures import PAGE_MARKS, browser_fixture, real_fixture
from pages_harness.harness import Sandbox, Server
from pages_harness.realworld import cached_files
from realtime import ms

pytestmark = PAGE_MARKS
browser = browser_fixture()
real = real_fixture("dupes")

HOSTILE = "<img src=x onerror=\"window.PWNED=1\"> Evil & 'Co' $(id).mkv"
DISCARDED = ".plexcache-discarded"


def cacheable_share(box: Sandbox) -> str:
    return Path(cached_files(box)[0]["path"]).relative_to(box.settings()["paths"]["user_root"]).parts[0]


def live_twice(box: Sandbox) -> tuple[str, Path, Path]:
    """A file no one manages, live on two array disks with the same size and time but other bytes."""
    paths = box.settings()["paths"]
    share = cacheable_share(box)
    disks = sorted(Path(paths["disks_glob"]).parent.glob(Path(paths["disks_glob"]).name))[:2]
    first, second = (d / share / "Duplicates" / HOSTILE for d in disks)
    for copy, byte in ((first, b"a"), (second, b"b")):
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(byte * 200_000)
    stamp = first.stat().st_mtime_ns
    os.utime(second, ns=(stamp, stamp))
    return f"{paths['user_root']}/{share}/Duplicates/{HOSTILE}", first, second


def test_a_duplicate_shows_both_copies_compares_them_and_keeps_the_one_chosen(
        browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    user_path, first, second = live_twice(box)
    page = open_page(browser, server)
    tab(page, "maintenance")
    page.click("#pcr-audit")
    dup = page.wait_for_selector('.pcr-finding[data-kind="duplicate"] .pcr-keep', timeout=ms(60))
    text = dup.inner_text()
    assert str(first) in text and str(second) in text, text       # both copies, the name as text
    assert "disk1" in text and "disk2" in text and "200.0 KB" in text and "modified" in text
    assert page.evaluate("window.PWNED") is None
    assert page.locator(".pcr-finding img").count() == 0
    # group buttons take no path: keeping a copy is a choice per copy, never per kind
    assert page.locator('.pcr-finding[data-kind="duplicate"] .title .pcr-fix').count() == 0
    page.click(".pcr-keep .pcr-compare")
    page.wait_for_selector(".pcr-keep .pcr-same.pcr-err", timeout=ms(60))
    assert "They differ" in page.inner_text(".pcr-keep .pcr-compare-msg")
    shot(page, "dupes-compared")
    kept, other = second.read_bytes(), first.read_bytes()
    page.locator(".pcr-keep li", has_text="disk2").locator(".pcr-fix").click()
    confirm(page)
    page.wait_for_selector("#pcr-fix-result li", timeout=ms(60))
    page.wait_for_function("!document.getElementById('pcr-audit').disabled", timeout=ms(60))
    result = page.inner_text("#pcr-fix-result")
    assert "Keep this copy: 1 done" in result, result
    assert second.read_bytes() == kept and not first.exists()
    assert Path(str(first) + DISCARDED).read_bytes() == other      # set aside, not deleted
    assert not page.locator(".pcr-keep").count()
    shot(page, "dupes-kept")
    assert page.errors == []
    page.close()
    for theme in ("black",):
        live_twice(box)
        dark = open_page(browser, server, theme=theme)
        tab(dark, "maintenance")
        dark.click("#pcr-audit")
        dark.wait_for_selector(".pcr-keep", timeout=ms(60))
        shot(dark, "dupes-findings-dark")
        dark.close()
    fixed = box.cli_json("audit", "--fix", f"keep:{second}")   # a second copy set aside takes the next name
    assert fixed["fixes"][0]["result"] == "ok", fixed["fixes"]
    assert Path(f"{first}.2{DISCARDED}").exists() and Path(str(first) + DISCARDED).read_bytes() == other
    assert user_path not in {f["path"] for f in box.cli_json("audit")["findings"]}
