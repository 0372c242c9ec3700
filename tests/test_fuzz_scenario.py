"""Fuzzing scenario files: a damaged scenario is a UsageError naming file and key, or a valid world."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import scenario_path
from plexcache.errors import UsageError
from plexcache.sim.scenario import Scenario, from_dict

BASE = yaml.safe_load(scenario_path("demo").read_text())

junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=20),
                 st.sampled_from(["S01E01", "Severance S09E09", "disk99", "-1G", "1e9T", "auto", "owner", "/x", ""]),
                 st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                           max_size=2))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


PATHS = _paths(BASE)


@st.composite
def damaged(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            if draw(st.booleans()) and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = draw(junk)
        except (KeyError, IndexError, TypeError):
            continue
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_scenario_is_usage_error_or_world(doc):
    try:
        sc = from_dict(doc, source="fuzz.yaml")
    except UsageError as exc:
        assert str(exc).startswith("fuzz.yaml") and "\n" not in str(exc)
        return
    assert isinstance(sc, Scenario)
