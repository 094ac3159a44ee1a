"""api/ is one layer: its modules import each other without a loop, and never finks."""

from __future__ import annotations

import ast
from pathlib import Path

API = Path(__file__).resolve().parent.parent / "api"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            # `from api import queries` imports the module api.queries
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {f"api.{p.stem}": p for p in API.glob("*.py") if p.stem != "__init__"}
    return {name: _imports(path) & modules.keys() for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> list[str] | None:
        if node in trail:
            return trail[trail.index(node) :] + [node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            if found := visit(target, [*trail, node]):
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        if found := visit(start, []):
            return found
    return None


def test_the_import_check_finds_a_loop() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_api_modules_import_each_other_without_a_loop() -> None:
    graph = _graph()
    assert {"api.backends", "api.athena", "api.service"} <= graph.keys()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    # both backends share their types from below, and neither imports the other
    assert "api.backend_types" in graph["api.backends"] & graph["api.athena"]
    assert not graph["api.backends"] & {"api.athena", "api.service"}
    assert not graph["api.athena"] & {"api.backends", "api.service"}


def test_api_never_imports_the_orchestrator() -> None:
    upward = {
        path.name: sorted(m for m in _imports(path) if m == "finks" or m.startswith("finks."))
        for path in API.glob("*.py")
    }
    assert {name: found for name, found in upward.items() if found} == {}
