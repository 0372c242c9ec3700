"""Shared fixtures: a simulated Plex (`sim`), a sandbox Unraid tree (`sandbox`), and environment hygiene.

Hygiene (applied at import, before any test imports plexapi, which reads its config at import time):
PLEXAPI_* variables are cleared and PLEXAPI_CONFIG_PATH points at an empty temp file, so a developer's
real plexapi config cannot leak in; HTTPS_PROXY points at a closed loopback port, and every requests
adapter refuses non-loopback hosts, so nothing reaches the internet even if a session was not redirected.

Scenario choice: `@pytest.mark.scenario("name-or-path")` (a name is looked up in plexcache/sim/scenarios/,
default "demo"); `@pytest.mark.small_media` caps its media files at 64K (the demo's are gigabytes, sparse in
the sandbox, and copying and verifying them reads every byte of their holes). `sim` records requests; at
teardown it fails the test if any request got an error status that was not injected (mark
`@pytest.mark.sim_errors_ok` when a test provokes errors on purpose).

Leftovers: after every test, a thread (not a daemon) or a process the test started that still runs fails
it, named; the processes are killed by process group (leftovers.py). Waits scale: realtime.py.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_CFG = tempfile.NamedTemporaryFile(prefix="plexapi-", suffix=".ini", delete=False)  # noqa: SIM115
_CFG.close()
for _k in [k for k in os.environ if k.startswith("PLEXAPI_")]:
    del os.environ[_k]
os.environ["PLEXAPI_CONFIG_PATH"] = _CFG.name
os.environ.pop("PLEXCACHE_PLEX_REDIRECT", None)
for _k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ[_k] = "http://127.0.0.1:9"  # discard port: nothing listens, fails at once
for _k in ("HTTP_PROXY", "http_proxy"):
    os.environ.pop(_k, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import pytest  # noqa: E402
from hypothesis import settings as _hypothesis  # noqa: E402

# No timed assertions: Hypothesis's per-example deadline (200 ms) fails examples on a loaded machine.
_hypothesis.register_profile("plexcache-r", deadline=None)
_hypothesis.load_profile("plexcache-r")
import requests.adapters  # noqa: E402

import leftovers  # noqa: E402
from plexcache.sim.scenario import Scenario, load, parse_size  # noqa: E402
from realtime import seconds  # noqa: E402

SCENARIOS = Path(__file__).resolve().parents[1] / "source" / "python" / "plexcache" / "sim" / "scenarios"
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_real_send = requests.adapters.HTTPAdapter.send


def _guarded_send(self, request, *args, **kwargs):
    host = requests.utils.urlparse(request.url).hostname or ""
    if host not in _LOOPBACK:
        raise requests.exceptions.ConnectionError(f"tests may not reach {host} (not redirected to the simulator)")
    return _real_send(self, request, *args, **kwargs)


requests.adapters.HTTPAdapter.send = _guarded_send


def pytest_configure(config):
    config.addinivalue_line("markers", "scenario(name): scenario for the sim/sandbox fixtures")
    config.addinivalue_line("markers", "sim_errors_ok: the test provokes error responses from the simulator")
    config.addinivalue_line("markers", "small_media(size): every media file of the scenario at most `size` "
                            "(default 64K): for tests whose cycles' copying is beside the point")


# A module that drives the pages or the plugin sandbox is marked for it whether or not it says so, so that
# `./dev test --fast` can never pick up a browser or plugin-manager test by an oversight.
HARNESS_MARKERS = {"pages_harness": "pages", "plugin_sandbox": "plugin"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = getattr(item, "module", None)
        used = {getattr(v, "__module__", None) or getattr(v, "__name__", "") for v in vars(module).values()} \
            if module else set()
        for harness, marker in HARNESS_MARKERS.items():
            if any(str(name).split(".")[0] == harness for name in used):
                item.add_marker(marker)


def scenario_path(name: str) -> Path:
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    return SCENARIOS / f"{name}.yaml"


@pytest.fixture
def scenario(request) -> Scenario:
    """A freshly loaded scenario (each test gets its own; the server mutates it)."""
    mark = request.node.get_closest_marker("scenario")
    loaded = load(scenario_path(mark.args[0] if mark else "demo"))
    small = request.node.get_closest_marker("small_media")
    if small:
        limit = parse_size(small.args[0] if small.args else "64K")
        for part in loaded.all_parts():
            part.size = min(part.size, limit)
    return loaded


@pytest.fixture
def sim(request, scenario, monkeypatch):
    """A running simulator for `scenario`; PLEXCACHE_PLEX_REDIRECT points at it for make_session()."""
    from plexcache.sim.server import SimServer

    server = SimServer(scenario, timeout_sleep=1.5)
    url = server.start()
    monkeypatch.setenv("PLEXCACHE_PLEX_REDIRECT", url)
    yield server
    server.stop()
    if request.node.get_closest_marker("sim_errors_ok") is None:
        bad = server.errors()
        assert not bad, "unexpected error responses from the simulator:\n" + "\n".join(map(str, bad))


@pytest.fixture
def plex_session(sim):
    """A make_session() session redirected to `sim` (short timeout)."""
    from plexcache.http import make_session

    return make_session(timeout=seconds(5))


@pytest.fixture
def sandbox(tmp_path, scenario, monkeypatch):
    """The Unraid tree for `scenario` under tmp_path/root; Unraid's own commands (notify, update_cron) are
    its stand-ins (PLEXCACHE_UNRAID_ROOT)."""
    from plexcache.config import UNRAID_ROOT_ENV
    from plexcache.sim.sandbox import build_tree

    tree = build_tree(tmp_path / "root", scenario)
    monkeypatch.setenv(UNRAID_ROOT_ENV, str(tree.root))
    return tree


@pytest.fixture
def env(sim, sandbox, scenario):
    """(settings, sandbox, sim, now) for an engine run: settings point into the sandbox and at the simulator,
    two next episodes, no retention or free floor, every Unraid notification level."""
    from plexcache import config

    doc = sandbox.settings_dict(sim.url, sim.owner_token)
    doc["demand"] = {"next_episodes": 2}
    doc["cache"] = {"retention_hours": 0, "min_free": "0"}
    doc["notify"] = {"unraid_levels": ["summary", "warnings", "errors"]}
    return config.from_mapping(doc), sandbox, sim, float(scenario.now)


@pytest.fixture(autouse=True)
def nothing_left_running():
    """Fail the test that leaves a thread or a process running (a page server, its workers, a job it
    started, chromium, a `live serve` loop): each is named, and the processes are killed by group."""
    before = leftovers.snapshot()
    yield
    left = leftovers.left_since(before)
    assert not left, "left running after the test:\n" + "\n".join(left)


@pytest.fixture(scope="session", autouse=True)
def nothing_left_at_the_end():
    """The same for what module and session fixtures started: nothing outlives the session."""
    before = leftovers.snapshot()
    yield
    left = leftovers.left_since(before)
    assert not left, "left running after the tests:\n" + "\n".join(left)
