"""Tiny plans for orchestrator tests, written as real YAML files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


def session(sid: str, *, week: int = 1, deps: tuple[str, ...] = (), checks: list[dict[str, Any]] | None = None,
            deliverables: tuple[str, ...] = (), actions: list[dict[str, Any]] | None = None,
            estimate: tuple[float, float] = (1, 2), criteria: list[dict[str, Any]] | None = None,
            **extra: Any) -> dict[str, Any]:
    """One session; ``criteria`` (each ``{"text", "checks", "envs"?}``) replaces the single default one."""
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
        "criteria": criteria or [{"text": f"{sid} works", "checks": checks or [{"id": "ok", "shell": "true"}]}],
        "deliverables": list(deliverables),
    }
    data.update(extra)
    return data


def criterion(text: str, *checks: dict[str, Any], envs: list[str] | None = None) -> dict[str, Any]:
    return {"text": text, "checks": list(checks), **({"envs": envs} if envs else {})}


def write_plan(directory: Path, sessions: list[dict[str, Any]], gates: dict[str, Any] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for s in sessions:
        (directory / f"{s['id']}.yaml").write_text(yaml.safe_dump(s, sort_keys=False, allow_unicode=True))
    if gates is not None:
        (directory / "gates.yaml").write_text(yaml.safe_dump(gates, sort_keys=False))
    return directory


REPO = Path(__file__).resolve().parent.parent


@dataclass
class CliEnv:
    """A repository root, a plan, a state and handoffs, each in tmp_path; the CLI pointed at them."""

    root: Path
    plan: Path
    state: Path
    handoffs: Path

    def invoke(self, *args: str) -> Any:
        from typer.testing import CliRunner

        from finks.cli import app

        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    def json(self, *args: str) -> dict[str, Any]:
        result = self.invoke(*args, "--json")
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def status(self, envname: str = "local") -> dict[str, str]:
        return {s["id"]: s["status"] for s in self.json("status", "--env", envname)["sessions"]}

    def history(self, envname: str = "local") -> list[dict[str, Any]]:
        path = self.state / "state" / envname / "history.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def cli_env(tmp_path: Path, monkeypatch: Any) -> CliEnv:
    e = CliEnv(tmp_path / "repo", tmp_path / "plan", tmp_path / "state", tmp_path / "handoffs")
    e.root.mkdir()
    for key, value in {"FINKS_ROOT": e.root, "FINKS_SESSIONS": e.plan, "FINKS_STATE_DIR": e.state,
                       "FINKS_HANDOFFS": e.handoffs, "PYTHONPATH": REPO}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.delenv("FINKS_ENV", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return e
