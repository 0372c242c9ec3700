"""How the modules fit together, checked on the source: no import cycle (imports inside functions count too),
the presentation stays at the edge, and each name for a path, a suffix or a tolerance is defined once."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "source" / "python" / "plexcache"
# The simulator and the demo are programs of their own built on the product; they may import anything.
NOT_PRODUCT = ("sim", "demo")
# Only the CLI imports lazily, at startup, so that a read-only command loads little (each such import is
# commented in cli.py).
LAZY_ALLOWED = {"cli"}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        if name.split(".")[0] in NOT_PRODUCT or name.endswith("__main__"):
            continue
        out[name.removesuffix(".__init__") or "__init__"] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def _imported(node: ast.AST, known: set[str]) -> set[str]:
    """The plexcache modules an import statement names (`from plexcache import x` names module x)."""
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {a.name.removeprefix("plexcache.") for a in node.names if a.name.startswith("plexcache.")}
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "plexcache":
        base = node.module.removeprefix("plexcache").lstrip(".")
        names = {f"{base}.{a.name}".lstrip(".") for a in node.names if f"{base}.{a.name}".lstrip(".") in known}
        names |= {base} if base else set()
    return {n for n in names if n in known}


def _graph(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    known = set(modules)
    graph = {}
    for name, tree in modules.items():
        if name in LAZY_ALLOWED:
            continue
        graph[name] = {dep for node in ast.walk(tree) for dep in _imported(node, known)} - {name, "__init__"}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (as a path a -> b -> ... -> a), or [] when there is none."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_modules_counting_imports_inside_functions():
    cycle = _cycle(_graph(_modules()))
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def _function_imports(tree: ast.Module) -> list[int]:
    lines = []
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines += [n.lineno for n in ast.walk(func) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return sorted(set(lines))


def _commented(source: list[str], lineno: int) -> bool:
    """The import on this line, or the block of imports it belongs to, carries a comment (on a line of the
    block, or on the line just above it)."""
    index = lineno - 1
    while index >= 0:
        line = source[index].strip()
        if "#" in line:
            return True
        if not line.startswith(("from ", "import ")):
            return False
        index -= 1
    return False


def test_only_the_cli_imports_inside_functions_and_says_why():
    modules = _modules()
    lazy = {name: _function_imports(tree) for name, tree in modules.items() if name not in LAZY_ALLOWED}
    assert {name: lines for name, lines in lazy.items() if lines} == {}
    source = (PACKAGE / "cli.py").read_text(encoding="utf-8").splitlines()
    uncommented = [n for n in _function_imports(modules["cli"]) if not _commented(source, n)]
    assert uncommented == [], f"cli.py imports inside a function without a comment saying why: lines {uncommented}"


def test_the_engine_leaves_the_words_to_the_edge():
    graph = _graph(_modules())
    engine_side = {"engine", "session", "reconcile", "operations", "report"} & set(graph)
    assert engine_side and not any("render" in graph[m] for m in engine_side), \
        {m: sorted(graph[m]) for m in engine_side if "render" in graph[m]}


# Each of these names is defined (assigned at module level, or a function or class) in exactly one module.
ONE_PLACE = ("BACKUP_SUFFIX", "TMP_SUFFIX", "journal_dir", "MTIME_TOLERANCE", "MTIME_SLACK_NS",
             "FileFacts", "Facts", "RunReport", "human_bytes")


def _definitions(modules: dict[str, ast.Module]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, tree in modules.items():
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found.setdefault(node.name, []).append(name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        found.setdefault(target.id, []).append(name)
    return found


def test_each_concept_is_defined_once():
    defined = _definitions(_modules())
    twice = {name: defined[name] for name in ONE_PLACE if len(defined.get(name, [])) > 1}
    assert twice == {}


def test_the_layout_names_the_paths_and_suffixes():
    defined = _definitions(_modules())
    for name in ("BACKUP_SUFFIX", "TMP_SUFFIX", "journal_dir"):
        assert defined.get(name) == ["layout"], (name, defined.get(name))


def test_the_mtime_tolerances_are_literal_numbers_nowhere_else():
    """A comparison of an mtime difference with a bare number is a tolerance without a name."""
    offenders = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and "mtime" in ast.unparse(node.left) \
                    and "abs(" in ast.unparse(node) and any(isinstance(c, ast.Constant) for c in node.comparators):
                offenders.append(f"{name}: {ast.unparse(node)}")
    assert offenders == []
