"""The import structure of core/ holds the layout's rules, read from the source with `ast` (imports inside functions
count too: a lazy import hides a circle from the interpreter, not from the design):
- no module imports another in a circle;
- packages depend one way, from the lower layer up: store <- models, geometry, report <- measure <- studies <- app
  (the top-level modules errors and paths below them all, device beside store), so no package circle and no upward
  import;
- a module reaches another package only through that package's face (its `__init__`), never a private module;
- no `_private` name is imported across modules; core never imports streamlit;
- an import inside a function says why, in a comment on its line or the line above.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"

# The layers, lowest first. A package may import packages of a lower layer only; the names of the package's modules
# are the README's layout section.
LAYERS: dict[str, int] = {
    "core": 0,  # core/__init__.py: the version string only
    "errors": 0,
    "paths": 0,
    "device": 1,  # CPU / CUDA choice; raises a LandscapeError
    "store": 1,
    "models": 2,
    "geometry": 2,
    "report": 2,
    "measure": 3,
    "studies": 4,
    "app": 5,
    "__main__": 6,
}


def module_name(path: Path, folder: Path = CORE) -> str:
    """`store.journal` for core/store/journal.py, `store` for core/store/__init__.py, `errors` for core/errors.py."""
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] or ["core"]
    return ".".join(parts)


def package_of(module: str) -> str:
    return module.split(".")[0]


def _imports(source: str, module: str, is_face: bool = False) -> list[tuple[str, list[str], bool, int]]:
    """(imported core module path without 'core.', imported names, inside a function?, line) for each import."""
    out: list[tuple[str, list[str], bool, int]] = []
    base = module.split(".") if module != "core" else []

    def visit(node: ast.AST, in_func: bool) -> None:
        for ch in ast.iter_child_nodes(node):
            inner = in_func or isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(ch, ast.Import):
                for alias in ch.names:
                    if alias.name == "core" or alias.name.startswith("core."):
                        out.append((alias.name.removeprefix("core").lstrip("."), [], in_func, ch.lineno))
            elif isinstance(ch, ast.ImportFrom):
                names = [a.name for a in ch.names]
                if ch.level:  # relative: from the module's own package (a face's own package) upwards
                    pkg = base[: len(base) - ch.level + (1 if is_face else 0)]
                    target = ".".join([*pkg, *(ch.module.split(".") if ch.module else [])])
                    out.append((target, names, in_func, ch.lineno))
                elif ch.module and (ch.module == "core" or ch.module.startswith("core.")):
                    out.append((ch.module.removeprefix("core").lstrip("."), names, in_func, ch.lineno))
            visit(ch, inner)

    visit(ast.parse(source), False)
    return out


def import_graph(folder: Path = CORE) -> dict[str, set[str]]:
    """Module -> the core modules it imports (self-imports dropped). `from core.store import Store` is an edge to the
    package `store` (its face); `from core import errors` an edge to `errors`."""
    files = sorted(folder.rglob("*.py"))
    modules = {module_name(p, folder) for p in files}
    graph: dict[str, set[str]] = {}
    for p in files:
        me = module_name(p, folder)
        found: set[str] = set()
        for target, names, _, _ in _imports(p.read_text(encoding="utf-8"), me, p.name == "__init__.py"):
            if not target:  # `from core import x`: x is a module or a package
                found |= {n for n in names if n in modules} or {"core"}
                continue
            found.add(target if target in modules else target.rsplit(".", 1)[0])
        graph[me] = {m for m in found if m in modules} - {me}
    return graph


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        out.setdefault(package_of(mod), set()).update(package_of(d) for d in deps)
    return {p: d - {p} for p, d in out.items()}


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


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int] = LAYERS) -> list[str]:
    """'a -> b' for every package edge that does not go to a lower layer (an unknown package is an error too)."""
    bad = []
    for pkg, deps in sorted(package_graph(graph).items()):
        for dep in sorted(deps):
            if pkg not in layers or dep not in layers or layers[dep] >= layers[pkg]:
                bad.append(f"{pkg} -> {dep}")
    return bad


def in_a_fresh_interpreter(call: str) -> object:
    """`call` (an expression over this module's functions) run by a new Python process, its JSON result. CPython
    3.11's `ast.parse` can raise "SystemError: AST constructor recursion depth mismatch" when another thread of the
    process changes the recursion limit while it parses (seen once in the full suite, with earlier tests' background
    jobs still running); a fresh interpreter has none."""
    code = (
        "import json, sys; sys.path.insert(0, '.'); from pathlib import Path; import tests.test_imports as t;"
        f" print(json.dumps({call}))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """core/'s import graph, built once for this module's tests by a fresh interpreter."""
    found = in_a_fresh_interpreter("{k: sorted(v) for k, v in t.import_graph().items()}")
    return {k: set(v) for k, v in found.items()}


def test_core_import_graph_has_no_cycle(graph):
    assert {"geometry.landscape", "geometry.attention", "measure.surfaces", "store"} <= set(graph)  # it saw the tree
    assert "geometry.attention" in graph["geometry.landscape"]  # and the imports in it
    cycles = every_cycle(graph)
    text = [f"{' -> '.join(cyc)} (group: {', '.join(g)})" for g, cyc in cycles]
    assert not cycles, "import circles in core/: " + "; ".join(text)


def test_packages_depend_one_way(graph):
    """Every package of core/ has a layer, and imports only packages of lower layers (so no package circle)."""
    packages = {package_of(m) for m in graph}
    assert {"store", "models", "geometry", "measure", "report", "studies", "app"} <= packages
    assert packages <= set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"
    assert not upward_imports(graph), "imports against the layers: " + "; ".join(upward_imports(graph))
    assert find_cycle(package_graph(graph)) is None


def _sources() -> list[tuple[str, Path]]:
    """(the importing module's package or '' for pages and app.py, file) for core, the pages and the entry point."""
    out = [(package_of(module_name(p)), p) for p in sorted(CORE.rglob("*.py"))]
    return out + [("", p) for p in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]]


def test_other_packages_are_reached_through_their_faces():
    """`from core.store import Store`, never `from core.store.store import Store` from outside the store package;
    the pages and the CLI likewise. A face exports its names with `__all__`."""
    packages = {p.parent.name for p in CORE.glob("*/__init__.py")}
    bad = []
    for mine, path in _sources():
        me = module_name(path) if path.is_relative_to(CORE) else path.stem
        for target, _, _, line in _imports(path.read_text(encoding="utf-8"), me):
            parts = target.split(".")
            if parts[0] in packages and len(parts) > 1 and parts[0] != mine:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports core.{target}")
    assert not bad, "private modules of another package imported: " + "; ".join(bad)
    for pkg in packages:
        tree = ast.parse((CORE / pkg / "__init__.py").read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"core/{pkg}/__init__.py says nothing of its role"
        exported = [n for n in tree.body if isinstance(n, ast.Assign) and any(t.id == "__all__" for t in n.targets)]
        assert exported, f"core/{pkg}/__init__.py has no __all__"


def test_no_private_names_across_modules_and_no_streamlit_in_core():
    bad = []
    for _, path in _sources():
        me = module_name(path) if path.is_relative_to(CORE) else path.stem
        for target, names, _, line in _imports(path.read_text(encoding="utf-8"), me):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {', '.join(private)} from core.{target}")
    assert not bad, "private names imported across modules: " + "; ".join(bad)
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] == "streamlit" for n in names), f"{path} imports streamlit"


def test_imports_inside_functions_say_why():
    """An import inside a function (any module, not only core's) carries a comment on its line or the line above."""
    bad = []
    for _, path in _sources():
        lines = path.read_text(encoding="utf-8").splitlines()

        def visit(node: ast.AST, in_func: bool, path: Path = path, lines: list[str] = lines) -> None:
            for ch in ast.iter_child_nodes(node):
                inner = in_func or isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef))
                if in_func and isinstance(ch, (ast.Import, ast.ImportFrom)):
                    here, above = lines[ch.lineno - 1], lines[ch.lineno - 2] if ch.lineno > 1 else ""
                    if "#" not in here and "#" not in above:
                        bad.append(f"{path.relative_to(ROOT)}:{ch.lineno}")
                visit(ch, inner)

        visit(ast.parse("\n".join(lines)), False)
    assert not bad, "imports inside functions without a reason: " + ", ".join(bad)


def test_the_checkers_can_fail(tmp_path):
    """The checkers themselves can fail: a lazy `from core.x import` inside a function, `import core.x as y`,
    `from core import x` and a relative import all make edges; a circle is reported as a path; an upward package
    import and a package circle are caught."""
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

    pkgs = tmp_path / "pkgs"
    for pkg in ("low", "high"):
        (pkgs / pkg).mkdir(parents=True)
        (pkgs / pkg / "__init__.py").write_text('"""x."""\n')
    (pkgs / "low" / "m.py").write_text("from core.high import thing\n")  # upward
    (pkgs / "high" / "n.py").write_text("from core.low.m import y\n")
    graph = import_graph(pkgs)
    assert graph["low.m"] == {"high"} and graph["high.n"] == {"low.m"}
    assert package_graph(graph) == {"low": {"high"}, "high": {"low"}}
    assert upward_imports(graph, {"low": 1, "high": 2}) == ["low -> high"]
    assert find_cycle(package_graph(graph)) == ["high", "low", "high"]
