"""The media rule, checked on the source: only the media package and the one helper for the program's own files
may rename, delete or write a path. A change that adds such a call anywhere else fails here, so the
rule does not depend on a reviewer noticing."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "source" / "python" / "plexcache"

# Who may change the filesystem, and why.
ALLOWED = {
    "media/": "moves media under the journal, writes the copies and the journal itself (plexcache.media)",
    "fsutil.py": "writes and removes the program's own state files, atomically",
    "runctl.py": "holds the run and live locks: an flock on a file that records the holder's pid",
}
# Not the user's files: the simulator builds a world of its own; the demo makes and removes its own folder.
NOT_PRODUCT = ("sim/", "demo.py")

CHANGING_FUNCTIONS = {
    "os": {"rename", "renames", "replace", "remove", "unlink", "rmdir", "removedirs", "truncate", "ftruncate"},
    "shutil": {"move", "rmtree", "copy", "copy2", "copyfile", "copytree"},
}
CHANGING_METHODS = {"unlink", "rmdir", "write_text", "write_bytes", "rename", "touch", "truncate"}
WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"}


def _names(node: ast.AST) -> set[str]:
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)} | \
           {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _changes_files(call: ast.Call) -> str | None:
    """What the call does to the filesystem, or None when it only reads (or is not about files)."""
    func = call.func
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        if owner in CHANGING_FUNCTIONS and func.attr in CHANGING_FUNCTIONS[owner]:
            return f"{owner}.{func.attr}"
        if owner == "os" and func.attr == "open" and len(call.args) > 1 and _names(call.args[1]) & WRITE_FLAGS:
            return "os.open for writing"
        if func.attr in CHANGING_METHODS and owner not in ("os", "shutil"):
            return f".{func.attr}()"
        # Path.replace(target) takes one argument; str.replace(old, new) takes two
        if func.attr == "replace" and len(call.args) == 1 and not call.keywords:
            return ".replace(target)"
        if func.attr == "open" and _write_mode(call, first_mode_arg=0):
            return ".open() for writing"
    if isinstance(func, ast.Name) and func.id == "open" and _write_mode(call, first_mode_arg=1):
        return "open() for writing"
    return None


def _write_mode(call: ast.Call, first_mode_arg: int) -> bool:
    mode = call.args[first_mode_arg] if len(call.args) > first_mode_arg else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and bool(set(mode.value) & set("wax+"))


def offences() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith((*ALLOWED, *NOT_PRODUCT)):  # a file, or every module of a package ("media/")
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.Call) and (what := _changes_files(node)):
                found.append(f"{rel}:{node.lineno}: {what}")
    return found


def test_only_the_media_modules_and_fsutil_change_files() -> None:
    assert offences() == [], "route these through the mover (media) or fsutil (the program's own files)"


def test_the_check_sees_each_kind_of_change(tmp_path: Path) -> None:
    """The detector itself: every form it must catch is caught, and reads and string replaces are not."""
    changing = ["os.rename(a, b)", "os.unlink(p)", "shutil.rmtree(d)", "p.unlink()", "p.rename(q)", "p.replace(q)",
                "p.write_text('x')", "open(p, 'w')", "open(p, mode='ab')", "p.open('w')",
                "os.open(p, os.O_WRONLY | os.O_CREAT)", "os.truncate(p, 0)"]
    harmless = ["s.replace('a', 'b')", "open(p)", "open(p, 'rb')", "p.open()", "os.open(p, os.O_RDONLY)",
                "p.read_text()", "os.stat(p)"]
    calls = {src: ast.parse(src).body[0].value for src in changing + harmless}
    assert all(_changes_files(calls[src]) for src in changing)
    assert not any(_changes_files(calls[src]) for src in harmless)
