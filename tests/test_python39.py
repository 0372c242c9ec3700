"""The backend runs on Python 3.9 (Unraid servers with an older interpreter): install it there and run the demo.

Skipped, with the reason, when no Python 3.9 interpreter is on this machine.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python39() -> str | None:
    """A working 3.9 interpreter: pyenv's own builds first (its shims may exist without a selected version)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")))
    candidates += [shutil.which("python3.9") or ""]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                               text=True, timeout=30)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 9)":
            return candidate
    return None


@pytest.mark.slow
def test_demo_runs_on_python_3_9(tmp_path):
    interpreter = python39()
    if interpreter is None:
        pytest.skip("no Python 3.9 interpreter on this machine")
    env = {k: v for k, v in os.environ.items()
           if not k.upper().endswith("_PROXY") and not k.startswith(("PLEXCACHE", "PLEXAPI"))}
    venv = tmp_path / "venv"
    made = subprocess.run([interpreter, "-m", "venv", str(venv)], capture_output=True, text=True, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT / "source" / "python")],
                             capture_output=True, text=True, env=env, timeout=600)
    if install.returncode != 0 and "No matching distribution" in install.stderr + install.stdout:
        pytest.skip("the package index cannot be reached for the Python 3.9 install")
    assert install.returncode == 0, install.stderr[-2000:]
    result = subprocess.run([str(venv / "bin" / "plexcache-r"), "--json", "demo"], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["first_run"]["cached"] > 0 and document["second_run"]["cached"] == 0
