"""What every dbt command of one run shares: its arguments and its environment.

dbt reads its profile from the environment (``env_var()`` in
dbt_project/profiles.yml), so the caller scopes :func:`dbt_env` around the
invocations of a run; everything else is a command-line argument.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DUCKDB_PATH_VAR = "FINKS_DBT_DUCKDB_PATH"      # read by dbt_project/profiles.yml (target local)
LOG_LEVEL_FILE_VAR = "DBT_LOG_LEVEL_FILE"       # dbt's own: the level of <run>/logs/dbt.log


@dataclass(frozen=True)
class DbtArgs:
    """The target, vars and paths of one run; target and log paths are per run so
    parallel runs never share them."""

    target: str
    run_dir: Path
    vars: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False
    parse_root: Path | None = None      # where parses are kept between runs (jobs.dbt.manifests)
    project_dir: Path = PROJECT_DIR

    def cli(self, *, target_path: Path | None = None, log_path: Path | None = None,
            vars: dict[str, Any] | None = None) -> list[str]:
        args = ["--project-dir", str(self.project_dir), "--profiles-dir", str(self.project_dir),
                "--target", self.target,
                "--target-path", str(target_path or self.run_dir / "target"),
                "--log-path", str(log_path or self.run_dir / "logs"),
                "--vars", json.dumps(self.vars if vars is None else vars, sort_keys=True)]
        if not os.environ.get(LOG_LEVEL_FILE_VAR):
            # dbt's file log defaults to debug: every statement, timing and event, each line
            # scrubbed of the environment's secrets, a fifth of a build here. Info keeps what
            # the console shows; DBT_LOG_LEVEL_FILE=debug brings the rest back.
            args += ["--log-level-file", "info"]
        return [*args, "--quiet"] if self.quiet else args


def dbt_env(db: Path) -> dict[str, str]:
    """The local target's DuckDB file, and no usage tracking."""
    return {DUCKDB_PATH_VAR: str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
