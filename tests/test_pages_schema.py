"""The pages take the settings schema and the backend's words from one place: `plexcache-r config schema
--json`, shipped beside the pages as include/schema.json. The Settings form's controls are built from it
(type, bounds, step, options, secrecy, label); the script and PHP keep no copy of exit words, reasons,
finding kinds, fixes, levels or default paths; and every term the backend can produce has its words."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pages_harness.browser import CHROMIUM, chromium
from pages_harness.harness import EMHTTP_SRC, PHP_INI, REPO
from realtime import seconds

pytestmark = pytest.mark.pages

SCHEMA_FILE = EMHTTP_SRC / "include" / "schema.json"
JS = EMHTTP_SRC / "js" / "plexcache-r.js"
NOT_ON_THE_PAGE = {"schema"}   # the file format's version is the backend's to write


def shipped() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def test_the_shipped_schema_is_what_the_cli_prints() -> None:
    """Regenerate with `plexcache-r --json config schema > source/emhttp/include/schema.json`."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "source" / "python")}
    out = subprocess.run([sys.executable, "-m", "plexcache", "--json", "config", "schema"], capture_output=True,
                         text=True, env=env, timeout=seconds(60), check=True).stdout
    assert json.loads(out) == shipped()
    assert SCHEMA_FILE.read_text() == out, "the file is the command's output as printed"


class Controls(HTMLParser):
    """Every element of a rendered page by id, and the controls (elements with data-key) in order."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, str] = {}     # label for= -> its text
        self.open: list[dict[str, Any]] = []
        self.select: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = {"tag": tag, **{k: (v if v is not None else "") for k, v in attrs}, "text": "", "options": []}
        if "id" in el:
            self.by_id[el["id"]] = el
        if "data-key" in el:
            self.controls.append(el)
        if tag == "select":
            self.select = el
        if tag == "option" and self.select is not None:
            self.select["options"].append(el.get("value"))
        if tag not in ("input", "br", "link", "meta", "img"):
            self.open.append(el)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None
        while self.open:
            el = self.open.pop()
            if el["tag"] == "label" and "for" in el:
                self.labels[el["for"]] = el["text"]
            if el["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for el in self.open:
            el["text"] += data


def render(page: str, tmp_path: Path) -> Controls:
    """A page's body as Unraid's template evaluates it, with the plugin where Unraid has it."""
    docroot = tmp_path / "emhttp"
    (docroot / "plugins").mkdir(parents=True)
    (docroot / "plugins" / "plexcache-r").symlink_to(EMHTTP_SRC)
    body = (EMHTTP_SRC / page).read_text().split("\n---\n", 1)[1]
    (tmp_path / "body.php").write_text(re.sub(r"_\((.+?)\)_", r"\1", body))
    code = f"$docroot = {json.dumps(str(docroot))}; include {json.dumps(str(tmp_path / 'body.php'))};"
    result = subprocess.run(["php", *PHP_INI, "-r", code], capture_output=True, text=True, timeout=seconds(60))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    parser = Controls()
    parser.feed(result.stdout)
    return parser


# what the form sends for each type of the schema (data-type), and the HTML a control of it may be
FORM_TYPES = {"bool": {"bool"}, "choice": {"str"}, "int": {"int"}, "float": {"float"}, "str": {"str", "secret"},
              "size": {"str"}, "list": {"checklist", "csv"}, "multi": {"multi"}, "rows": {"rows"}}


def disagreements(control: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    key, out = control["data-key"], []
    if control.get("data-type") not in FORM_TYPES[entry["type"]]:
        out.append(f"{key}: sent as {control.get('data-type')}, the schema says {entry['type']}")
    if entry["type"] in ("int", "float"):
        for attr in ("min", "max", "step"):
            want = entry[attr] if entry[attr] is not None else ("any" if attr == "step" else None)
            have = control.get(attr)
            if (want is None) != (have is None) or (want is not None and float(have) != float(want)
                                                    if want != "any" else have != "any"):
                out.append(f"{key}: {attr} is {have}, the schema says {want}")
    if control["tag"] == "select" and control["options"] != entry["options"]:
        out.append(f"{key}: offers {control['options']}, the schema allows {entry['options']}")
    if entry["secret"] and control.get("type") != "password":
        out.append(f"{key}: a secret shown as {control.get('type')}")
    return out


def accessible_name(control: dict[str, Any], page: Controls) -> str:
    if control.get("aria-label"):
        return control["aria-label"]
    if control.get("aria-labelledby"):
        return " ".join(page.by_id.get(i, {}).get("text", "") for i in control["aria-labelledby"].split()).strip()
    return page.labels.get(control.get("id", ""), "").strip()


def test_every_settings_control_agrees_with_the_schema(tmp_path: Path) -> None:
    keys = shipped()["keys"]
    page = render("PlexCacheRSettings.page", tmp_path)
    on_page = [c["data-key"] for c in page.controls]
    assert len(on_page) == len(set(on_page)), "one control a setting"
    unknown = [k for k in on_page if k not in keys]
    assert not unknown, f"controls for no setting: {unknown}"
    leaves = [k for k, e in keys.items() if e["type"] != "section" and "[]" not in k and k not in NOT_ON_THE_PAGE]
    missing = [k for k in leaves if k not in on_page]
    assert not missing, f"settings without a control: {missing}"
    wrong = [d for c in page.controls for d in disagreements(c, keys[c["data-key"]])]
    assert not wrong, wrong
    unnamed = [c["data-key"] for c in page.controls if accessible_name(c, page) != keys[c["data-key"]]["label"]]
    assert not unnamed, f"controls a screen reader cannot name by their setting's label: {unnamed}"


def test_rows_tables_head_their_columns_with_the_schemas_labels(tmp_path: Path) -> None:
    keys = shipped()["keys"]
    page = render("PlexCacheRSettings.page", tmp_path)
    for table in (c for c in page.controls if c.get("data-type") == "rows"):
        fields = [e["label"] for k, e in keys.items() if k.startswith(table["data-key"] + "[].")]
        assert all(f in table["text"] for f in fields), (table["data-key"], fields, table["text"])


def test_the_files_tab_offers_every_reason_the_backend_gives(tmp_path: Path) -> None:
    page = render("PlexCacheRFiles.page", tmp_path)
    offered = page.by_id["pcr-filter-reason"]["options"]
    assert offered == ["", *shipped()["vocabulary"]["reasons"]]


def backend_terms() -> dict[str, list[str]]:
    """What the backend can produce, read from its own constants."""
    from plexcache import config, demand, errors
    from plexcache.audit import findings, fixes

    def subclasses(cls: type) -> list[type]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    return {"exit_codes": ["0", *sorted({str(c.exit_code) for c in subclasses(errors.PlexCacheError)})],
            "reasons": [*typing.get_args(demand.Source), "retention"],
            "finding_kinds": list(findings.KINDS), "fixes": [*fixes.FIXES, fixes.ALL_SAFE],
            "levels": list(typing.get_args(config.Level))}


def test_the_vocabulary_has_words_for_every_backend_term() -> None:
    vocabulary = shipped()["vocabulary"]
    for table, terms in backend_terms().items():
        missing = [t for t in terms if not vocabulary[table].get(t)]
        assert not missing, f"{table} without words: {missing}"
    from plexcache import config
    assert vocabulary["config_file"] == config.DEFAULT_CONFIG_PATH


def test_the_script_and_php_keep_no_copy_of_the_words_or_paths() -> None:
    """A copy would drift: each word table and default path lives in the schema document only."""
    vocabulary, keys = shipped()["vocabulary"], shipped()["keys"]
    script = JS.read_text() + (EMHTTP_SRC / "js" / "plexcache-r-start.js").read_text()
    words = [w for table in ("exit_codes", "finding_kinds") for w in vocabulary[table].values()]
    words += [vocabulary["reasons"][r] for r in ("next_episode", "playing")]
    copied = [w for w in words if f"'{w}'" in script or f'"{w}"' in script]
    assert not copied, f"the script re-types: {copied}"
    php = "".join(p.read_text() for p in (EMHTTP_SRC / "include").glob("*.php"))
    paths = [e["default"] for k, e in keys.items() if k.startswith("paths.")] + [vocabulary["config_file"]]
    assert not [p for p in paths if f"'{p}'" in php], "PHP re-types a default path"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_the_script_has_words_for_every_backend_term() -> None:
    pytest.importorskip("playwright.sync_api")
    with chromium() as browser:
        page = browser.new_page()
        page.set_content(f"<script>window.PCR_SCHEMA = {SCHEMA_FILE.read_text()};</script>")
        page.add_script_tag(content=JS.read_text())
        for table, terms in backend_terms().items():
            shown = page.evaluate("([t, ks]) => ks.map(k => PCR.words(t, k))", [table, terms])
            raw = [t for t, s in zip(terms, shown, strict=True) if s == t.replace("_", " ").replace("-", " ")]
            assert not raw, f"the pages would show raw {table}: {raw}"
