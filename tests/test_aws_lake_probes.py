"""The lake probes (validation/aws/lake.py) on a "deployed" moto stack whose buckets hold what the
platform's own code left there (validation/aws/seed_lake.py: the connector against the FMP
simulator, bronze→silver on DuckDB, 30 XNYS sessions): each passes on the healthy lake and fails,
naming the object or the date, when exactly one thing is broken."""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from finks.checks import CheckFailed
from flows.calendar import is_closure, trading_days
from validation.aws import lake
from validation.aws.live import Live

if TYPE_CHECKING:
    from tests.fixtures.deployed import Deployed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")

PROBES = [lake.bronze_landed, lake.extraction_complete, lake.backfill_covers_30_days]


def _keys(d: Deployed, zone: str, prefix: str) -> list[str]:
    s3, bucket = d.client("s3"), d.outputs["buckets"][zone]
    return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]


def _replace(d: Deployed, zone: str, key: str, body: bytes | None) -> None:
    """Put ``body`` at ``key`` (None: delete it); the test's end puts the original back."""
    s3, bucket = d.client("s3"), d.outputs["buckets"][zone]
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    d.undo(lambda: s3.put_object(Bucket=bucket, Key=key, Body=original))
    if body is None:
        s3.delete_object(Bucket=bucket, Key=key)
    else:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def _newest_manifest(d: Deployed, dataset: str, day: dt.date) -> str:
    return max(k for k in _keys(d, "bronze", f"fmp/{dataset}/date={day}/") if k.endswith("/_manifest.json"))


# ---- the healthy lake ----------------------------------------------------------------------------
@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.__name__)
def test_lake_probe_passes_on_the_deployed_dev_stack(deployed_dev: Deployed, probe: Any) -> None:
    evidence = probe(deployed_dev.ctx())
    assert evidence.figures["endpoint"] == deployed_dev.url
    assert evidence.figures["found_by"].startswith("stack outputs")


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.__name__)
def test_lake_probe_finds_the_buckets_by_their_tags_without_recorded_outputs(deployed_dev: Deployed, probe: Any,
                                                                          tmp_path: Path) -> None:
    evidence = probe(deployed_dev.ctx(tmp_path / "no-outputs"))
    assert evidence.figures["found_by"] == "tags Project=finks, Environment=dev"


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.__name__)
def test_lake_probe_passes_on_the_deployed_prod_stack(deployed_prod: Deployed, probe: Any) -> None:
    assert probe(deployed_prod.ctx()).figures["bucket"].startswith("finks-prod-")


def test_bronze_probe_reads_every_dataset_of_the_latest_trading_day(deployed_dev: Deployed) -> None:
    evidence = lake.bronze_landed(deployed_dev.ctx())
    day = lake.latest_trading_day()
    assert evidence.figures["date"] == day.isoformat() and day in trading_days(day, day)
    assert set(evidence.figures["datasets"]) == {"quotes", "profiles", "eod"}
    assert all(s["files"] > 0 and s["records"] > 0 for s in evidence.figures["datasets"].values())


def test_latest_trading_day_waits_for_the_scheduled_run_and_skips_closures() -> None:
    """The daily run (02:00 UTC) for Wednesday 2025-01-08 has finished by Thursday morning; Thursday
    2025-01-09 (national day of mourning) had no session, so on Friday morning it is still the 8th."""
    at = dt.datetime
    assert lake.latest_trading_day(at(2025, 1, 9, 1, 0, tzinfo=dt.UTC)) == dt.date(2025, 1, 7)
    assert lake.latest_trading_day(at(2025, 1, 9, 7, 0, tzinfo=dt.UTC)) == dt.date(2025, 1, 8)
    assert lake.latest_trading_day(at(2025, 1, 10, 7, 0, tzinfo=dt.UTC)) == dt.date(2025, 1, 8)
    assert lake.latest_trading_day(at(2024, 11, 29, 7, 0, tzinfo=dt.UTC)) == dt.date(2024, 11, 27)  # Thanksgiving


# ---- S15: bronze objects and manifests -----------------------------------------------------------
@pytest.mark.check_fails("validation.aws.lake:bronze_landed")
def test_bronze_probe_fails_on_a_missing_bronze_object(deployed_dev: Deployed) -> None:
    day = lake.latest_trading_day()
    manifest = _newest_manifest(deployed_dev, "quotes", day)
    part = manifest.replace("_manifest.json", "part-00003.json.gz")
    _replace(deployed_dev, "bronze", part, None)
    with pytest.raises(CheckFailed, match=rf"^s3://finks-dev-bronze/{part} listed in its manifest is missing; "
                                          rf"rerun the date's ingestion: `finks pipeline run --env dev --date {day} "
                                          r"--force`") as exc:
        lake.bronze_landed(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.lake:bronze_landed")
def test_bronze_probe_fails_on_an_object_that_does_not_match_its_manifest(deployed_dev: Deployed) -> None:
    import gzip

    day = lake.latest_trading_day()
    part = _newest_manifest(deployed_dev, "eod", day).replace("_manifest.json", "part-00000.json.gz")
    _replace(deployed_dev, "bronze", part, gzip.compress(b"[]"))
    with pytest.raises(CheckFailed, match=rf"^s3://finks-dev-bronze/{part} does not match its manifest's checksum"):
        lake.bronze_landed(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.lake:extraction_complete")
def test_extraction_probe_fails_on_a_manifest_with_a_failed_symbol(deployed_dev: Deployed) -> None:
    day = lake.latest_trading_day()
    key = _newest_manifest(deployed_dev, "quotes", day)
    s3, bucket = deployed_dev.client("s3"), deployed_dev.outputs["buckets"]["bronze"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    manifest["symbols"]["MSFT"] = {"status": "failed", "records": 0, "invalid": 0,
                                   "error": "HTTP 500 from /stable/quote after 4 retries"}
    _replace(deployed_dev, "bronze", key, json.dumps(manifest).encode())
    with pytest.raises(CheckFailed, match=rf"^quotes for {day}: 1 of 25 symbols failed in s3://finks-dev-bronze/{key}: "
                                          r"MSFT \(HTTP 500 from /stable/quote after 4 retries\); rerun the date: "
                                          rf"`finks pipeline run --env dev --date {day}`") as exc:
        lake.extraction_complete(deployed_dev.ctx())
    assert exc.value.evidence.figures["datasets"]["quotes"]["failed_symbols"] == ["MSFT"]
    lake.bronze_landed(deployed_dev.ctx())  # the objects still match: only the outcome is wrong


@pytest.mark.check_fails("validation.aws.lake:extraction_complete")
def test_extraction_probe_fails_when_a_symbol_of_the_universe_has_no_outcome(deployed_dev: Deployed,
                                                                            tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A universe that grew after the run (FINKS_UNIVERSE, a file): the new symbol was never fetched."""
    from connectors.fmp.universe import resolve

    universe = tmp_path / "universe.txt"
    universe.write_text("\n".join([*resolve("default"), "NEWCO"]) + "\n")
    monkeypatch.setenv("FINKS_UNIVERSE", str(universe))
    with pytest.raises(CheckFailed, match=r"^quotes for .*: 1 of 26 symbols of universe .* have no outcome in any "
                                          r"manifest \(NEWCO\)"):
        lake.extraction_complete(deployed_dev.ctx())


# ---- S18: 30 trading days of silver --------------------------------------------------------------
def test_backfill_probe_expects_no_partition_on_the_windows_closures(deployed_dev: Deployed) -> None:
    evidence = lake.backfill_covers_30_days(deployed_dev.ctx())
    f = evidence.figures
    start, end = dt.date.fromisoformat(f["start"]), dt.date.fromisoformat(f["end"])
    closures = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    assert f["sessions"] == 30 and f["missing"] == []
    assert f["closures"] == [d.isoformat() for d in closures if is_closure(d)]
    assert f["backfill"]["resources"]["peak_rss_mb"] > 0


@pytest.mark.check_fails("validation.aws.lake:backfill_covers_30_days")
def test_backfill_probe_names_the_trading_day_whose_partition_was_deleted(deployed_dev: Deployed) -> None:
    day = lake.last_sessions(lake.latest_trading_day(), 30)[11]
    _replace(deployed_dev, "silver", f"eod_prices/date={day}/part-0.parquet", None)
    with pytest.raises(CheckFailed, match=rf"^silver s3://finks-dev-silver/eod_prices/ misses 1 of 30 trading days "
                                          rf"\({day}\); rebuild it: `finks pipeline run --env dev --date {day}`") as exc:
        lake.backfill_covers_30_days(deployed_dev.ctx())
    assert exc.value.evidence.figures["missing"] == [day.isoformat()]


@pytest.mark.check_fails("validation.aws.lake:backfill_covers_30_days")
def test_backfill_probe_fails_on_a_partition_holding_another_days_rows(deployed_dev: Deployed) -> None:
    window = lake.last_sessions(lake.latest_trading_day(), 30)
    s3, bucket = deployed_dev.client("s3"), deployed_dev.outputs["buckets"]["silver"]
    other = s3.get_object(Bucket=bucket, Key=f"eod_prices/date={window[3]}/part-0.parquet")["Body"].read()
    key = f"eod_prices/date={window[4]}/part-0.parquet"
    _replace(deployed_dev, "silver", key, other)
    with pytest.raises(CheckFailed, match=rf"^s3://finks-dev-silver/{key} holds rows of \['{window[3]}'\], not "
                                          rf"{window[4]}; rebuild it: `finks pipeline run --env dev --date {window[4]}`"):
        lake.backfill_covers_30_days(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.lake:backfill_covers_30_days")
def test_backfill_probe_fails_when_the_backfill_recorded_no_resource_usage(deployed_dev: Deployed) -> None:
    key = next(k for k in _keys(deployed_dev, "silver", "_pipeline/backfills/") if k.endswith(".json"))
    s3, bucket = deployed_dev.client("s3"), deployed_dev.outputs["buckets"]["silver"]
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    _replace(deployed_dev, "silver", key, json.dumps({**report, "resources": {}}).encode())
    with pytest.raises(CheckFailed, match=rf"^backfill .* \(s3://finks-dev-silver/{key}\) recorded no resource usage "
                                          r"\(wall_s, cpu_s, peak_rss_mb\): none; run the backfill") as exc:
        lake.backfill_covers_30_days(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


def test_backfill_probe_does_not_expect_the_carter_closure_or_mlk_day(deployed_dev: Deployed) -> None:
    """30 sessions up to 2025-01-31: partitions for each (the latest partition the platform wrote,
    re-dated); 2025-01-09 (unscheduled closure) and 2025-01-20 (MLK day) expect none. Then one
    session next to the closure loses its partition: only that date is missing."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    s3, bucket = deployed_dev.client("s3"), deployed_dev.outputs["buckets"]["silver"]
    latest = lake.latest_trading_day()
    model = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=f"eod_prices/date={latest}/part-0.parquet")
                                     ["Body"].read()))
    sessions = lake.last_sessions(dt.date(2025, 1, 31), 30)
    for day in sessions:
        table = model.set_column(model.schema.get_field_index("date"), "date",
                                 pa.array([day] * model.num_rows, model.schema.field("date").type))
        sink = io.BytesIO()
        pq.write_table(table, sink)
        key = f"eod_prices/date={day}/part-0.parquet"
        s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())
        deployed_dev.undo(functools.partial(s3.delete_object, Bucket=bucket, Key=key))
    live = Live.of(deployed_dev.ctx())

    cov, problems, figures = lake.silver_coverage(live, dt.date(2025, 1, 31))
    assert problems == [] and cov.missing == []
    assert figures["closures"] == ["2024-12-25", "2025-01-01", "2025-01-09", "2025-01-20"]

    s3.delete_object(Bucket=bucket, Key="eod_prices/date=2025-01-10/part-0.parquet")
    cov, problems, _ = lake.silver_coverage(live, dt.date(2025, 1, 31))
    assert cov.missing == [dt.date(2025, 1, 10)]
    assert problems == ["silver s3://finks-dev-silver/eod_prices/ misses 1 of 30 trading days (2025-01-10)"]


# ---- S15's code properties hold on an AWS environment too ------------------------------------------
@pytest.mark.slow
def test_error_handling_check_runs_on_dev_without_touching_the_environment(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as `finks verify --env dev` runs it (a child with FINKS_ENV=dev), with every AWS call
    pointed at a closed port: its simulators and scratch lake are all it needs."""
    from finks.outcomes import Outcome
    from tests.fixtures.checks import context, run_target

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    result = run_target("validation.connector:errors_handled", context(tmp_path, env="dev"), timeout=300)
    assert result.outcome is Outcome.passed, (result.evidence.message, result.evidence.excerpt[-1500:])
    # The command it runs landed its ingestion in the check's scratch lake, not in dev's bronze bucket.
    landed = list((tmp_path / "work" / "cli" / "lake" / "bronze" / "fmp" / "quotes").rglob("_manifest.json"))
    assert len(landed) == 1 and json.loads(landed[0].read_text())["symbols"]["MSFT"]["status"] == "failed"
