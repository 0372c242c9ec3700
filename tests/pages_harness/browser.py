"""Shared Chromium helpers for the page tests: Debian's chromium, headless, nothing downloaded."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from realtime import ms

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--no-proxy-server"]
SHOTS = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"))
TAB = {"dashboard": 1, "settings": 2, "files": 3, "storage": 4, "maintenance": 5, "logs": 6}


def open_page(browser: Any, server: Any, width: int = 1280, height: int = 900, theme: str = "white") -> Any:
    """A new browser context on /Settings/PlexCacheR in Unraid's template, in the theme Unraid is set to.

    Uncaught script errors collect in page.errors, dialogs (alert, confirm) in page.dialogs (accepted)."""
    server.box.unraid.set_theme(theme)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(ms(20))
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def dialog(d: Any) -> None:
        dialogs.append(f"{d.type}: {d.message}")
        d.accept()

    page.on("dialog", dialog)
    page.goto(f"{server.url}/Settings/PlexCacheR")
    page.errors = errors     # type: ignore[attr-defined]
    page.dialogs = dialogs   # type: ignore[attr-defined]
    return page


def tab(page: Any, name: str) -> None:
    """Unraid's tab bar: buttons in 7.x, radio inputs with labels in 6.12."""
    n = TAB[name]
    page.click(f"button#tab{n}, label[for=tab{n}]")


def open_settings(browser: Any, server: Any, key: str = "plex.url") -> Any:
    """A new page on the Settings tab, once the form holds the settings (the field `key` is filled in)."""
    page = open_page(browser, server)
    tab(page, "settings")
    page.wait_for_function(f"document.querySelector('[data-key=\"{key}\"]').value !== ''")
    return page


def confirm(page: Any) -> None:
    """Press the confirm button of Unraid's SweetAlert dialog."""
    page.click(".sweet-alert.visible button.confirm")


def shot(page: Any, name: str) -> None:
    """The whole page as on a screen tall enough for it: Unraid's footer is fixed to the bottom of the
    window, so a stitched full-page capture would paint it across the middle of the content."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    page.mouse.move(0, 0)   # no tab left looking hovered
    try:
        page.screenshot(path=str(SHOTS / f"{name}.png"))
    finally:
        page.set_viewport_size(size)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (no browser download), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
