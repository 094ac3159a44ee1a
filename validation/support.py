"""What the Prefect and pipeline checks share, and the tests that exercise the same seams.

* ``stack``: the local stack of ``finks dev up`` (started idempotently, never
  stopped here), with Prefect's client pointed at its server;
* ``fmp``: the settings with the FMP source a check runs against (real FMP when
  a key is set, else a simulator of our own, e.g. one that injects faults);
* ``scratch_lake``: the settings with a throw-away lake, for scenarios that
  break things (the state dir, Prefect and moto are the stack's; the lake's
  locks and dbt warehouse are its own);
* ``own_emulator``: the settings with a moto server of the check's own,
  bootstrapped like the stack's, for checks that read back what their run
  sent to AWS (CloudWatch datapoints in a window) while other runs go on;
* ``deploy_flows``: prefect.yaml's deployments applied in-process, without
  leaving Prefect's script imports behind (they would shadow dbt);
* ``create_glue_job`` and ``moto_transition``: the Glue job the
  infrastructure would create, and moto's state manager, which decides how
  a job run (or an ECS task) progresses;
* ``partition_tables``: a zone's Parquet partitions in a canonical row order;
* ``timed_pipeline`` and ``metric_stats``: a daily-pipeline run with the time
  window its metrics fall in, and what CloudWatch holds for a metric in a window.

Everything takes and returns Settings objects and passes them to the flows.
The one change to the process environment is Prefect's own client, which
reads its server from there (``flows.common.use_prefect_server`` in ``stack``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.common import RetryPolicy

if TYPE_CHECKING:
    from connectors.fmp.simulator import SimulatorServer
    from core.settings import Settings

# Destructive scenarios retry quickly: their failures are the point, not a flaky network.
SCRATCH_RETRY = RetryPolicy(delay_s=1)
NO_RETRY = RetryPolicy(retries=0)


# ---- the stack and its sources ----------------------------------------------

def stack(settings: Settings, services: Sequence[str] | None = None, *, bootstrap: bool = True) -> Settings:
    """Start what is not running of the local stack; point Prefect at its server."""
    from finks.devstack import up
    from flows.common import use_prefect_server

    up(settings, services, bootstrap=bootstrap)
    use_prefect_server(settings)
    return settings


@contextmanager
def simulator(**options: Any) -> Iterator[SimulatorServer]:
    """An FMP simulator of our own on a free port (options: limit, faults, ...)."""
    from connectors.fmp.simulator import SimulatorServer

    with SimulatorServer(port=0, **options) as sim:
        yield sim


def with_fmp(settings: Settings, base_url: str) -> Settings:
    """The settings with FMP at ``base_url`` (a simulator's, typically)."""
    return settings.model_copy(update={"fmp_base_url": base_url.rstrip("/")})


@contextmanager
def fmp(settings: Settings, **sim_options: Any) -> Iterator[Settings]:
    """The settings with the check's FMP source: real FMP if a key is set and no
    simulator options are asked for, else a simulator that lives for the block."""
    if not settings.uses_simulator and not sim_options:
        yield settings
        return
    with simulator(**sim_options) as sim:
        yield with_fmp(settings, sim.base_url)


def scratch_lake(settings: Settings, where: Path) -> Settings:
    """The settings with an empty lake at ``where`` (a previous attempt's leftovers
    would change the scenario, so they are removed)."""
    import shutil

    shutil.rmtree(where, ignore_errors=True)
    return settings.model_copy(update={"lake_uri": str(where)})


@contextmanager
def own_emulator(settings: Settings) -> Iterator[Settings]:
    """The settings with a moto server of this check's own (a child process on a free port,
    bootstrapped like the stack's: buckets, the FMP secret, the Glue database). What the check
    then reads from CloudWatch is what its own run sent, whatever other pipelines emit meanwhile."""
    from finks.devstack import bootstrap_data_plane
    from validation.emulator import moto_server

    with moto_server() as url:
        own = settings.model_copy(update={"s3_endpoint_url": url})
        bootstrap_data_plane(own)
        yield own


def on_own_emulator(ctx: Any, name: str, date: str,
                    read_back: Callable[[Settings, dict[str, Any], dt.datetime, dt.datetime], Any]) -> Any:
    """Run the daily pipeline for ``date`` on a scratch lake ``<work>/<name>/lake`` with a moto
    server of its own, and ``read_back(lake, result, start, end)`` before that server stops:
    what the check then counts in CloudWatch for the run's window is the run's alone."""
    scratch = scratch_lake(stack(ctx.settings), ctx.work_dir / name / "lake")
    with own_emulator(scratch) as lake, fmp(lake) as source:
        result, start, end = timed_pipeline(source, date)
        return read_back(lake, result, start, end)


def deploy_flows(settings: Settings) -> dict[str, Any]:
    """``flows.deploy.apply_deployments`` in this process, leaving its imports as they were.

    Prefect loads each entrypoint as a script: flows/ goes first on sys.path and
    each flow file becomes a top-level module (``master_flow``, ``dbt_flow``…),
    which would shadow a library of the same name for whatever runs next. (That
    is why no file in flows/ is named after a library: flows/dbt.py once hid dbt.)
    """
    import sys

    from flows.deploy import apply_deployments

    path, before = list(sys.path), set(sys.modules)
    flows_dir = str(settings.root / "flows")
    try:
        return apply_deployments(settings)
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - before:
            if "." not in name and str(getattr(sys.modules[name], "__file__", "") or "").startswith(flows_dir):
                del sys.modules[name]


# ---- moto: Glue jobs and its state manager ----------------------------------

def create_glue_job(settings: Settings) -> str:
    """The bronze→silver Glue job as the infrastructure creates it (S13), in moto; its name."""
    from core.aws import client as aws_client
    from flows.glue import job_name

    glue = aws_client(settings, "glue")
    name = job_name(settings)
    try:
        glue.create_job(Name=name, Role="arn:aws:iam::123456789012:role/glue",
                        Command={"Name": "glueetl", "ScriptLocation": "s3://scripts/bronze_to_silver.py"})
    except glue.exceptions.AlreadyExistsException:
        pass
    return name


def moto_transition(settings: Settings, model: str, transition: dict[str, Any] | None) -> None:
    """Set (or with None, unset) how moto moves ``model`` (e.g. ``glue::job_run``) through its states."""
    import httpx

    api = f"{settings.s3_endpoint}/moto-api/state-manager"
    if transition is None:
        httpx.post(f"{api}/unset-transition", json={"model_name": model}).raise_for_status()
    else:
        httpx.post(f"{api}/set-transition",
                   json={"model_name": model, "transition": transition}).raise_for_status()


@contextmanager
def moto_progression(settings: Settings, model: str, transition: dict[str, Any]) -> Iterator[None]:
    """``moto_transition`` for the block only."""
    moto_transition(settings, model, transition)
    try:
        yield
    finally:
        moto_transition(settings, model, None)


# ---- the lake's contents ------------------------------------------------------

def canonical(table: Any) -> Any:
    """Rows in a fixed order: a partition is a set of rows, the writer's order is no contract."""
    import pyarrow.types as pt

    keys = [c for c in table.column_names if not pt.is_nested(table.schema.field(c).type)]
    return table.sort_by([(c, "ascending") for c in keys])


def partition_tables(root: Path, pattern: str) -> dict[str, Any]:
    """{path under root: table in canonical order} for the Parquet files matching ``pattern``."""
    import pyarrow.parquet as pq

    return {str(p.relative_to(root)): canonical(pq.read_table(p)) for p in sorted(root.glob(pattern))}


# ---- a pipeline run and its metrics ----------------------------------------------

def timed_pipeline(settings: Settings, date: str) -> tuple[dict[str, Any], dt.datetime, dt.datetime]:
    """Run the daily pipeline for ``date``; (result, start, end) of the window its metrics
    fall in. A failed run is a failed check."""
    from finks.checks import CheckFailed
    from flows.master_flow import PipelineFailed, daily_pipeline

    start = dt.datetime.now(dt.UTC)
    try:
        result = daily_pipeline(date=date, settings=settings, retry=SCRATCH_RETRY)
    except PipelineFailed as exc:
        raise CheckFailed(f"the daily pipeline for {date} failed: {exc}",
                          figures={"steps": {s["step"]: s["status"] for s in exc.steps}}) from exc
    # The emulator compares whole seconds and excludes the end: leave a margin.
    return result, start, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)


def metric_stats(settings: Settings, name: str, dimensions: dict[str, str],
                 start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """What CloudWatch holds for ``name`` with exactly these dimensions (plus Environment)
    between start and end: {"samples", "sum", "min", "max"} (None without datapoints)."""
    from core.aws import client as aws_client
    from flows import metrics

    dims = [{"Name": "Environment", "Value": settings.env}, *({"Name": k, "Value": v} for k, v in dimensions.items())]
    points = aws_client(settings, "cloudwatch").get_metric_statistics(
        Namespace=metrics.NAMESPACE, MetricName=name, Dimensions=dims, StartTime=start, EndTime=end,
        Period=60, Statistics=["SampleCount", "Sum", "Minimum", "Maximum"])["Datapoints"]
    if not points:
        return {"samples": 0, "sum": None, "min": None, "max": None}
    return {"samples": int(sum(p["SampleCount"] for p in points)), "sum": sum(p["Sum"] for p in points),
            "min": min(p["Minimum"] for p in points), "max": max(p["Maximum"] for p in points)}
