"""Tiny plans for orchestrator tests, written as real YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def session(sid: str, *, week: int = 1, deps: tuple[str, ...] = (), checks: list[dict[str, Any]] | None = None,
            deliverables: tuple[str, ...] = (), actions: list[dict[str, Any]] | None = None,
            estimate: tuple[float, float] = (1, 2), **extra: Any) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = [{"title": f"work of {sid}"}]
    for action in actions or []:
        tasks.append({"title": f"action of {sid}", "action": action})
    data = {
        "id": sid,
        "title": f"Session {sid} title",
        "week": week,
        "area": "finks-test",
        "estimate_hours": list(estimate),
        "depends_on": list(deps),
        "tasks": tasks,
        "criteria": [{"text": f"{sid} works", "checks": checks or [{"id": "ok", "shell": "true"}]}],
        "deliverables": list(deliverables),
    }
    data.update(extra)
    return data


def write_plan(directory: Path, sessions: list[dict[str, Any]], gates: dict[str, Any] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for s in sessions:
        (directory / f"{s['id']}.yaml").write_text(yaml.safe_dump(s, sort_keys=False, allow_unicode=True))
    if gates is not None:
        (directory / "gates.yaml").write_text(yaml.safe_dump(gates, sort_keys=False))
    return directory
