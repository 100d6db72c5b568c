"""The import graph of core/ has no circle: every module can be imported on its own, lower modules never need
higher ones. Built from the source with `ast` (imports inside functions count too: a lazy import hides a circle
from the interpreter, not from the design)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"


def core_imports(source: str, modules: set[str]) -> set[str]:
    """The core modules one core module's source imports (anywhere in the file, any import form).

    Handles `import core.x`, `import core.x as y`, `from core.x import ...`, `from core import x`, and the relative
    forms `from .x import ...` / `from . import x`.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "core" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:  # relative to the core package (core/ has no subpackages)
                name = f"core.{name}" if name else "core"
            parts = name.split(".")
            if parts[0] != "core":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found |= {alias.name for alias in node.names if alias.name in modules}
    return found & modules


def import_graph(folder: Path = CORE) -> dict[str, set[str]]:
    """Module name -> the core modules it imports (self-imports dropped)."""
    files = sorted(folder.glob("*.py"))
    modules = {p.stem for p in files}
    return {p.stem: core_imports(p.read_text(encoding="utf-8"), modules) - {p.stem} for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None (depth-first search, deterministic order)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def every_cycle(graph: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    """(group, one circle in it) for every group of modules that import each other (a strongly connected
    component), sorted; a group may hold more modules than the circle shown."""

    def reach(node: str) -> set[str]:
        seen, todo = set(), [node]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {n: reach(n) for n in graph}
    groups = {frozenset({n} | {m for m in reachable[n] if n in reachable[m]}) for n in graph if n in reachable[n]}
    return sorted((sorted(g), find_cycle({n: graph[n] & g for n in g})) for g in groups)


def import_graph_in_a_fresh_interpreter(folder: Path = CORE) -> dict[str, set[str]]:
    """`import_graph` run by a new Python process. CPython 3.11's `ast.parse` can raise "SystemError: AST constructor
    recursion depth mismatch" when another thread of the process changes the recursion limit while it parses (seen
    once in the full suite, with earlier tests' background jobs still running); a fresh interpreter has none."""
    code = (
        "import json, sys; sys.path.insert(0, '.'); from pathlib import Path;"
        " from tests.test_imports import import_graph;"
        f" print(json.dumps({{k: sorted(v) for k, v in import_graph(Path({str(folder)!r})).items()}}))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run
    return {k: set(v) for k, v in json.loads(out.stdout).items()}


def test_core_import_graph_has_no_cycle():
    graph = import_graph_in_a_fresh_interpreter()
    assert {"landscape", "flatness", "surfaces", "attention"} <= set(graph)  # the parser saw the package
    assert "attention" in graph["landscape"] and "attention" in graph["flatness"]  # and the imports in it
    cycles = every_cycle(graph)
    text = [f"{' -> '.join(f'core/{m}.py' for m in c)} (group: {', '.join(g)})" for g, c in cycles]
    assert not cycles, "import circles in core/: " + "; ".join(text)


def test_cycle_finder_sees_every_import_form(tmp_path):
    """The checker itself can fail: a lazy `from core.x import` inside a function, `import core.x as y` and
    `from core import x` all make edges, and a circle through them is reported as a path."""
    (tmp_path / "a.py").write_text("def f():\n    from core.b import g\n    return g\n")
    (tmp_path / "b.py").write_text("import core.c as c\n")
    (tmp_path / "c.py").write_text("from core import a, errors\nfrom . import d\n")
    (tmp_path / "d.py").write_text("import numpy\n")
    graph = import_graph(tmp_path)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"] and every_cycle(graph) == [(["a", "b", "c"], ["a", "b", "c", "a"])]
    graph["d"] = {"e"}
    graph["e"] = {"d"}
    assert every_cycle(graph) == [(["a", "b", "c"], ["a", "b", "c", "a"]), (["d", "e"], ["d", "e", "d"])]
    del graph["c"], graph["e"]
    assert find_cycle(graph) is None and every_cycle(graph) == []
