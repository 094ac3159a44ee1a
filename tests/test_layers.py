"""The house's layers, read from the source: orchestrator → platform → core, no circles.

Every import counts, also those inside functions and under TYPE_CHECKING: a
lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORCHESTRATOR = ("finks", "validation")
PLATFORM = ("connectors", "jobs", "flows", "api", "infra")
CORE = ("core",)
PACKAGES = ORCHESTRATOR + PLATFORM + CORE
MAX_LINES = 450


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """module -> the modules of ours it imports (resolved to modules that exist)."""
    files = {_module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                # the longest prefix that is one of our modules
                parts = target.split(".")
                for cut in range(len(parts), 0, -1):
                    candidate = ".".join(parts[:cut])
                    if candidate in files and candidate != name:
                        deps.add(candidate)
                        break
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _ignoring_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ re-exporting its modules is not a circle of two modules."""
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT)


def test_platform_and_core_never_import_the_orchestrator(graph: dict[str, set[str]]) -> None:
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() if m.split(".")[0] in PLATFORM + CORE
                    for d in deps if d.split(".")[0] in ORCHESTRATOR)
    assert upward == []


def test_core_imports_nothing_of_the_platform(graph: dict[str, set[str]]) -> None:
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() if m.split(".")[0] in CORE
                    for d in deps if d.split(".")[0] not in CORE)
    assert upward == []


def test_no_two_modules_import_each_other(graph: dict[str, set[str]]) -> None:
    assert cycles(_ignoring_package_inits(graph)) == []


def test_no_source_file_is_over_the_limit() -> None:
    long = sorted(f"{p.relative_to(ROOT)}: {n}" for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
                  if (n := len(p.read_text().splitlines())) > MAX_LINES)
    assert long == []


def test_the_cycle_finder_finds_a_loop_and_a_relative_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")
    (pkg / "b.py").write_text("from .c import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\nx = 1\n")
    found = import_graph(tmp_path, ("pkg",))
    assert found["pkg.b"] == {"pkg.c"}
    assert cycles(found) == [["pkg.a", "pkg.b", "pkg.c"]]
