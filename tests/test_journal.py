"""The write-ahead journal: records are created once, read back in order, and swept when finished."""

from __future__ import annotations

import json
import os

import pytest

from plexcache.media.journal import COMMIT, DONE, INTENT, Journal


def test_begin_commit_finish_round_trip(tmp_path):
    journal = Journal(tmp_path / "j")
    assert journal.pending() == [] and journal.is_empty()
    op_id = journal.begin({"kind": "cache", "files": [{"src": "/a", "dst": "/b"}]})
    [entry] = journal.pending()
    assert entry.op_id == op_id and not entry.committed
    assert entry.intent["kind"] == "cache" and entry.intent["files"][0]["dst"] == "/b"
    assert entry.intent["schema"] == 1 and entry.intent["op_id"] == op_id
    journal.commit(op_id, {"facts": [1]})
    [entry] = journal.pending()
    assert entry.committed and entry.commit["facts"] == [1]
    journal.finish(op_id)
    assert journal.pending() == [] and journal.is_empty()


def test_records_are_plain_readable_json_files(tmp_path):
    journal = Journal(tmp_path)
    op_id = journal.begin({"kind": "restore"})
    names = sorted(os.listdir(tmp_path))
    assert names == [op_id + INTENT]
    assert json.loads((tmp_path / names[0]).read_text())["kind"] == "restore"
    assert (tmp_path / names[0]).stat().st_mode & 0o777 == 0o600


def test_pending_is_oldest_first_and_ids_unique(tmp_path):
    journal = Journal(tmp_path)
    ids = [journal.begin({"n": i}) for i in range(20)]
    assert len(set(ids)) == 20
    # begin order, also within one second (ids of one second differ only by their random tail): a caller
    # re-applying done operations must see two operations on one file in the order they happened
    assert [e.op_id for e in journal.pending()] == ids


def test_stray_temp_record_from_a_cut_short_write_is_ignored_and_removed(tmp_path):
    journal = Journal(tmp_path)
    (tmp_path / ".20260101T000000-abcd.intent.json.1a2b3c.tmp").write_text('{"schema": 1, "half')
    assert journal.pending() == []
    assert os.listdir(tmp_path) == []


def test_commit_left_alone_by_a_cut_short_finish_means_done(tmp_path):
    journal = Journal(tmp_path)
    op_id = journal.begin({"kind": "cache"})
    journal.commit(op_id)
    os.unlink(tmp_path / (op_id + INTENT))  # finish() removes the intent first, then got killed
    assert journal.pending() == []
    assert not (tmp_path / (op_id + COMMIT)).exists()


def test_unreadable_record_is_reported_and_kept(tmp_path):
    (tmp_path / ("x" + INTENT)).write_text('{"schema": 99}')
    (tmp_path / ("y" + INTENT)).write_text('{"schema": 1, "trunc')
    entries = Journal(tmp_path).pending()
    assert [e.op_id for e in entries] == ["x", "y"]
    assert "newer plexcache-r" in entries[0].error and "unreadable" in entries[1].error
    assert len(os.listdir(tmp_path)) == 2  # kept for a human to look at


def test_missing_directory_is_an_empty_journal(tmp_path):
    assert Journal(tmp_path / "nope").pending() == []
    assert Journal(tmp_path / "nope").is_empty()


def test_done_op_stays_until_checkpoint_and_is_not_unfinished(tmp_path):
    journal = Journal(tmp_path)
    done_id = journal.begin({"kind": "cache"})
    journal.commit(done_id)
    journal.mark_done(done_id, "cached")
    open_id = journal.begin({"kind": "restore"})
    assert [e.op_id for e in journal.pending()] == [open_id]  # what recovery repairs, audit's "interrupted"
    [done] = journal.finished()
    assert done.op_id == done_id and done.finished and done.done["outcome"] == "cached"
    assert [e.op_id for e in journal.entries()] == [done_id, open_id]
    assert journal.has_done() and journal.has_unfinished() and not journal.is_empty()
    assert journal.checkpoint() == 1
    assert sorted(os.listdir(tmp_path)) == [open_id + INTENT]  # the unfinished op is untouched
    journal.finish(open_id)
    assert journal.is_empty() and not journal.has_done() and journal.checkpoint() == 0
    assert os.listdir(tmp_path) == []


def test_done_records_alone_leave_nothing_in_flight(tmp_path):
    journal = Journal(tmp_path)
    op_id = journal.begin({"kind": "cache"})
    journal.mark_done(op_id, "cached")
    assert journal.is_empty() and not journal.has_unfinished() and journal.has_done()
    assert sorted(os.listdir(tmp_path)) == sorted([op_id + INTENT, op_id + DONE])


def test_checkpoint_cut_short_after_the_intent_went_is_swept(tmp_path):
    journal = Journal(tmp_path)
    op_id = journal.begin({"kind": "cache"})
    journal.commit(op_id)
    journal.mark_done(op_id, "cached")
    os.unlink(tmp_path / (op_id + INTENT))  # checkpoint() removes the intent first, then got killed
    assert journal.entries() == [] and not journal.has_done()
    assert os.listdir(tmp_path) == []


def test_records_are_created_once_never_rewritten(tmp_path):
    """Write-once (FAT flash drive): marking done adds a file, it does not touch the others."""
    journal = Journal(tmp_path)
    op_id = journal.begin({"kind": "cache"})
    journal.commit(op_id)
    before = {n: (tmp_path / n).stat().st_ino for n in os.listdir(tmp_path)}
    journal.mark_done(op_id, "cached")
    after = {n: (tmp_path / n).stat().st_ino for n in os.listdir(tmp_path)}
    assert {k: after[k] for k in before} == before and set(after) - set(before) == {op_id + DONE}
    with pytest.raises(FileExistsError):
        journal.mark_done(op_id, "restored")
    assert json.loads((tmp_path / (op_id + DONE)).read_text())["outcome"] == "cached"
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
