"""The pages as a new user meets them, in Chromium against the real `plexcache-r` and the simulator (Unraid's
own template and local_prepend.php): what a second look at each control found still wrong.

Covers: a settings file that cannot be read at all (a YAML syntax error) is said to be unreadable, not "a value
that is not valid"; the form says it shows defaults, and Apply says where the unreadable file was kept. A
cached file's second backup on another disk and a leftover partial copy have a fix (findings no one could act
on). The reload after Apply never rebuilds a table under the cursor of someone already in one of its fields.
"""

from __future__ import annotations

import re
import shutil

from pages_harness.browser import confirm, open_page, shot, tab
from pages_harness.fixtures import PAGE_MARKS, browser_fixture, real_fixture
from pages_harness.harness import Sandbox, Server
from pages_harness.realworld import a_cached_file
from realtime import ms, wait_for

pytestmark = PAGE_MARKS
browser = browser_fixture()
real = real_fixture("review")


def test_an_unreadable_settings_file_is_called_so_and_apply_says_where_it_was_kept(
        browser: object, real: tuple[Sandbox, Server]) -> None:
    box, server = real
    good = box.config.read_text()
    broken = good.replace("min_free:", "min_free: [oops\n  other:", 1)
    box.config.write_text(broken)
    try:
        page = open_page(browser, server)
        tab(page, "settings")
        page.wait_for_selector("#pcr-settings-msg.pcr-err", timeout=ms(60))
        said = page.inner_text("#pcr-settings-msg")
        assert "cannot be read" in said and "line" in said, said
        assert "defaults" in said and "not valid" not in said, said
        assert "plexcache-r" not in said and "`" not in said, "no command on the page: " + said
        shot(page, "review-settings-unreadable")
        page.fill('[data-key="plex.url"]', box.plex.url)   # type: ignore[attr-defined]
        page.click("#pcr-apply")
        page.wait_for_selector("#pcr-settings-msg.pcr-ok", timeout=ms(60))
        saved = page.inner_text("#pcr-settings-msg")
        kept = sorted(box.config.parent.glob(box.config.name + ".broken-*"))
        assert len(kept) == 1 and kept[0].read_text() == broken
        assert kept[0].name in saved, saved
        assert page.errors == []
        page.close()
    finally:
        box.config.write_text(good)
        for leftover in box.config.parent.glob(box.config.name + ".broken-*"):
            leftover.unlink()


def fix_on_maintenance(page: object, kind: str) -> str:
    """Audit on the Maintenance tab, press the fix of the finding of `kind` and confirm it: what the page says
    was done."""
    tab(page, "maintenance")
    page.click("#pcr-audit")
    page.wait_for_selector(f'.pcr-finding[data-kind="{kind}"]', timeout=ms(60))
    page.click(f'.pcr-finding[data-kind="{kind}"] .pcr-fix')
    confirm(page)
    page.wait_for_selector("#pcr-fix-result li", timeout=ms(60))
    page.wait_for_function("!document.getElementById('pcr-audit').disabled", timeout=ms(60))
    return page.inner_text("#pcr-fix-result")


def test_a_managed_files_second_backup_can_be_acted_on(browser: object, real: tuple[Sandbox, Server]) -> None:
    """Every finding can be acted on: a cached file's backup copied to another disk too (Unraid's mover, a
    copy by hand) is fixed with one button, keeping the backup on the disk the file moves back to."""
    box, server = real
    rel, home, other = a_cached_file(box)
    extra = other / f"{rel}.plexcached"
    extra.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(home, extra)
    try:
        page = open_page(browser, server)
        result = fix_on_maintenance(page, "duplicate")
        assert "Keep the backup on the file's disk: 1 done" in result, result
        assert home.exists() and not extra.exists()
        assert not page.locator('.pcr-finding[data-kind="duplicate"]').count()
        assert page.errors == []
        page.close()
    finally:
        extra.unlink(missing_ok=True)


def test_a_leftover_partial_copy_can_be_removed_from_the_page(browser: object, real: tuple[Sandbox, Server]) -> None:
    """Every finding can be acted on: a temporary copy a kill left on another disk is removed with one
    button once its bytes are shown to be the start of the complete file."""
    box, server = real
    rel, backup, other = a_cached_file(box)
    tmp = (other / rel).with_name(f".{rel.name}.plexcache-tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(backup.read_bytes()[:4096])
    try:
        page = open_page(browser, server)
        result = fix_on_maintenance(page, "leftover")
        assert "Remove the partial copy: 1 done" in result, result
        assert not tmp.exists() and backup.exists()
        assert not page.locator('.pcr-finding[data-kind="leftover"]').count()
        assert page.errors == []
        page.close()
    finally:
        tmp.unlink(missing_ok=True)


def test_a_field_clicked_into_while_the_form_reloads_keeps_what_is_typed(
        browser: object, real: tuple[Sandbox, Server]) -> None:
    """After Apply the form reloads the saved settings; a person who has already clicked into a row of a
    table (a path mapping) must not have that row replaced under the cursor, losing what they then type."""
    _, server = real
    page = open_page(browser, server)
    tab(page, "settings")
    page.wait_for_function("document.querySelector('[data-key=\"plex.url\"]').value !== ''")
    # the moment the page has handled the reload's answer: a task queued once its text is read runs after
    # every promise callback chained to it (the form's rebuild among them)
    page.evaluate("""() => { const fetch0 = window.fetch; window.fetch = function (url) {
        const answer = fetch0.apply(this, arguments);
        if (!/action=config(&|$)/.test(String(url))) return answer;
        return answer.then(r => { const text = r.text.bind(r);
          r.text = () => text().then(t => { setTimeout(() => { window.pcrReloaded = true; }, 0); return t; });
          return r; }); }; }""")
    held: list[object] = []
    page.route(re.compile(r"exec\.php\?action=config(&|$)"), lambda route: held.append(route))
    page.fill('[data-key="demand.next_episodes"]', "4")
    page.click("#pcr-apply")
    page.wait_for_selector("#pcr-settings-msg.pcr-ok", timeout=ms(60))
    assert wait_for(lambda: page.evaluate("1") and bool(held), base=30), "the form reloads after Apply"
    share = page.locator('[data-key="plex.path_mappings"] tbody tr').first.locator('[data-field="share"]')
    before = share.input_value()
    share.click()                                  # the person is in the field when the reload lands
    held[0].continue_()                            # type: ignore[attr-defined]
    page.unroute(re.compile(r"exec\.php\?action=config(&|$)"))
    page.wait_for_function("window.pcrReloaded === true", timeout=ms(60))
    page.keyboard.press("End")
    page.keyboard.type("X")
    assert share.input_value() == before + "X"
    assert not page.is_disabled("#pcr-apply"), "what was typed counts as a change"
    page.close()
