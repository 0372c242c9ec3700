"""Fuzzing the settings: any document either validates or raises SettingsError, and `config set` never writes
or prints a traceback on bad input.

Two kinds of documents: arbitrary JSON-like values (finds crashes in the walker), and the default settings
with one or more leaves replaced by junk (reaches the checks deep inside, which random documents rarely do).
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plexcache import cli
from plexcache import config as cfg
from plexcache.errors import SettingsError, UsageError
from realtime import seconds

pytestmark = pytest.mark.slow   # real cycles, many subprocesses or many examples

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.sampled_from(["", "10%", "500GB", "1.5T", "-5GB", "200%", "abc", "/", "//x",
                                           "http://x", "https://hooks", "0 */4 * * *", "priority", "age",
                                           "skip", "copy", "********", ".srt", "srt", "summary"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), inner, max_size=4)),
    max_leaves=12)


def _leaf_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a mapping/list tree (branches too: replacing a whole section is a good mutation)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_leaf_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_leaf_paths(value, (*prefix, i)))
    return out


def _base_document() -> dict[str, Any]:
    doc = cfg.to_mapping(cfg.Settings())
    doc["plex"]["path_mappings"] = [{"plex": "/data/tv", "share": "/mnt/user/tv"}]
    doc["users"]["overrides"] = [{"name": "alice"}]
    doc["notify"]["webhooks"] = [{"url": "https://discord.example/api/webhooks/1"}]
    return doc


BASE = _base_document()
PATHS = _leaf_paths(BASE)


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, list) and isinstance(head, int) and head < len(doc):
        items = list(doc)
        items[head] = _set(doc[head], rest, value)
        return items
    # an earlier mutation may have put a scalar or a list where this path expects a mapping: start one
    mapping = dict(doc) if isinstance(doc, dict) else {}
    mapping[head] = _set(mapping.get(head), rest, value)
    return mapping


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    doc: Any = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        try:
            doc = _set(doc, path, draw(values))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a branch this path runs through
    if draw(st.booleans()):
        doc["schema"] = draw(st.one_of(st.integers(-2, 4), scalars))
    return doc


documents = st.one_of(values, mutated_documents())


def _check(document: Any) -> None:
    try:
        result = cfg.from_mapping(document)
    except SettingsError as exc:
        assert exc.problems and all(isinstance(k, str) and isinstance(m, str) for k, m in exc.problems)
        assert "\n" not in str(exc)
        return
    assert isinstance(result, cfg.Settings)
    # What validates must survive its own save format unchanged.
    assert cfg.from_mapping(yaml.safe_load(cfg.dump_yaml(result))) == result


@FUZZ
@given(documents)
def test_from_mapping_returns_settings_or_raises_settings_error(document):
    _check(document)


@FUZZ
@given(st.text(max_size=200))
def test_parse_text_of_arbitrary_text_is_usage_error_or_data(text):
    try:
        data = cfg.parse_text(text)
    except UsageError:
        return
    _check(data)


# --- `config set` through the real entry point -------------------------------------------------------


def _run_cli(args: list[str], stdin: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


def _settings_file(tmp: Path) -> Path:
    path = tmp / "settings.yaml"
    cfg.save(cfg.from_mapping(BASE), path)
    return path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents, merge=st.booleans(), as_json=st.booleans())
def test_config_set_writes_only_valid_settings(tmp_path, document, merge, as_json):
    path = _settings_file(tmp_path)
    before = path.read_bytes()
    args = ["--config", str(path), *(["--json"] if as_json else []), "config", "set", *(["--merge"] if merge else [])]
    code, out, err = _run_cli(args, json.dumps(document, default=str))
    assert "Traceback" not in out + err
    if code == 0:
        saved = cfg.load(path)
        assert isinstance(saved, cfg.Settings)
    else:
        assert code == 2, (code, err)
        assert path.read_bytes() == before, "config set changed the file on invalid input"
        assert err.startswith("plexcache-r: ") and err.count("\n") >= 1
        if as_json:
            assert json.loads(out)["ok"] is False


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=120), st.binary(max_size=120).map(lambda b: b.decode("latin-1"))))
def test_config_set_on_arbitrary_text_never_writes_garbage(tmp_path, text):
    path = _settings_file(tmp_path)
    before = path.read_bytes()
    code, out, err = _run_cli(["--config", str(path), "config", "set"], text)
    assert "Traceback" not in out + err
    if code != 0:
        assert code == 2 and path.read_bytes() == before
    else:
        cfg.load(path)


def test_config_set_in_a_real_process_prints_one_line_and_keeps_the_file(tmp_path):
    """The same property through a real process (stdin pipe, exit code), for a few nasty inputs."""
    path = _settings_file(tmp_path)
    before = path.read_bytes()
    for text in ("cache: {workers: -1}", "[1, 2", "\x00\x01", "schema: 99", "plex: {url: ftp://x}", "- a\n- b"):
        proc = subprocess.run([sys.executable, "-m", "plexcache", "--config", str(path), "config", "set"],
                              input=text, capture_output=True, text=True, timeout=seconds(60))
        assert proc.returncode == 2, (text, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.startswith("plexcache-r: ")
        assert path.read_bytes() == before
