"""The setup every browser page test shares, written once. A page-test module starts with

    pytestmark = PAGE_MARKS
    browser = browser_fixture()
    real = real_fixture("dupes")

and keeps only what is its own: its tmp dir's name, its changes to the settings or the scenario (real_fixture
hands adjust and world_text to real_server), its scenario. Each call makes a fixture of the module it is
assigned in, scoped to that module: every module has its own Chromium and its own sandbox (the real CLI, the
simulator, php -S) in a tmp dir of its own name, stopped after its last test, so no module's state reaches
the next one and nothing it started outlives it (the leak checks in conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from pages_harness.browser import CHROMIUM, chromium
from pages_harness.harness import Sandbox, Server, namespace_unavailable
from pages_harness.realworld import real_server

# raised while a test module imports this one: without Playwright the whole module is skipped
pytest.importorskip("playwright.sync_api")

PAGE_MARKS = [pytest.mark.pages,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
              pytest.mark.skipif(bool(namespace_unavailable()), reason=namespace_unavailable() or "")]


def browser_fixture() -> Any:
    """The module's own headless Chromium (browser.chromium), closed after the module's last test."""

    @pytest.fixture(scope="module")
    def browser() -> Iterator[object]:
        with chromium() as b:
            yield b

    return browser


def real_fixture(name: str, adjust: Optional[Callable[[dict[str, Any]], None]] = None,
                 world_text: Optional[Callable[[str], str]] = None) -> Any:
    """The module's own real_server sandbox in a tmp dir called `name`: (sandbox, server), stopped after the
    module's last test (which then checks PHP's error log is empty)."""

    @pytest.fixture(scope="module")
    def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Server]]:
        with real_server(tmp_path_factory.mktemp(name), adjust=adjust, world_text=world_text) as served:
            yield served

    return real
