"""The jobs package's import graph: it never reaches up to the orchestrator, and
no two of its modules import each other, directly or in a loop."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "jobs"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, wherever the import statement is (TYPE_CHECKING, functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in JOBS.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in files and m != name}
            for name, path in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}          # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_jobs_modules_import_no_loop() -> None:
    graph = _graph()
    assert "jobs.dbt.run" in graph and "jobs.quality" in graph["jobs.dbt.run"]
    cycle = _cycle(graph)
    assert cycle is None, "import loop: " + " -> ".join(cycle or [])


def test_cycle_finder_names_the_loop() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_jobs_never_import_the_orchestrator() -> None:
    upward = {
        str(path.relative_to(ROOT)): sorted(m for m in _imports(path)
                                             if m.split(".")[0] in ("finks", "validation"))
        for path in JOBS.rglob("*.py")
    }
    assert {path: mods for path, mods in upward.items() if mods} == {}
