"""What a kill or Unraid's mover can leave behind shows up: temp copies on any disk, a file live on two array
disks, a move back stopped by a permission error (on the Dashboard and in the audit until a run finishes it)."""

from __future__ import annotations

import errno
import os

import pytest

from plexcache import engine
from plexcache.media import mover as mv
from plexcache.media.ops import CriticalIOError, RecordedCopy, RestoreOp
from test_audit_support import EP1, EP2, HEAT, World, kinds


@pytest.fixture
def world(tmp_path):
    return World(tmp_path / "root")


def test_a_temp_copy_on_an_array_disk_is_reported(world):
    target = world.array(HEAT)
    tmp = target.with_name(f".{target.name}.plexcache-tmp")
    other = world.mnt / ("disk2" if "disk1" in str(target) else "disk1") / HEAT[0] / HEAT[1]
    carried = other.with_name(tmp.name)
    carried.parent.mkdir(parents=True, exist_ok=True)
    carried.write_bytes(b"partial")  # carried there by Unraid's mover after a kill mid-copy
    doc = world.audit()
    assert ("leftover", world.user(HEAT)) in kinds(doc)
    assert str(carried) in next(f for f in doc["findings"] if f["kind"] == "leftover")["paths"]


def test_a_file_live_on_two_array_disks_is_reported(world):
    original = world.array(EP2)
    other = world.mnt / ("disk2" if "/disk1/" in str(original) else "disk1") / EP2[0] / EP2[1]
    world.copy_with_times(original, other)
    doc = world.audit()
    found = [f for f in doc["findings"] if f["path"] == world.user(EP2)]
    assert [f["kind"] for f in found] == ["duplicate"] and "2 array disks" in found[0]["message"]
    assert sorted(found[0]["paths"]) == sorted([str(original), str(other)])


def test_a_move_back_stopped_by_a_permission_error_shows_until_a_run_finishes_it(world, monkeypatch):
    world.cache(EP1, sidecars=False)
    entry = world.registry().get(world.user(EP1))
    pool = str(world.pool(EP1))
    facts = entry.recorded[world.user(EP1)]
    op = RestoreOp(pool, str(world.array(EP1)), recorded={pool: RecordedCopy(facts["size"], facts["mtime_ns"])},
                   key=world.user(EP1))
    real_unlink = os.unlink

    def pool_refuses(path, *a, **kw):
        if str(path) == pool:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_unlink(path, *a, **kw)

    monkeypatch.setattr(mv.os, "unlink", pool_refuses)
    with pytest.raises(CriticalIOError):
        mv.Mover(world.journal()).restore(op)
    assert os.path.exists(pool) and os.path.exists(world.array(EP1))  # live in two places
    messages = [w["message"] for w in engine.status(world.settings)["warnings"]]
    assert any(world.user(EP1) in m and "two places" in m for m in messages), messages
    assert ("interrupted", world.user(EP1)) in kinds(world.audit())
    monkeypatch.setattr(mv.os, "unlink", real_unlink)  # the permission problem is fixed
    assert engine.recover_only(world.settings)["recovered"][0]["outcome"] == "restored"
    assert not os.path.exists(pool) and os.path.exists(world.array(EP1))
    assert world.user(EP1) not in world.registry().entries
    assert {w["code"] for w in engine.status(world.settings)["warnings"]} & {"unfinished_move_back",
                                                                             "interrupted"} == set()
