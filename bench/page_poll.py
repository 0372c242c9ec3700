"""Benchmark: the CPU an open Dashboard costs per minute while a run is in progress.

The Dashboard polls every 1.5 s during a run (40 polls a minute). Before, every poll started
`plexcache-r status`, which imported plexapi; now the quick polls are the endpoint's `progress` action
(PHP reading run.lock and progress.json) and the CLI's `status` (which no longer imports plexapi) runs
every ten seconds (6 a minute). Measured here in a sandbox with a run "in progress" (this process holds
run.lock and has written progress.json) and N managed files in the registry; each command's CPU is the
user + system time of its child processes, the median of --repeat rounds.

    .venv/bin/python bench/page_poll.py [--files 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plexcache import config
from plexcache.state import Entry, StateStore

REPO = Path(__file__).resolve().parents[1]
EXEC_PHP = REPO / "source/emhttp/include/exec.php"
POLLS_A_MINUTE, FULL_A_MINUTE = 40, 6
BEFORE = ("import plexapi.server, plexcache.engine\n"   # what status imported before it moved to query.py
          "from plexcache.cli import main\nmain(sys.argv[1:])")


def child_cpu(command: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def sandbox(root: Path, files: int) -> Path:
    paths = {"state_dir": root / "state", "volatile_dir": root / "vol", "log_dir": root / "log",
             "pool_root": root / "mnt", "user_root": root / "mnt/user", "disks_glob": str(root / "mnt/disk[0-9]*")}
    settings = config.from_mapping({"paths": {k: str(v) for k, v in paths.items()}})
    path = root / "settings.yaml"
    config.save(settings, path)
    store = StateStore(settings)
    registry = store.load_registry()
    now = time.time()
    for i in range(files):
        rel = f"Show {i // 10}/S01E{i % 10:02d}.mkv"
        user_path = f"/mnt/user/tv/{rel}"
        registry.entries[user_path] = Entry(path=user_path, share="tv", rel=rel, pool="cache", disk="disk1",
                                            size=2_000_000_000, cached_at=now, title=rel)
    store.save_registry(registry)
    vol = paths["volatile_dir"]
    vol.mkdir(parents=True, exist_ok=True)
    (vol / "progress.json").write_text(json.dumps({"schema": 1, "action": "run", "phase": "copying",
                                                   "files_done": 3, "files_total": 9, "bytes_done": 1,
                                                   "bytes_total": 9, "current_file": "/mnt/user/tv/x.mkv"}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    php = shutil.which("php")
    if php is None:
        sys.exit("needs php-cli")
    with tempfile.TemporaryDirectory(prefix="pcr-poll-") as tmp:
        settings = sandbox(Path(tmp), args.files)
        env = {**os.environ, "PLEXCACHE_CONFIG": str(settings), "PYTHONPATH": str(REPO / "source/python")}
        lock = os.open(Path(tmp) / "vol/run.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(lock, fcntl.LOCK_EX)   # a run in progress, as the pages see it
        cli = [sys.executable, "-m", "plexcache", "--json", "status"]
        before = [sys.executable, "-c", "import sys\n" + BEFORE, "--json", "status"]
        progress = [php, "-d", "auto_prepend_file=", "-r",
                    "$_SERVER['REQUEST_METHOD'] = 'GET'; $_GET = ['action' => 'progress']; "
                    f"include {str(EXEC_PHP)!r};"]
        answer = json.loads(subprocess.run(progress, env=env, capture_output=True, text=True, check=True).stdout)
        assert answer["state"] == "running" and answer["progress"]["files_done"] == 3, answer
        rounds: dict[str, list[float]] = {"status, as before (plexapi imported)": [], "status, now": [],
                                          "progress (PHP)": []}
        for _ in range(args.repeat):
            rounds["status, as before (plexapi imported)"].append(child_cpu(before, env))
            rounds["status, now"].append(child_cpu(cli, env))
            rounds["progress (PHP)"].append(child_cpu(progress, env))
        cpu = {name: statistics.median(values) for name, values in rounds.items()}
    print(f"{args.files} managed files, median of {args.repeat} rounds, CPU seconds per call:")
    for name, seconds in cpu.items():
        print(f"  {name:<40} {seconds:.3f} s")
    old = POLLS_A_MINUTE * cpu["status, as before (plexapi imported)"]
    new = FULL_A_MINUTE * cpu["status, now"] + (POLLS_A_MINUTE - FULL_A_MINUTE) * cpu["progress (PHP)"]
    print(f"CPU per minute of an open Dashboard during a run: before {old:.1f} s, after {new:.1f} s "
          f"({old / new:.0f}x less)")


if __name__ == "__main__":
    main()
