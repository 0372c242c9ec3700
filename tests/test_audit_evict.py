"""`evict --all` (restore everything, e.g. before uninstalling) leaves no trace: every file back on its disk
with its content, no backups, nothing left on the pools, an empty registry and ignore list, an empty journal,
and a clean audit. With backups on and off, and after an import from PlexCache-R."""

from __future__ import annotations

from pathlib import Path

import pytest

from plexcache import engine
from test_audit_support import ARRIVAL, DUNE, EP1, EP2, EP3, HEAT, World, kinds


def pool_files(world: World) -> list[str]:
    return sorted(str(p) for p in (world.mnt / "cache").rglob("*") if p.is_file())


def assert_no_trace(world: World, original: dict) -> None:
    assert world.snapshot() == original  # every byte back where it was, nothing extra
    assert not list(world.mnt.glob("disk*/**/*.plexcached"))
    assert pool_files(world) == []
    registry = world.registry()
    assert registry.entries == {} and registry.pins == set()
    manual = Path(world.settings.paths.manual_exclusions)
    assert world.listed() == (manual.read_text().split() if manual.exists() else [])
    assert world.journal().is_empty()
    assert world.audit()["findings"] == []


@pytest.mark.parametrize("backups", [True, False])
def test_evict_all_leaves_no_trace(tmp_path, backups):
    world = World(tmp_path / "root", backups=backups)
    original = world.snapshot()
    world.cache(ARRIVAL, DUNE, EP1, EP2, EP3)
    assert len(pool_files(world)) == 9  # 5 videos + 4 subtitles
    assert bool(list(world.mnt.glob("disk*/**/*.plexcached"))) == backups
    Path(world.settings.paths.manual_exclusions).write_text(f"{world.mnt}/cache/appdata/mine\n")

    report = engine.evict(world.settings, None)
    assert report.exit_code == 0, report.failures
    assert report.moved_back == 5
    assert_no_trace(world, original)
    assert world.listed() == [f"{world.mnt}/cache/appdata/mine"]


def test_evict_all_with_pins_forgets_them(tmp_path):
    world = World(tmp_path / "root")
    original = world.snapshot()
    world.cache(HEAT)
    engine.pin(world.settings, [world.user(HEAT), world.user(EP1)])
    engine.evict(world.settings, None)
    assert_no_trace(world, original)


def test_evict_all_after_import_from_plexcache_r(tmp_path):
    from plexcache.importer import import_installation
    from test_import import OldInstall

    world = World(tmp_path / "root")
    original = world.snapshot()
    old = OldInstall(world, tmp_path / "plexcache")
    old.cache(ARRIVAL, srt=True)
    old.cache(EP2)
    old.write(old.settings())
    import_installation(world.settings, world.settings_path, old.root)
    assert kinds(world.audit()) == []
    from plexcache import config as cfg

    report = engine.evict(cfg.load(world.settings_path), None)
    assert report.exit_code == 0, report.failures
    assert_no_trace(world, original)
