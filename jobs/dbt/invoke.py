"""dbt in this process: one dbtRunner invocation and what it reports per node.

Every invocation is handed the project already parsed (see jobs.dbt.manifests),
so only the first of a process parses, and that one partially when it can.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError
from jobs.dbt.args import DbtArgs
from jobs.dbt.manifests import lookup, parsing, plan, remember
from jobs.dbt.results import FAILED, NodeResult


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


def invoke(command: list[str], args: DbtArgs, *, results_file: str | None = None,
           seconds: dict[str, float] | None = None) -> Outcome:
    """``dbt <command> <args>`` on the shared manifest.

    ``results_file``: the command writes only its results (e.g. ``sources.json``) into the
    run's target. dbt would write manifest.json with them, again: the build before it
    already wrote that manifest, and serialising it is most of what a short command costs.
    ``seconds``: the wall clock of the command, and of the parse when one ran, are added there.
    """
    argv = [*command, *args.cli()]
    manifest = shared_manifest(args, seconds)
    started = time.perf_counter()
    res = _run([*argv, "--no-write-json"] if results_file else argv, manifest)
    _add(seconds, " ".join(itertools.takewhile(lambda word: not word.startswith("-"), command)),
         time.perf_counter() - started)
    if results_file and res.result is not None and hasattr(res.result, "write"):
        res.result.write(str(args.run_dir / "target" / results_file))   # dbt's own writer
    error = None
    if res.exception is not None:
        error = f"{type(res.exception).__name__}: {res.exception}".strip()
    return Outcome(bool(res.success), parse_nodes(res.result), error)


def shared_manifest(args: DbtArgs, seconds: dict[str, float] | None = None) -> Any | None:
    """The project parsed as ``args`` see it: held in memory, else ``dbt parse``d now
    (its wall clock added to ``seconds["parse"]``).

    None when the parse fails: the command then parses itself and reports why.
    """
    parse = plan(args)
    manifest = lookup(parse.key)
    if manifest is not None:
        return manifest
    target = parse.slot / "target" if parse.slot else None
    # --no-write-json: nothing reads this parse's manifest.json (the Manifest is handed on in
    # memory); partial_parse.msgpack, which the next process starts from, is written anyway.
    argv = ["parse", "--partial-parse" if parse.slot else "--no-partial-parse", "--no-write-json",
            *args.cli(target_path=target, vars=parse.vars)]
    started = time.perf_counter()
    with parsing(parse):
        res = _run(argv, None)
    _add(seconds, "parse", time.perf_counter() - started)
    if not res.success or res.result is None:
        return None
    remember(parse.key, res.result)
    return res.result


def _add(seconds: dict[str, float] | None, name: str, value: float) -> None:
    if seconds is not None:
        seconds[name] = round(seconds.get(name, 0.0) + value, 3)


def _run(argv: list[str], manifest: Any | None) -> Any:
    from dbt.cli.main import dbtRunner

    try:
        return dbtRunner(manifest=manifest).invoke(argv)
    finally:
        _release_duckdb()


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
