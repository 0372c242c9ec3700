"""Cache health: each broken state is built in a sandbox tree, the audit must find exactly it, the fix must
repair it, and nothing else on the disks and pools may change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plexcache import audit as audit_mod
from plexcache.audit import disk as audit_disk
from plexcache.audit import findings as audit_findings
from plexcache.errors import EnvironmentRefuses, LockHeld, UsageError
from plexcache.maintenance import HISTORY_LIMIT, MaintenanceHistory
from plexcache.runctl import RunLock
from test_audit_support import ARRIVAL, ARRIVAL_SRT, DUNE, EP1, EP2, EP3, HEAT, World, kinds, rel


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path / "root")
    w.cache(ARRIVAL, EP1, EP2)
    return w


def test_a_clean_cache_has_no_findings(world):
    assert world.audit()["findings"] == []
    assert world.audit(cheap=True)["findings"] == []


def test_every_fix_on_a_clean_cache_changes_nothing(world):
    before, listed, registry = world.snapshot(), world.listed(), world.registry().to_document()
    doc = world.audit("all-safe", "delete-redundant")
    assert doc["findings"] == [] and doc["fixes"] == []
    assert world.snapshot() == before
    assert world.listed() == listed and world.registry().to_document() == registry


def test_unprotected_is_found_and_protect_relists_it(world):
    before = world.snapshot()
    pool_line = str(world.pool(EP1))
    Path(world.settings.paths.exclusion_list).write_text(
        "".join(f"{line}\n" for line in world.listed() if line != pool_line))
    doc = world.audit()
    assert kinds(doc) == [("unprotected", world.user(EP1))]
    assert doc["findings"][0]["fix"] == "protect" and doc["findings"][0]["paths"] == [pool_line]
    assert world.audit(cheap=True)["findings"][0]["kind"] == "unprotected"

    fixed = world.audit("protect")
    assert fixed["findings"] == []
    assert pool_line in world.listed()
    assert world.snapshot() == before


def test_orphaned_backup_is_restored_under_its_name(world):
    heat = world.array(HEAT)
    os.rename(heat, str(heat) + ".plexcached")  # left behind by a crashed or removed tool
    before = world.snapshot()
    doc = world.audit()
    assert kinds(doc) == [("orphaned", world.user(HEAT))]
    assert doc["findings"][0]["fix"] == "restore"
    assert world.audit(cheap=True)["findings"] == []  # the cheap audit never looks at the array

    fixed = world.audit("restore")
    assert fixed["findings"] == [] and fixed["fixes"][0]["result"] == "ok"
    after = world.snapshot()
    moved = rel(world, str(heat) + ".plexcached")
    assert after == {**{k: v for k, v in before.items() if k != moved}, rel(world, heat): before[moved]}
    assert world.journal().is_empty()


def test_stale_entry_with_only_a_backup_left_is_restored(world):
    os.unlink(world.pool(EP2))
    os.unlink(world.pool(EP2).with_suffix(".en.srt"))
    before = world.snapshot()
    doc = world.audit()
    sidecar = str(Path(world.user(EP2)).with_suffix(".en.srt"))
    assert kinds(doc) == [("stale", sidecar), ("stale", world.user(EP2))]
    assert {f["fix"] for f in doc["findings"]} == {"restore"}
    assert [f["kind"] for f in world.audit(cheap=True)["findings"]] == ["stale", "stale"]

    world.audit("restore")
    assert world.audit()["findings"] == []
    assert world.user(EP2) not in world.registry()
    assert world.array(EP2).exists() and not world.backup(EP2).exists()
    assert set(world.snapshot().values()) == set(before.values())  # same files, renamed back
    assert str(world.pool(EP2)) not in world.listed()


def test_stale_entry_with_the_array_copy_back_is_forgotten(world):
    entry = world.registry().get(world.user(EP1))
    backup = world.backup(EP1)
    os.rename(backup, str(backup)[: -len(".plexcached")])  # someone moved it back by hand
    os.unlink(world.pool(EP1))
    before = world.snapshot()
    doc = world.audit()
    assert ("stale", world.user(EP1)) in kinds(doc)
    assert next(f for f in doc["findings"] if f["path"] == world.user(EP1))["fix"] == "sync"

    world.audit("sync")
    registry = world.registry()
    assert world.user(EP1) not in registry and entry is not None
    assert world.snapshot() == before  # only the registry changed
    assert not [line for line in world.listed() if "S01E01.mkv" in line]


def test_untracked_pool_file_with_matching_backup_is_adopted(world):
    registry = world.registry()
    registry.remove(world.user(ARRIVAL))
    world.save(registry)
    before = world.snapshot()
    doc = world.audit()
    assert kinds(doc) == [("untracked", str(Path(world.user(ARRIVAL)).with_suffix(".en.srt"))),
                          ("untracked", world.user(ARRIVAL))]
    world.audit("sync")
    assert world.audit()["findings"] == []
    entry = world.registry().get(world.user(ARRIVAL))
    assert entry is not None and entry.disk == "disk1" and entry.backup
    assert entry.sidecars == [world.user(ARRIVAL_SRT)]
    assert str(world.pool(ARRIVAL)) in world.listed()
    assert world.snapshot() == before


def test_size_mismatch_is_reported_and_no_fix_touches_it(world):
    with open(world.pool(EP1), "ab") as handle:
        handle.write(b"grown on the pool")
    before = world.snapshot()
    doc = world.audit()
    assert kinds(doc) == [("mismatch", world.user(EP1))]
    assert doc["findings"][0]["fix"] is None and len(doc["findings"][0]["sizes"]) == 2
    assert world.audit(cheap=True)["findings"][0]["kind"] == "mismatch"
    world.audit("all-safe", "delete-redundant")
    assert world.snapshot() == before


def test_identical_copies_on_pool_and_array_are_a_duplicate(world):
    world.copy_with_times(world.array(DUNE), world.pool(DUNE))
    before = world.snapshot()
    doc = world.audit()
    assert kinds(doc) == [("duplicate", world.user(DUNE))]
    finding = doc["findings"][0]
    assert finding["fix"] == "delete-redundant" and finding["action"] == "delete-pool"
    world.audit("all-safe")  # all-safe never deletes
    assert world.snapshot() == before
    fixed = world.audit("delete-redundant")
    if fixed["fixes"][0]["result"] == "skipped":  # the mover cannot drop copies yet
        assert world.snapshot() == before
    else:
        assert not world.pool(DUNE).exists() and world.array(DUNE).exists()


def test_array_original_next_to_its_identical_backup_is_stray_and_settled_by_its_bytes(world):
    backup = Path(str(world.array(HEAT)) + ".plexcached")
    world.copy_with_times(world.array(HEAT), backup)
    doc = world.audit()
    assert kinds(doc) == [("stray", world.user(HEAT))]
    assert doc["findings"][0]["fix"] == "settle"
    assert world.audit("settle")["findings"] == [] and not backup.exists() and world.array(HEAT).exists()


def test_differing_original_and_backup_wait_for_a_persons_choice(world):
    backup = Path(str(world.array(HEAT)) + ".plexcached")
    backup.write_bytes(b"an older, different file")
    before = world.snapshot()
    doc = world.audit("all-safe", "settle")
    assert kinds(doc) == [("stray", world.user(HEAT))]
    assert doc["findings"][0]["choices"] == ["keep-new", "keep-original"]
    assert world.snapshot() == before


def test_ignore_list_line_for_an_unmanaged_file_is_stale(world):
    stray = str(world.pool(DUNE))
    manual = str(world.mnt / "cache" / "movies" / "mine.mkv")
    Path(world.settings.paths.manual_exclusions).write_text(manual + "\n")
    Path(world.settings.paths.exclusion_list).write_text("\n".join([manual, *world.listed(), stray]) + "\n")
    doc = world.audit()
    assert kinds(doc) == [("stale", stray)]
    world.audit("sync")
    assert stray not in world.listed() and manual in world.listed()
    assert world.audit()["findings"] == []


def test_pool_only_files_of_a_share_are_not_findings(world):
    download = world.mnt / "cache" / "tv" / "New Show" / "New Show - S01E01.mkv"
    download.parent.mkdir(parents=True)
    download.write_bytes(b"fresh download")
    assert world.audit()["findings"] == []


def test_fix_by_finding_kind_applies_that_kinds_fix_only(world):
    os.rename(world.array(HEAT), str(world.array(HEAT)) + ".plexcached")
    pool_line = str(world.pool(EP1))
    Path(world.settings.paths.exclusion_list).write_text(
        "".join(f"{line}\n" for line in world.listed() if line != pool_line))
    world.audit("orphaned")
    assert kinds(world.audit()) == [("unprotected", world.user(EP1))]


def test_fixes_are_recorded_in_the_bounded_history(world):
    os.rename(world.array(HEAT), str(world.array(HEAT)) + ".plexcached")
    doc = world.audit("all-safe")
    history = doc["history"]
    assert history[-1]["action"] == "audit-fix" and history[-1]["fix"] == "restore"
    assert history[-1]["result"] == "ok" and history[-1]["paths"] == [world.user(HEAT)]
    assert (Path(world.settings.paths.state_dir) / "maintenance.json").exists()

    long = MaintenanceHistory()
    for i in range(HISTORY_LIMIT + 7):
        long.add("audit-fix", "ok", f"step {i}")
    assert len(long.records) == HISTORY_LIMIT and long.records[-1]["message"] == f"step {HISTORY_LIMIT + 6}"


def test_fixes_need_the_run_lock(world):
    with RunLock(world.settings.paths.volatile_dir), pytest.raises(LockHeld):
        world.audit("sync")
    assert world.audit()["ok"]  # a plain audit reads only: no lock needed


def test_fixes_refuse_while_the_mover_runs(world):
    world.sb.set_mover_running(True)
    with pytest.raises(EnvironmentRefuses):
        world.audit("restore")


def test_unknown_fix_is_a_usage_error(world):
    with pytest.raises(UsageError, match="unknown fix"):
        world.audit("scrub")
    with pytest.raises(UsageError):
        world.audit("hash")


def test_cheap_audit_never_reads_an_array_disk(world, monkeypatch):
    walked = []
    real = audit_disk.walk_files
    monkeypatch.setattr(audit_disk, "walk_files", lambda root: walked.append(root) or real(root))
    probed = []
    real_stat = audit_disk.stat_file
    for module in (audit_disk, audit_findings):  # each module that reads a file by its path
        monkeypatch.setattr(module, "stat_file", lambda p: probed.append(p) or real_stat(p))
    world.audit(cheap=True)
    touched = walked + probed
    assert touched and not [p for p in touched if "/disk1/" in p or "/disk2/" in p]


def test_open_files_are_skipped_by_fixes(world):
    backup = Path(str(world.array(HEAT)) + ".plexcached")
    os.rename(world.array(HEAT), backup)
    with open(backup, "rb"):
        doc = world.audit("restore")
    assert doc["fixes"][0]["result"] == "skipped" and backup.exists()


def test_several_problems_at_once_are_all_found(world):
    os.rename(world.array(HEAT), str(world.array(HEAT)) + ".plexcached")
    with open(world.pool(EP2), "ab") as handle:
        handle.write(b"x")
    world.copy_with_times(world.array(DUNE), world.pool(DUNE))
    registry = world.registry()
    registry.remove(world.user(ARRIVAL))
    world.save(registry)
    got = kinds(world.audit())
    assert got == sorted([("orphaned", world.user(HEAT)), ("mismatch", world.user(EP2)),
                          ("duplicate", world.user(DUNE)), ("untracked", world.user(ARRIVAL)),
                          ("untracked", world.user(ARRIVAL_SRT))])
    world.audit("all-safe")
    assert sorted(k for k, _ in kinds(world.audit())) == ["duplicate", "mismatch"]
    assert world.user(EP3) not in world.registry()


def test_an_unmounted_pool_is_one_finding_and_nothing_is_restored(world):
    pool = world.mnt / "cache"
    os.rename(pool, world.mnt / "cache-away")
    before = world.snapshot()
    doc = world.audit()
    assert kinds(doc) == [("stale", str(pool))] and doc["findings"][0]["fix"] is None
    world.audit("all-safe")
    assert world.snapshot() == before and len(world.registry()) == 3


def test_delete_redundant_removes_exactly_the_redundant_copy(world):
    world.copy_with_times(world.array(DUNE), world.pool(DUNE))  # unmanaged pool + array
    heat_backup = Path(str(world.array(HEAT)) + ".plexcached")
    world.copy_with_times(world.array(HEAT), heat_backup)  # original + identical backup: settled by its bytes
    world.copy_with_times(world.backup(EP1), world.array(EP1, "disk2"))  # managed, original came back
    before = world.snapshot()
    doc = world.audit("delete-redundant", "settle")
    assert [f["result"] for f in doc["fixes"]] == ["ok", "ok", "ok"]
    assert world.audit()["findings"] == []
    gone = {rel(world, world.pool(DUNE)), rel(world, heat_backup), rel(world, world.array(EP1, "disk2"))}
    assert world.snapshot() == {k: v for k, v in before.items() if k not in gone}


def test_managed_original_without_backup_becomes_the_backup(world):
    os.rename(world.backup(EP2), world.array(EP2, "disk2"))
    doc = world.audit()
    assert kinds(doc) == [("duplicate", world.user(EP2))] and doc["findings"][0]["action"] == "original-to-backup"
    before = world.snapshot()
    world.audit("duplicate")
    assert world.audit()["findings"] == []
    assert world.backup(EP2).exists() and not world.array(EP2, "disk2").exists()
    assert sorted(world.snapshot().values()) == sorted(before.values())


def test_restoring_a_stale_video_takes_its_subtitle_along(world):
    os.unlink(world.pool(EP2))  # the video's pool copy vanished, its subtitle is still cached
    before = world.snapshot()
    doc = world.audit()
    assert kinds(doc) == [("stale", world.user(EP2))]
    world.audit("restore")
    assert world.audit()["findings"] == []
    assert world.array(EP2).exists() and world.array(EP2).with_suffix(".en.srt").exists()
    assert not world.pool(EP2).with_suffix(".en.srt").exists()
    assert not list(world.mnt.glob("disk*/tv/**/*S01E02*.plexcached"))
    assert sorted(world.snapshot().values()) == sorted(v for k, v in before.items() if "cache/" not in k
                                                       or "S01E02" not in k)


def test_a_damaged_registry_is_rebuilt_from_the_disks(world):
    path = Path(world.settings.paths.state_dir) / "registry.json"
    path.write_text('{"schema": 1, "files": {"/mnt/user/tv/x.mkv": ')  # cut short
    before = world.snapshot()
    doc = world.audit()
    assert doc["findings"][0]["kind"] == "stale" and doc["findings"][0]["path"] == str(path)
    assert {f["kind"] for f in doc["findings"][1:]} == {"untracked", "stale"}  # the list names unmanaged files
    world.audit("sync")
    assert world.audit()["findings"] == []
    registry = world.registry()
    assert sorted(registry.entries) == sorted(world.user(f) for f in (ARRIVAL, EP1, EP2))
    assert registry.get(world.user(ARRIVAL)).sidecars == [world.user(ARRIVAL_SRT)]
    assert Path(str(path) + ".damaged").read_text().endswith(": ")
    assert world.snapshot() == before


def test_stop_ends_fixes_after_the_current_file(world, monkeypatch):
    from plexcache.errors import StopRequested
    from plexcache.runctl import ProgressWriter, StopFlag

    for f in (HEAT, DUNE, EP3):
        os.rename(world.array(f), str(world.array(f)) + ".plexcached")
    real = ProgressWriter.file_started

    def stop_after_first(self, label):
        StopFlag(world.settings.paths.volatile_dir).request()  # as `plexcache-r stop` would, mid-job
        real(self, label)

    monkeypatch.setattr(ProgressWriter, "file_started", stop_after_first)
    monkeypatch.setattr(world.settings.cache, "workers", 1)
    with pytest.raises(StopRequested):
        world.audit("restore")
    assert sorted(k for k, _ in kinds(world.audit())) == ["orphaned", "orphaned"]
    assert world.audit()["history"][-1]["result"] == "skipped"
    assert world.journal().is_empty()


def test_cheap_audit_uses_the_callers_registry(world):
    registry = world.registry()
    entry = registry.get(world.user(EP1))
    registry.add(type(entry)(path=world.user(EP3), share="tv", rel=EP3[1], pool="cache", disk="disk2"))
    doc = audit_mod.audit(world.settings, cheap=True, registry=registry)
    assert kinds(doc) == [("stale", world.user(EP3))]
    assert world.audit(cheap=True)["findings"] == []  # the file on disk was not changed
