"""The write-ahead journal: records are created once, read back in order, and swept when finished."""

from __future__ import annotations

import json
import os

from plexcache.journal import COMMIT, INTENT, Journal


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
    # same-second ids are ordered by their random tail, so compare as sets, and check the time prefix sorts
    assert {e.op_id for e in journal.pending()} == set(ids)
    assert [e.op_id for e in journal.pending()] == sorted(ids)


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
