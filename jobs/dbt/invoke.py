"""dbt in this process: one dbtRunner invocation and what it reports per node.

dbt reads its profile from the environment (``env_var()`` in
dbt_project/profiles.yml), so the caller scopes :func:`dbt_env` around the
invocations of a run; everything else is a command-line argument.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from jobs.dbt.results import FAILED, NodeResult

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


@dataclass(frozen=True)
class Outcome:
    """One dbt invocation: did dbt succeed, each node's result, the exception if any."""

    success: bool
    nodes: list[NodeResult]
    error: str | None = None

    @property
    def clean(self) -> bool:
        """Succeeded with no exception and no failing node."""
        return self.success and self.error is None and not any(n.status in FAILED for n in self.nodes)


def require_adapter(target: str) -> None:
    if target != "athena":
        return
    try:
        import dbt.adapters.athena  # noqa: F401
    except ImportError:
        raise ConfigError("the athena target needs dbt-athena, which is not installed here",
                          hint="it runs in the dbt image on ECS (dbt_project/Dockerfile)") from None


def common_args(target: str, run_dir: Path, vars: dict[str, Any], *, quiet: bool) -> list[str]:
    """The arguments every command of a run shares; target and log paths are per run so
    parallel runs never share them."""
    args = ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
            "--target", target, "--target-path", str(run_dir / "target"),
            "--log-path", str(run_dir / "logs"), "--vars", json.dumps(vars)]
    return [*args, "--quiet"] if quiet else args


def dbt_env(db: Path) -> dict[str, str]:
    """The local target's DuckDB file, and no usage tracking."""
    return {"FINKS_DBT_DUCKDB_PATH": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1"}


def invoke(args: list[str]) -> Outcome:
    from dbt.cli.main import dbtRunner

    try:
        res = dbtRunner().invoke(args)
    finally:
        _release_duckdb()
    error = None
    if res.exception is not None:
        error = f"{type(res.exception).__name__}: {res.exception}".strip()
    return Outcome(bool(res.success), parse_nodes(res.result), error)


def parse_nodes(result: Any) -> list[NodeResult]:
    """The per-node results of a run, test or freshness artifact (none for the others)."""
    out = []
    for r in getattr(result, "results", None) or []:
        node = getattr(r, "node", None)
        status = getattr(r.status, "value", str(r.status))
        out.append(NodeResult(
            unique_id=getattr(node, "unique_id", "?"),
            resource_type=str(getattr(getattr(node, "resource_type", None), "value", "")),
            name=getattr(node, "name", "?"), status=str(status), message=getattr(r, "message", None),
            failures=getattr(r, "failures", None),
            seconds=round(float(getattr(r, "execution_time", 0) or 0), 3)))
    return out


def _release_duckdb() -> None:
    """dbt-duckdb keeps its database open in the process after an invocation;
    close it so the file can be exported, copied and reopened."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    env = getattr(DuckDBConnectionManager, "_ENV", None)
    if env is not None and hasattr(env, "close"):
        env.close()
    DuckDBConnectionManager.close_all_connections()
