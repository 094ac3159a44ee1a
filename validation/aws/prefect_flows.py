"""Live probes for what the flows run with and what they did on an AWS environment: S8's test
flow, S10's blocks and S16's daily pipeline, read from the environment's Prefect (reached as
:class:`validation.aws.prefect.PrefectSite` says) and, for the flows' output, the stack's lake
buckets.

The flow probes read the record the server keeps — the latest *finished* run of each flow in the
last day (scheduled and running runs are not judged) — and check that what a completed run
claims is in the lake: bronze manifests, silver partitions, gold's ``_published.json``. They
start nothing: a verification must be repeatable and free, and the daily deployment already
creates and runs every flow once a day on the ECS work pool.

Idempotence (S16 "Flows are idempotent") has no probe here: showing it takes running a date
twice and comparing the partitions, which writes to the environment's lake; two completed runs
of one date in the history say nothing about the data they left.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live
from validation.aws.prefect import PrefectSite, reached

WINDOW_HOURS = 26  # the daily run at 02:00 UTC, and two hours for it to finish
FAILURE_DAYS = 7
SUBFLOWS = ("ingestion", "transformation", "dbt")
RETRYING_TASKS = ("ingest-dataset", "bronze-to-silver", "dbt-build")  # flows/tasks.py, with the run's RetryPolicy
DAILY = "daily-pipeline/daily"
ECS_BLOCK_SLUG = "finks-ecs-task"  # flows/blocks.py's EcsTaskBlock


def _since(hours: float) -> Any:  # Prefect's filters type their times as its own DateTime
    return dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)


def _finished(client: Any, flow: str, since: Any, *, state: str | None = None, limit: int = 1) -> list[Any]:
    """The runs of ``flow`` that finished since ``since`` (of one state type, or any final one), latest first."""
    from prefect.client.schemas import filters as pf
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    kinds = [StateType(k) for k in ([state] if state else ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"])]
    return list(client.read_flow_runs(
        flow_filter=pf.FlowFilter(name=pf.FlowFilterName(any_=[flow])),
        flow_run_filter=pf.FlowRunFilter(state=pf.FlowRunFilterState(type=pf.FlowRunFilterStateType(any_=kinds)),
                                         end_time=pf.FlowRunFilterEndTime(after_=since)),
        sort=FlowRunSort.END_TIME_DESC, limit=limit))


def _children(client: Any, parent: Any) -> list[tuple[str, Any]]:
    """(flow name, run) of a flow run's sub-flow runs, in the order they started."""
    from prefect.client.schemas import filters as pf
    from prefect.client.schemas.sorting import FlowRunSort

    runs = client.read_flow_runs(flow_run_filter=pf.FlowRunFilter(
        parent_flow_run_id=pf.FlowRunFilterParentFlowRunId(any_=[parent.id])), sort=FlowRunSort.START_TIME_ASC)
    ids = list({r.flow_id for r in runs})
    names = {f.id: f.name for f in client.read_flows(flow_filter=pf.FlowFilter(id=pf.FlowFilterId(any_=ids)))} if ids else {}
    return [(names.get(r.flow_id, "?"), r) for r in runs]


def _state(run: Any) -> str:
    return str(run.state_type.value) if run.state_type else "unknown"


def _latest_completed(live: Live, site: PrefectSite, client: Any, flow: str) -> Any:
    """The latest finished run of ``flow`` in the window, which must be COMPLETED."""
    runs = _finished(client, flow, _since(WINDOW_HOURS))
    if not runs:
        raise live.fail([f"no {flow} flow run finished on {site.url} in the last {WINDOW_HOURS} h"], {"flow": flow},
                        f"check the schedule of {DAILY} and the ECS worker (validation.aws.prefect:ecs_work_pool)")
    run = runs[0]
    if _state(run) != "COMPLETED":
        message = (run.state.message or "")[:200] if run.state else ""
        raise live.fail([f"the latest {flow} flow run, {run.name} ({run.id}), ended {_state(run)}"
                         + (f": {message}" if message else "")],
                        {"flow": flow, "flow_run": str(run.id), "state": _state(run)},
                        f"read its logs ({site.url}/runs/flow-run/{run.id}) and rerun the date "
                        f"(`finks pipeline run --env {live.ctx.env} --date …`)")
    return run


def _run_date(run: Any) -> str:
    from flows.calendar import previous_trading_day

    date = (run.parameters or {}).get("date")
    return str(date) if date else previous_trading_day(run.start_time.date()).isoformat()


def _keys(live: Live, bucket: str, prefix: str) -> list[str]:
    pages = live.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _flow_evidence(live: Live, site: PrefectSite, run: Any, flow: str, landed: str, figures: dict[str, Any]) -> Evidence:
    figures = {"flow_run": str(run.id), "name": run.name, "ended": run.end_time.isoformat(), **figures}
    return live.evidence(f"{flow} flow run {run.name} COMPLETED {run.end_time:%Y-%m-%d %H:%M} UTC; {landed}", figures,
                         site.notes())


# ---- S8: a flow is created and run ----------------------------------------------------------
def deployment_run_completed(ctx: CheckContext) -> Evidence:
    """A flow run created from a deployment — through the API, by the schedule or by hand — ran on
    the environment's ECS work pool and reached COMPLETED in the last day.

    It reads such a run rather than starting one: a check that creates runs would put an ECS
    task, its cost and its writes into every `finks verify`, and would fail for reasons of its own
    (a busy pool) when nothing is wrong; the daily deployment creates and runs a flow every day,
    so a recent completed deployment run is the proof the criterion asks for."""
    from prefect.client.schemas import filters as pf
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    live, site = reached(ctx)
    pool = str(live.output("ecs_work_pool") or f"{live.config.prefix}-ecs")
    with site.client() as client:
        runs: Any = client.read_flow_runs(
            flow_run_filter=pf.FlowRunFilter(
                deployment_id=pf.FlowRunFilterDeploymentId(is_null_=False),
                state=pf.FlowRunFilterState(type=pf.FlowRunFilterStateType(any_=[StateType.COMPLETED])),
                end_time=pf.FlowRunFilterEndTime(after_=_since(WINDOW_HOURS))),
            work_pool_filter=pf.WorkPoolFilter(name=pf.WorkPoolFilterName(any_=[pool])),
            sort=FlowRunSort.END_TIME_DESC, limit=1)
        deployment = client.read_deployment(runs[0].deployment_id).name if runs else None
    if not runs:
        raise live.fail([f"no deployment's flow run COMPLETED on work pool {pool} ({site.url}) in the last "
                         f"{WINDOW_HOURS} h"], {"pool": pool},
                        f"run one (`prefect deployment run {DAILY}`) and read its logs; check the ECS worker")
    run = runs[0]
    return live.evidence(f"flow run {run.name} of deployment {deployment} COMPLETED on ECS work pool {pool} at "
                         f"{run.end_time:%Y-%m-%d %H:%M} UTC", {"flow_run": str(run.id), "deployment": deployment,
                                                               "pool": pool}, site.notes())

# ---- S10: the blocks --------------------------------------------------------------------
def blocks_load(ctx: CheckContext) -> Evidence:
    """The blocks `finks blocks apply` saves (flows/blocks.py) exist in this Prefect and load: an
    S3 block per zone naming the stack's bucket, the AWS credentials for the stack's region, the
    ECS task block naming its cluster and task families, the FMP key (non-empty; never shown).

    Each document is read and validated against its block class rather than `Block.load`ed:
    a load also records a "loaded" event in the environment's Prefect, and a probe only reads."""
    from prefect.blocks.system import Secret
    from prefect.exceptions import ObjectNotFound
    from prefect_aws import AwsCredentials, S3Bucket
    from pydantic import ValidationError

    from flows.blocks import ZONES, names
    from flows.ecs import EcsTaskSettings

    live, site = reached(ctx)
    settings = live.settings
    n = names(settings)
    buckets, families = live.buckets(), live.task_families()
    loaded: dict[str, Any] = {}
    problems: list[str] = []
    kinds: dict[str, tuple[str, Any]] = {
        n["aws"]: (AwsCredentials.get_block_type_slug(), AwsCredentials.model_validate),
        **{n[z]: (S3Bucket.get_block_type_slug(), S3Bucket.model_validate) for z in ZONES},
        n["ecs"]: (ECS_BLOCK_SLUG, EcsTaskSettings.from_dict), n["fmp"]: (Secret.get_block_type_slug(), Secret.model_validate)}
    with site.client() as client:
        for name, (slug, load) in kinds.items():
            try:
                loaded[name] = load(client.read_block_document_by_name(name, slug).data)
            except ObjectNotFound:
                problems.append(f"block {name} ({slug}) does not exist on {site.url}")
            except (ValidationError, TypeError) as exc:
                problems.append(f"block {name} ({slug}) does not load: {exc}")
    creds = loaded.get(n["aws"])
    if creds is not None and creds.region_name != settings.region:
        problems.append(f"block {n['aws']} is for region {creds.region_name}, the stack's is {settings.region}")
    for zone in ZONES:
        block = loaded.get(n[zone])
        if block is not None and block.bucket_name != buckets.get(zone):
            problems.append(f"block {n[zone]} names bucket {block.bucket_name}, not the stack's {buckets.get(zone)}")
    ecs = loaded.get(n["ecs"])
    if ecs is not None:
        if ecs.cluster not in (live.cluster_name(), live.output("ecs_cluster_arn")):
            problems.append(f"block {n['ecs']} runs tasks on cluster {ecs.cluster}, not {live.cluster_name()}")
        strays = sorted(f for f in ecs.task_definitions.values() if f not in families.values())
        if strays:
            problems.append(f"block {n['ecs']} names task families {strays} the stack does not have")
    secret = loaded.get(n["fmp"])
    if secret is not None and not secret.get():
        problems.append(f"block {n['fmp']} holds an empty FMP key")
    figures = {"blocks": sorted(loaded), "missing": sorted(set(kinds) - set(loaded)), "buckets": buckets}
    if problems:
        raise live.fail(problems, figures, f"run `finks blocks apply --env {ctx.env}` (with FMP_API_KEY set)")
    return live.evidence(f"{len(loaded)} blocks load from {site.url}: S3 {', '.join(ZONES)} on the stack's buckets, "
                         f"{n['aws']} ({settings.region}), {n['ecs']} on {loaded[n['ecs']].cluster}, {n['fmp']}", figures,
                         site.notes())


# ---- S16: the daily pipeline's flows ------------------------------------------------------------
def ingestion_completes(ctx: CheckContext) -> Evidence:
    """The latest ingestion run of the last day COMPLETED, and bronze holds a manifest for each of
    its datasets on its date (a manifest is written last, once a partition is complete)."""
    from flows.common import DEFAULT_DATASETS

    return _landed(ctx, "ingestion", "bronze", lambda ds, date: f"fmp/{ds}/date={date}/", "/_manifest.json",
                   lambda run: (run.parameters or {}).get("datasets") or DEFAULT_DATASETS,
                   "the connector task's logs")


def transformation_processes(ctx: CheckContext) -> Evidence:
    """The latest transformation run of the last day COMPLETED, and silver holds Parquet for each
    of its datasets on its date."""
    from flows.common import DEFAULT_DATASETS
    from jobs.datasets import ALIASES

    return _landed(ctx, "transformation", "silver", lambda ds, date: f"{ds}/date={date}/", ".parquet",
                   lambda run: (run.parameters or {}).get("datasets") or [ALIASES.get(d, d) for d in DEFAULT_DATASETS],
                   "the Glue job run's logs")


def _landed(ctx: CheckContext, flow: str, zone: str, prefix: Any, suffix: str, datasets: Any, logs: str) -> Evidence:
    """The latest run of ``flow`` COMPLETED, and ``zone`` holds a ``suffix`` object under each
    dataset's ``prefix(ds, date)`` for the run's date."""
    live, site = reached(ctx)
    with site.client() as client:
        run = _latest_completed(live, site, client, flow)
    date, bucket = _run_date(run), live.buckets()[zone]
    found = {ds: [k for k in _keys(live, bucket, prefix(ds, date)) if k.endswith(suffix)] for ds in datasets(run)}
    figures = {"date": date, "bucket": bucket, "objects": {ds: len(keys) for ds, keys in found.items()}}
    missing = [f"{flow} run {run.name} COMPLETED but s3://{bucket}/{prefix(ds, date)} holds no *{suffix}"
               for ds, keys in found.items() if not keys]
    if missing:
        raise live.fail(missing, figures, f"rerun the date (`finks pipeline run --env {ctx.env} --date {date}`) "
                        f"and read {logs}")
    return _flow_evidence(live, site, run, flow, f"{zone} *{suffix} for {', '.join(found)} on {date}", figures)


def dbt_generates_gold(ctx: CheckContext) -> Evidence:
    """The latest dbt run of the last day COMPLETED, gold's ``_published.json`` was written during
    or after it, and every mart it publishes is in the gold bucket."""
    from botocore.exceptions import ClientError

    from core.gold import MARTS, PUBLISHED_FILE, Published

    live, site = reached(ctx)
    with site.client() as client:
        run = _latest_completed(live, site, client, "dbt")
    gold = live.buckets()["gold"]
    remedy = f"rerun the dbt flow (`finks pipeline run --env {ctx.env} --date {_run_date(run)}`) and read its ECS task's logs"
    try:
        raw = live.client("s3").get_object(Bucket=gold, Key=PUBLISHED_FILE)["Body"].read()
    except ClientError:
        raise live.fail([f"dbt run {run.name} COMPLETED but s3://{gold}/{PUBLISHED_FILE} does not exist: gold was "
                         "never published"], {"bucket": gold}, remedy) from None
    published = Published.from_json(json.loads(raw), f"s3://{gold}/{PUBLISHED_FILE}")
    marts = {k.removeprefix("marts/") for k in _keys(live, gold, "marts/")}
    models = published.models or list(MARTS)
    figures = {"bucket": gold, "published_run": published.run_id, "published_at": str(published.published_at),
               "models": models}
    problems = [f"s3://{gold}/{published.paths.get(m, f'marts/{m}.parquet')} is missing (published by "
                f"{published.run_id})" for m in models if published.paths.get(m, f"marts/{m}.parquet").removeprefix(
                    "marts/") not in marts]
    if published.published_at is None or published.published_at < run.start_time:
        problems.insert(0, f"gold was last published {published.published_at}, before dbt run {run.name} started "
                           f"({run.start_time:%Y-%m-%d %H:%M} UTC): that run published nothing")
    if problems:
        raise live.fail(problems, figures, remedy)
    return _flow_evidence(live, site, run, "dbt", f"gold published {published.published_at:%Y-%m-%d %H:%M} UTC "
                          f"({published.run_id}) with {len(models)} marts", figures)


def master_orchestrates(ctx: CheckContext) -> Evidence:
    """The latest daily-pipeline run of the last day COMPLETED, its sub-flows ingestion →
    transformation → dbt ran in that order and each COMPLETED."""
    live, site = reached(ctx)
    with site.client() as client:
        run = _latest_completed(live, site, client, "daily-pipeline")
        children = _children(client, run)
    order = [name for name, _ in children if name in SUBFLOWS]
    states = {name: _state(child) for name, child in children if name in SUBFLOWS}
    figures = {"flow_run": str(run.id), "subflows": order, "states": states}
    if order != list(SUBFLOWS) or set(states.values()) != {"COMPLETED"}:
        raise live.fail([f"daily-pipeline run {run.name} COMPLETED with sub-flows {order} {states}, not "
                         + " → ".join(SUBFLOWS) + " all COMPLETED"], figures,
                        f"read its logs ({site.url}/runs/flow-run/{run.id}); is the deployed image the one of flows/?")
    return _flow_evidence(live, site, run, "daily-pipeline", "sub-flows " + " → ".join(SUBFLOWS) + ", all COMPLETED",
                          figures)


def daily_deployment(ctx: CheckContext) -> Evidence:
    """daily-pipeline/daily is deployed as prefect.yaml declares it (its entrypoint), scheduled
    daily at 02:00 UTC (active, not paused), on the environment's ECS work pool (on AWS the pool
    is the ECS one: `finks deploy` picks it; a process pool is the local reading)."""
    from prefect.exceptions import ObjectNotFound

    from flows.deploy import read_deployments

    live = Live.of(ctx)
    pool = str(live.output("ecs_work_pool") or f"{live.config.prefix}-ecs")
    declared = next((d for d in read_deployments(live.settings.root) if d.get("name") == "daily"), {})
    site = PrefectSite.of(live)
    site.reach()
    with site.client() as client:
        try:
            dep: Any = client.read_deployment_by_name(DAILY)
        except ObjectNotFound:
            raise live.fail([f"{DAILY} is not deployed on {site.url}"], {"pool": pool},
                            f"run `finks deploy --env {ctx.env}`") from None
        try:
            kind = client.read_work_pool(dep.work_pool_name).type if dep.work_pool_name else None
        except ObjectNotFound:
            kind = None
    crons = [(s.schedule.cron, s.schedule.timezone, s.active) for s in dep.schedules if hasattr(s.schedule, "cron")]
    figures = {"deployment": str(dep.id), "schedules": crons, "pool": dep.work_pool_name, "pool_type": kind,
               "entrypoint": dep.entrypoint, "paused": dep.paused}
    problems = []
    if crons != [("0 2 * * *", "UTC", True)] or dep.paused:
        problems.append(f"{DAILY} is scheduled {crons or 'never'}{' (paused)' if dep.paused else ''}, "
                        "not daily 0 2 * * * UTC, active")
    if dep.work_pool_name != pool or kind != "ecs":
        problems.append(f"{DAILY} runs on pool {dep.work_pool_name} ({kind or 'missing'}), not ECS pool {pool}")
    if dep.entrypoint != declared.get("entrypoint"):
        problems.append(f"{DAILY} runs {dep.entrypoint}; prefect.yaml declares {declared.get('entrypoint')}")
    if problems:
        raise live.fail(problems, figures, f"run `finks deploy --env {ctx.env}` (prefect.yaml is the one list)")
    return live.evidence(f"{DAILY} ({dep.entrypoint}) runs daily at 02:00 UTC on ECS work pool {pool}", figures,
                         site.notes())


def failures_handled(ctx: CheckContext) -> Evidence:
    """The deployed flows retry their tasks (the latest completed daily run's ingest, transform and
    dbt task runs carry retries), and every daily run that failed in the last week stopped at the
    failing step (no sub-flow after it) and its date was rerun to completion later.

    A week without failures passes on the retries alone, and says so: recovery was not exercised.
    The failure notification (SNS) leaves nothing a probe can read back."""
    live, site = reached(ctx)
    problems: list[str] = []
    with site.client() as client:
        done = _finished(client, "daily-pipeline", _since(24 * FAILURE_DAYS), state="COMPLETED", limit=200)
        if not done:
            raise live.fail([f"no daily-pipeline run COMPLETED on {site.url} in {FAILURE_DAYS} days: nothing shows "
                             "how the deployed flows retry"], {}, f"run the daily pipeline (`prefect deployment run {DAILY}`)")
        latest = done[0]
        tasks = _task_retries(client, [child.id for _, child in _children(client, latest)])
        for name in RETRYING_TASKS:
            if not tasks.get(name):
                problems.append(f"daily-pipeline run {latest.name} ran no {name} task run")
            elif min(tasks[name]) < 1:
                problems.append(f"{name} task runs of daily-pipeline run {latest.name} have no retries "
                                f"({sorted(set(tasks[name]))}): is FINKS_TASK_RETRIES 0 in the worker's job variables?")
        failed = [r for kind in ("FAILED", "CRASHED") for r in _finished(client, "daily-pipeline", _since(24 * FAILURE_DAYS),
                                                                           state=kind, limit=50)]
        dates_done = {(_date_of(client, r), r.end_time) for r in done} if failed else set()
        handled: dict[str, str] = {}
        for run in failed:
            children, date = _children(client, run), _date_of(client, run)
            broken = next((i for i, (_, c) in enumerate(children) if _state(c) != "COMPLETED"), None)
            later = [n for n, _ in children[broken + 1:]] if broken is not None else []
            if later and broken is not None:
                problems.append(f"daily-pipeline run {run.name} ({date}) went on to {later} after "
                                f"{children[broken][0]} ended {_state(children[broken][1])}")
            if not any(d == date and end > run.end_time for d, end in dates_done):
                problems.append(f"daily-pipeline run {run.name} for {date} ended {_state(run)} and no later run of "
                                f"{date} completed: rerun it (`finks pipeline run --env {ctx.env} --date {date}`)")
            handled[str(run.id)] = date
    figures = {"retries": {k: sorted(set(v)) for k, v in tasks.items()}, "failed_runs": handled}
    if problems:
        raise live.fail(problems, figures, f"read the runs' logs at {site.url}")
    recovery = (f"{len(handled)} failed daily run(s) in {FAILURE_DAYS} days stopped at the failing step and were "
                "rerun to completion" if handled else f"no daily run failed in {FAILURE_DAYS} days: recovery not exercised")
    return live.evidence(f"tasks retry ({', '.join(f'{k} ×{min(v)}' for k, v in sorted(tasks.items()))}); {recovery}",
                         figures, site.notes())


def _task_retries(client: Any, flow_run_ids: list[Any]) -> dict[str, list[int]]:
    """task name -> the retries each of its runs (in those flow runs) was configured with."""
    from prefect.client.schemas import filters as pf

    if not flow_run_ids:
        return {}
    found: dict[str, list[int]] = {}
    for t in client.read_task_runs(flow_run_filter=pf.FlowRunFilter(id=pf.FlowRunFilterId(any_=flow_run_ids))):
        name = next((n for n in RETRYING_TASKS if t.name.startswith(n)), None)  # runs are named <task>-<suffix>
        if name:
            found.setdefault(name, []).append(int(t.empirical_policy.retries or 0))
    return found


def _date_of(client: Any, run: Any) -> str:
    """The trading date a daily run processed: its parameter, else its ingestion sub-flow's."""
    if (run.parameters or {}).get("date"):
        return str(run.parameters["date"])
    ingestion = next((c for n, c in _children(client, run) if n == "ingestion"), None)
    return _run_date(ingestion or run)
