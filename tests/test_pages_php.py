"""The web pages as PHP: every file lints, every .page parses like PageBuilder reads it and renders
under php-cli without a warning, and the tabs land where Unraid shows them (Settings → User Utilities)."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

import pytest

from pages_harness.harness import EMHTTP_SRC, HERE, PHP_INI, make_sandbox

PAGES = sorted(EMHTTP_SRC.glob("*.page"))
PHP_FILES = sorted(p for p in EMHTTP_SRC.rglob("*.php") if "scripts" not in p.parts and "event" not in p.parts)
PHP_FILES += sorted(HERE.glob("*.php"))
TABS = ["PlexCacheRDashboard", "PlexCacheRSettings", "PlexCacheRFiles", "PlexCacheRStorage",
        "PlexCacheRMaintenance", "PlexCacheRLogs"]


def header(page: Path) -> dict[str, str]:
    head = page.read_text().split("\n---\n", 1)[0]
    parser = configparser.ConfigParser()
    parser.read_string("[page]\n" + head)
    return {k: v.strip('"') for k, v in parser["page"].items()}


def php(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["php", *PHP_INI, *args], capture_output=True, text=True, env=env, input=stdin,
                          timeout=60, cwd=str(HERE))


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


def test_every_page_renders_without_warnings(tmp_path: Path) -> None:
    box = make_sandbox(tmp_path)
    result = php(str(HERE / "render_cli.php"), "PlexCacheR", env=box.env())
    assert result.returncode == 0, result.stderr
    html = result.stdout
    assert html.count('role="tab"') == 6 and html.count('role="tabpanel"') == 6
    for element in ("pcr-dashboard", "pcr-settings", "pcr-files", "pcr-storage", "pcr-maint", "pcr-logs"):
        assert f'id="{element}"' in html
    assert "_(" not in html, "an untranslated _(...)_ marker reached the page"
    assert 'value="Apply"' in html and 'value="Default"' in html and 'value="Done"' in html
    assert re.search(r'/plugins/plexcache-r/js/plexcache-r\.js\?v=\d+', html), "assets are cache-busted by autov"


def test_settings_form_covers_every_setting() -> None:
    """Each leaf of the settings schema has a field (lists of mappings are one table each)."""
    from plexcache import config as cfg

    html = (EMHTTP_SRC / "PlexCacheRSettings.page").read_text()
    keys = set(re.findall(r'data-key="([^"]+)"', html))
    leaves = [k for k, tp, _, _ in cfg.reference_rows() if tp != "section" and "[]" not in k and k != "schema"]
    missing = [k for k in leaves if k not in keys]
    assert not missing, f"settings without a field on the page: {missing}"
