"""kill -9 at every step of every kind of operation, then recover: nothing lost, nothing duplicated.

Each case runs the operation in a real subprocess that SIGKILLs itself at one crash point
(PLEXCACHE_CRASH_AT=<step>:<n>). The points are not listed here by hand: a first, uninterrupted run records
every point it passes (PLEXCACHE_CRASH_TRACE), and the test then kills a fresh copy of the world at each of
them. After recovery the whole tree must be exactly the state before the operation (rolled back) or exactly
the state after it (finished): same paths, same bytes, same directories, no temp file, nothing unfinished
in the journal, and once checkpointed an empty journal directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from plexcache.media import mover as mv
from plexcache.media.crash import CRASH_ENV, TRACE_ENV
from plexcache.media.journal import Journal
from plexcache.media.mover import Mover
from plexcache.media.ops import RecordedCopy, RestoreOp
from realtime import seconds
from test_mover_ops import SHOW as SHOW_DIR
from test_mover_ops import World, _bytes

pytestmark = pytest.mark.slow   # a process killed at every step of every case

DRIVER = r"""
import json, sys, time
from plexcache.media.journal import Journal
from plexcache.media.mover import Mover
from plexcache.media.ops import CacheOp, RestoreOp, RecordedCopy

spec = json.loads(sys.argv[1])
m = Mover(Journal(spec["journal"]), backups=spec["backups"], verify=spec["verify"], chunk_size=spec["chunk"])
if spec["kind"] == "recover":
    print(json.dumps([r.outcome for r in m.recover()]))
    sys.exit(0)
if spec["kind"] == "run_ops":
    from plexcache.media.lanes import run_ops
    ops = [CacheOp(**dict(o, sidecars=[tuple(p) for p in o["sidecars"]])) for o in spec["ops"]]
    print("start", flush=True)
    report = run_ops(ops, spec["workers"], m)
    print("finished", json.dumps([r.outcome for r in report.results]), flush=True)
    sys.exit(0)
doc = dict(spec["op"], sidecars=[tuple(p) for p in spec["op"]["sidecars"]])
if spec["kind"] == "cache":
    op = CacheOp(**doc)
else:
    op = RestoreOp(**dict(doc, recorded={k: RecordedCopy(**v) for k, v in doc["recorded"].items()},
                          confirmed={k: RecordedCopy(**v) for k, v in doc.get("confirmed", {}).items()}))
print("start", flush=True)
started = time.monotonic()
m.run(op)
print("finished", time.monotonic() - started, flush=True)
"""

CHUNK = 64 * 1024
KILLED = -signal.SIGKILL


@pytest.fixture
def root(tmp_path):
    """A tmpfs when we may mount one: fsync there costs nothing, which keeps ~150 kill-and-recover rounds
    fast. The same tests pass on a disk filesystem (tmp_path), only slower."""
    where = tmp_path / "fs"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", str(where)],
                             capture_output=True).returncode == 0
    yield where
    if mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def run_driver(spec: dict, crash: Optional[str] = None, trace: Optional[Path] = None,
               ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, TRACE_ENV)}
    if crash:
        env[CRASH_ENV] = crash
    if trace:
        env[TRACE_ENV] = str(trace)
    return subprocess.run([sys.executable, "-c", DRIVER, json.dumps(spec)], env=env, capture_output=True,
                          text=True, timeout=seconds(120))


@dataclass
class Case:
    name: str
    kind: str  # cache | restore
    backups: bool
    verify: bool
    upgrade: bool = False  # restore: the pool copy was replaced since caching
    sidecars: bool = True
    size: int = 2 * CHUNK + 1000

    def setup(self, root: Path) -> tuple[World, dict]:
        """A fresh world in the state just before the operation, and the driver spec that runs it."""
        world = World(root)
        video, subs = world.episode(size=self.size, subs=("en", "fr") if self.sidecars else ())
        spec = {"journal": str(world.journal_dir), "backups": self.backups, "verify": self.verify,
                "chunk": CHUNK, "kind": self.kind}
        if self.kind == "cache":
            spec["op"] = mv._op_to_json(world.cache_op(video, subs))
            return world, spec
        result = Mover(Journal(root / "setup-journal"), backups=self.backups).cache(world.cache_op(video, subs))
        assert result.made_dirs  # Show/ and Show/Season 01/ on the pool: the move back removes them again
        recorded = {f.pool_path: f.facts for f in result.files}
        confirmed = {}
        if self.upgrade:  # replaced, and shown complete (Plex lists it with its size)
            Path(world.p(video)).write_bytes(_bytes(2 * CHUNK + 7, 99))
            st = os.stat(world.p(video))
            confirmed = {world.p(video): RecordedCopy(st.st_size, st.st_mtime_ns)}
        op = world.restore_op(video, subs, recorded=recorded, backup_path="auto" if self.backups else None,
                              made_dirs=result.made_dirs)
        op = dataclasses.replace(op, confirmed=confirmed)
        spec["op"] = mv._op_to_json(op)
        return world, spec


CASES = [
    Case("cache-backups-verify", "cache", backups=True, verify=True),
    Case("cache-no-backups", "cache", backups=False, verify=False),
    Case("cache-one-file", "cache", backups=True, verify=False, sidecars=False),
    Case("restore-rename-backups", "restore", backups=True, verify=False),
    Case("restore-upgraded-pool-copy", "restore", backups=True, verify=True, upgrade=True),
    Case("restore-no-backups", "restore", backups=False, verify=False),
]


@dataclass
class Reference:
    before: dict[str, str]
    after: dict[str, str]
    dirs_before: set[str]
    dirs_after: set[str]
    steps: list[str]
    seconds: float


def reference(case: Case, root: Path) -> Reference:
    """Run the op once uninterrupted, recording the tree before/after and every crash point passed."""
    world, spec = case.setup(root)
    before, dirs_before = world.tree(), world.dirs()
    trace = root / "trace.txt"
    proc = run_driver(spec, trace=trace)
    assert proc.returncode == 0 and "finished" in proc.stdout, proc.stderr
    steps = trace.read_text().split()
    seconds = float(proc.stdout.split()[-1])
    return Reference(before, world.tree(), dirs_before, world.dirs(), steps, seconds)


def check_recovered(world: World, ref: Reference, outcomes: list[str], where: str) -> str:
    tree, dirs = world.tree(), world.dirs()
    if outcomes in (["rolled_back"],):
        state = "before"
    elif outcomes in (["cached"], ["restored"]):
        state = "after"
    elif outcomes == []:  # killed before the intent was written
        state = "before"
    else:
        raise AssertionError(f"{where}: unexpected recovery outcomes {outcomes}")
    want, want_dirs = (ref.before, ref.dirs_before) if state == "before" else (ref.after, ref.dirs_after)
    assert tree == want, f"{where}: after recovery ({outcomes}) the files are not the {state} state:\n" \
                         f"missing {sorted(set(want) - set(tree))}\nextra {sorted(set(tree) - set(want))}\n" \
                         f"changed {sorted(k for k in want if k in tree and tree[k] != want[k])}"
    assert dirs == want_dirs, f"{where}: directories differ: {sorted(dirs ^ want_dirs)}"
    assert world.temps() == [], f"{where}: temp files left: {world.temps()}"
    assert world.journal.is_empty(), f"{where}: unfinished ops left: {os.listdir(world.journal_dir)}"
    assert world.journal.has_done() == (state == "after"), f"{where}: a finished op must wait for a checkpoint"
    world.journal.checkpoint()
    assert os.listdir(world.journal_dir) == [], f"{where}: journal not empty after checkpoint"
    return state


EXPECTED_STEPS = {
    "cache": {"cache.journaled", "cache.dirs", "cache.chunk", "cache.copied", "cache.verified", "cache.placed",
              "cache.committed", "cache.retired", "cache.done"},
    "restore-rename-backups": {"restore.journaled", "restore.renamed", "restore.committed", "restore.removed",
                               "restore.pruned", "restore.done"},
    "restore-upgraded-pool-copy": {"restore.journaled", "restore.chunk", "restore.copied", "restore.verified",
                                   "restore.placed", "restore.renamed", "restore.committed", "restore.retired",
                                   "restore.removed", "restore.pruned", "restore.done"},
    "restore-no-backups": {"restore.journaled", "restore.chunk", "restore.copied", "restore.verified",
                           "restore.placed", "restore.committed", "restore.removed", "restore.pruned",
                           "restore.done"},
}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_kill_at_every_step_then_recover(case, root):
    _kill_at_every_step(case, root)


@pytest.mark.slow
@pytest.mark.parametrize("case", [CASES[0], CASES[4]], ids=lambda c: c.name)
def test_kill_at_every_step_on_a_disk_filesystem(case, tmp_path):
    """The same on the real disk filesystem of the temp dir (the fast tests use a tmpfs)."""
    _kill_at_every_step(case, tmp_path)


def _kill_at_every_step(case: Case, root: Path) -> None:
    ref = reference(case, root / "reference")
    names = {s.split(":")[0] for s in ref.steps}
    assert EXPECTED_STEPS.get(case.name, EXPECTED_STEPS["cache"]) <= names, f"crash points not reached: {names}"
    seen_states = set()
    for i, step in enumerate(ref.steps):
        world, spec = case.setup(root / f"run{i}")
        proc = run_driver(spec, crash=step)
        assert proc.returncode == KILLED, f"{step}: the driver was not killed ({proc.returncode}) {proc.stderr}"
        outcomes = [r.outcome for r in Mover(world.journal).recover()]
        seen_states.add(check_recovered(world, ref, outcomes, f"{case.name} killed at {step}"))
    assert seen_states == {"before", "after"}  # both roll back and roll forward were exercised


@pytest.mark.parametrize("case,crash_at", [
    (CASES[0], "cache.placed:2"),       # rollback of an uncommitted cache with sidecars
    pytest.param(CASES[0], "cache.committed", marks=pytest.mark.slow),  # finishing a committed cache
    pytest.param(CASES[1], "cache.retired:1", marks=pytest.mark.slow),  # finishing, originals being deleted
    (CASES[3], "restore.renamed:2"),    # rollback of renamed-back backups
    pytest.param(CASES[4], "restore.placed", marks=pytest.mark.slow),   # rollback of a copied-back upgrade
    (CASES[4], "restore.committed"),    # finishing: stale backup and pool copies to remove
], ids=lambda v: v if isinstance(v, str) else v.name)
def test_kill_recovery_itself_at_every_step(case, crash_at, root):
    """Recovery is killed too, at each of its own steps, then run again: still exact."""
    ref = reference(case, root / "reference")
    k = 1
    while True:
        world, spec = case.setup(root / f"run{k}")
        assert run_driver(spec, crash=crash_at).returncode == KILLED
        recovery = dict(spec, kind="recover")
        step = "undo.step" if not crash_at.split(":")[0].endswith(("committed", "retired")) else \
            ("cache.retired" if case.kind == "cache" else "restore.removed")
        proc = run_driver(recovery, crash=f"{step}:{k}")
        outcomes = [r.outcome for r in Mover(world.journal).recover()]
        if proc.returncode == 0:
            outcomes = json.loads(proc.stdout)  # the killed-free recovery already did everything
        check_recovered(world, ref, outcomes, f"{case.name} at {crash_at}, recovery killed at {step}:{k}")
        if proc.returncode != KILLED:  # recovery got through all its steps: every step was covered
            assert proc.returncode == 0, proc.stderr
            break
        k += 1
    assert k > 1


def _kill_at_random(case: Case, root: Path, rounds: int, seed: int) -> set[str]:
    ref = reference(case, root / "reference")
    rng = random.Random(seed)
    states = set()
    for i in range(rounds):
        world, spec = case.setup(root / f"run{i}")
        env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, TRACE_ENV)}
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(spec)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"start"
        time.sleep(rng.uniform(0, ref.seconds * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        outcomes = [r.outcome for r in Mover(world.journal).recover()]
        states.add(check_recovered(world, ref, outcomes, f"{case.name} round {i} (external kill -9)"))
        shutil.rmtree(world.root)
    return states


def test_external_kill_during_a_large_copy(root):
    case = Case("big-cache", "cache", backups=True, verify=True, size=8 * 1024 * 1024)
    _kill_at_random(case, root, rounds=3, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cache", "restore"])
def test_external_kill_during_a_large_copy_many_times(root, kind):
    case = Case(f"big-{kind}", kind, backups=kind == "cache", verify=False, size=32 * 1024 * 1024)
    states = _kill_at_random(case, root, rounds=12, seed=2)
    assert "before" in states  # kills landed mid-copy (the copy is most of the time)


def test_seed_data_loss_w1_partial_pool_copy_is_never_adopted(root):
    """The seed's W1 chain: a copy killed half-way must not become 'the cached file' (nor later replace
    the original). Here: killed after 2 of 4 chunks, then recovery, then a fresh cache of the same file."""
    case = CASES[2]
    world, spec = case.setup(root / "w1")
    original = world.tree()
    assert run_driver(spec, crash="cache.chunk:2").returncode == KILLED
    video = spec["op"]["pool_path"]
    assert not os.path.exists(video)  # the partial copy only ever had a hidden temp name
    assert [r.outcome for r in Mover(world.journal).recover()] == ["rolled_back"]
    assert world.tree() == original
    Mover(world.journal).cache(mv._op_from_json({"kind": "cache", "op": spec["op"]}))
    assert os.path.getsize(video) == case.size


def test_seed_data_loss_w2_partial_array_copy_never_costs_the_pool_copy(root):
    """The seed's W2 chain: a move-back copy killed half-way left a truncated array file, and the next run
    deleted the full cache copy. Here the partial copy is a temp file that recovery removes."""
    case = CASES[5]
    world, spec = case.setup(root / "w2")
    before = world.tree()
    assert run_driver(spec, crash="restore.chunk:2").returncode == KILLED
    assert not os.path.exists(spec["op"]["array_path"])
    assert [r.outcome for r in Mover(world.journal).recover()] == ["rolled_back"]
    assert world.tree() == before  # the pool copy is complete and still there


def test_recovery_reports_where_files_really_are(root):
    """A finished op whose commit record vanished (finish() cut short on a filesystem that reorders
    unlinks) looks uncommitted; with backups off the pool copies are the only ones, so they stay and the
    outcome says 'cached', not 'rolled_back'."""
    case = CASES[1]
    world, spec = case.setup(root / "lost-commit")
    assert run_driver(spec, crash="cache.retired:3").returncode == KILLED
    [commit] = [n for n in os.listdir(world.journal_dir) if n.endswith(".commit.json")]
    os.unlink(world.journal_dir / commit)
    [rec] = Mover(world.journal).recover()
    assert rec.outcome == "cached" and len(rec.files) == 3
    assert all(os.path.exists(f.pool_path) and not os.path.exists(f.array_path) for f in rec.files)
    assert world.journal.is_empty() and world.journal.has_done()


def test_unreadable_journal_record_fails_recovery_of_that_op_only(root):
    case = CASES[2]
    world, spec = case.setup(root / "garbled")
    assert run_driver(spec, crash="cache.placed").returncode == KILLED
    (world.journal_dir / "20200101T000000-deadbeef.intent.json").write_text("{garbage")
    results = {r.op_id: r for r in Mover(world.journal).recover()}
    assert results["20200101T000000-deadbeef"].outcome == "failed"
    assert results["20200101T000000-deadbeef"].op is None
    assert [r.outcome for k, r in results.items() if k != "20200101T000000-deadbeef"] == ["rolled_back"]


def test_kill_while_several_disks_copy_in_parallel(root):
    """run_ops with three lanes is killed while one op is past its placement: each op is recovered on its
    own, and every file is exactly once where it belongs (pool + backup, or array), with its bytes."""
    world = World(root / "par", disks=3)
    ops, originals = [], {}
    for d in (1, 2, 3):
        video, subs = world.episode(name=f"E0{d}", size=2 * CHUNK + d, disk=d)
        op = world.cache_op(video, subs, disk=d)
        ops.append(op)
        for a, _p in ((op.array_path, op.pool_path), *op.sidecars):
            originals[a] = Path(a).read_bytes()
    spec = {"journal": str(world.journal_dir), "backups": True, "verify": False, "chunk": CHUNK,
            "kind": "run_ops", "workers": 3, "ops": [mv._op_to_json(o) for o in ops]}
    for crash in ("cache.placed:2", "cache.committed:2", "cache.retired:4"):
        assert run_driver(spec, crash=crash).returncode == KILLED
        outcomes = [r.outcome for r in Mover(world.journal).recover()]
        assert outcomes and set(outcomes) <= {"rolled_back", "cached"}
        world.journal.checkpoint()
        for op in ops:
            for a, p in ((op.array_path, op.pool_path), *op.sidecars):
                on_pool = os.path.exists(p)
                assert on_pool != os.path.exists(a), f"{crash}: {a} is on both sides or on neither"
                assert on_pool == os.path.exists(a + ".plexcached"), f"{crash}: backup of {a} out of step"
                assert Path(p if on_pool else a).read_bytes() == originals[a]
            # put this op back to the start for the next round
            if os.path.exists(op.pool_path):
                Mover(world.journal).restore(RestoreOp(op.pool_path, op.array_path,
                                                       sidecars=[(p, a) for a, p in op.sidecars]))
        assert world.temps() == [] and world.journal.is_empty()
        world.journal.checkpoint()


# ------------------------------------------------------------------ done records wait for a checkpoint

def _tree_and_journal(world: World) -> tuple[dict[str, str], list[str]]:
    return world.tree(), sorted(os.listdir(world.journal_dir))


@pytest.mark.parametrize("case,crash,outcome", [
    (CASES[0], "cache.done:1", "cached"),
    (CASES[3], "restore.done:1", "restored"),
], ids=["cache.done", "restore.done"])
def test_kill_after_done_is_reported_as_finished_until_checkpoint(case, crash, outcome, root):
    """Killed right after the op finished, before the caller saved its registry: recovery reports the op
    as if it had finished it itself (files, facts, made dirs), again on every call, until checkpoint()."""
    ref = reference(case, root / "reference")
    world, spec = case.setup(root / "w")
    assert run_driver(spec, crash=crash).returncode == KILLED
    assert world.tree() == ref.after  # the op did finish
    assert world.journal.is_empty() and world.journal.has_done()

    [rec] = Mover(world.journal).recover()
    assert rec.outcome == outcome and rec.earlier and rec.op is not None
    assert rec.key == spec["op"]["array_path"] and len(rec.files) == 3
    for f in rec.files:
        assert os.path.exists(f.pool_path if outcome == "cached" else f.array_path)
        assert f.facts.size == os.path.getsize(f.pool_path if outcome == "cached" else f.array_path)
    if outcome == "cached":
        main = rec.files[0]
        assert main.backup_path == main.array_path + ".plexcached" and os.path.exists(main.backup_path)
        assert main.facts.blake2b is not None  # verify was on: the hash comes back from the commit record
        assert main.facts.mtime_ns == os.stat(main.pool_path).st_mtime_ns
        assert rec.made_dirs == [world.p("Show"), world.p(SHOW_DIR)]

    snapshot = _tree_and_journal(world)
    again = Mover(world.journal).recover()  # idempotent: same report, nothing touched
    assert [(r.op_id, r.outcome, r.files) for r in again] == [(rec.op_id, rec.outcome, rec.files)]
    assert _tree_and_journal(world) == snapshot

    assert Mover(world.journal).checkpoint() == 1
    assert os.listdir(world.journal_dir) == [] and Mover(world.journal).recover() == []
    assert world.tree() == ref.after


def test_finished_op_recovered_now_is_also_kept_until_checkpoint(root):
    """recover() finishing a committed op marks it done: a kill before the registry save costs nothing."""
    case = CASES[0]
    world, spec = case.setup(root / "w")
    assert run_driver(spec, crash="cache.committed").returncode == KILLED
    [first] = Mover(world.journal).recover()
    assert first.outcome == "cached" and not first.earlier and first.files[0].facts.blake2b is not None
    [second] = Mover(world.journal).recover()  # the run was killed before saving: reported again
    assert (second.op_id, second.outcome, second.files, second.earlier) == (first.op_id, "cached",
                                                                          first.files, True)
    world.journal.checkpoint()
    assert os.listdir(world.journal_dir) == []


def test_kill_during_a_later_copy_keeps_the_earlier_finished_ops(root):
    """The soak's case: three ops in one lane, killed while copying the third. The two finished ones are
    reported cached (the caller had not saved them yet), the third is rolled back."""
    world = World(root / "lane")
    ops = []
    for name in ("E01", "E02", "E03"):
        video, subs = world.episode(name=name, size=2 * CHUNK + 5)
        ops.append(world.cache_op(video, subs))
    spec = {"journal": str(world.journal_dir), "backups": True, "verify": False, "chunk": CHUNK,
            "kind": "run_ops", "workers": 1, "ops": [mv._op_to_json(o) for o in ops]}
    assert run_driver(spec, crash="cache.chunk:12").returncode == KILLED  # 5 chunks an op: in the 3rd
    recovered = Mover(world.journal).recover()
    assert [(r.key, r.outcome, r.earlier) for r in recovered] == [
        (ops[0].array_path, "cached", True), (ops[1].array_path, "cached", True),
        (ops[2].array_path, "rolled_back", False)]
    assert all(os.path.exists(f.pool_path) and os.path.exists(f.backup_path)
               for r in recovered[:2] for f in r.files)
    assert not os.path.exists(ops[2].pool_path) and os.path.exists(ops[2].array_path)
    assert world.journal.checkpoint() == 2 and os.listdir(world.journal_dir) == []


def test_two_finished_ops_on_one_file_are_reported_in_the_order_they_ran(root):
    """Cache then move back of one file, both before a checkpoint: the caller re-applies add, then
    remove, and ends where the files are."""
    world = World(root / "order")
    video, subs = world.episode()
    m = Mover(world.journal)
    cached = m.cache(world.cache_op(video, subs))
    m.restore(world.restore_op(video, subs, recorded={f.pool_path: f.facts for f in cached.files},
                               made_dirs=cached.made_dirs))
    assert [r.outcome for r in m.recover()] == ["cached", "restored"]
    assert world.journal.checkpoint() == 2


def test_unknown_operation_kind_fails_only_that_record(root):
    world = World(root / "kinds")
    world.journal.begin({"kind": "drop", "op": {"path": "/x"}, "files": []})
    video, subs = world.episode()
    Mover(world.journal).cache(world.cache_op(video, subs))
    results = Mover(world.journal).recover()
    assert [(r.outcome, r.op is None) for r in results] == [("failed", True), ("cached", False)]
    assert "not one this version understands" in results[0].detail
    world.journal.checkpoint()
    assert len(os.listdir(world.journal_dir)) == 1  # the unknown record stays for a human
