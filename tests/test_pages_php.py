"""The web pages as PHP: every file lints, every .page parses the way PageBuilder reads it, and on each
Unraid webGui release the tabbed page renders through Unraid's own template (template.php,
DefaultPageLayout, PageBuilder) without a PHP warning, listed under Settings → User Utilities."""

from __future__ import annotations

import configparser
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pages_harness import webgui
from pages_harness.harness import EMHTTP_SRC, HERE, PHP_INI, Sandbox, Server, make_sandbox, namespace_unavailable
from realtime import seconds

pytestmark = pytest.mark.pages

PAGES = sorted(EMHTTP_SRC.glob("*.page"))
PHP_FILES = sorted(p for p in EMHTTP_SRC.rglob("*.php") if "scripts" not in p.parts and "event" not in p.parts)
PHP_FILES += sorted(HERE.rglob("*.php"))
TABS = ["PlexCacheRDashboard", "PlexCacheRSettings", "PlexCacheRFiles", "PlexCacheRStorage",
        "PlexCacheRMaintenance", "PlexCacheRLogs"]


def header(page: Path) -> dict[str, str]:
    head = page.read_text().split("\n---\n", 1)[0]
    parser = configparser.ConfigParser()
    parser.read_string("[page]\n" + head)
    return {k: v.strip('"') for k, v in parser["page"].items()}


def php(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["php", *PHP_INI, *args], capture_output=True, text=True, timeout=seconds(60), cwd=str(HERE))


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: p.name)
def test_php_files_lint(path: Path) -> None:
    result = php("-l", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_body_lints_after_translation(page: Path, tmp_path: Path) -> None:
    body = page.read_text().split("\n---\n", 1)[1]
    translated = re.sub(r"_\((.+?)\)_", r"\1", body)
    (tmp_path / "body.php").write_text(translated)
    result = php("-l", str(tmp_path / "body.php"))
    assert result.returncode == 0, result.stdout


def test_pages_form_one_tabbed_utility() -> None:
    names = [p.stem for p in PAGES]
    assert all(n.startswith("PlexCacheR") for n in names), "page names are global in Unraid: prefix them"
    parent = header(EMHTTP_SRC / "PlexCacheR.page")
    assert parent["menu"] == "Utilities" and parent["type"] == "xmenu" and parent["tabs"] == "true"
    children = sorted((header(p)["menu"].split(":")[1], p.stem) for p in PAGES if p.stem != "PlexCacheR")
    assert [name for _, name in children] == TABS
    for page in PAGES:
        if page.stem != "PlexCacheR":
            assert header(page).get("markdown") == "false", f"{page.name}: Markdown would mangle the markup"


@pytest.fixture(scope="module", params=webgui.versions() or [None])
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Server]]:
    reason = namespace_unavailable()
    if reason:
        pytest.skip(reason)
    box = make_sandbox(tmp_path_factory.mktemp("render"), request.param)
    with Server(box) as server:
        yield box, server


def test_the_page_renders_in_unraids_template_without_a_warning(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    status, html = server.get("/Settings/PlexCacheR")
    assert status == 200 and box.php_errors() == []
    assert set(re.findall(r"""id=["']tab(\d+)["']""", html)) == set("123456"), "six tabs in Unraid's tab bar"
    for element in ("pcr-dashboard", "pcr-settings", "pcr-files", "pcr-storage", "pcr-maint", "pcr-logs"):
        assert f'id="{element}"' in html
    ours = html[html.index('id="pcr-dashboard"'):html.index('id="pcr-log-info"')]
    assert "_(" not in ours, "an untranslated _(...)_ marker reached the page"
    assert 'value="Apply"' in html and 'value="Default"' in html and 'value="Done"' in html
    assert re.search(r'/plugins/plexcache-r/js/plexcache-r\.js\?v=\d+', html), "assets are cache-busted by autov"
    assert f'csrf_token = "{box.token}"' in html, "Unraid's template hands the page its token"
    assert "Error evaluating content" not in html


def test_the_page_is_listed_under_user_utilities(served: tuple[Sandbox, Server]) -> None:
    box, server = served
    status, html = server.get("/Settings")   # its User Utilities section holds a panel per utility
    assert status == 200 and box.php_errors() == []
    assert 'href="/Settings/PlexCacheR"' in html and "PlexCache-R" in html

