"""`./dev bench` lists every benchmark, and bench/README.md documents each with its figures."""

from __future__ import annotations

import subprocess
from pathlib import Path

from realtime import seconds

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(str(p.relative_to(REPO / "bench").with_suffix("")) for p in (REPO / "bench").glob("**/*.py")
                    if p.name != "model.py")


def test_dev_bench_without_a_name_lists_every_benchmark():
    result = subprocess.run([str(REPO / "dev"), "bench"], capture_output=True, text=True, timeout=seconds(300))
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert listed == BENCHMARKS
    assert all(len(line.split(None, 1)) == 2 for line in result.stdout.splitlines()[1:]), "one line each"


def test_dev_bench_with_an_unknown_name_says_so():
    result = subprocess.run([str(REPO / "dev"), "bench", "nope"], capture_output=True, text=True, timeout=seconds(300))
    assert result.returncode == 2 and "no benchmark bench/nope.py" in result.stderr


def test_bench_readme_documents_every_benchmark_with_figures():
    readme = (REPO / "bench" / "README.md").read_text()
    for name in BENCHMARKS:
        section = readme.split(f"## {name}.py", 1)
        assert len(section) == 2, f"bench/README.md has no section for {name}"
        body = section[1].split("\n## ", 1)[0]
        assert f"./dev bench {name}" in body and "Figures (" in body, name
