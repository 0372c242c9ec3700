"""Copies that fail part-way: the kernel's copy step works a few times, then raises a chosen error."""

from __future__ import annotations

import os

import pytest

from plexcache.media import fastcopy


def fail_copy_steps_after(monkeypatch: pytest.MonkeyPatch, steps: int, code: int) -> None:
    """From the (steps+1)-th call on, fastcopy's copy_file_range step raises OSError(code)."""
    real = fastcopy._copy_file_range_step
    calls = {"n": 0}

    def step(*args: object) -> object:
        calls["n"] += 1
        if calls["n"] > steps:
            raise OSError(code, os.strerror(code))
        return real(*args)

    monkeypatch.setattr(fastcopy, "_copy_file_range_step", step)
