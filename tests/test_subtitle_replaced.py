"""Bazarr replaces a cached video's subtitle on the pool. Plex lists no subtitle sizes, so nothing can show the
new file is complete; the old one is the .plexcached backup. The video is not held on the pool for it: the
move back copies the new subtitle to the array and keeps the old one beside it as its backup, so both stay
for a person to choose (`audit`: a stray backup), and nothing is deleted."""

from __future__ import annotations

import os

from plexcache import audit
from plexcache.media.journal import Journal
from plexcache.media.mover import Mover
from plexcache.media.ops import RecordedCopy, RestoreOp
from test_engine import ARRIVAL, SRT, copies, on_disk, on_pool, registry, run, scenario, user  # noqa: F401


def test_a_replaced_subtitle_moves_back_with_its_video_and_the_old_one_is_kept(env):
    s, sb, sim, now = env
    run(s, now)
    old = on_disk(sb, "disk1", SRT + ".plexcached").read_bytes()
    on_pool(sb, SRT).write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nA better subtitle, by Bazarr\n")
    new = on_pool(sb, SRT).read_bytes()
    sim.set_watched("admin", "Arrival (2016)")
    report = run(s, now + 60)
    assert report.moved_back == 1, report.to_json()
    assert copies(sb, ARRIVAL) == (["disk1"], [])
    assert on_disk(sb, "disk1", SRT).read_bytes() == new
    assert on_disk(sb, "disk1", SRT + ".plexcached").read_bytes() == old
    assert not on_pool(sb, SRT).exists() and user(s, ARRIVAL) not in registry(s)
    found = [(f["kind"], f["path"]) for f in audit.audit(s)["findings"]]
    assert found == [("stray", user(s, SRT))]


def test_the_mover_keeps_a_named_backup_beside_the_changed_copy_it_moves_back(tmp_path):
    pool, disk = tmp_path / "cache/m", tmp_path / "disk1/m"
    pool.mkdir(parents=True)
    disk.mkdir(parents=True)
    (pool / "a.mkv").write_bytes(b"video")
    (disk / "a.mkv.plexcached").write_bytes(b"video")
    (pool / "a.en.srt").write_bytes(b"new subtitle")
    (disk / "a.en.srt.plexcached").write_bytes(b"old subtitle")
    for name in ("a.mkv", "a.en.srt"):
        os.utime(pool / name, ns=(1, 1_000_000_000))
        os.utime(disk / (name + ".plexcached"), ns=(1, 1_000_000_000))
    os.utime(pool / "a.en.srt", ns=(1, 2_000_000_000))
    recorded = {str(pool / "a.mkv"): RecordedCopy(5, 1_000_000_000),
                str(pool / "a.en.srt"): RecordedCopy(12, 1_000_000_000)}
    subtitle = (str(pool / "a.en.srt"), str(disk / "a.en.srt"))
    op = RestoreOp(str(pool / "a.mkv"), str(disk / "a.mkv"), sidecars=[subtitle], recorded=recorded,
                   keep_backup=[subtitle[0]])
    result = Mover(Journal(tmp_path / "journal")).restore(op)
    assert result.outcome == "restored"
    assert (disk / "a.mkv").read_bytes() == b"video" and not (disk / "a.mkv.plexcached").exists()
    assert (disk / "a.en.srt").read_bytes() == b"new subtitle"
    assert (disk / "a.en.srt.plexcached").read_bytes() == b"old subtitle"
    assert sorted(p.name for p in pool.iterdir()) == []
