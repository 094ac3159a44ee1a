"""What one dbt run did: a result per node, and the run's verdict."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from core.gold import Published

# A node in one of these states fails the audit ("fail" and "error" for a test).
FAILED = frozenset({"error", "fail", "runtime error"})
TEST_TYPES = ("test", "unit_test")


@dataclass
class NodeResult:
    unique_id: str
    resource_type: str
    name: str
    status: str
    message: str | None = None
    failures: int | None = None
    seconds: float = 0.0


@dataclass
class DbtResult:
    command: str
    target: str
    run_id: str
    ok: bool
    nodes: list[NodeResult] = field(default_factory=list)
    failed_tests: list[str] = field(default_factory=list)
    freshness: dict[str, str] = field(default_factory=dict)
    published: bool = False
    publish_note: str = ""
    error: str | None = None
    run_dir: str = ""
    artifacts: str = ""     # where the run's dbt artifacts (or docs) were kept in the lake
    quality: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)   # wall clock per dbt command ("parse", ...)

    @property
    def tests(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.resource_type in TEST_TYPES]

    @property
    def failed_nodes(self) -> list[str]:
        return [n.name for n in self.nodes if n.status in FAILED]

    def publication(self, paths: dict[str, str]) -> Published:
        """The ``_published.json`` record of this run, its marts at ``paths``."""
        passed = sum(1 for n in self.tests if n.status == "pass")
        return dataclasses.replace(Published.now(self.run_id, tests_passed=passed), paths=paths)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
