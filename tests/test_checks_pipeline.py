"""Every pipeline check (S16, S17, S18, S20) fails on a broken fixture, and passes on a sound one.

One run of the S16 action on a scratch lake is shared: a test that needs a lake
gets a copy of it, broken the way the test needs (a bronze partition removed, a
silver partition that breaks the dbt tests, gold unpublished). The checks see
the fixture the way they see an environment under finks: through
``ctx.settings``, i.e. FINKS_LAKE_URI, FINKS_PIPELINE_DATE and the FMP
variables (an FMP simulator with faults stands in for a broken FMP). Where the
code under test is what must be broken (a dbt project without a test, a flow
that does not read the quality record), the check runs in a child process on a
repository copy (``run_target``), as finks would run it there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from finks.checks import CheckContext, CheckFailed
from finks.outcomes import Outcome
from tests.fixtures.checks import ROOT, edit, repo_copy, run_target
from tests.fixtures.fmp import TEST_KEY
from validation import backfill, metrics, pipeline, quality, support

pytestmark = [pytest.mark.services, pytest.mark.slow]

DATE = "2024-03-14"


def _ctx(stack: Settings, tmp_path: Path, root: Path = ROOT) -> CheckContext:
    return CheckContext(env="local", root=root, state_dir=stack.home, work_dir=tmp_path / "work")


def _copy_lake(lake: Path, tmp_path: Path) -> Path:
    target = tmp_path / "lake"
    shutil.copytree(lake, target)
    return target


@pytest.fixture(scope="module")
def action_run(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    """The S16 action, run once for DATE on a scratch lake (the stack's marker is restored after)."""
    lake = tmp_path_factory.mktemp("s16") / "lake"
    marker = pipeline.last_run_marker(local_stack)
    saved = marker.read_text() if marker.is_file() else None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FINKS_LAKE_URI", str(lake))
        mp.setenv(pipeline.SAMPLE_DATE_ENV, DATE)
        evidence = pipeline.run_daily_pipeline(_ctx(local_stack, tmp_path_factory.mktemp("action")))
    try:
        yield lake, evidence
    finally:
        if saved is None:
            marker.unlink(missing_ok=True)
        else:
            marker.write_text(saved)


@pytest.fixture
def on_lake(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``on_lake(path)``: the checks' environment lake is ``path``, their date DATE."""
    def use(path: Path) -> Path:
        monkeypatch.setenv("FINKS_LAKE_URI", str(path))
        monkeypatch.setenv(pipeline.SAMPLE_DATE_ENV, DATE)
        return path

    return use


@pytest.fixture
def broken_fmp(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``broken_fmp(**faults)``: the configured FMP (FMP_BASE_URL, FMP_API_KEY) is a simulator with these faults."""
    from connectors.fmp.simulator import Faults

    servers: list[Any] = []

    def use(**faults: Any) -> Any:
        sim = support.simulator(faults=Faults(**faults))
        servers.append(sim)
        server = sim.__enter__()
        monkeypatch.setenv("FMP_BASE_URL", server.base_url)
        monkeypatch.setenv("FMP_API_KEY", TEST_KEY)
        return server

    yield use
    for sim in servers:
        sim.__exit__(None, None, None)


def _no_data() -> dict[str, Any]:
    """Every symbol, and the batch endpoints (no symbol parameter), answer an empty list."""
    from connectors.fmp.universe import resolve

    return {"symbol_faults": {"": "empty", **{s: "empty" for s in resolve("default")}}}


@pytest.fixture
def marker_kept(local_stack: Settings) -> Iterator[Path]:
    """The S16 marker as the shared action run left it, whatever the test records."""
    marker = pipeline.last_run_marker(local_stack)
    saved = marker.read_text() if marker.is_file() else None
    yield marker
    if saved is None:
        marker.unlink(missing_ok=True)
    else:
        marker.write_text(saved)


# ---- S16 -------------------------------------------------------------------

def test_action_deploys_runs_and_records_the_pipeline(action_run: tuple[Path, Any], local_stack: Settings) -> None:
    lake, evidence = action_run
    assert evidence.figures["steps"] == {"ingestion": "ok", "transformation": "ok", "dbt": "ok"}
    assert "daily-pipeline/daily" in evidence.figures["deployments"]
    marker = json.loads(pipeline.last_run_marker(local_stack).read_text())
    assert marker == {"date": DATE, "run_id": evidence.figures["run_id"], "status": "ok"}


def test_master_flow_and_deployment_checks_pass_on_the_actions_run(
        action_run: tuple[Path, Any], local_stack: Settings, tmp_path: Path, on_lake: Any) -> None:
    on_lake(action_run[0])
    ctx = _ctx(local_stack, tmp_path)
    assert pipeline.master_flow_orchestrates(ctx).figures["subflows"] == ["ingestion", "transformation", "dbt"]
    assert "02:00 UTC" in pipeline.daily_deployment_scheduled(ctx).message


@pytest.mark.check_fails("validation.pipeline:run_daily_pipeline")
@pytest.mark.check_fails("validation.pipeline:master_flow_orchestrates")
def test_action_and_master_flow_fail_when_fmp_rejects_the_key(
        action_run: tuple[Path, Any], local_stack: Settings, tmp_path: Path, on_lake: Any,
        broken_fmp: Any, marker_kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_lake(tmp_path / "empty-lake")
    broken_fmp(invalid_key=True)
    monkeypatch.setenv("FINKS_TASK_RETRIES", "0")
    ctx = _ctx(local_stack, tmp_path)

    with pytest.raises(CheckFailed, match="daily pipeline for 2024-03-14 failed") as info:
        pipeline.run_daily_pipeline(ctx)
    assert info.value.evidence.figures["steps"] == {"ingestion": "failed", "transformation": "not run", "dbt": "not run"}
    # The failed run is what the master-flow check judges now, not the shared run that passed.
    assert json.loads(marker_kept.read_text())["status"] == "failed"
    with pytest.raises(CheckFailed, match="FAILED"):
        pipeline.master_flow_orchestrates(ctx)


def test_ingestion_check_lands_records_in_its_own_scratch_lake(local_stack: Settings, tmp_path: Path,
                                                              on_lake: Any) -> None:
    env_lake = on_lake(tmp_path / "env-lake")
    evidence = pipeline.ingestion_flow_completes(_ctx(local_stack, tmp_path))
    assert set(evidence.figures["records"]) == {"quotes", "profiles", "eod"}
    assert min(evidence.figures["records"].values()) > 0
    assert not any((env_lake / "bronze").rglob("_manifest.json"))  # the environment's lake is never written


@pytest.mark.check_fails("validation.pipeline:ingestion_flow_completes")
def test_ingestion_check_fails_when_fmp_answers_no_data(local_stack: Settings, tmp_path: Path,
                                                       on_lake: Any, broken_fmp: Any) -> None:
    on_lake(tmp_path / "env-lake")
    broken_fmp(**_no_data())
    with pytest.raises(CheckFailed, match="no records for"):
        pipeline.ingestion_flow_completes(_ctx(local_stack, tmp_path))


def test_transformation_check_passes_on_the_actions_bronze(action_run: tuple[Path, Any], local_stack: Settings,
                                                          tmp_path: Path, on_lake: Any) -> None:
    on_lake(_copy_lake(action_run[0], tmp_path))
    figures = pipeline.transformation_flow_processes(_ctx(local_stack, tmp_path)).figures
    assert figures["rows"] == figures["silver_rows"] and min(figures["rows"].values()) > 0


@pytest.mark.check_fails("validation.pipeline:transformation_flow_processes")
def test_transformation_check_fails_when_a_bronze_partition_is_missing(
        action_run: tuple[Path, Any], local_stack: Settings, tmp_path: Path, on_lake: Any) -> None:
    lake = on_lake(_copy_lake(action_run[0], tmp_path))
    shutil.rmtree(lake / "bronze" / "fmp" / "profiles" / f"date={DATE}")

    with pytest.raises(CheckFailed, match="profiles"):
        pipeline.transformation_flow_processes(_ctx(local_stack, tmp_path))


def _bad_silver(lake: Path, day: dt.date) -> None:
    """An earlier date of eod_prices written by a faulty engine: high < low breaks the dbt tests."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    good = pq.read_table(next((lake / "silver" / "eod_prices" / f"date={DATE}").glob("*.parquet")))
    bad = good.set_column(good.schema.get_field_index("high"), "high", pc.subtract(good["low"], 1.0))
    bad = bad.set_column(bad.schema.get_field_index("date"), "date",
                         pa.array([day] * bad.num_rows, good.schema.field("date").type))
    target = lake / "silver" / "eod_prices" / f"date={day.isoformat()}" / "part-0.parquet"
    target.parent.mkdir(parents=True)
    pq.write_table(bad, target)


@pytest.mark.check_fails("validation.pipeline:dbt_flow_generates_gold")
def test_dbt_check_fails_when_silver_breaks_the_tests(action_run: tuple[Path, Any], local_stack: Settings,
                                                     tmp_path: Path, on_lake: Any) -> None:
    lake = on_lake(_copy_lake(action_run[0], tmp_path))
    _bad_silver(lake, dt.date(2024, 3, 13))

    with pytest.raises(CheckFailed, match="did not publish gold"):
        pipeline.dbt_flow_generates_gold(_ctx(local_stack, tmp_path))


@pytest.mark.check_fails("validation.pipeline:failures_handled")
def test_failure_check_fails_when_the_failure_cannot_be_notified(local_stack: Settings, tmp_path: Path) -> None:
    trail = local_stack.home / "logs" / "notifications.jsonl"
    trail.parent.mkdir(parents=True, exist_ok=True)
    saved = trail.read_bytes() if trail.is_file() else None
    trail.unlink(missing_ok=True)
    trail.mkdir()  # the notification trail cannot be written
    try:
        with pytest.raises(CheckFailed, match="crashed the pipeline"):
            pipeline.failures_handled(_ctx(local_stack, tmp_path))
    finally:
        trail.rmdir()
        if saved is not None:
            trail.write_bytes(saved)


def test_failure_check_reads_its_own_runs_notes_while_other_runs_notify(local_stack: Settings,
                                                                       tmp_path: Path) -> None:
    """Other runs share the state dir's trail (the check runs beside them): their notes, written
    after this run's failure, are not taken for it."""
    from flows.notify import Notifier

    stop, other = threading.Event(), Notifier.for_settings(local_stack, sns=False)

    def chatter() -> None:
        while not stop.wait(0.2):
            other.send("finks local pipeline succeeded for 2024-03-15", "3 steps in 1s",
                       details={"run_id": "another-run"})

    writer = threading.Thread(target=chatter, daemon=True)
    writer.start()
    try:
        evidence = pipeline.failures_handled(_ctx(local_stack, tmp_path))
    finally:
        stop.set()
        writer.join()
    assert evidence.figures["notification"].startswith("finks local pipeline FAILED for 2024-03-14")
    assert "the run was asked to stop" in evidence.figures["glue_timeout"]


@pytest.mark.check_fails("validation.pipeline:flows_idempotent")
def test_idempotency_check_fails_when_there_is_nothing_to_compare(
        local_stack: Settings, tmp_path: Path, on_lake: Any, broken_fmp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    on_lake(tmp_path / "lake")
    broken_fmp(**_no_data())
    monkeypatch.setenv("FINKS_TASK_RETRIES", "0")
    with pytest.raises(CheckFailed, match="did not run twice|nothing to compare"):
        pipeline.flows_idempotent(_ctx(local_stack, tmp_path))


@pytest.mark.check_fails("validation.pipeline:daily_deployment_scheduled")
def test_deployment_check_fails_when_the_daily_schedule_is_paused(action_run: tuple[Path, Any],
                                                                  local_stack: Settings, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        dep: Any = client.read_deployment_by_name("daily-pipeline/daily")
        client.update_deployment_schedule(dep.id, dep.schedules[0].id, active=False)
    try:
        with pytest.raises(CheckFailed, match="expected an active 0 2"):
            pipeline.daily_deployment_scheduled(_ctx(local_stack, tmp_path))
    finally:
        support.deploy_flows(local_stack)


# ---- S17 -------------------------------------------------------------------

def test_quality_gate_check_passes_on_the_actions_gold(action_run: tuple[Path, Any], local_stack: Settings,
                                                       tmp_path: Path, on_lake: Any) -> None:
    env_lake = on_lake(_copy_lake(action_run[0], tmp_path))
    published = (env_lake / "gold" / "_published.json").read_text()

    evidence = quality.quality_gate_blocks_publish(_ctx(local_stack, tmp_path))

    assert evidence.figures["steps"]["dbt"] == "failed" and evidence.figures["failed_tests"]
    assert (env_lake / "gold" / "_published.json").read_text() == published  # worked on a copy


@pytest.mark.check_fails("validation.quality:quality_gate_blocks_publish")
def test_quality_gate_check_fails_without_published_gold(action_run: tuple[Path, Any], local_stack: Settings,
                                                         tmp_path: Path, on_lake: Any) -> None:
    lake = on_lake(_copy_lake(action_run[0], tmp_path))
    (lake / "gold" / "_published.json").unlink()
    with pytest.raises(CheckFailed, match="no published gold"):
        quality.quality_gate_blocks_publish(_ctx(local_stack, tmp_path))


@pytest.mark.check_fails("validation.quality:quality_gate_blocks_publish")
def test_quality_gate_check_fails_when_the_dbt_project_lacks_the_business_rule(
        action_run: tuple[Path, Any], local_stack: Settings, tmp_path: Path, on_lake: Any) -> None:
    on_lake(_copy_lake(action_run[0], tmp_path))
    root = repo_copy(tmp_path)
    edit(root / "dbt_project" / "models" / "marts" / "_marts.yml",
         '''      - expression_is_true:
          arguments:
            expression: "high >= low"
            where_clause: "high is not null and low is not null"
''', "")

    result = run_target("validation.quality:quality_gate_blocks_publish", _ctx(local_stack, tmp_path, root))

    assert result.outcome is Outcome.failed, result.evidence
    assert "published gold although silver breaks the dbt tests" in result.evidence.message


@pytest.mark.check_fails("validation.quality:quality_results_read")
def test_quality_read_check_fails_when_the_gate_ignores_the_record(local_stack: Settings, tmp_path: Path) -> None:
    root = repo_copy(tmp_path)
    # The gate as it was: _published.json only, the quality record never read.
    edit(root / "flows" / "quality.py",
         'return published.to_json() | {"quality": quality_gate(settings, published.run_id, record)}',
         "return published.to_json()")

    result = run_target("validation.quality:quality_results_read", _ctx(local_stack, tmp_path, root))

    assert result.outcome is Outcome.failed, result.evidence
    assert "did not read" in result.evidence.message


# ---- S18 -------------------------------------------------------------------

@pytest.fixture
def backfill_record(local_stack: Settings) -> Iterator[Path]:
    out = backfill.backfill_record(local_stack)
    saved = out.read_text() if out.is_file() else None
    yield out
    if saved is None:
        out.unlink(missing_ok=True)
    else:
        out.write_text(saved)


@pytest.mark.check_fails("validation.backfill:backfill_30_days")
@pytest.mark.parametrize("broken", ["date not completed", "silver partition missing", "resources not measured"])
def test_backfill_check_fails_on_an_incomplete_lake(action_run: tuple[Path, Any], local_stack: Settings,
                                                    tmp_path: Path, on_lake: Any, backfill_record: Path,
                                                    broken: str) -> None:
    """30 trading days recorded complete, each with the silver of DATE, gold published; one thing broken."""
    from flows.calendar import trading_days
    from flows.common import write_record

    lake = on_lake(_copy_lake(action_run[0], tmp_path))
    days = trading_days(dt.date(2024, 1, 31), dt.date.fromisoformat(DATE))[-30:]
    settings = local_stack.model_copy(update={"lake_uri": str(lake)})
    partition = lake / "silver" / "eod_prices" / f"date={DATE}"
    for i, day in enumerate(days):
        if broken != "date not completed" or i != 7:
            write_record(settings, day, {"date": day.isoformat(), "silver": "ok", "by": "backfill"})
        if day.isoformat() != DATE and (broken != "silver partition missing" or i != 11):
            shutil.copytree(partition, partition.parent / f"date={day.isoformat()}")
    resources = {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0} if broken == "resources not measured" \
        else {"wall_s": 12.5, "cpu_s": 30.1, "peak_rss_mb": 512}
    backfill_record.parent.mkdir(parents=True, exist_ok=True)
    backfill_record.write_text(json.dumps({
        "start": days[0].isoformat(), "end": days[-1].isoformat(), "resources": resources,
        "report": {"dates": 30, "ran": 30, "skipped": 0, "failed": [], "gold": "published"}}))

    with pytest.raises(CheckFailed, match={"date not completed": "1 dates not completed",
                                           "silver partition missing": "no silver eod_prices rows",
                                           "resources not measured": "resource usage not measured"}[broken]):
        backfill.backfill_30_days(_ctx(local_stack, tmp_path))


@pytest.mark.check_fails("validation.backfill:run_backfill_30_days")
def test_backfill_action_fails_when_fmp_rejects_the_key(local_stack: Settings, tmp_path: Path, on_lake: Any,
                                                        broken_fmp: Any, backfill_record: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    on_lake(tmp_path / "lake")
    broken_fmp(invalid_key=True)
    monkeypatch.setenv("FINKS_TASK_RETRIES", "0")

    with pytest.raises(CheckFailed, match="incomplete: .*30 of 30 dates failed"):
        backfill.run_backfill_30_days(_ctx(local_stack, tmp_path))
    assert len(json.loads(backfill_record.read_text())["report"]["failed"]) == 30  # recorded for the check


# ---- S20 -------------------------------------------------------------------

def _moto_children() -> dict[int, str]:
    """The moto servers this process started (pid: URL)."""
    import psutil

    found = {}
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error, ValueError, IndexError):
            argv = child.cmdline()
            if argv[1:3] == ["-m", "moto.server"]:
                found[child.pid] = f"http://127.0.0.1:{argv[argv.index('-p') + 1]}"
    return found


@contextlib.contextmanager
def _impostor(settings: Settings, where: str) -> Iterator[None]:
    """Something else writes DataQualityScore for the environment every half second: to the
    stack's emulator, or to the one the check starts for itself (a new moto child of this process)."""
    from flows import metrics as flow_metrics

    stop, before = threading.Event(), set(_moto_children())

    def targets() -> list[str]:
        if where == "stack":
            return [str(settings.s3_endpoint)]
        return [url for pid, url in _moto_children().items() if pid not in before]

    def write() -> None:
        while not stop.wait(0.5):
            for url in targets():
                with contextlib.suppress(Exception):  # the check's server may be starting or gone
                    flow_metrics.emit(settings.model_copy(update={"s3_endpoint_url": url}),
                                      [flow_metrics.data_quality_score(1, 8)])

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()


@pytest.mark.check_fails("validation.metrics:custom_metrics_emitted")
def test_metrics_check_fails_when_cloudwatch_holds_another_quality_score(local_stack: Settings,
                                                                        tmp_path: Path) -> None:
    with _impostor(local_stack, "own"), pytest.raises(CheckFailed) as info:
        metrics.custom_metrics_emitted(_ctx(local_stack, tmp_path))
    # Only the impostor's metric is wrong: the run's records and latency were found as emitted.
    assert info.value.evidence.excerpt.splitlines() and all(
        line.startswith("DataQualityScore:") for line in info.value.evidence.excerpt.splitlines())
    assert info.value.evidence.figures["datapoints"]["RecordsProcessed/eod_prices"]["samples"] == 1


def test_metrics_check_is_not_disturbed_by_other_runs_on_the_stacks_cloudwatch(local_stack: Settings,
                                                                             tmp_path: Path) -> None:
    """Other pipelines emit the same metrics to the stack's emulator meanwhile (a session's other
    checks, another session): the check reads only its own emulator, so it may run beside them."""
    with _impostor(local_stack, "stack"):
        evidence = metrics.custom_metrics_emitted(_ctx(local_stack, tmp_path))
    assert evidence.figures["datapoints"]["DataQualityScore"]["samples"] == 1

