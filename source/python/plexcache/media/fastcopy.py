"""Copying one file's bytes fast and durably: copy_file_range, then sendfile, then read/write.

Nothing here knows about journals or the cache; mover.py decides what is copied where. This module only
moves bytes from one open file to another, optionally hashing them, and reads a file back to hash it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
from collections.abc import Callable
from typing import Optional

CHUNK = 64 * 1024 * 1024  # bytes per copy_file_range/sendfile call: few syscalls, fine-grained enough
HASH_BUFFER = 8 * 1024 * 1024
PROGRESS_BYTES = 10 * 1024 * 1024
PROGRESS_SECONDS = 1.0
HOLE_BLOCK = 1024 * 1024  # sparse copies leave a hole for every all-zero block of this size
_ZEROS = bytes(HOLE_BLOCK)

# errors that mean "this kernel/filesystem pair cannot do this kind of copy": fall back, do not fail
_FALLBACK_ERRNOS = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF}

_write = os.write  # indirection so tests can inject write errors (ENOSPC, EIO) into the read/write path

# (bytes done in this file, bytes in this file)
ByteProgress = Callable[[int, int], None]
# called after every chunk with the running byte count; tests use it to inject faults and crashes
ChunkHook = Callable[[int], None]


class Throttle:
    """Lets a progress report through at most every ~10 MiB or ~1 s, and always the last one."""

    def __init__(self, callback: Optional[ByteProgress], total: int) -> None:
        self.callback = callback
        self.total = total
        self.last_bytes = 0
        self.last_time = time.monotonic()

    def __call__(self, done: int) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if done >= self.total or done - self.last_bytes >= PROGRESS_BYTES or now - self.last_time >= PROGRESS_SECONDS:
            self.last_bytes, self.last_time = done, now
            self.callback(done, self.total)


def copy_fd(src: int, dst: int, size: int, *, chunk: int = CHUNK, progress: Optional[ByteProgress] = None,
            on_chunk: Optional[ChunkHook] = None, hasher: Optional[hashlib.blake2b] = None,
            sparse: bool = False) -> int:
    """Copy `size` bytes from offset 0 of `src` to `dst` (both at offset 0). Returns bytes copied.

    With a `hasher` the bytes pass through user space (read/write) so they can be hashed in the same pass;
    otherwise the kernel copies them (copy_file_range, then sendfile), and read/write takes over wherever
    a method is refused. A source that turns out shorter than `size` stops the copy early: the caller
    compares the count with the size it expected.

    sparse: read/write, leaving a hole wherever a whole block read back as zeros (see looks_sparse). Every
    byte is still read: holes are found by content, never by SEEK_HOLE, whose answers some filesystem
    versions have got wrong (a copy that trusts them can lose data).
    """
    throttle = Throttle(progress, size)
    if hasher is not None or sparse:
        return _copy_readwrite(src, dst, size, chunk, throttle, on_chunk, hasher, sparse=sparse)
    done = 0
    for method in (_copy_file_range_step, _sendfile_step):
        try:
            return _copy_loop(method, src, dst, size, done, chunk, throttle, on_chunk)
        except _Unsupported as exc:
            done = exc.done
    return _copy_readwrite(src, dst, size, chunk, throttle, on_chunk, None, start=done)


class _Unsupported(Exception):
    def __init__(self, done: int) -> None:
        super().__init__(done)
        self.done = done


def _copy_file_range_step(src: int, dst: int, offset: int, count: int) -> int:
    if not hasattr(os, "copy_file_range"):
        raise OSError(errno.ENOSYS, "copy_file_range unavailable")
    return os.copy_file_range(src, dst, count, offset, offset)


def _sendfile_step(src: int, dst: int, offset: int, count: int) -> int:
    # sendfile writes at dst's file position; keep it in step with the offset we track
    os.lseek(dst, offset, os.SEEK_SET)
    return os.sendfile(dst, src, offset, count)


def _copy_loop(step: Callable[[int, int, int, int], int], src: int, dst: int, size: int, done: int,
               chunk: int, throttle: Throttle, on_chunk: Optional[ChunkHook]) -> int:
    while done < size:
        try:
            n = step(src, dst, done, min(chunk, size - done))
        except OSError as exc:
            # only a refusal before any byte moved by this method is a reason to try another method;
            # errors such as ENOSPC or EIO are real and go up
            if exc.errno in _FALLBACK_ERRNOS:
                raise _Unsupported(done) from None
            raise
        if n == 0:
            # either the source is shorter than expected or this method silently copies nothing (some
            # kernel/filesystem pairs answer copy_file_range with 0): let the next method find out
            raise _Unsupported(done)
        done += n
        throttle(done)
        if on_chunk is not None:
            on_chunk(done)
    return done


def _copy_readwrite(src: int, dst: int, size: int, chunk: int, throttle: Throttle,
                    on_chunk: Optional[ChunkHook], hasher: Optional[hashlib.blake2b], start: int = 0,
                    sparse: bool = False) -> int:
    buf = bytearray(min(chunk, HASH_BUFFER) if hasher is not None else min(chunk, 16 * 1024 * 1024))
    view = memoryview(buf)
    done = start
    os.lseek(src, start, os.SEEK_SET)
    os.lseek(dst, start, os.SEEK_SET)
    since_hook = 0
    while done < size:
        n = os.readv(src, [view[: min(len(buf), size - done)]])
        if n == 0:
            break
        if hasher is not None:
            hasher.update(view[:n])
        if sparse:
            _write_sparse(dst, buf, n, done)
        else:
            _write_all(dst, view, n)
        done += n
        since_hook += n
        throttle(done)
        if on_chunk is not None and (since_hook >= chunk or done >= size):
            since_hook = 0
            on_chunk(done)
    if sparse:
        os.ftruncate(dst, done)  # a hole at the very end still needs the file's length
    return done


def _write_all(dst: int, view: memoryview, n: int) -> None:
    written = 0
    while written < n:
        written += _write(dst, view[written:n])


def _write_sparse(dst: int, buf: bytearray, n: int, offset: int) -> None:
    """Write buf[:n] at `offset`, skipping whole zero blocks (they stay holes in the new file)."""
    view = memoryview(buf)
    for start in range(0, n, HOLE_BLOCK):
        end = min(n, start + HOLE_BLOCK)
        if buf[start:end] == _ZEROS[: end - start]:  # bytearray == bytes is a memcmp (memoryview's is slow)
            continue
        os.lseek(dst, offset + start, os.SEEK_SET)
        _write_all(dst, view[start:end], end - start)


def looks_sparse(st: os.stat_result) -> bool:
    """Less than half of the file is allocated: holes (or strong filesystem compression). Real media
    never looks like this; the demo's and the tests' sandbox files do, and copying their holes as data
    would fill the disk."""
    return st.st_size > HOLE_BLOCK and st.st_blocks * 512 < st.st_size // 2


def hash_file(path: str, *, drop_cache: bool = True) -> str:
    """blake2b of a file's bytes, read back from the device when possible (cached pages dropped first)."""
    hasher = hashlib.blake2b(digest_size=32)
    fd = os.open(path, os.O_RDONLY)
    try:
        if drop_cache:
            advise_dontneed(fd)
        buf = bytearray(HASH_BUFFER)
        view = memoryview(buf)
        while True:
            n = os.readv(fd, [view])
            if n == 0:
                break
            hasher.update(view[:n])
        if drop_cache:
            advise_dontneed(fd)
    finally:
        os.close(fd)
    return hasher.hexdigest()


def new_hasher() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=32)


def advise_dontneed(fd: int) -> None:
    """Drop a file's clean cached pages: big media copies should not evict everything else from RAM."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def copy_metadata(src_fd: int, dst_fd: int, st: os.stat_result) -> None:
    """Owner, mode, extended attributes, then times (last: the others could touch ctime only).

    Best effort for owner and xattrs: a non-root run, or a filesystem without xattrs, keeps going.
    """
    with contextlib.suppress(OSError):
        os.fchown(dst_fd, st.st_uid, st.st_gid)
    os.fchmod(dst_fd, st.st_mode & 0o7777)
    copy_xattrs(src_fd, dst_fd)
    os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def copy_xattrs(src_fd: int, dst_fd: int) -> None:
    if not hasattr(os, "listxattr"):
        return
    try:
        names = os.listxattr(src_fd)
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            os.setxattr(dst_fd, name, os.getxattr(src_fd, name))
