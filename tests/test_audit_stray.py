"""A live array file with a .plexcached backup beside it that is not provably the same bytes (left when a mover
that ignored the ignore list put a cached file back): nothing is lost, but a run will not cache the file again
(no second backup is made) until it is settled. The audit reports it as `stray`; `settle` hashes both and
retires an identical backup; copies that differ are the person's choice (keep-new / keep-original), never a
safe fix's. The Dashboard's status says how many files a run found stuck this way."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from plexcache import query
from plexcache.errors import UsageError
from test_audit_support import HEAT, World, kinds
from test_engine import DUNE, copies, on_disk, registry, run, scenario, user  # noqa: F401 - scenario: env's fixture


def _flip(path: Path) -> None:
    """Change one byte in place, keeping size and mtime (as a bad disk or another tool may)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _beside(world: World, tweak: str) -> tuple[Path, Path]:
    """HEAT's live array file and a backup beside it: `flip` (same size and mtime, one byte differs),
    `older` (the same bytes, another mtime) or `other` (other bytes, other size)."""
    live = world.array(HEAT)
    backup = Path(str(live) + ".plexcached")
    shutil.copy2(live, backup)
    if tweak == "flip":
        _flip(backup)
    elif tweak == "older":
        os.utime(backup, ns=(backup.stat().st_atime_ns, backup.stat().st_mtime_ns - 3_600_000_000_000))
    else:
        backup.write_bytes(b"an older release of the same film")
    return live, backup


def _world(tmp_path: Path) -> World:
    return World(tmp_path / "root")


def test_a_backup_beside_its_live_file_is_stray_with_a_settle_fix_and_two_choices(tmp_path):
    world = _world(tmp_path)
    _beside(world, "other")
    doc = world.audit()
    assert kinds(doc) == [("stray", world.user(HEAT))]
    finding = doc["findings"][0]
    assert finding["fix"] == "settle" and finding["choices"] == ["keep-new", "keep-original"]
    assert "cannot be cached" in finding["message"]


def test_a_byte_flipped_backup_is_never_removed_by_delete_redundant_or_a_safe_fix(tmp_path):
    """Same size and mtime is no proof: the backup may be the last good copy of the file."""
    world = _world(tmp_path)
    _beside(world, "flip")
    before = world.snapshot()
    world.audit("all-safe")
    world.audit("delete-redundant")
    world.audit("duplicate")
    assert world.snapshot() == before
    settled = world.audit("settle")
    assert world.snapshot() == before  # hashed: they differ, so both stay and the person chooses
    assert [f["result"] for f in settled["fixes"]] == ["refused"]
    assert "differ" in settled["fixes"][0]["message"]
    assert kinds(settled) == [("stray", world.user(HEAT))]


def test_settle_retires_a_backup_that_holds_the_same_bytes(tmp_path):
    world = _world(tmp_path)
    live, backup = _beside(world, "older")
    content = live.read_bytes()
    doc = world.audit("stray")  # the finding's kind applies its fix, as the Maintenance tab does
    assert [f["result"] for f in doc["fixes"]] == ["ok"]
    assert not backup.exists() and live.read_bytes() == content
    assert doc["findings"] == []


def test_keep_new_removes_the_backup_and_keeps_the_live_file(tmp_path):
    world = _world(tmp_path)
    live, backup = _beside(world, "flip")
    content = live.read_bytes()
    world.audit("all-safe")
    assert backup.exists()
    doc = world.audit("keep-new")
    assert [f["result"] for f in doc["fixes"]] == ["ok"]
    assert not backup.exists() and live.read_bytes() == content
    assert doc["findings"] == []


def test_keep_original_puts_the_backup_back_in_place_of_the_live_file(tmp_path):
    world = _world(tmp_path)
    live, backup = _beside(world, "other")
    original = backup.read_bytes()
    doc = world.audit("keep-original")
    assert [f["result"] for f in doc["fixes"]] == ["ok"]
    assert live.read_bytes() == original and not backup.exists()
    assert doc["findings"] == []


def test_keep_original_across_disks_leaves_one_live_copy(tmp_path):
    """The mover put the file back on another disk than its backup: the backup comes back on its own disk
    and the other live copy goes, so the file is live exactly once."""
    world = _world(tmp_path)
    live = world.array(HEAT)  # on disk1
    backup = world.mnt / "disk2" / HEAT[0] / (HEAT[1] + ".plexcached")
    backup.parent.mkdir(parents=True)
    backup.write_bytes(b"the original release")
    assert kinds(world.audit()) == [("stray", world.user(HEAT))]
    doc = world.audit("keep-original")
    assert [f["result"] for f in doc["fixes"]] == ["ok"]
    assert not live.exists() and not backup.exists()
    assert (world.mnt / "disk2" / HEAT[0] / HEAT[1]).read_bytes() == b"the original release"
    assert doc["findings"] == []


def test_the_status_counts_files_a_run_could_not_cache_for_a_stray_backup(env):
    s, sb, _sim, now = env
    stray = on_disk(sb, "disk2", DUNE + ".plexcached")  # next to the original, other content
    stray.write_bytes(b"an older release")
    run(s, now)
    assert user(s, DUNE) not in registry(s)
    assert query.status(s)["stray_backups"] == 1
    from plexcache.audit import audit

    audit(s, fixes=["keep-new"])
    run(s, now + 60)
    assert user(s, DUNE) in registry(s) and copies(sb, DUNE) == (["cache"], ["disk2"])
    assert query.status(s)["stray_backups"] == 0


def test_a_choice_named_for_one_kind_of_finding_acts_on_that_kind_only(tmp_path):
    """The Maintenance tab offers Keep the new file under each kind that has the choice; the button under the
    copies that differ (mismatch) must not also decide the stray backups, nor the other way round."""
    world = _world(tmp_path)
    live, backup = _beside(world, "flip")
    before = world.snapshot()
    doc = world.audit("keep-new:mismatch")
    assert doc["fixes"] == [] and world.snapshot() == before
    doc = world.audit("keep-new:stray")
    assert [f["result"] for f in doc["fixes"]] == ["ok"] and not backup.exists() and live.exists()


def test_a_choice_may_be_scoped_only_to_a_kind_that_offers_it(tmp_path):
    world = _world(tmp_path)
    for word in ("keep-new:stale", "settle:stray", "keep-new:nothing"):
        with pytest.raises(UsageError, match="keep-new"):
            world.audit(word)
