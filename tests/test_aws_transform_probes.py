"""The transformation probes (validation/aws/transform, glue, gold) on a "deployed" moto stack: each
passes on the healthy stack — seeded with what the platform's own code leaves (validation.aws.
seed_transform) — and fails, naming the resource and what to do, when exactly one thing is broken."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from finks.checks import CheckContext, CheckFailed
from validation.aws import glue, gold, transform

if TYPE_CHECKING:
    from tests.fixtures.deployed import Deployed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")

PROBES = [
    transform.dbt_task_definition, transform.dbt_build_ran, transform.staging_models_built,
    transform.dbt_tests_passed, transform.docs_published, transform.quality_tests_pass,
    transform.quality_results_recorded, transform.quality_gate_held, glue.glue_catalog_and_job,
    glue.glue_job_succeeded, gold.portfolio_summary,
]


def _id(probe: Any) -> str:
    return f"{probe.__module__.rsplit('.', 1)[-1]}:{probe.__name__}"


# ---- the healthy stack --------------------------------------------------------------------
@pytest.mark.parametrize("probe", PROBES, ids=_id)
def test_probe_passes_on_the_deployed_dev_stack(deployed_dev: Deployed, probe: Any) -> None:
    evidence = probe(deployed_dev.ctx())
    assert evidence.figures["endpoint"] == deployed_dev.url
    assert evidence.figures["found_by"].startswith("stack outputs")


@pytest.mark.parametrize("probe", PROBES, ids=_id)
def test_probe_finds_the_stack_by_its_tags_without_recorded_outputs(deployed_dev: Deployed, probe: Any,
                                                                    tmp_path: Path) -> None:
    evidence = probe(deployed_dev.ctx(tmp_path / "no-outputs"))
    assert evidence.figures["found_by"] == "tags Project=finks, Environment=dev"


def test_mart_probe_says_the_athena_rows_were_injected(deployed_dev: Deployed) -> None:
    evidence = gold.portfolio_summary(deployed_dev.ctx())
    assert evidence.figures["athena"] == {"database": "finks_dev_gold", "workgroup": "finks-dev-api",
                                          "query": "portfolio_summary"}
    assert evidence.figures["athena_rows"] >= 1 and evidence.figures["compared"] >= evidence.figures["athena_rows"]
    assert "the Athena rows were injected" in evidence.message


def test_the_probes_only_read_but_for_the_athena_query_the_api_runs(deployed_dev: Deployed) -> None:
    """What validation.aws.policy will generate from them: read verbs, and Athena's StartQueryExecution
    (a SELECT in the API's workgroup), which a read-only verification role has to be granted too."""
    from validation.aws import policy

    with policy.recording() as actions:
        for probe in PROBES:
            probe(deployed_dev.ctx())
    assert sorted(a for a in actions if not a.split(":", 1)[1].startswith(policy.READ_ONLY_VERBS)) == [
        "athena:StartQueryExecution"]
    assert {"s3:GetObject", "glue:GetJobRuns", "glue:GetTable", "athena:GetQueryResults"} <= actions


def test_transform_probes_on_an_account_where_nothing_is_deployed_say_to_deploy(emulator: str, tmp_path: Path) -> None:
    from core.paths import REPO_ROOT

    ctx = CheckContext("dev", REPO_ROOT, tmp_path, tmp_path / "w")
    with pytest.raises(CheckFailed, match=r"no gold bucket on dev: .*run `finks infra up --env dev --yes`"):
        transform.dbt_build_ran(ctx)
    with pytest.raises(CheckFailed, match="no Glue bronze→silver job on dev"):
        glue.glue_job_succeeded(ctx)


def test_the_program_exports_the_glue_names_the_probes_look_for() -> None:
    from infra.plan import plan

    outputs = plan("prod").outputs
    assert (outputs["glue_job"], outputs["glue_database"], outputs["glue_crawler"]) == (
        "finks-prod-bronze-to-silver", "finks_prod", "finks-prod-bronze")


# ---- helpers: break one object of the gold bucket, put it back afterwards -----------------------
def _object(d: Deployed, bucket: str, key: str) -> bytes:
    return bytes(d.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def _replace(d: Deployed, bucket: str, key: str, data: bytes | None) -> bytes:
    """Put ``data`` at ``key`` (None: delete it); the original comes back when the test ends."""
    s3 = d.client("s3")
    original = _object(d, bucket, key)
    d.undo(lambda: s3.put_object(Bucket=bucket, Key=key, Body=original))
    if data is None:
        s3.delete_object(Bucket=bucket, Key=key)
    else:
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    return original


def _latest_run(d: Deployed) -> tuple[str, str]:
    gold_bucket = d.outputs["buckets"]["gold"]
    return gold_bucket, json.loads(_object(d, gold_bucket, "_dbt/latest.json"))["run_id"]


def _edit_run_results(d: Deployed, edit: Any, name: str = "run_results.json") -> str:
    bucket, run_id = _latest_run(d)
    key = f"_dbt/runs/{run_id}/{name}"
    doc = json.loads(_object(d, bucket, key))
    edit(doc)
    _replace(d, bucket, key, json.dumps(doc).encode())
    return run_id


def _result(doc: dict[str, Any], unique_id_prefix: str) -> dict[str, Any]:
    return next(r for r in doc["results"] if r["unique_id"].startswith(unique_id_prefix))


# ---- S12 -------------------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.transform:dbt_task_definition")
def test_dbt_task_probe_fails_when_the_current_revision_runs_another_image(deployed_dev: Deployed) -> None:
    ecs = deployed_dev.client("ecs")
    family = deployed_dev.outputs["ecs_task_families"]["dbt"]
    td = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    definition = {k: td["taskDefinition"][k] for k in ("family", "containerDefinitions", "networkMode", "cpu", "memory",
                                                       "requiresCompatibilities", "executionRoleArn", "taskRoleArn")}
    definition["tags"] = td.get("tags", [])
    deployed_dev.undo(lambda: ecs.register_task_definition(**definition))  # the program's definition, current again
    other = json.loads(json.dumps(definition))
    other["containerDefinitions"][0]["image"] = deployed_dev.outputs["ecr_repositories"]["prefect"] + ":v0.1.0"
    revision = ecs.register_task_definition(**other)["taskDefinition"]["revision"]
    with pytest.raises(CheckFailed, match=rf"^finks-dev-dbt:{revision} runs \S+/finks-dev/prefect:v0.1.0, not "
                                          r"\S+/finks-dev/dbt:v0.1.0 \(this stack's dbt repository") as exc:
        transform.dbt_task_definition(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1
    assert "finks infra up --env dev --yes" in str(exc.value)


@pytest.mark.check_fails("validation.aws.transform:dbt_build_ran")
def test_dbt_run_probe_fails_when_a_model_of_the_last_build_errored(deployed_dev: Deployed) -> None:
    def error(doc: dict[str, Any]) -> None:
        _result(doc, "model.finks.fct_daily_prices").update(status="error", message="Runtime Error")

    run_id = _edit_run_results(deployed_dev, error)
    with pytest.raises(CheckFailed, match=rf"^dbt build {run_id}: model.finks.fct_daily_prices is error; read "
                                          r"s3://finks-dev-gold/_dbt/runs/.*/run_results.json") as exc:
        transform.dbt_build_ran(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.transform:dbt_build_ran")
def test_dbt_run_probe_fails_when_no_build_left_its_artifacts(deployed_dev: Deployed) -> None:
    _replace(deployed_dev, deployed_dev.outputs["buckets"]["gold"], "_dbt/latest.json", None)
    with pytest.raises(CheckFailed, match=r"no dbt build has left its artifacts in s3://finks-dev-gold/_dbt/ "
                                          r"\(no latest.json\); run the daily pipeline on dev"):
        transform.dbt_build_ran(deployed_dev.ctx())


# ---- S14 -------------------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.transform:staging_models_built")
def test_staging_probe_fails_when_a_staging_model_was_not_built(deployed_dev: Deployed) -> None:
    def drop(doc: dict[str, Any]) -> None:
        doc["results"] = [r for r in doc["results"] if r["unique_id"] != "model.finks.stg_fmp_company_profile"]

    run_id = _edit_run_results(deployed_dev, drop)
    with pytest.raises(CheckFailed, match=rf"^staging model stg_fmp_company_profile was not built by build {run_id} "
                                          r"\(not in run_results\); fix the staging model"):
        transform.staging_models_built(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.transform:dbt_tests_passed")
def test_dbt_tests_probe_fails_on_a_failing_test(deployed_dev: Deployed) -> None:
    def fail(doc: dict[str, Any]) -> None:
        _result(doc, "test.finks.unique_dim_company_symbol").update(status="fail", failures=3)

    run_id = _edit_run_results(deployed_dev, fail)
    with pytest.raises(CheckFailed, match=rf"^dbt build {run_id}: test test.finks.unique_dim_company_symbol\.\w+ is "
                                          r"fail \(3 failing rows\); read s3://finks-dev-gold/") as exc:
        transform.dbt_tests_passed(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.transform:docs_published")
def test_docs_probe_fails_when_the_catalog_is_missing(deployed_dev: Deployed) -> None:
    _replace(deployed_dev, deployed_dev.outputs["buckets"]["gold"], "_dbt/docs/catalog.json", None)
    with pytest.raises(CheckFailed, match=r"^no catalog.json at s3://finks-dev-gold/_dbt/docs/; the daily dbt task "
                                          r"\(`python -m jobs.dbt build --docs --target athena`\) publishes the site"):
        transform.docs_published(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.transform:docs_published")
def test_docs_probe_fails_when_the_catalog_lacks_a_model(deployed_dev: Deployed) -> None:
    key = "_dbt/docs/catalog.json"
    catalog = json.loads(_object(deployed_dev, deployed_dev.outputs["buckets"]["gold"], key))
    del catalog["nodes"]["model.finks.dim_company"]
    _replace(deployed_dev, deployed_dev.outputs["buckets"]["gold"], key, json.dumps(catalog).encode())
    with pytest.raises(CheckFailed, match=r"^the docs catalog at s3://finks-dev-gold/_dbt/docs/ lacks model dim_company"):
        transform.docs_published(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.gold:portfolio_summary")
def test_mart_probe_fails_when_the_summary_is_off_by_one_row(deployed_dev: Deployed) -> None:
    import pyarrow.parquet as pq

    bucket, key = deployed_dev.outputs["buckets"]["gold"], "marts/daily_portfolio_summary.parquet"
    summary = pq.read_table(io.BytesIO(_object(deployed_dev, bucket, key)))
    last = summary.slice(summary.num_rows - 1).to_pylist()[0]
    out = io.BytesIO()
    pq.write_table(summary.slice(0, summary.num_rows - 1), out)
    _replace(deployed_dev, bucket, key, out.getvalue())
    with pytest.raises(CheckFailed, match=rf"^daily_portfolio_summary has no row for {last['portfolio_id']} "
                                          rf"{last['date']} \(Σ shares × close = [\d.]+\); rebuild gold from silver"
                       ) as exc:
        gold.portfolio_summary(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.gold:portfolio_summary")
def test_mart_probe_fails_when_a_market_value_is_not_shares_times_close(deployed_dev: Deployed) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    bucket, key = deployed_dev.outputs["buckets"]["gold"], "marts/daily_portfolio_summary.parquet"
    summary = pq.read_table(io.BytesIO(_object(deployed_dev, bucket, key)))
    values = summary["market_value"].to_pylist()
    values[0] += 1.0
    column = summary.schema.get_field_index("market_value")
    out = io.BytesIO()
    pq.write_table(summary.set_column(column, "market_value", pa.array(values, summary.schema.field(column).type)), out)
    _replace(deployed_dev, bucket, key, out.getvalue())
    first = summary.slice(0, 1).to_pylist()[0]
    with pytest.raises(CheckFailed, match=rf"^daily_portfolio_summary {first['portfolio_id']} {first['date']}: market "
                                          rf"value {re.escape(str(values[0]))} != [\d.]+ \(Σ shares × close\)"):
        gold.portfolio_summary(deployed_dev.ctx())


# ---- S17 -------------------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.transform:quality_tests_pass")
def test_quality_tests_probe_fails_on_a_stale_source(deployed_dev: Deployed) -> None:
    def stale(doc: dict[str, Any]) -> None:
        _result(doc, "source.finks.silver.quotes").update(status="error")

    run_id = _edit_run_results(deployed_dev, stale, "sources.json")
    with pytest.raises(CheckFailed, match=rf"^source source.finks.silver.quotes is error in build {run_id}'s freshness "
                                          r"audit; fix the data") as exc:
        transform.quality_tests_pass(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.transform:quality_results_recorded")
def test_quality_records_probe_fails_when_the_build_left_no_record(deployed_dev: Deployed) -> None:
    bucket, run_id = _latest_run(deployed_dev)
    _replace(deployed_dev, bucket, f"_quality/{run_id}.json", None)
    with pytest.raises(CheckFailed, match=rf"^dbt build {run_id} left no quality record at "
                                          rf"s3://finks-dev-gold/_quality/{run_id}.json; run the daily pipeline"):
        transform.quality_results_recorded(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.transform:quality_results_recorded")
def test_quality_records_probe_fails_when_the_record_miscounts_the_tests(deployed_dev: Deployed) -> None:
    bucket, run_id = _latest_run(deployed_dev)
    key = f"_quality/{run_id}.json"
    record = json.loads(_object(deployed_dev, bucket, key))
    _replace(deployed_dev, bucket, key, json.dumps({**record, "tests_run": record["tests_run"] - 1}).encode())
    with pytest.raises(CheckFailed, match=rf"^quality record {key} counts {record['tests_run'] - 1} tests, 0 failed; "
                                          rf"the build's run_results.json has {record['tests_run']}, 0 failed"):
        transform.quality_results_recorded(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.transform:quality_gate_held")
def test_quality_gate_probe_fails_when_a_run_with_failing_tests_published(deployed_dev: Deployed) -> None:
    bucket, run_id = _latest_run(deployed_dev)
    record = json.loads(_object(deployed_dev, bucket, f"_quality/{run_id}.json"))
    later = "99991231T000000Z-badrun"
    s3 = deployed_dev.client("s3")
    deployed_dev.undo(lambda: s3.delete_object(Bucket=bucket, Key=f"_quality/{later}.json"))
    s3.put_object(Bucket=bucket, Key=f"_quality/{later}.json", Body=json.dumps(
        {**record, "run_id": later, "ok": False, "published": True, "tests_failed": 2,
         "failed_tests": ["unique_dim_company_symbol", "not_null_dim_company_symbol"]}).encode())
    with pytest.raises(CheckFailed, match=rf"^run {later} failed 2 test\(s\) \['unique_dim_company_symbol', "
                                          r"'not_null_dim_company_symbol'\] and still published gold; republish"):
        transform.quality_gate_held(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.transform:quality_gate_held")
def test_quality_gate_probe_fails_when_the_served_run_failed_its_tests(deployed_dev: Deployed) -> None:
    bucket, run_id = _latest_run(deployed_dev)
    key = f"_quality/{run_id}.json"
    record = json.loads(_object(deployed_dev, bucket, key))
    _replace(deployed_dev, bucket, key, json.dumps({**record, "ok": False, "tests_failed": 1}).encode())
    with pytest.raises(CheckFailed, match=rf"^the served gold \(run {run_id}\) does not clear the flows' quality gate: "
                                          r"quality record s3://finks-dev-gold/_quality/"):
        transform.quality_gate_held(deployed_dev.ctx())


# ---- S13 -------------------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.glue:glue_catalog_and_job")
def test_glue_probe_fails_on_a_missing_crawler(deployed_dev: Deployed) -> None:
    deployed_dev.undo(deployed_dev.again(str(deployed_dev.stack.seeded.plan.one("aws:glue/crawler:Crawler").name)))
    deployed_dev.client("glue").delete_crawler(Name="finks-dev-bronze")
    with pytest.raises(CheckFailed, match=r"^Glue crawler finks-dev-bronze does not exist; run `finks infra up") as exc:
        glue.glue_catalog_and_job(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.glue:glue_catalog_and_job")
def test_glue_probe_fails_when_a_table_lacks_a_column_the_job_writes(deployed_dev: Deployed) -> None:
    client = deployed_dev.client("glue")
    table = client.get_table(DatabaseName="finks_dev", Name="silver_quotes")["Table"]
    keep = ("Name", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")
    original = {k: table[k] for k in keep if k in table}
    deployed_dev.undo(lambda: client.update_table(DatabaseName="finks_dev", TableInput=original))
    changed = json.loads(json.dumps(original, default=str))
    changed["StorageDescriptor"]["Columns"] = [c for c in changed["StorageDescriptor"]["Columns"] if c["Name"] != "volume"]
    client.update_table(DatabaseName="finks_dev", TableInput=changed)
    with pytest.raises(CheckFailed, match=r"^Glue table finks_dev.silver_quotes does not have the columns the job writes: "
                                          r"missing \['volume'\] \(and 1 more\)") as exc:
        glue.glue_catalog_and_job(deployed_dev.ctx())
    # ... and the silver the job wrote has the column the table lacks
    assert "s3://finks-dev-silver/quotes/date=" in exc.value.evidence.figures["problems"][1]


@pytest.mark.check_fails("validation.aws.glue:glue_catalog_and_job")
def test_glue_probe_fails_when_the_deployed_script_is_not_this_commits(deployed_dev: Deployed) -> None:
    from infra.components.glue import SCRIPT_KEY

    logs = deployed_dev.outputs["buckets"]["logs"]
    _replace(deployed_dev, logs, SCRIPT_KEY, b"print('an older script')\n")
    with pytest.raises(CheckFailed, match=rf"^Glue job finks-dev-bronze-to-silver's script s3://{logs}/{SCRIPT_KEY} is "
                                          r"not this commit's jobs/glue_bronze_to_silver.py"):
        glue.glue_catalog_and_job(deployed_dev.ctx())


def _start_run(d: Deployed, **arguments: str) -> None:
    import datetime as dt

    from flows.glue import job_arguments, run_glue_job

    args = {**job_arguments(d.settings, dt.date(2024, 3, 15), None), **arguments}
    run_glue_job(d.client("glue"), d.outputs["glue_job"], args, timeout_s=30, poll_s=0.05)


@pytest.mark.check_fails("validation.aws.glue:glue_job_succeeded")
def test_glue_run_probe_fails_when_the_last_run_wrote_elsewhere(deployed_dev: Deployed) -> None:
    deployed_dev.undo(lambda: _start_run(deployed_dev))  # a good run is the last one again
    _start_run(deployed_dev, **{"--TARGET": "s3://someone-elses-silver"})
    with pytest.raises(CheckFailed, match=r"^Glue job finks-dev-bronze-to-silver's last run jr_\w+ had --TARGET "
                                          r"s3://someone-elses-silver, not s3://finks-dev-silver; run bronze→silver"):
        glue.glue_job_succeeded(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.glue:glue_job_succeeded")
def test_glue_run_probe_fails_when_the_runs_silver_is_missing(deployed_dev: Deployed) -> None:
    silver = deployed_dev.outputs["buckets"]["silver"]
    _replace(deployed_dev, silver, "profiles/date=2024-03-15/part-0.parquet", None)
    with pytest.raises(CheckFailed, match=r"SUCCEEDED for 2024-03-15 but wrote no "
                                          r"s3://finks-dev-silver/profiles/date=2024-03-15/; run bronze→silver") as exc:
        glue.glue_job_succeeded(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


# ---- the platform side: where the dbt task keeps its artifacts ------------------------------------
def test_a_build_keeps_its_artifacts_and_names_itself_latest() -> None:
    """The seeding's lake was built by jobs.dbt itself: the artifacts are where the probes read them."""
    from jobs.dbt.artifacts import ARTIFACTS, DOCS
    from validation.aws.seed_transform import build

    built = build()
    runs = built.lake / "gold" / "_dbt" / "runs"
    latest = json.loads((built.lake / "gold" / "_dbt" / "latest.json").read_text())
    assert latest["run_id"] == built.run_id and latest["command"] == "build" and latest["published"] is True
    assert sorted(latest["artifacts"]) == sorted(ARTIFACTS)
    assert all((runs / built.run_id / name).is_file() for name in ARTIFACTS)
    assert all((built.lake / "gold" / "_dbt" / "docs" / name).is_file() for name in DOCS)


def test_only_the_last_runs_artifacts_are_kept(tmp_path: Path) -> None:
    from core.settings import load_settings
    from jobs.dbt.artifacts import KEEP, keep_artifacts
    from jobs.dbt.results import DbtResult

    settings = load_settings(env="local", state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake"))
    target = tmp_path / "target"
    target.mkdir()
    (target / "run_results.json").write_text("{}")
    for i in range(KEEP + 2):
        keep_artifacts(settings, DbtResult("build", "local", f"2024010{i // 10}T{i % 10:06d}Z", ok=True), target,
                       whole=True)
    runs = sorted(p.name for p in (tmp_path / "lake" / "gold" / "_dbt" / "runs").iterdir())
    assert len(runs) == KEEP and runs[0] == "20240100T000002Z"
    latest = json.loads((tmp_path / "lake" / "gold" / "_dbt" / "latest.json").read_text())
    assert latest["run_id"] == runs[-1] and latest["artifacts"] == ["run_results.json"]


def test_a_selected_build_keeps_its_artifacts_but_is_not_latest(tmp_path: Path) -> None:
    from core.settings import load_settings
    from jobs.dbt.artifacts import keep_artifacts, latest_build
    from jobs.dbt.results import DbtResult

    settings = load_settings(env="local", state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake"))
    (tmp_path / "run_results.json").write_text("{}")
    where = keep_artifacts(settings, DbtResult("build", "local", "20240101T000000Z", ok=True), tmp_path, whole=False)
    assert Path(where, "run_results.json").is_file()
    assert latest_build(settings) is None
