"""The package's import graph has no cycle, and every module imports on its own.

The graph holds every import of a ``dbnetpp`` module anywhere in a file, at module level or inside a
function (a deferred import only hides a cycle); ``from .pkg import name`` is an edge to the
submodule ``pkg.name`` when there is one, else to the package ``pkg`` itself.  (The implicit import of
a parent package before its submodule is not an edge: a package's ``__init__`` importing its own
submodules is how packages are made.)
"""
from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "dbnetpp"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: Dict[str, Path] = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> Dict[str, Set[str]]:
    graph: Dict[str, Set[str]] = {}
    for name, path in MODULES.items():
        is_package = path.name == "__init__.py"
        targets: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            found: List[str] = []
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                found = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
            targets.update(t for t in found if t in MODULES and t != name)
        graph[name] = targets
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    out: List[List[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_known_edges():
    graph = import_graph()
    assert len(MODULES) > 50
    assert "dbnetpp.modeling.detector" in graph["dbnetpp.config"]  # the Architecture rules' owner
    assert "dbnetpp.engine.optim" in graph["dbnetpp.config"]
    assert "dbnetpp.registered" in graph["dbnetpp.config"]  # a deferred import counts


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_on_its_own(name):
    saved = {k: v for k, v in sys.modules.items() if k == "dbnetpp" or k.startswith("dbnetpp.")}
    for k in saved:
        del sys.modules[k]
    try:
        importlib.import_module(name)
    finally:
        for k in [k for k in sys.modules if k == "dbnetpp" or k.startswith("dbnetpp.")]:
            del sys.modules[k]
        sys.modules.update(saved)
