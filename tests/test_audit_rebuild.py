"""A registry lost with backups off: the cached files are on the pool alone, with no array copy to match them
against. The ignore list plexcache-r wrote (apart from the user's own entries) still names them, and that is
the record the rebuild takes them back from, so a lost registry does not hand the whole cache to the mover."""

from __future__ import annotations

from pathlib import Path

from test_audit_support import ARRIVAL, ARRIVAL_SRT, DUNE, EP1, World, kinds


def _lose_registry(world: World) -> None:
    path = Path(world.settings.paths.state_dir) / "registry.json"
    path.write_text(path.read_text()[:40])  # cut short


def test_a_registry_lost_with_backups_off_is_rebuilt_from_the_ignore_list(tmp_path):
    world = World(tmp_path / "root", backups=False)
    world.cache(ARRIVAL, EP1)
    listed, before = world.listed(), world.snapshot()
    _lose_registry(world)
    found = kinds(world.audit())
    assert ("untracked", world.user(ARRIVAL)) in found and ("untracked", world.user(EP1)) in found
    assert ("untracked", world.user(ARRIVAL_SRT)) in found

    world.audit("sync")
    registry = world.registry()
    assert sorted(registry.entries) == sorted([world.user(ARRIVAL), world.user(EP1)])
    arrival = registry.get(world.user(ARRIVAL))
    assert arrival.sidecars == [world.user(ARRIVAL_SRT)]
    assert arrival.disk is None and not arrival.backup  # its move back hands it to the mover
    assert world.audit()["findings"] == []
    assert sorted(world.listed()) == sorted(listed) and world.snapshot() == before


def test_a_pool_file_the_ignore_list_does_not_name_stays_the_movers(tmp_path):
    """A fresh download on the pool (no array copy, not listed) is never taken over, nor is a file the
    user listed by hand."""
    world = World(tmp_path / "root", backups=False)
    world.cache(EP1)
    world.copy_with_times(world.array(DUNE), world.pool(DUNE))
    world.array(DUNE).unlink()  # only on the pool now, as a download before the mover ran
    Path(world.settings.paths.manual_exclusions).write_text(str(world.pool(DUNE)) + "\n")
    _lose_registry(world)
    world.audit("sync")
    assert sorted(world.registry().entries) == [world.user(EP1)]


def _in_registry(world: World, user_path: str) -> bool:
    registry = world.registry()
    return user_path in registry.entries or any(user_path in e.sidecars for e in registry.entries.values())


def test_a_subtitle_whose_backup_is_on_another_disk_is_reported_and_taken_back(tmp_path):
    """The registry rebuilt after it was cut short: a subtitle whose backup sits on another disk than its
    video's (a mover carried it there before it was cached again) is still found and recorded."""
    world = World(tmp_path / "root")
    world.cache(ARRIVAL)
    srt_backup = world.backup(ARRIVAL_SRT)  # on disk1, beside the video's
    moved = world.mnt / "disk2" / ARRIVAL_SRT[0] / (ARRIVAL_SRT[1] + ".plexcached")
    moved.parent.mkdir(parents=True)
    srt_backup.rename(moved)
    _lose_registry(world)
    assert ("untracked", world.user(ARRIVAL_SRT)) in kinds(world.audit())
    world.audit("sync")
    assert _in_registry(world, world.user(ARRIVAL)) and _in_registry(world, world.user(ARRIVAL_SRT))
    assert world.audit()["findings"] == []


def test_a_subtitle_whose_backup_was_lost_is_reported_and_joins_its_video(tmp_path):
    world = World(tmp_path / "root")
    world.cache(ARRIVAL)
    world.backup(ARRIVAL_SRT).unlink()  # the pool copy is its only copy now
    _lose_registry(world)
    assert ("untracked", world.user(ARRIVAL_SRT)) in kinds(world.audit())
    world.audit("sync")
    assert world.registry().get(world.user(ARRIVAL)).sidecars == [world.user(ARRIVAL_SRT)]
    assert world.pool(ARRIVAL_SRT).exists() and world.audit()["findings"] == []
