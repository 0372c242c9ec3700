"""The byte copier: every fallback path gives the same bytes; short sources and hashing."""

from __future__ import annotations

import errno
import hashlib
import os

import pytest

from copyfaults import fail_copy_steps_after
from plexcache.media import fastcopy

SIZE = 3 * 1024 * 1024 + 12345


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "src.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


def _copy(source, dest, size=SIZE, **kw) -> int:
    src = os.open(source, os.O_RDONLY)
    dst = os.open(dest, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        return fastcopy.copy_fd(src, dst, size, chunk=1024 * 1024, **kw)
    finally:
        os.close(src)
        os.close(dst)


def _refuse(err):
    def step(*_a):
        raise OSError(err, os.strerror(err))
    return step


@pytest.mark.parametrize("refuse", [(), ("_copy_file_range_step",),
                                    ("_copy_file_range_step", "_sendfile_step")])
def test_every_fallback_copies_the_same_bytes(source, tmp_path, monkeypatch, refuse):
    for name in refuse:
        monkeypatch.setattr(fastcopy, name, _refuse(errno.EXDEV))
    dest = tmp_path / "dst.bin"
    assert _copy(source, dest) == SIZE
    assert dest.read_bytes() == source.read_bytes()


def test_fallback_mid_copy_continues_where_the_first_method_stopped(source, tmp_path, monkeypatch):
    fail_copy_steps_after(monkeypatch, 2, errno.EINVAL)  # the kernel refuses copy_file_range mid-file
    dest = tmp_path / "dst.bin"
    assert _copy(source, dest) == SIZE
    assert dest.read_bytes() == source.read_bytes()


def test_a_method_that_copies_nothing_is_not_taken_for_end_of_file(source, tmp_path, monkeypatch):
    monkeypatch.setattr(fastcopy, "_copy_file_range_step", lambda *a: 0)
    dest = tmp_path / "dst.bin"
    assert _copy(source, dest) == SIZE
    assert dest.read_bytes() == source.read_bytes()


def test_real_errors_are_not_swallowed_by_the_fallbacks(source, tmp_path, monkeypatch):
    monkeypatch.setattr(fastcopy, "_copy_file_range_step", _refuse(errno.ENOSPC))
    with pytest.raises(OSError) as err:
        _copy(source, tmp_path / "dst.bin")
    assert err.value.errno == errno.ENOSPC


def test_short_source_returns_the_bytes_it_had(source, tmp_path):
    assert _copy(source, tmp_path / "dst.bin", size=SIZE + 5000) == SIZE


def test_hashing_copy_and_read_back_agree(source, tmp_path):
    hasher = fastcopy.new_hasher()
    dest = tmp_path / "dst.bin"
    assert _copy(source, dest, hasher=hasher) == SIZE
    expected = hashlib.blake2b(source.read_bytes(), digest_size=32).hexdigest()
    assert hasher.hexdigest() == expected == fastcopy.hash_file(str(dest))


def test_progress_is_throttled_and_ends_at_the_total(source, tmp_path, monkeypatch):
    monkeypatch.setattr(fastcopy, "PROGRESS_BYTES", 2 * 1024 * 1024)
    monkeypatch.setattr(fastcopy, "PROGRESS_SECONDS", 3600)  # only the byte rule, whatever the machine's speed
    seen = []
    _copy(source, tmp_path / "dst.bin", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (SIZE, SIZE)
    assert len(seen) == 2  # 4 chunks of 1 MiB: one report after 2 MiB, one at the end


@pytest.mark.slow
def test_sparse_source_gives_a_sparse_copy_with_the_same_bytes(tmp_path):
    src = tmp_path / "sparse.bin"
    with open(src, "wb") as handle:
        handle.write(b"head" * 1000)
        handle.seek(200 * 1024 * 1024)
        handle.write(b"middle" * 1000)
        handle.truncate(400 * 1024 * 1024 + 17)  # a hole at the end too
    st = os.stat(src)
    assert fastcopy.looks_sparse(st)
    dest = tmp_path / "copy.bin"
    s = os.open(src, os.O_RDONLY)
    d = os.open(dest, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        hasher = fastcopy.new_hasher()
        assert fastcopy.copy_fd(s, d, st.st_size, hasher=hasher, sparse=True) == st.st_size
    finally:
        os.close(s)
        os.close(d)
    dst = os.stat(dest)
    assert dst.st_size == st.st_size
    assert dst.st_blocks * 512 < 8 * 1024 * 1024  # the holes stayed holes
    assert fastcopy.hash_file(str(dest)) == fastcopy.hash_file(str(src)) == hasher.hexdigest()


def test_real_media_does_not_look_sparse(source):
    assert not fastcopy.looks_sparse(os.stat(source))
