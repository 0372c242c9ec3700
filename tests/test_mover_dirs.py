"""Pool folders made by caching are removed by the move back once empty: only those (never the share's
own folder, a folder that was there before, or one that holds anything), also when recovery finishes the
move back."""

from __future__ import annotations

import os

import pytest

from plexcache.media import mover as mv
from plexcache.media import ops
from plexcache.media.mover import Mover
from test_mover_ops import SHOW, World


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path)


def cache(world: World, name: str) -> tuple[str, list[str], ops.OpResult]:
    video, subs = world.episode(name=name)
    return video, subs, Mover(world.journal).cache(world.cache_op(video, subs))


def restore(world: World, video: str, subs: list[str], cached: ops.OpResult, made_dirs) -> ops.OpResult:
    recorded = {f.pool_path: f.facts for f in cached.files}
    return Mover(world.journal).restore(world.restore_op(video, subs, recorded=recorded, made_dirs=made_dirs))


def test_cache_reports_the_dirs_it_made_and_restore_removes_them(world):
    video, subs, cached = cache(world, "E01")
    assert cached.made_dirs == [world.p("Show"), world.p(SHOW)]
    result = restore(world, video, subs, cached, cached.made_dirs)
    assert result.removed_dirs == [world.p(SHOW), world.p("Show")]
    assert os.listdir(world.p("")) == [] and os.path.isdir(world.p(""))  # the share's folder stays


def test_a_dir_that_still_holds_something_stays_until_the_last_file_leaves(world):
    e1, s1, c1 = cache(world, "E01")
    e2, s2, c2 = cache(world, "E02")
    assert c2.made_dirs == []  # Season 01 existed already: not E02's
    assert restore(world, e1, s1, c1, c1.made_dirs).removed_dirs == []
    assert os.path.isdir(world.p(SHOW))
    # the caller passes every dir it knows it made: the last one out removes them
    assert restore(world, e2, s2, c2, c1.made_dirs).removed_dirs == [world.p(SHOW), world.p("Show")]


def test_dirs_not_made_by_caching_are_never_removed(world):
    os.makedirs(world.p(SHOW))  # there before plexcache-r: not ours
    video, subs, cached = cache(world, "E01")
    assert cached.made_dirs == []
    assert restore(world, video, subs, cached, []).removed_dirs == []
    assert os.path.isdir(world.p(SHOW))


def test_a_foreign_file_keeps_its_dir(world):
    video, subs, cached = cache(world, "E01")
    foreign = os.path.join(world.p(SHOW), "poster.jpg")
    open(foreign, "wb").close()
    assert restore(world, video, subs, cached, cached.made_dirs).removed_dirs == []
    assert os.path.exists(foreign)


def test_only_ancestors_below_the_share_folder_are_candidates(world):
    video, subs, cached = cache(world, "E01")
    other = world.p("Other Show")
    os.makedirs(other)
    share, mount = world.p("").rstrip("/"), os.path.dirname(world.p("").rstrip("/"))
    result = restore(world, video, subs, cached, [*cached.made_dirs, other, share, mount])
    assert result.removed_dirs == [world.p(SHOW), world.p("Show")]
    assert os.path.isdir(other) and os.path.isdir(share)


def test_share_root_is_found_from_the_common_tail():
    assert mv._share_root("/mnt/cache/tv/A/b.mkv", "/mnt/disk1/tv/A/b.mkv") == "/mnt/cache/tv"
    assert mv._share_root("/mnt/cache/tv/b.mkv", "/mnt/disk1/tv/b.mkv") == "/mnt/cache/tv"
    assert mv._share_root("/mnt/cache/tv/A/b.mkv", "/mnt/disk1/movies/A/c.mkv") is None
    op = ops.RestoreOp("/mnt/cache/tv/A/B/b.mkv", "/mnt/disk1/tv/A/B/b.mkv",
                      made_dirs=["/mnt/cache/tv", "/mnt/cache/tv/A", "/mnt/cache/tv/A/B/", "/mnt/cache"])
    assert mv._prunable_dirs(op) == ["/mnt/cache/tv/A/B", "/mnt/cache/tv/A"]


def test_recovery_removes_the_dirs_when_it_finishes_a_move_back(world):
    video, subs, cached = cache(world, "E01")
    assert world.journal.checkpoint() == 1  # the caller saved the cache in its registry
    recorded = {f.pool_path: f.facts for f in cached.files}
    op = world.restore_op(video, subs, recorded=recorded, made_dirs=cached.made_dirs)
    intent = {"kind": "restore", "op": mv._op_to_json(op), "verify": False, "made_dirs": [],
              "prune_dirs": mv._prunable_dirs(op),
              "files": [Mover(world.journal)._plan_restore_file(p, a, a + mv.BACKUP_SUFFIX, recorded.get(p))
                        for p, a in ((op.pool_path, op.array_path), *op.sidecars)]}
    # as if killed right after the commit: backups renamed back, nothing removed on the pool yet
    for f in intent["files"]:
        os.rename(f["backup"], f["dst"])
    op_id = world.journal.begin(intent)
    world.journal.commit(op_id)
    [rec] = Mover(world.journal).recover()
    assert rec.outcome == "restored" and not os.path.exists(world.p("Show"))
    assert mv._op_from_json(intent) == op  # made_dirs survive the journal
