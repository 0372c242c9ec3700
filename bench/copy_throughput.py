"""Copy throughput of the mover against cp, and the journal's cost per operation.

    .venv/bin/python bench/copy_throughput.py [--files 4] [--size 1G] [--dir DIR] [--verify] [--ops 200]

Makes N files of real (incompressible) data in a temp dir on the filesystem of DIR (default: the current
directory), then copies them with:
  mover        Mover.cache (temp name, fsync, verify size, rename, backup rename, journal), one file at a time
  mover-back   Mover.restore without a backup (the careful copy back)
  cp           cp --preserve=all
  cp-noreflink cp --reflink=never --preserve=all
  cp+sync      cp --preserve=all followed by sync of the copy (cp alone does not flush; the mover does)
Each source's cached pages are dropped before each copy (posix_fadvise), so the reads hit the device.
Then it times --ops operations on 1-byte files to show what the journal and fsyncs cost per operation.
Everything is flushed (sync) before each measured copy. Prints the best of --repeat rounds in MB/s
(1 MB = 10^6 bytes) and the ratio to cp+sync (the fair comparison: the mover fsyncs every copy).
Not a test: run by hand.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "source" / "python"))

from plexcache.media import fastcopy  # noqa: E402
from plexcache.media.journal import Journal  # noqa: E402
from plexcache.media.mover import Mover  # noqa: E402
from plexcache.media.ops import CacheOp, RestoreOp  # noqa: E402

UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str) -> int:
    text = text.strip().upper().rstrip("B").rstrip("I")
    return int(float(text[:-1]) * UNITS[text[-1]]) if text[-1] in UNITS else int(text)


def make_file(path: Path, size: int) -> None:
    block = bytearray(os.urandom(16 * 1024 * 1024))
    with open(path, "wb") as handle:
        done = 0
        n = 0
        while done < size:
            block[:8] = n.to_bytes(8, "little")  # every block different: no dedup/compression shortcut
            part = min(len(block), size - done)
            handle.write(memoryview(block)[:part])
            done += part
            n += 1
        handle.flush()
        os.fsync(handle.fileno())


def drop(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fastcopy.advise_dontneed(fd)
    finally:
        os.close(fd)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> None:
    size = parse_size(args.size)
    base = Path(tempfile.mkdtemp(prefix="plexcache-bench-", dir=args.dir))
    try:
        array, pool = base / "disk1" / "share", base / "cache" / "share"
        array.mkdir(parents=True)
        pool.mkdir(parents=True)
        sources = [array / f"movie{i}.mkv" for i in range(args.files)]
        print(f"making {args.files} x {size / 1e9:.2f} GB in {base} ...", flush=True)
        for path in sources:
            make_file(path, size)
        total = size * args.files
        mover = Mover(Journal(base / "journal"), backups=True, verify=args.verify)
        back = Mover(Journal(base / "journal"), backups=False, verify=args.verify)

        def mover_cache() -> None:
            for src in sources:
                mover.cache(CacheOp(str(src), str(pool / src.name)))

        def undo_mover_cache() -> None:  # instant: renames the backups back
            for src in sources:
                mover.restore(RestoreOp(str(pool / src.name), str(src)))

        def prepare_back() -> None:  # the measured part is the careful copy back, without a backup
            for src in sources:
                back.cache(CacheOp(str(src), str(pool / src.name)))
                drop(pool / src.name)

        def mover_back() -> None:
            for src in sources:
                back.restore(RestoreOp(str(pool / src.name), str(src), backup_path=None))

        def cp(extra: list[str], sync: bool):
            def copy_all() -> None:
                for src in sources:
                    dst = pool / src.name
                    subprocess.run(["cp", "--preserve=all", *extra, str(src), str(dst)], check=True)
                    if sync:
                        subprocess.run(["sync", str(dst)], check=True)
            return copy_all

        def remove_copies() -> None:
            for src in sources:
                os.unlink(pool / src.name)

        methods = {  # name: (prepare, measured, clean up)
            "mover": (None, mover_cache, undo_mover_cache),
            "mover-back": (prepare_back, mover_back, None),
            "cp": (None, cp([], False), remove_copies),
            "cp-noreflink": (None, cp(["--reflink=never"], False), remove_copies),
            "cp+sync": (None, cp([], True), remove_copies),
        }
        results: dict[str, float] = {}
        for _round in range(args.repeat):
            for name, (prepare, measured, cleanup) in methods.items():
                if prepare:
                    prepare()
                os.sync()  # nothing dirty from the previous method is flushed on this one's time
                for src in sources:
                    drop(src)
                    drop(pool / src.name)
                secs = timed(measured)
                results[name] = min(secs, results.get(name, secs))
                if cleanup:
                    cleanup()

        print(f"\nbest of {args.repeat}; the mover and cp+sync flush to the device, cp alone does not")
        print(f"{'method':<14}{'seconds':>10}{'MB/s':>10}{'vs cp+sync':>12}")
        for name, secs in results.items():
            print(f"{name:<14}{secs:>10.2f}{total / secs / 1e6:>10.0f}{results['cp+sync'] / secs:>12.2f}")

        journal_overhead(base, args.ops)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def journal_overhead(base: Path, ops: int) -> None:
    tiny = base / "tiny"
    (tiny / "disk1" / "share").mkdir(parents=True)
    (tiny / "cache" / "share").mkdir(parents=True)
    journal = Journal(tiny / "journal")
    files = []
    for i in range(ops):
        path = tiny / "disk1" / "share" / f"f{i}.srt"
        path.write_bytes(b"x")
        files.append(path)

    def journal_only() -> None:
        for i in range(ops):
            op_id = journal.begin({"kind": "cache", "files": [{"src": str(files[i])}]})
            journal.commit(op_id, {})
            journal.finish(op_id)

    mover = Mover(journal)

    def whole_ops() -> None:
        for path in files:
            mover.cache(CacheOp(str(path), str(tiny / "cache" / "share" / path.name)))

    j = timed(journal_only) / ops
    w = timed(whole_ops) / ops
    print(f"\njournal records (intent + commit + removal): {j * 1000:.2f} ms per operation")
    print(f"whole cache operation on a 1-byte file:        {w * 1000:.2f} ms per operation "
          f"({ops} ops, {journal.directory.parent})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--size", default="1G")
    parser.add_argument("--dir", default=".", help="where the temp dir goes (its filesystem is measured)")
    parser.add_argument("--verify", action="store_true", help="mover hashes every copy (blake2b)")
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best time of each method counts")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
