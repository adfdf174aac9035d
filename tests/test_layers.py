"""The package's layers (docs/architecture.md): every import of a replab module points down or sideways
within a layer without a cycle, and no function-level import of a replab module exists (none is needed
to dodge a cycle). Imports under ``if TYPE_CHECKING:`` are for annotations only and are not counted."""

from __future__ import annotations

import ast
from pathlib import Path

import replab

ROOT = Path(replab.__file__).parent

# a module's layer is its package's (docs/architecture.md): the folders are the layers
LAYERS: dict[str, int] = {
    "core": 0,
    "servers": 1,
    "engines": 2,
    "cluster": 3, "topologies": 3,
    "workload": 4, "verify": 4, "faults": 4,
    "runs": 5,
    "cli": 6, "pytest_plugin": 6, "__init__": 6, "__main__": 6,
}


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts)


def _layer(module: str) -> int:
    head = module.split(".")[0]
    assert head in LAYERS, f"module {module} has no layer in this test (and in docs/architecture.md): add it"
    return LAYERS[head]


def _resolve(current: str, node: ast.ImportFrom) -> list[str]:
    """The replab modules an ``import from`` names (``from . import a, b`` names a and b)."""
    if node.level == 0:
        if not (node.module or "").startswith("replab"):
            return []
        base = (node.module or "").split(".")[1:]
    else:
        package = current.split(".")[:-1] if not current.endswith("__init__") else current.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)] + ((node.module or "").split(".") if node.module else [])
    if node.module:
        return [".".join(base)] if base else ["__init__"]
    return [".".join([*base, a.name]) for a in node.names]


def _imports(path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """(top-level replab imports, [(line, module)] of function-level ones), TYPE_CHECKING blocks skipped."""
    current = _module(path)
    top: list[str] = []
    nested: list[tuple[int, str]] = []

    def visit(stmts: list[ast.stmt], in_function: bool) -> None:
        for stmt in stmts:
            if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                visit(stmt.orelse, in_function)
                continue
            mods: list[str] = []
            if isinstance(stmt, ast.ImportFrom):
                mods = _resolve(current, stmt)
            elif isinstance(stmt, ast.Import):
                mods = [a.name.split(".", 1)[1] if "." in a.name else "__init__"
                        for a in stmt.names if a.name.split(".")[0] == "replab"]
            for mod in mods:
                if in_function:
                    nested.append((stmt.lineno, mod))
                else:
                    top.append(mod)
            inside = in_function or isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)
            for name in ("body", "orelse", "finalbody"):
                visit([s for s in getattr(stmt, name, []) if isinstance(s, ast.stmt)], inside)
            for handler in getattr(stmt, "handlers", []):
                visit(handler.body, inside)

    visit(ast.parse(path.read_text()).body, False)
    return top, nested


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        top, _ = _imports(path)
        graph[_module(path)] = {m for m in top if m != _module(path)}
    return graph


def test_imports_point_down_the_layers():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        src = _module(path)
        top, _ = _imports(path)
        for mod in top:
            if _layer(mod) > _layer(src):
                wrong.append(f"{src} (layer {_layer(src)}) imports {mod} (layer {_layer(mod)})")
    assert not wrong, "upward imports:\n" + "\n".join(wrong)


def test_no_function_level_imports_of_replab_modules():
    found = [f"{_module(p)}:{line} imports {mod}" for p in sorted(ROOT.rglob("*.py")) for line, mod in _imports(p)[1]]
    assert not found, "import these at the top of the module (a cycle is a layering bug):\n" + "\n".join(found)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk meets in ``graph`` (module -> modules it imports)."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif not state.get(nxt):
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            dfs(node)
    return cycles


def test_no_import_cycles():
    graph = _graph()
    # "engines" means the package: its __init__
    norm = {k: {m if m in graph else f"{m}.__init__" for m in v} for k, v in graph.items()}
    # a package's __init__ importing its own submodules (which import their siblings) is how packages work
    cycles = [c for c in find_cycles(norm) if not all(n.split(".")[0] == c[0].split(".")[0] for n in c)]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_and_resolver_work():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert _resolve("a", ast.parse("from .b import x").body[0]) == ["b"]  # type: ignore[arg-type]
    assert _resolve("engines.local", ast.parse("from ..state import x").body[0]) == ["state"]  # type: ignore[arg-type]
    assert _resolve("engines.local", ast.parse("from .. import relay").body[0]) == ["relay"]  # type: ignore[arg-type]


def test_every_module_lives_in_its_layers_folder():
    """Only the faces (the API, ``python -m replab``, the pytest plugin) sit at the package's top."""
    loose = sorted(p.name for p in ROOT.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "pytest_plugin.py"], loose
