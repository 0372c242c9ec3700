"""A file live in two places (two array disks, or the pool and the array) that plexcache-r does not manage:
the audit lists every copy with where it is, its size and time; a person compares them (hashing, only when
asked) and chooses the copy to keep, one finding at a time. The other copy goes only when its bytes are the
same; one that differs is set aside as NAME.plexcache-discarded, never deleted. A kill at every step leaves
both copies' bytes on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from plexcache import engine
from plexcache.layout import DISCARDED_SUFFIX
from plexcache.media.crash import CRASH_ENV, TRACE_ENV
from realtime import seconds
from test_audit_support import DUNE, EP2, HEAT, World, kinds


@pytest.fixture
def world(tmp_path):
    return World(tmp_path / "root")


def other_disk(world: World, f: tuple[str, str]) -> Path:
    here = world.array(f)
    return world.mnt / ("disk2" if "/disk1/" in str(here) else "disk1") / f[0] / f[1]


def twice(world: World, f: tuple[str, str], differ: bool = False) -> tuple[Path, Path]:
    """The file live on both array disks (as Unraid's mover can leave it); the second copy's last byte
    flipped when `differ` (same size and time: only the bytes tell)."""
    first, second = world.array(f), other_disk(world, f)
    world.copy_with_times(first, second)
    if differ:
        data = bytearray(second.read_bytes())
        data[-1] ^= 0xFF
        st = second.stat()
        second.write_bytes(bytes(data))
        os.utime(second, ns=(st.st_atime_ns, st.st_mtime_ns))
    return first, second


def duplicate(doc: dict, world: World, f: tuple[str, str]) -> dict:
    found = [x for x in doc["findings"] if x["path"] == world.user(f)]
    assert [x["kind"] for x in found] == ["duplicate"], found
    return found[0]


def cli(world: World, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PLEXCACHE")}
    return subprocess.run([sys.executable, "-m", "plexcache", "--config", str(world.settings_path), *args],
                          capture_output=True, text=True, env={**base, **(env or {})}, timeout=seconds(120))


def test_a_duplicate_lists_each_copy_with_its_place_size_and_time_and_offers_the_choice(world):
    first, second = twice(world, EP2)
    found = duplicate(world.audit(), world, EP2)
    assert sorted(found["paths"]) == sorted([str(first), str(second)])
    assert found["sizes"] == [first.stat().st_size] * 2
    assert found["mtimes"] == [pytest.approx(first.stat().st_mtime)] * 2
    assert found["choices"] == ["keep"] and found["fix"] is None
    assert "disk1" in found["message"] and "disk2" in found["message"]


def test_pool_and_array_copies_that_differ_offer_the_choice_too(world):
    world.copy_with_times(world.array(DUNE), world.pool(DUNE))
    with open(world.pool(DUNE), "ab") as extra:
        extra.write(b"more")
    found = duplicate(world.audit(), world, DUNE)
    assert found["choices"] == ["keep"] and str(world.pool(DUNE)) in found["paths"]
    identical = World(world.mnt.parent.parent / "root2")
    identical.copy_with_times(identical.array(DUNE), identical.pool(DUNE))
    same = duplicate(identical.audit(), identical, DUNE)
    assert same["fix"] == "delete-redundant" and same["choices"] == ["keep"]


def test_compare_hashes_every_copy_only_when_asked(world):
    first, second = twice(world, EP2, differ=True)
    doc = json.loads(cli(world, "--json", "audit", "--compare", world.user(EP2)).stdout)
    assert {c["path"] for c in doc["copies"]} == {str(first), str(second)}
    assert doc["identical"] is False and all(c["blake2b"] for c in doc["copies"])
    world.copy_with_times(first, second)
    assert json.loads(cli(world, "--json", "audit", "--compare", world.user(EP2)).stdout)["identical"] is True
    refused = cli(world, "audit", "--compare", str(first))   # a disk path: the user-share path is asked for
    assert refused.returncode == 2 and "user-share path" in refused.stderr


def test_keeping_one_of_two_identical_copies_removes_the_other(world):
    first, second = twice(world, EP2)
    content = first.read_bytes()
    doc = world.audit(f"keep:{second}")
    assert [o["result"] for o in doc["fixes"]] == ["ok"], doc["fixes"]
    assert not first.exists() and second.read_bytes() == content
    assert not Path(str(first) + DISCARDED_SUFFIX).exists()
    assert world.user(EP2) not in {p for _, p in kinds(doc)}
    assert doc["history"][-1]["fix"] == "keep"


def test_keeping_one_of_two_differing_copies_sets_the_other_aside(world):
    first, second = twice(world, EP2, differ=True)
    kept, other = first.read_bytes(), second.read_bytes()
    doc = world.audit(f"keep:{first}")
    assert [o["result"] for o in doc["fixes"]] == ["ok"] and "set aside" in doc["fixes"][0]["message"]
    aside = Path(str(second) + DISCARDED_SUFFIX)
    assert first.read_bytes() == kept and aside.read_bytes() == other and not second.exists()
    assert world.user(EP2) not in {p for _, p in kinds(doc)}


def test_keeping_the_array_copy_sets_a_differing_pool_copy_aside(world):
    world.copy_with_times(world.array(DUNE), world.pool(DUNE))
    with open(world.pool(DUNE), "ab") as extra:
        extra.write(b"more")
    pool = world.pool(DUNE).read_bytes()
    doc = world.audit(f"keep:{world.array(DUNE)}")
    assert [o["result"] for o in doc["fixes"]] == ["ok"], doc["fixes"]
    assert Path(str(world.pool(DUNE)) + DISCARDED_SUFFIX).read_bytes() == pool and world.array(DUNE).exists()


def test_a_copy_set_aside_twice_takes_the_next_free_name(world):
    first, second = twice(world, EP2, differ=True)
    older = second.read_bytes()
    world.audit(f"keep:{first}")
    twice(world, EP2, differ=True)
    newer = second.read_bytes()
    with open(second, "ab") as grow:
        grow.write(b"!")
    newer += b"!"
    doc = world.audit(f"keep:{first}")
    assert [o["result"] for o in doc["fixes"]] == ["ok"], doc["fixes"]
    assert Path(str(second) + DISCARDED_SUFFIX).read_bytes() == older
    assert Path(str(second) + ".2" + DISCARDED_SUFFIX).read_bytes() == newer


def test_a_choice_decides_its_own_finding_only(world):
    first, second = twice(world, EP2)
    heat, heat2 = twice(world, HEAT)
    before = {p: p.read_bytes() for p in (heat, heat2)}
    world.audit(f"keep:{first}")
    assert not second.exists() and {p: p.read_bytes() for p in (heat, heat2)} == before


def test_a_keep_that_names_no_copy_or_a_copy_in_use_changes_nothing(world):
    first, second = twice(world, EP2)
    before = world.snapshot()
    doc = world.audit(f"keep:{first}.nope")
    assert [o["result"] for o in doc["fixes"]] == ["refused"] and "not a copy" in doc["fixes"][0]["message"]
    with open(second, "rb"):   # being played
        doc = world.audit(f"keep:{first}")
    assert [o["result"] for o in doc["fixes"]] == ["refused"] and "open" in doc["fixes"][0]["message"]
    both = world.audit(f"keep:{first}", f"keep:{second}")
    assert [o["result"] for o in both["fixes"]] == ["refused"]
    assert world.snapshot() == before


def test_a_hostile_name_is_taken_as_it_is(world):
    src = world.array(HEAT)
    name = src.with_name("Heat -- \"quotes\" $(touch x) <b>&amp;.mkv")
    os.rename(src, name)
    f = (HEAT[0], str(Path(HEAT[1]).with_name(name.name)))
    first, second = twice(world, f, differ=True)
    doc = json.loads(cli(world, "--json", "audit", "--fix", f"keep:{second}").stdout)
    assert [o["result"] for o in doc["fixes"]] == ["ok"], doc
    assert Path(str(first) + DISCARDED_SUFFIX).exists() and second.exists()


def crash_steps(world: World, keep: Path, tmp: Path) -> list[str]:
    trace = tmp / "trace"
    proc = cli(world, "audit", "--fix", f"keep:{keep}", env={TRACE_ENV: str(trace)})
    assert proc.returncode == 0, proc.stderr
    return [line.strip() for line in trace.read_text().splitlines() if line.startswith("discard.")]


@pytest.mark.parametrize("differ", [False, True], ids=["identical", "different"])
def test_a_kill_at_every_step_keeps_both_copies_bytes(tmp_path, differ):
    probe = World(tmp_path / "probe")
    _, keep = twice(probe, EP2, differ)
    steps = crash_steps(probe, keep, tmp_path)
    assert steps == ["discard.hashed:1", "discard.set-aside:1" if differ else "discard.removed:1"]
    for i, step in enumerate(steps):
        world = World(tmp_path / f"w{i}")
        other, keep = twice(world, EP2, differ)
        kept, discarded = keep.read_bytes(), other.read_bytes()
        proc = cli(world, "audit", "--fix", f"keep:{keep}", env={CRASH_ENV: step})
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert keep.read_bytes() == kept
        aside = Path(str(other) + DISCARDED_SUFFIX)
        survivor = other if other.exists() else aside if aside.exists() else keep   # identical: keep holds it
        assert survivor.read_bytes() == discarded
        # the next look and the same choice again finish the job, nothing lost
        world.audit(f"keep:{keep}")
        assert keep.read_bytes() == kept and not other.exists()
        assert (aside.read_bytes() == discarded) if differ else not aside.exists()
        assert world.user(EP2) not in {p for _, p in kinds(world.audit())}


@pytest.mark.parametrize("differ", [False, True], ids=["identical", "different"])
def test_a_managed_files_backup_on_another_disk_goes_and_the_one_it_moves_back_to_stays(world, differ):
    world.cache(EP2, sidecars=False)
    home = world.backup(EP2)
    extra = other_disk(world, EP2).with_name(home.name)
    world.copy_with_times(home, extra)
    if differ:
        with open(extra, "r+b") as f:
            f.write(b"X")
    kept, other = home.read_bytes(), extra.read_bytes()
    found = duplicate(world.audit(), world, EP2)
    assert found["fix"] == "retire-extras" and found["paths"][0] == str(home)
    assert world.audit("all-safe")["fixes"] == [] and extra.exists()   # all-safe never removes a copy
    doc = world.audit("duplicate")
    assert [o["result"] for o in doc["fixes"]] == ["ok"], doc["fixes"]
    assert home.read_bytes() == kept and not extra.exists()
    aside = Path(str(extra) + DISCARDED_SUFFIX)
    assert (aside.read_bytes() == other) if differ else not aside.exists()
    assert world.user(EP2) not in {p for _, p in kinds(doc)}
    engine.evict(world.settings, [world.user(EP2)])   # and it still moves back by renaming its backup
    assert world.array(EP2).read_bytes() == kept and not home.exists()


def partial(world: World, f: tuple[str, str], data: bytes | None = None) -> Path:
    """A temporary copy a kill left on the other disk (Unraid's mover may carry one there)."""
    source = world.array(f)
    tmp = other_disk(world, f).with_name(f".{source.name}.plexcache-tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(source.read_bytes()[:1000] if data is None else data)
    return tmp


def test_a_leftover_that_is_the_start_of_a_complete_copy_is_removed(world):
    tmp = partial(world, HEAT)
    found = next(f for f in world.audit()["findings"] if f["kind"] == "leftover")
    assert found["fix"] == "remove-leftover" and found["paths"] == [str(tmp), str(world.array(HEAT))]
    assert world.audit("all-safe")["fixes"] == [] and tmp.exists()   # all-safe removes nothing
    doc = world.audit("leftover")
    assert [o["result"] for o in doc["fixes"]] == ["ok"], doc["fixes"]
    assert not tmp.exists() and not [f for f in doc["findings"] if f["kind"] == "leftover"]


def test_a_leftover_with_bytes_found_nowhere_else_is_kept(world):
    tmp = partial(world, HEAT, data=b"not the film's bytes")
    doc = world.audit("leftover")
    assert [o["result"] for o in doc["fixes"]] == ["refused"] and tmp.read_bytes() == b"not the film's bytes"
    os.unlink(world.array(HEAT))   # and with no complete copy anywhere, no fix is offered
    found = next(f for f in world.audit()["findings"] if f["kind"] == "leftover")
    assert found["fix"] is None and "kept" in found["message"]


def test_a_kill_as_a_leftover_is_removed_loses_nothing(world, tmp_path):
    tmp = partial(world, HEAT)
    content = world.array(HEAT).read_bytes()
    proc = cli(world, "audit", "--fix", "remove-leftover", env={CRASH_ENV: "leftover.removed"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not tmp.exists() and world.array(HEAT).read_bytes() == content
    assert not [f for f in world.audit()["findings"] if f["kind"] == "leftover"]


def _managed_beside_a_different_array_file(tmp_path: Path) -> tuple[World, Path, Path]:
    """DUNE cached (backups off: the original went), and since then a different file written straight to
    its array path, so Unraid shows one of two different files."""
    world = World(tmp_path / "root", backups=False)
    disk = world.disk_of(DUNE)
    world.cache(DUNE)
    array = world.mnt / disk / DUNE[0] / DUNE[1]
    array.write_bytes(b"another film entirely")
    return world, world.pool(DUNE), array


def test_a_managed_file_beside_a_different_array_file_offers_the_choice(tmp_path):
    world, pool, array = _managed_beside_a_different_array_file(tmp_path)
    found = duplicate(world.audit(), world, DUNE)
    assert found["choices"] == ["keep"] and found["fix"] is None
    assert sorted(found["paths"]) == sorted([str(pool), str(array)])
    assert found["places"] == ["cache", world.disk_of(DUNE)]


def test_keeping_the_cached_copy_sets_the_array_file_aside_and_it_stays_managed(tmp_path):
    world, pool, array = _managed_beside_a_different_array_file(tmp_path)
    other = array.read_bytes()
    doc = world.audit(f"keep:{pool}")
    assert [o["result"] for o in doc["fixes"]] == ["ok"], doc["fixes"]
    assert Path(str(array) + DISCARDED_SUFFIX).read_bytes() == other and not array.exists()
    assert world.user(DUNE) in world.registry() and str(pool) in world.listed()
    assert world.user(DUNE) not in {p for _, p in kinds(doc)}


def test_keeping_the_array_file_sets_the_cached_copy_aside_and_forgets_it(tmp_path):
    """The array file is the one Unraid is to show: the cached copy is set aside (its bytes kept), and the
    file is no longer managed nor on the mover's ignore list, so nothing moves it back over the kept one."""
    world, pool, array = _managed_beside_a_different_array_file(tmp_path)
    cached, other = pool.read_bytes(), array.read_bytes()
    doc = world.audit(f"keep:{array}")
    assert [o["result"] for o in doc["fixes"]] == ["ok"], doc["fixes"]
    assert Path(str(pool) + DISCARDED_SUFFIX).read_bytes() == cached and array.read_bytes() == other
    assert world.user(DUNE) not in world.registry() and str(pool) not in world.listed()
    assert world.user(DUNE) not in {p for _, p in kinds(world.audit())}


def test_a_kill_as_the_cached_copy_is_given_up_is_finished_by_the_next_run(tmp_path):
    """Keeping the array file over a managed file's cached copy sets the copy aside and forgets the entry.
    A kill at any step between the two leaves the books to the next run (or `recover`): the entry and its
    ignore-list line go once the copy went, with no warning that something else moved the file; both the
    kept file and the copy set aside stay. A kill before the copy went changes nothing."""
    probe, _, array = _managed_beside_a_different_array_file(tmp_path / "probe")
    trace = tmp_path / "trace"
    assert cli(probe, "audit", "--fix", f"keep:{array}", env={TRACE_ENV: str(trace)}).returncode == 0
    steps = [line.strip() for line in trace.read_text().splitlines() if line.startswith("discard.")]
    assert "discard.set-aside:1" in steps
    for i, step in enumerate(steps):
        world, pool, array = _managed_beside_a_different_array_file(tmp_path / f"w{i}")
        cached, other = pool.read_bytes(), array.read_bytes()
        proc = cli(world, "audit", "--fix", f"keep:{array}", env={CRASH_ENV: step})
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        aside = Path(str(pool) + DISCARDED_SUFFIX)
        went = not pool.exists()
        cycle = engine.Cycle(world.settings, action="run")   # the next run: recovery, then the registry checks
        cycle.recover()
        cycle.reconcile([])
        cycle.save()
        assert cycle.report.warnings == [], (step, cycle.report.warnings)
        assert not [e for e in cycle.books.history.events if e["kind"] == "dropped"], step
        assert array.read_bytes() == other, step
        if went:
            assert aside.read_bytes() == cached, step
            assert world.user(DUNE) not in world.registry() and str(pool) not in world.listed(), step
            assert world.user(DUNE) not in {p for _, p in kinds(world.audit())}, step
        else:   # nothing was changed yet: the choice is still open
            assert pool.read_bytes() == cached and not aside.exists(), step
            assert world.user(DUNE) in world.registry() and str(pool) in world.listed(), step
            assert duplicate(world.audit(), world, DUNE)["choices"] == ["keep"], step
        assert world.journal().is_empty() and not world.journal().has_done(), step


def test_recover_alone_finishes_forgetting_a_cached_copy_given_up(tmp_path):
    world, pool, array = _managed_beside_a_different_array_file(tmp_path)
    proc = cli(world, "audit", "--fix", f"keep:{array}", env={CRASH_ENV: "discard.set-aside"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert kinds(world.audit()) == [("interrupted", world.user(DUNE))]   # in flux: nothing else judged
    proc = cli(world, "recover")
    assert proc.returncode == 0, proc.stderr
    assert world.user(DUNE) not in world.registry() and str(pool) not in world.listed()
    assert Path(str(pool) + DISCARDED_SUFFIX).exists() and array.exists()
    assert world.user(DUNE) not in {p for _, p in kinds(world.audit())}
