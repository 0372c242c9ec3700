"""Shared Chromium helpers for the page tests: Debian's chromium, headless, nothing downloaded."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--no-proxy-server"]
SHOTS = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"))
TAB = {"dashboard": 1, "settings": 2, "files": 3, "storage": 4, "maintenance": 5, "logs": 6}
TIMEOUT = 15000


def open_page(browser: Any, server: Any, width: int = 1280, height: int = 900, theme: str = "white") -> Any:
    """A new tab on /Settings/PlexCacheR; script errors collect in page.errors, dialogs are accepted."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{server.url}/Settings/PlexCacheR?theme={theme}")
    page.errors = errors   # type: ignore[attr-defined]
    return page


def tab(page: Any, name: str) -> None:
    page.click(f"#tab{TAB[name]}")


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


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
