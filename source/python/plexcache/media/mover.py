"""The only code that touches media files: journaled copy-to-pool and move-back operations, and recovery.

Every operation works on explicit physical paths (`/mnt/diskN/...` and `/mnt/<pool>/...`, resolved by the
caller; never `/mnt/user`). Its shape, in order (docs/safety.md explains why each step is where it is):

cache   journal intent -> make pool dirs -> copy each file to a hidden temp name on the pool -> fsync ->
        verify -> rename into place -> fsync dir -> journal commit -> rename each array original to
        NAME.plexcached (or unlink it) -> fsync dir -> journal done
restore journal intent -> per file: rename the intact backup back, or copy the pool file to a hidden temp
        name on the array disk, fsync, verify, rename into place -> fsync dir -> journal commit ->
        remove stale backups -> remove pool copies -> remove the empty pool dirs caching made -> journal done
discard journal intent -> remove the copy given up (same bytes) or set it aside (tidy.discard_copy, one
        atomic step) -> journal done; the caller forgets the file when it saves its books

A done operation's records stay in the journal (recover() reports it again) until the caller has saved its
own bookkeeping and calls Journal.checkpoint().

Before the commit nothing on the source side has been touched, so recovery rolls back (removes what was
made). After the commit every new copy is complete and durable, so recovery finishes. Either way the same
functions run, in-process after an error or in `recover()` after a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Sequence
from typing import Any, Optional

from plexcache.fsutil import fsync_dir
from plexcache.layout import BACKUP_SUFFIX, NAME_MAX, temp_name
from plexcache.media import fastcopy
from plexcache.media.crash import crash_point
from plexcache.media.fs import existing_ancestor, lstat_or_none, rename_noreplace
from plexcache.media.journal import Journal, JournalEntry
from plexcache.media.ops import (
    AUTO,
    CRITICAL_ERRNOS,
    DISCARDED,
    CacheOp,
    CriticalIOError,
    DiscardOp,
    MovedFile,
    MoveError,
    MoveFailed,
    MoveRefused,
    Op,
    OpResult,
    ProgressFn,
    RecordedCopy,
    Recovered,
    RestoreOp,
)
from plexcache.media.tidy import discard_copy

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ the mover

class Mover:
    """Runs cache and restore operations, each a journaled transaction. Thread-safe: run_ops calls it from
    one thread per disk lane.

    backups: keep the array original as NAME.plexcached while cached (else unlink it after the verified,
    durable pool copy is in place). verify: also hash every copy (blake2b; the copy is read back from the
    device). allow_hardlinked: copy files with more than one hard link (refused otherwise).
    min_free: bytes that must stay free on the destination after a copy (a last guard; the planner plans).
    roots: every array disk and pool mount (/mnt/disk1, /mnt/cache, ...): where Unraid's mover may carry a
    file or a temp copy; a move back never makes a second live copy of a file found on one of them, and
    recovery looks for its temp copies on all of them.
    """

    def __init__(self, journal: Journal, *, backups: bool = True, verify: bool = False,
                 allow_hardlinked: bool = False, chunk_size: int = fastcopy.CHUNK, min_free: int = 0,
                 roots: Sequence[str] = ()) -> None:
        self.journal = journal
        self.roots = tuple(roots)
        self.backups = backups
        self.verify = verify
        self.allow_hardlinked = allow_hardlinked
        self.chunk_size = chunk_size
        self.min_free = min_free

    # public ----------------------------------------------------------------------------------------

    def run(self, op: Op, progress: Optional[ProgressFn] = None) -> OpResult:
        """Run one op; returns its OpResult (cached or restored) or raises MoveRefused, MoveFailed or
        CriticalIOError after undoing whatever it had started."""
        if isinstance(op, CacheOp):
            return self.cache(op, progress)
        return self.restore(op, progress)

    def cache(self, op: CacheOp, progress: Optional[ProgressFn] = None) -> OpResult:
        """Copy op's files to the pool; afterwards the pool holds them and the array originals are backups
        (or gone, backups off). See the module docstring for the steps."""
        started = time.monotonic()
        files = [self._plan_cache_file(a, p, op.expected_size if i == 0 else None)
                 for i, (a, p) in enumerate(((op.array_path, op.pool_path), *op.sidecars))]
        _check_free(files, self.min_free)
        made_dirs = _missing_dirs(files)
        _note_sources(files)
        intent = {"kind": "cache", "op": _op_to_json(op), "backups": self.backups, "verify": self.verify,
                  "files": files, "made_dirs": made_dirs}
        return self._transact("cache", op, intent, progress, started)

    def restore(self, op: RestoreOp, progress: Optional[ProgressFn] = None) -> OpResult:
        """Put op's files back on their array disk and remove the pool copies. A backup is renamed back
        only if it is intact and the pool copy unchanged; a changed (upgraded) pool copy is copied back and
        the stale backup removed after that copy is durable."""
        started = time.monotonic()
        pairs = [(op.pool_path, op.array_path, _backup_for(op, op.array_path, op.backup_path))]
        pairs += [(p, a, _backup_for(op, a, None if op.backup_path is None else AUTO)) for p, a in op.sidecars]
        files = [self._plan_restore_file(p, a, b, op.recorded.get(p), op.confirmed.get(p), p in op.keep_original,
                                         p in op.keep_backup) for p, a, b in pairs]
        _check_free([f for f in files if f["how"] == "copy"], self.min_free)
        made_dirs = _missing_dirs(files)
        _note_sources(files)
        intent = {"kind": "restore", "op": _op_to_json(op), "verify": self.verify, "files": files,
                  "made_dirs": made_dirs, "prune_dirs": _prunable_dirs(op)}
        return self._transact("restore", op, intent, progress, started)

    def discard(self, op: DiscardOp) -> tuple[Optional[str], str]:
        """Give up op.path for op.keep (tidy.discard_copy: removed if the same bytes, else set aside), with
        the step journaled so that a kill before the caller's books are saved is finished by recovery: the
        op is reported `discarded` once the copy has left its name. Returns discard_copy's answer."""
        st = lstat_or_none(op.path)
        if st is None or not stat.S_ISREG(st.st_mode):
            return None, "one of the copies is gone or not a regular file"
        intent = {"kind": "discard", "op": dataclasses.asdict(op),
                  "files": [{"src": op.path, "keep": op.keep, "size": st.st_size, "src_id": _identity(st)}]}
        op_id = self.journal.begin(intent)
        crash_point("discard.journaled")
        outcome, where = discard_copy(op.path, op.keep)
        # from the files, not the answer: a copy gone whose directory could not be flushed is gone all the same
        if _discard_outcome(intent) == DISCARDED:
            self.journal.mark_done(op_id, DISCARDED, where)
            crash_point("discard.done")
        else:
            self.journal.finish(op_id)
        return outcome, where

    def recover(self) -> list[Recovered]:
        """Finish or roll back every operation left in the journal. See the module-level recover()."""
        return recover(self.journal, self.roots)

    def checkpoint(self) -> int:
        """= self.journal.checkpoint(): forget every done operation once the caller's state is saved."""
        return self.journal.checkpoint()

    # planning (no side effects) -------------------------------------------------------------------

    def _plan_cache_file(self, src: str, dst: str, expected_size: Optional[int]) -> dict[str, Any]:
        st = _source_stat(src, self.allow_hardlinked)
        if expected_size is not None and st.st_size != expected_size:
            raise MoveRefused(f"{src} is {st.st_size} bytes, expected {expected_size}; is it still being "
                              "written? skipped", src, "size_mismatch")
        if os.path.lexists(dst):
            raise MoveRefused(f"{dst} already exists on the pool; not overwriting it (run `plexcache-r "
                              "audit` to sort out the duplicate)", dst, "target_exists")
        backup = src + BACKUP_SUFFIX if self.backups else None
        if backup is not None:
            _check_name(backup)
            if os.path.lexists(backup):
                raise MoveRefused(f"{backup} already exists; not caching {src} over an older backup (run "
                                  "`plexcache-r audit`)", backup, "backup_exists")
        return {"src": src, "dst": dst, "tmp": temp_name(dst), "backup": backup, "how": "copy",
                "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def _plan_restore_file(self, src: str, dst: str, backup: Optional[str], recorded: Optional[RecordedCopy],
                           confirmed: Optional[RecordedCopy] = None, keep_original: bool = False,
                           keep_backup: bool = False) -> dict[str, Any]:
        if os.path.lexists(dst):
            raise MoveRefused(f"{dst} already exists on the array; not overwriting it (run `plexcache-r "
                              "audit`)", dst, "target_exists")
        bst = lstat_or_none(backup) if backup else None
        if bst is not None and not stat.S_ISREG(bst.st_mode):
            bst = None
        pst = lstat_or_none(src)
        if pst is None:
            if bst is None:
                raise MoveRefused(f"{src} is gone from the pool and there is no backup of it; nothing to "
                                  "move back", src, "lost")
            # the pool copy vanished: the backup is the only copy left, put it back
            return _restore_record(src, dst, backup, "rename", bst)
        # a hard-linked pool copy is fine to move back: removing one of its names loses nothing
        pst = _source_stat(src, allow_hardlinked=True)
        if bst is not None:
            if keep_original:
                return _restore_record(src, dst, backup, "rename", bst)
            reference = recorded or RecordedCopy(bst.st_size, bst.st_mtime_ns)
            unchanged = reference.matches(pst) and self._same_content(src, recorded)
            if unchanged and reference.matches(bst):
                return _restore_record(src, dst, backup, "rename", bst)
            # The copy back retires the backup: only over the copy that was cached (the backup is the
            # damaged one) or a replacement shown to be complete. A pool copy that merely differs may be
            # truncated or damaged, and the backup the last good copy: both stay for a person to choose.
            if not unchanged and not (confirmed is not None and confirmed.matches(pst)):
                if keep_backup:  # copied back beside its backup, which stays: both kept, nothing deleted
                    _check_name(temp_name(dst))
                    return {**_restore_record(src, dst, backup, "copy", pst), "keep_backup": True}
                raise MoveRefused(f"{src} ({pst.st_size} bytes) no longer matches what was cached and nothing "
                                  f"shows it is a complete replacement; kept it and its backup {backup} "
                                  "(`plexcache-r audit` offers both choices)", src, "mismatch")
        _check_name(temp_name(dst))
        return _restore_record(src, dst, backup, "copy", pst)

    def _same_content(self, pool_path: str, recorded: Optional[RecordedCopy]) -> bool:
        """With verify on and a recorded hash, also hash the pool copy (a fast SSD read) before trusting
        that it is unchanged; the backup on the spinning disk is trusted by size and mtime."""
        if not self.verify or recorded is None or recorded.blake2b is None:
            return True
        return fastcopy.hash_file(pool_path, drop_cache=False) == recorded.blake2b

    # the transaction ------------------------------------------------------------------------------

    def _transact(self, kind: str, op: Op, intent: dict[str, Any], progress: Optional[ProgressFn],
                  started: float) -> OpResult:
        op_id = self.journal.begin(intent)
        crash_point(f"{kind}.journaled")
        copied = 0
        op_total = sum(f["size"] for f in intent["files"] if f["how"] == "copy")
        created: list[str] = []
        try:
            created = _make_dirs(intent["made_dirs"], intent["files"], kind)
            for f in intent["files"]:
                if f["how"] == "copy":
                    self._copy(kind, f, _op_progress(progress, op.label, copied, op_total))
                    copied += f["size"]
            self.journal.place(op_id, _placed_facts(intent["files"]))
            for f in intent["files"]:
                self._place(kind, f)
            for d in {os.path.dirname(f["dst"]) for f in intent["files"]}:
                fsync_dir(d)
        except BaseException as exc:
            log.debug("%s of %s interrupted (%r): rolling back", kind, op.label, exc)
            _undo(op_id, intent, self.journal, self.roots)
            raise _as_move_error(exc, intent["files"][0]["src"]) from (None if isinstance(exc, MoveError)
                                                                       else exc)
        self.journal.commit(op_id, {"facts": [_facts_of(f) for f in intent["files"]]})
        crash_point(f"{kind}.committed")
        try:
            removed = _finish(intent, self.roots)
        except OSError as exc:
            # past the point of no return: the journal stays, the next recover() finishes the op
            raise _as_move_error(exc, intent["files"][0]["src"], pending=True) from exc
        outcome = "cached" if kind == "cache" else "restored"
        # the record stays (done) until the caller has saved its registry and calls checkpoint()
        self.journal.mark_done(op_id, outcome)
        crash_point(f"{kind}.done")
        return OpResult(op, outcome, _moved_files(intent), bytes_copied=copied,
                        seconds=time.monotonic() - started, made_dirs=created, removed_dirs=removed)

    def _copy(self, kind: str, f: dict[str, Any], progress: Optional[fastcopy.ByteProgress]) -> None:
        """Copy f.src to f.tmp durably and verified, then rename it to f.dst."""
        size = f["size"]
        hasher = fastcopy.new_hasher() if self.verify else None
        sfd = os.open(f["src"], os.O_RDONLY | os.O_NOFOLLOW)
        try:
            st = os.fstat(sfd)
            if st.st_size != size or st.st_mtime_ns != f["mtime_ns"]:
                raise MoveRefused(f"{f['src']} changed since the operation was planned; skipped", f["src"],
                                  "changed")
            with _dirs_lock:
                _unlink_quiet(f["tmp"])  # a leftover of ours from an earlier crash (recover removes them too)
                dfd = os.open(f["tmp"], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                try:
                    done = fastcopy.copy_fd(sfd, dfd, size, chunk=self.chunk_size, progress=progress,
                                            on_chunk=lambda _n: crash_point(f"{kind}.chunk"), hasher=hasher,
                                            sparse=fastcopy.looks_sparse(st))
                except OSError as exc:
                    # the copy calls name no file: say which copy failed (the destination first: that is
                    # the disk that is full or refuses)
                    raise OSError(exc.errno, exc.strerror, f["dst"], None, f["src"]) from exc
                after = os.fstat(sfd)
                if done != size or after.st_size != size or after.st_mtime_ns != st.st_mtime_ns:
                    raise MoveRefused(f"{f['src']} changed while it was being copied; skipped", f["src"],
                                      "changed")
                fastcopy.copy_metadata(sfd, dfd, st)
                os.fsync(dfd)
                fastcopy.advise_dontneed(dfd)
            finally:
                os.close(dfd)
            fastcopy.advise_dontneed(sfd)
        finally:
            os.close(sfd)
        crash_point(f"{kind}.copied")
        self._verify(f, hasher)
        crash_point(f"{kind}.verified")

    def _place(self, kind: str, f: dict[str, Any]) -> None:
        """Give one new copy its real name (the verified temp, or the backup renamed back), never replacing a
        file, and never while the file is live at the same path on another disk or pool: Unraid's mover may
        have carried the pool copy to another array disk meanwhile, and a second live copy must not appear."""
        elsewhere = _live_elsewhere(f, self.roots) if kind == "restore" else None
        if elsewhere is not None:
            raise MoveRefused(f"{f['src']} is no longer only on the pool: {elsewhere} holds the file now (moved "
                              f"by Unraid's mover?); not moving it back to {f['dst']}, which would make a second "
                              "live copy", f["src"], "elsewhere")
        if f["how"] == "rename":
            rename_noreplace(f["backup"], f["dst"])
            fsync_dir(os.path.dirname(f["dst"]))
            crash_point(f"{kind}.renamed")
        else:
            rename_noreplace(f["tmp"], f["dst"])
            crash_point(f"{kind}.placed")

    def _verify(self, f: dict[str, Any], hasher: Optional[hashlib.blake2b]) -> None:
        st = os.lstat(f["tmp"])
        if st.st_size != f["size"]:
            raise MoveFailed(f"copy of {f['src']} has {st.st_size} bytes instead of {f['size']}; removed it, "
                             "the original is untouched", f["src"])
        if hasher is not None:
            f["blake2b"] = hasher.hexdigest()
            if fastcopy.hash_file(f["tmp"]) != f["blake2b"]:
                raise MoveFailed(f"copy of {f['src']} differs from the original (checksum); removed it, the "
                                 "original is untouched", f["src"])


# ------------------------------------------------------------------------------- finishing / undoing

def recover(journal: Journal, roots: Sequence[str] = ()) -> list[Recovered]:
    """Finish (committed) or roll back (not committed) every unfinished operation in the journal, and
    report every done operation not yet checkpointed, all in the order they began.

    Idempotent and safe to interrupt: it only ever removes a file after checking that it is provably the
    one the operation wrote (its identity as journaled) and that a complete copy exists at another path
    the journal names. roots: every array disk and pool mount; its temp copies are looked for on all of
    them (Unraid's mover may have carried one away). An operation it finishes is marked done (not forgotten), so
    calling recover() twice reports the same outcomes and touches nothing the second time; the caller
    applies them to its registry, saves it, then calls journal.checkpoint(). One that it rolls back is
    forgotten at once (nothing to record). Call it at the start of every run, holding the run lock.
    """
    results = []
    for entry in journal.entries():
        if entry.error is not None:
            log.error("%s", entry.error)
            results.append(Recovered(entry.op_id, None, "failed", [], entry.error))
            continue
        try:
            op = _op_from_json(entry.intent)
        except (KeyError, TypeError, ValueError) as exc:
            detail = (f"journal record {entry.op_id} ({entry.intent.get('kind')!r}) is not one this version "
                      f"understands ({exc!r}); left in place: check the files it names by hand")
            log.error("%s", detail)
            results.append(Recovered(entry.op_id, None, "failed", [], detail))
            continue
        if isinstance(op, DiscardOp):
            results.append(_recover_discard(journal, entry, op))
        elif entry.finished:
            results.append(_report_done(entry, op))
        else:
            results.append(_recover_one(journal, entry, op, roots))
    return results


def _discard_outcome(intent: dict[str, Any]) -> str:
    """A discard is done once the copy it gives up is no longer at its name as planned (removed or set
    aside: one atomic step), and changed nothing while that copy is still there."""
    f = intent["files"][0]
    return "rolled_back" if _is(f["src"], f["src_id"]) else DISCARDED


def _recover_discard(journal: Journal, entry: JournalEntry, op: DiscardOp) -> Recovered:
    """A discard cut short is judged from the files (nothing is touched): the copy left its name, so the
    caller is to forget the file (reported until checkpointed, as a done op is); or it is still there, and
    the record goes (the person's choice is still open)."""
    if entry.finished:
        return Recovered(entry.op_id, op, DISCARDED, [], str((entry.done or {}).get("detail") or ""), earlier=True)
    outcome = _discard_outcome(entry.intent)
    try:
        if outcome == DISCARDED:
            journal.mark_done(entry.op_id, DISCARDED)
        else:
            journal.finish(entry.op_id)
    except OSError as exc:
        log.error("recovery of the discard %s (%s) failed: %s; will retry at the next run", entry.op_id, op.label,
                  exc)
        return Recovered(entry.op_id, op, "failed", [], f"{exc}; will retry at the next run")
    log.info("an interrupted choice to keep %s over %s: %s", op.keep, op.path,
             "the copy had gone; the file is no longer managed" if outcome == DISCARDED else "nothing had changed")
    return Recovered(entry.op_id, op, outcome)


def _report_done(entry: JournalEntry, op: Op) -> Recovered:
    """A done operation, reported again until checkpointed: the files are not looked at (a later operation
    in the journal may have moved them since; the caller applies both in order)."""
    assert entry.done is not None
    outcome = str(entry.done.get("outcome") or ("cached" if entry.intent["kind"] == "cache" else "restored"))
    log.debug("%s %s of %s finished earlier (%s); waiting for a checkpoint", entry.intent["kind"], entry.op_id,
              op.label, outcome)
    return Recovered(entry.op_id, op, outcome, _moved_files(entry.intent, entry.commit),
                     str(entry.done.get("detail") or ""), earlier=True, made_dirs=_made_dirs_of(entry.intent))


def _recover_one(journal: Journal, entry: JournalEntry, op: Op, roots: Sequence[str]) -> Recovered:
    intent = entry.intent
    placed = {p.get("path"): p for p in (entry.placed or {}).get("files", []) if isinstance(p, dict)}
    for f in intent["files"]:
        if f["dst"] in placed:
            f["placed"] = placed[f["dst"]]
    try:
        if entry.committed:
            _finish(intent, roots)
        else:
            _rollback(intent, roots)
        outcome, detail = _where(intent)
        if outcome == "rolled_back":
            journal.finish(entry.op_id)
        else:
            journal.mark_done(entry.op_id, outcome, detail)
    except OSError as exc:
        log.error("recovery of %s %s (%s) failed: %s; will retry at the next run", intent["kind"],
                  entry.op_id, op.label, exc)
        return Recovered(entry.op_id, op, "failed", [], f"{exc}; will retry at the next run")
    log.warning("recovered an interrupted %s of %s: %s%s", intent["kind"], op.label,
                outcome.replace("_", " "), f" ({detail})" if detail else "")
    if outcome == "rolled_back":
        return Recovered(entry.op_id, op, outcome, [], detail)
    return Recovered(entry.op_id, op, outcome, _moved_files(intent, entry.commit), detail,
                     made_dirs=_made_dirs_of(intent))


def _made_dirs_of(intent: dict[str, Any]) -> list[str]:
    """(cache) the directories the op's intent planned to create that exist now."""
    if intent.get("kind") != "cache":
        return []
    return [d["path"] for d in intent.get("made_dirs", []) if os.path.isdir(d["path"])]


def _where(intent: dict[str, Any]) -> tuple[str, str]:
    """Where the op's files really are now: all at the source (rolled_back), all at the destination
    (cached / restored), or some of each (mixed, e.g. a roll back that had to keep a new copy because it
    was the only complete one left). Reported from the files themselves, not from the journal."""
    at_dst = [_has_size(f["dst"], f["size"]) and not _exists(f["src"]) for f in intent["files"]]
    if all(at_dst):
        return ("cached" if intent["kind"] == "cache" else "restored"), ""
    if not any(at_dst):
        return "rolled_back", ""
    kept = [f["dst"] for f, here in zip(intent["files"], at_dst, strict=True) if here]
    return "mixed", "only copy kept at " + ", ".join(kept)


def _undo(op_id: str, intent: dict[str, Any], journal: Journal, roots: Sequence[str]) -> None:
    """In-process roll back after an error before the commit, new empty directories included (their
    removal takes the lock a cache op in another lane holds while creating its temp file in one, so at
    worst that op fails and is retried at the next run). The record goes only once everything is undone:
    if even this fails, the journal keeps it for recover()."""
    try:
        _rollback(intent, roots)
    except OSError:
        return
    journal.finish(op_id)


def _rollback(intent: dict[str, Any], roots: Sequence[str] = ()) -> None:
    """Undo an uncommitted op: remove its temps (wherever a mover carried them) and the new copies that are
    provably its own, put renamed backups back. Sources untouched. A file at a new copy's name that is not
    the one this op placed (written there by another program since) is left alone, with a warning."""
    for f in intent["files"]:
        _remove_own_temps(f, roots)
        crash_point("undo.step")
        if not os.path.lexists(f["dst"]):
            continue
        if not _is_placed(f):
            log.warning("%s is not the copy this operation made (another program wrote it since?); left "
                        "alone: `plexcache-r audit` shows both copies", f["dst"])
            continue
        if intent["kind"] == "restore" and f["how"] == "rename":
            # the backup was renamed to the array path; name it back while the pool copy is there
            if _exists(f["src"]) and not os.path.lexists(f["backup"]):
                rename_noreplace(f["dst"], f["backup"])
                fsync_dir(os.path.dirname(f["dst"]))
            continue
        if _has_size(f["src"], f["size"]):
            # the source is complete: the new copy (made only via a verified rename) is redundant
            os.unlink(f["dst"])
        elif intent["kind"] == "cache" and f["backup"] and _has_size(f["backup"], f["size"]) \
                and not os.path.lexists(f["src"]):
            rename_noreplace(f["backup"], f["src"])
            fsync_dir(os.path.dirname(f["src"]))
            os.unlink(f["dst"])
        # else: the new copy is the only complete one left: keep it
        fsync_dir(os.path.dirname(f["dst"]))
        crash_point("undo.step")
    _remove_made_dirs(intent.get("made_dirs", []))


def _finish(intent: dict[str, Any], roots: Sequence[str] = ()) -> list[str]:
    """Complete a committed op: retire the sources, each only once its new copy is confirmed in place and
    only while it is still the file the op started from (a newer file another program wrote at its name
    since is left alone, with a warning). Returns the empty pool directories a move back removed."""
    for f in intent["files"]:
        _remove_own_temps(f, roots)
        if not _has_size(f["dst"], f["size"]):
            raise OSError(errno.ENOENT, f"expected the complete copy at {f['dst']}; left everything else as is")
        if "placed" in f and not _is_placed(f):  # (records of older versions name no placed copies)
            log.warning("%s is no longer the copy this operation made (another program wrote it since?); "
                        "left %s alone: `plexcache-r audit` shows both copies", f["dst"], f["src"])
            continue
        if os.path.lexists(f["src"]) and not _is_source(f):
            log.warning("%s changed after it was %s (another program wrote a newer file there?); left alone "
                        "beside %s: `plexcache-r audit` shows both copies", f["src"],
                        "cached" if intent["kind"] == "cache" else "moved back", f["dst"])
            continue
        if intent["kind"] == "cache":
            _retire_array_original(f)
        else:
            if f["how"] == "copy" and f["backup"] and not f.get("keep_backup") and _exists(f["backup"]):
                os.unlink(f["backup"])  # stale: the pool copy changed since caching, and is now on the array
                fsync_dir(os.path.dirname(f["backup"]))
                crash_point("restore.retired")
            if _exists(f["src"]):
                os.unlink(f["src"])
                fsync_dir(os.path.dirname(f["src"]))
                crash_point("restore.removed")
    return _prune_dirs(intent.get("prune_dirs", [])) if intent["kind"] == "restore" else []


def _retire_array_original(f: dict[str, Any]) -> None:
    if not os.path.lexists(f["src"]):
        return
    if f["backup"]:
        rename_noreplace(f["src"], f["backup"])
    else:
        os.unlink(f["src"])
    fsync_dir(os.path.dirname(f["src"]))
    crash_point("cache.retired")


def _moved_files(intent: dict[str, Any], commit: Optional[dict[str, Any]] = None) -> list[MovedFile]:
    # hashes are known only after the copy: in memory during the op, in the commit record afterwards
    hashes = {fact.get("path"): fact.get("blake2b") for fact in (commit or {}).get("facts", [])
              if isinstance(fact, dict)}
    out = []
    for f in intent["files"]:
        facts = RecordedCopy(f["size"], f["mtime_ns"], f.get("blake2b") or hashes.get(f["dst"]))
        if intent["kind"] == "cache":
            out.append(MovedFile(f["src"], f["dst"], f["backup"], facts, "copy"))
        else:
            kept = f["backup"] if f.get("keep_backup") else None
            out.append(MovedFile(f["dst"], f["src"], kept, facts, f["how"]))
    return out


def _op_progress(progress: Optional[ProgressFn], label: str, base: int,
                 total: int) -> Optional[fastcopy.ByteProgress]:
    """Report a file's progress as the op's: bytes of the files before it plus its own."""
    if progress is None:
        return None
    return lambda done, _size: progress(label, base + done, total)


def _facts_of(f: dict[str, Any]) -> dict[str, Any]:
    return {"path": f["dst"], "size": f["size"], "mtime_ns": f["mtime_ns"], "blake2b": f.get("blake2b")}


# ------------------------------------------------------------------------------------------ helpers

def _source_stat(path: str, allow_hardlinked: bool) -> os.stat_result:
    st = lstat_or_none(path)
    if st is None:
        raise MoveRefused(f"{path} does not exist; skipped", path, "source_missing")
    if not stat.S_ISREG(st.st_mode):
        raise MoveRefused(f"{path} is not a regular file; skipped", path, "not_a_file")
    if st.st_nlink > 1 and not allow_hardlinked:
        raise MoveRefused(f"{path} has {st.st_nlink} hard links (still seeding?); skipped as set by "
                          "cache.hardlinks", path, "hardlinked")
    return st


def _identity(st: os.stat_result) -> dict[str, int]:
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _is(path: str, ident: Optional[dict[str, Any]]) -> bool:
    """True when path is a regular file with exactly this identity (device, inode, size, mtime)."""
    st = lstat_or_none(path)
    return ident is not None and st is not None and stat.S_ISREG(st.st_mode) and \
        all(_identity(st)[k] == ident.get(k) for k in ("dev", "ino", "size", "mtime_ns"))


def _note_sources(files: list[dict[str, Any]]) -> None:
    """Record each source's identity in the plan: the op retires (deletes, renames) a source only while
    it is still that file."""
    for f in files:
        st = lstat_or_none(f["src"])
        f["src_id"] = _identity(st) if st is not None and stat.S_ISREG(st.st_mode) else None


def _is_source(f: dict[str, Any]) -> bool:
    """The op's source is still the file it started from (a record of an older version: still a file)."""
    if "src_id" not in f:
        return _exists(f["src"])
    return _is(f["src"], f["src_id"])


def _placed_facts(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The identity each file will have at its real name: its verified temp copy, or the backup that is
    renamed back (a rename keeps device, inode, size and mtime). Kept in the intent's files too."""
    out = []
    for f in files:
        st = os.lstat(f["backup"] if f["how"] == "rename" else f["tmp"])
        f["placed"] = {"path": f["dst"], **_identity(st)}
        out.append(f["placed"])
    return out


def _is_placed(f: dict[str, Any]) -> bool:
    """The file at f.dst is provably the one this op put there (nothing was placed without a record)."""
    return _is(f["dst"], f.get("placed"))


def _mount_of(path: str, other: str) -> str:
    """The disk or pool mount `path` is on (/mnt/disk1 for /mnt/disk1/tv/A/x.mkv), found from the common
    tail it shares with `other`, the same file's path on the other side; its parent directory if none."""
    root = _share_root(path, other)
    return os.path.dirname(root) if root else os.path.dirname(path)


def _elsewhere(path: str, other: str, roots: Sequence[str]) -> list[str]:
    """path's share-relative twin on every other root (the ones Unraid's mover may move a file to)."""
    mount = _mount_of(path, other)
    rel = os.path.relpath(path, mount)
    return [os.path.join(r, rel) for r in roots if os.path.normpath(r) != os.path.normpath(mount)]


def _remove_own_temps(f: dict[str, Any], roots: Sequence[str]) -> None:
    """Remove f's temp copy at its own place and wherever a mover may have carried it: same share-relative
    path on another disk or pool (the op's own two mounts are always looked at). Only a regular file of at
    most the file's size goes, and a complete one only while the source or the placed copy is there: a
    temp name is plexcache-r's own, yet a full copy is never removed while it may be the only one."""
    mounts = [_mount_of(f["src"], f["dst"]), *roots]
    for tmp in [f["tmp"], *_elsewhere(f["tmp"], temp_name(f["src"]), mounts)]:
        st = lstat_or_none(tmp)
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size > f["size"]:
            continue
        if st.st_size == f["size"] and not (os.path.lexists(f["src"]) or _is_placed(f)):
            log.warning("kept %s: a complete copy, and no other complete one was found", tmp)
            continue
        os.unlink(tmp)
        if tmp != f["tmp"]:
            log.warning("removed %s, a partial copy Unraid's mover had carried away from %s", tmp, f["tmp"])


def _live_elsewhere(f: dict[str, Any], roots: Sequence[str]) -> Optional[str]:
    """(move back) Another disk or pool holding the file at the same share-relative path, if any."""
    mounts = {os.path.normpath(_mount_of(f["src"], f["dst"]))}
    for path in _elsewhere(f["dst"], f["src"], roots):
        if not any(path.startswith(m + os.sep) for m in mounts) and _exists(path):
            return path
    return None


def _restore_record(src: str, dst: str, backup: Optional[str], how: str, st: os.stat_result) -> dict[str, Any]:
    return {"src": src, "dst": dst, "tmp": temp_name(dst), "backup": backup, "how": how,
            "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _backup_for(op: RestoreOp, array_path: str, backup: Optional[str]) -> Optional[str]:
    if backup is None:
        return None
    return array_path + BACKUP_SUFFIX if backup == AUTO else backup


def _check_name(path: str) -> None:
    if len(os.fsencode(os.path.basename(path))) > NAME_MAX:
        raise MoveRefused(f"{path}: the name would be too long for the filesystem; skipped", path,
                          "name_too_long")




def _exists(path: Optional[str]) -> bool:
    st = lstat_or_none(path)
    return st is not None and stat.S_ISREG(st.st_mode)


def _has_size(path: Optional[str], size: int) -> bool:
    st = lstat_or_none(path)
    return st is not None and stat.S_ISREG(st.st_mode) and st.st_size == size


def _unlink_quiet(path: Optional[str]) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _check_free(files: list[dict[str, Any]], min_free: int) -> None:
    need: dict[int, tuple[int, str]] = {}
    for f in files:
        parent = existing_ancestor(os.path.dirname(f["dst"]))
        dev = os.stat(parent).st_dev
        total, _ = need.get(dev, (0, parent))
        st = lstat_or_none(f["src"])
        # a sparse source is copied sparse: it needs only what it has allocated
        size = st.st_blocks * 512 if st is not None and fastcopy.looks_sparse(st) else f["size"]
        need[dev] = (total + size, parent)
    for total, parent in need.values():
        vfs = os.statvfs(parent)
        free = vfs.f_bavail * vfs.f_frsize
        if free < total + min_free:
            raise CriticalIOError(f"not enough free space on {parent}: {total + min_free} bytes needed, "
                                  f"{free} free; free up space or lower the cache limits", parent, errno.ENOSPC)



# ----------------------------------------------------------------------------------- directories

_dirs_lock = threading.Lock()  # mkdir+create-temp vs rmdir of an empty new dir, across worker threads


def _missing_dirs(files: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Destination directories to create, top-down, each with the source directory it mirrors."""
    out: list[dict[str, str]] = []
    seen = set()
    for f in files:
        chain = []
        dst_dir, src_dir = os.path.dirname(f["dst"]), os.path.dirname(f["src"])
        while not os.path.isdir(dst_dir):
            if os.path.lexists(dst_dir):
                raise MoveRefused(f"{dst_dir} exists and is not a directory; skipped", dst_dir, "not_a_file")
            chain.append((dst_dir, src_dir))
            dst_dir, src_dir = os.path.dirname(dst_dir), os.path.dirname(src_dir)
        if chain:
            top_dst, top_src = chain[-1]
            # the topmost missing dir is the share itself when its parent is the pool/disk mount (the
            # parents differ in name): never create a share's top-level dir (a ZFS dataset on ZFS pools)
            if os.path.basename(os.path.dirname(top_dst)) != os.path.basename(os.path.dirname(top_src)):
                raise MoveRefused(f"{top_dst} does not exist: the share has no folder on that volume yet; "
                                  "create the share there in Unraid first", top_dst, "no_share_dir")
        for d, s in reversed(chain):
            if d not in seen:
                seen.add(d)
                out.append({"path": d, "like": s})
    return out


def _make_dirs(made: list[dict[str, str]], files: list[dict[str, Any]], kind: str) -> list[str]:
    """Create the missing destination dirs with the owner, group and mode of their source counterparts
    (or of the parent, when there is no counterpart). Never root-owned when the source is not. Returns
    the ones this call created (top-down)."""
    created = []
    with _dirs_lock:
        for d in made:
            try:
                os.mkdir(d["path"], 0o700)
            except FileExistsError:
                continue  # another op made it meanwhile: not ours to report
            created.append(d["path"])
            like = d["like"] if os.path.isdir(d["like"]) else os.path.dirname(d["path"])
            st = os.stat(like)
            with contextlib.suppress(OSError):
                os.chown(d["path"], st.st_uid, st.st_gid)
            os.chmod(d["path"], stat.S_IMODE(st.st_mode))
            fsync_dir(os.path.dirname(d["path"]))
    if made:
        crash_point(f"{kind}.dirs")
    return created


def _prunable_dirs(op: RestoreOp) -> list[str]:
    """Of op.made_dirs, those a move back may remove once empty, deepest first: ancestors of one of the op's
    pool paths, strictly below the share's own folder (never the share itself, never above it)."""
    eligible: set[str] = set()
    for pool, array in ((op.pool_path, op.array_path), *op.sidecars):
        share_root = _share_root(pool, array)
        d = os.path.dirname(os.path.normpath(pool))
        while share_root is not None and d.startswith(share_root + os.sep):
            eligible.add(d)
            d = os.path.dirname(d)
    wanted = {os.path.normpath(d) for d in op.made_dirs}
    return sorted(eligible & wanted, key=lambda d: (-d.count(os.sep), d))


def _share_root(pool: str, array: str) -> Optional[str]:
    """The share's folder on the pool: /mnt/cache/tv for /mnt/cache/tv/A/b.mkv <-> /mnt/disk1/tv/A/b.mkv
    (the pool path up to the first name of the longest common tail). None when the tails do not even
    share a folder."""
    p, a = os.path.normpath(pool).split(os.sep), os.path.normpath(array).split(os.sep)
    common = 0
    while common < min(len(p), len(a)) - 1 and p[-1 - common] == a[-1 - common]:
        common += 1
    if common < 2:  # not even the share folder and the file name in common
        return None
    return os.sep.join(p[: len(p) - common + 1])


def _prune_dirs(dirs: list[str]) -> list[str]:
    """Remove each of dirs (deepest first) that is an empty real directory and not a mount point. rmdir
    itself refuses a directory that holds anything, so nothing in it can be lost."""
    removed = []
    with _dirs_lock:  # a cache op in another lane creates its temp file in an existing dir under this lock
        for d in dirs:
            st, parent = lstat_or_none(d), lstat_or_none(os.path.dirname(d))
            if st is None or parent is None or not stat.S_ISDIR(st.st_mode) or st.st_dev != parent.st_dev:
                continue  # gone already, replaced by something else, or a mount (a ZFS dataset)
            try:
                os.rmdir(d)
            except OSError:
                continue  # not empty (or busy): it stays
            with contextlib.suppress(OSError):
                fsync_dir(os.path.dirname(d))
            removed.append(d)
            crash_point("restore.pruned")
    return removed


def _remove_made_dirs(made: list[dict[str, str]]) -> None:
    with _dirs_lock:
        for d in reversed(made):
            try:
                os.rmdir(d["path"])
            except OSError:
                continue  # not empty (another op uses it) or already gone
            with contextlib.suppress(OSError):
                fsync_dir(os.path.dirname(d["path"]))


# ------------------------------------------------------------------------------------------ errors

def _as_move_error(exc: BaseException, path: str, pending: bool = False) -> BaseException:
    if isinstance(exc, MoveError) or not isinstance(exc, OSError):
        return exc  # MoveRefused/MoveFailed as raised; KeyboardInterrupt and the like pass through
    where = exc.filename or path
    if exc.filename2:
        where = f"{exc.filename} (copying from {exc.filename2})"
    tail = ("; the operation will be finished by the next recovery" if pending
            else "; the partial copy was removed, the original is untouched")
    if exc.errno in CRITICAL_ERRNOS:
        what = {errno.ENOSPC: "disk full", errno.EDQUOT: "quota exceeded", errno.EROFS: "read-only filesystem",
                errno.EIO: "I/O error (failing disk?)"}.get(exc.errno, "permission denied")
        return CriticalIOError(f"{what} at {where}{tail}", str(exc.filename or path), exc.errno)
    return MoveFailed(f"{exc.strerror or exc} at {where}{tail}", str(exc.filename or path), exc.errno)


# ---------------------------------------------------------------------------------- (de)serialising

def _op_to_json(op: Op) -> dict[str, Any]:
    doc = dataclasses.asdict(op)
    doc["sidecars"] = [list(p) for p in op.sidecars]
    if isinstance(op, RestoreOp):
        doc["recorded"] = {k: dataclasses.asdict(v) for k, v in op.recorded.items()}
        doc["confirmed"] = {k: dataclasses.asdict(v) for k, v in op.confirmed.items()}
        doc["keep_original"] = list(op.keep_original)
        doc["keep_backup"] = list(op.keep_backup)
    return doc


def _op_from_json(intent: dict[str, Any]) -> Op | DiscardOp:
    """The op of a journal intent; KeyError/TypeError/ValueError for a record this version cannot read."""
    doc = dict(intent["op"])
    if intent["kind"] == "discard":
        if not isinstance(intent["files"][0]["src_id"], dict):  # without it the files cannot be judged
            raise ValueError("a discard record without the identity of the copy it gives up")
        return DiscardOp(**doc)
    doc["sidecars"] = [tuple(p) for p in doc.get("sidecars", [])]
    if intent["kind"] == "cache":
        return CacheOp(**doc)
    if intent["kind"] != "restore":
        raise ValueError(f"unknown operation kind {intent['kind']!r}")
    doc["recorded"] = {k: RecordedCopy(**v) for k, v in doc.get("recorded", {}).items()}
    doc["confirmed"] = {k: RecordedCopy(**v) for k, v in doc.get("confirmed", {}).items()}
    return RestoreOp(**doc)
