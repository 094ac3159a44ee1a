"""Ingestion into bronze: layout, manifest, outcomes, quarantine, skip/force, resume, S3."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from connectors.fmp.errors import FmpAuthError, FmpQuotaExhausted
from connectors.fmp.ingest import run_ingest
from connectors.fmp.simulator import Faults
from core import lake
from tests.fixtures.fmp import TEST_KEY

DAY = "2024-03-05"
FAST: dict[str, Any] = {"max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.05}


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() + (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else b"")
                    for p in root.rglob("*") if p.is_file())


def test_quotes_land_in_bronze_with_a_complete_manifest(fmp_sim, fmp_settings, tmp_path) -> None:
    settings = fmp_settings(fmp_sim)
    result = run_ingest(settings, DAY, "quotes", symbols=["AAPL", "MSFT", "NOPE1"])
    assert result.ok and result.counts() == {"ok": 2, "no_data": 1, "failed": 0}
    manifest_path = Path(result.manifest_uri)
    folder = manifest_path.parent
    assert folder.parent.name == f"date={DAY}" and folder.name.startswith("ingested_at=")
    assert folder.parent.parent == tmp_path / "lake" / "bronze" / "fmp" / "quotes"
    manifest = json.loads(manifest_path.read_text())
    for key in ("dataset", "date", "ingested_at", "schema_version", "symbols", "files", "plan", "calls",
                "calls_per_minute"):
        assert key in manifest
    assert manifest["symbols"]["NOPE1"] == {"status": "no_data", "records": 0, "error": None, "invalid": 0}
    for entry in manifest["files"]:
        blob = (folder / entry["path"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == entry["sha256"]
        assert len(json.loads(gzip.decompress(blob))) == entry["records"]
    assert len(manifest["files"]) == 2 and manifest_path.stat().st_mtime_ns >= max(
        (folder / f["path"]).stat().st_mtime_ns for f in manifest["files"])


def test_bronze_keeps_the_body_exactly_as_received(fmp_sim, fmp_settings) -> None:
    import httpx

    result = run_ingest(fmp_settings(fmp_sim), DAY, "profiles", symbols=["AAPL"])
    part = next(Path(result.manifest_uri).parent.glob("part-*.json.gz"))
    raw = httpx.get(f"{fmp_sim.base_url}/stable/profile", params={"symbol": "AAPL", "date": DAY}).content
    assert gzip.decompress(part.read_bytes()) == raw


def test_one_failed_symbol_never_loses_the_others(make_fmp_sim, fmp_settings) -> None:
    sim = make_fmp_sim(faults=Faults(symbol_faults={"MSFT": "500", "AMZN": "error200"}))
    result = run_ingest(fmp_settings(sim), DAY, "eod", symbols=["AAPL", "MSFT", "AMZN", "META"], **FAST)
    assert not result.ok and result.failed_symbols == ["AMZN", "MSFT"]
    assert result.symbols["AAPL"].status == "ok" and result.symbols["META"].status == "ok"
    manifest = json.loads(Path(result.manifest_uri).read_text())
    assert manifest["symbols"]["MSFT"]["status"] == "failed" and "HTTP 500" in manifest["symbols"]["MSFT"]["error"]


def test_invalid_records_are_quarantined_with_the_reason(make_fmp_sim, fmp_settings) -> None:
    sim = make_fmp_sim(faults=Faults(symbol_faults={"NVDA": "invalid"}))
    result = run_ingest(fmp_settings(sim), DAY, "quotes", symbols=["AAPL", "NVDA"])
    assert result.quarantined == 1 and result.symbols["NVDA"].invalid == 1
    folder = Path(result.manifest_uri).parent
    rows = json.loads(gzip.decompress((folder / "_quarantine.json.gz").read_bytes()))
    assert rows[0]["symbol"] == "NVDA" and "price" in rows[0]["reason"]
    assert json.loads((folder / "_manifest.json").read_text())["quarantine"]["records"] == 1


def test_a_date_already_ingested_is_skipped_unless_forced(fmp_sim, fmp_settings) -> None:
    settings = fmp_settings(fmp_sim)
    first = run_ingest(settings, DAY, "quotes", symbols=["AAPL"])
    calls = fmp_sim.stats.requests
    again = run_ingest(settings, DAY, "quotes", symbols=["AAPL"])
    assert again.skipped and again.manifest_uri == first.manifest_uri and fmp_sim.stats.requests == calls
    forced = run_ingest(settings, DAY, "quotes", symbols=["AAPL"], force=True)
    assert not forced.skipped and forced.manifest_uri != first.manifest_uri


def test_an_interrupted_run_resumes_without_duplicates(make_fmp_sim, fmp_settings) -> None:
    symbols = ["AAPL", "MSFT", "AMZN", "META", "NVDA", "TSLA"]
    capped = make_fmp_sim(faults=Faults(daily_limit=3))
    settings = fmp_settings(capped, fmp_max_concurrency=1)
    with pytest.raises(FmpQuotaExhausted) as info:
        run_ingest(settings, DAY, "quotes", symbols=symbols, **FAST)
    partial = info.value.result
    assert partial.stopped and partial.manifest_uri is None
    assert sum(o.status == "ok" for o in partial.symbols.values()) == 3
    assert "quota" in str(info.value) and "rerun" in str(info.value)

    fresh = make_fmp_sim()
    resumed = run_ingest(fmp_settings(fresh, fmp_max_concurrency=1), DAY, "quotes", symbols=symbols)
    assert resumed.ok and resumed.resumed and fresh.stats.requests == 3  # only the missing three
    folder = Path(resumed.manifest_uri).parent
    assert sorted(p.name for p in folder.glob("part-*")) == [f"part-{i:05d}.json.gz" for i in range(6)]
    assert len(list(folder.parent.iterdir())) == 1


def test_an_invalid_key_stops_the_run_clearly(make_fmp_sim, fmp_settings) -> None:
    sim = make_fmp_sim(faults=Faults(invalid_key=True))
    with pytest.raises(FmpAuthError) as info:
        run_ingest(fmp_settings(sim), DAY, "quotes", symbols=["AAPL", "MSFT", "AMZN"], **FAST)
    assert set(info.value.result.failed_symbols) == {"AAPL", "MSFT", "AMZN"}
    assert sim.stats.requests <= 8  # one per worker at most, never retried


def test_bulk_eod_fetches_the_whole_market_in_one_call(fmp_sim, fmp_settings) -> None:
    result = run_ingest(fmp_settings(fmp_sim), DAY, "eod", bulk=True)
    assert result.ok and result.calls == 1 and len(result.symbols) >= 500


def test_the_key_never_appears_in_any_file(make_fmp_sim, fmp_settings, tmp_path) -> None:
    sim = make_fmp_sim(faults=Faults(symbol_faults={"MSFT": "503", "NVDA": "invalid"}))
    settings = fmp_settings(sim)
    run_ingest(settings, DAY, "quotes", symbols=["AAPL", "MSFT", "NVDA"], **FAST)
    run_ingest(settings, DAY, "profiles", symbols=["AAPL"], **FAST)
    assert TEST_KEY in sim.stats.keys_seen
    assert TEST_KEY.encode() not in _all_bytes(tmp_path)


@pytest.mark.services
def test_quotes_land_on_s3_with_the_manifest_last(fmp_sim, fmp_settings, moto_s3_endpoint, monkeypatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("FINKS_LAKE_URI")
    settings = fmp_settings(fmp_sim, storage="s3", s3_endpoint_url=moto_s3_endpoint, bucket_prefix="fmptest")
    s3 = boto3.client("s3", endpoint_url=moto_s3_endpoint, region_name=settings.region)
    bucket = lake.bucket(settings, "bronze")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": settings.region})
    result = run_ingest(settings, DAY, "quotes", symbols=["AAPL", "MSFT"])
    assert result.ok and result.manifest_uri.startswith(f"s3://{bucket}/fmp/quotes/date={DAY}/ingested_at=")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sum(k.endswith(".json.gz") for k in keys) == 2 and sum(k.endswith("_manifest.json") for k in keys) == 1
    manifest_key = next(k for k in keys if k.endswith("_manifest.json"))
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    for entry in manifest["files"]:
        key = manifest_key.rsplit("/", 1)[0] + "/" + entry["path"]
        assert hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest() == entry["sha256"]
    assert run_ingest(settings, DAY, "quotes", symbols=["AAPL"]).skipped


def test_local_writes_are_atomic_renames(tmp_path) -> None:
    from connectors.fmp.writer import LocalStore

    store = LocalStore(tmp_path)
    (tmp_path / "fmp").mkdir()
    (tmp_path / "fmp" / ".part-00000.json.gz.abc.tmp").write_bytes(b"half")  # a writer that died mid-way
    store.put("fmp/part-00000.json.gz", b"whole")
    assert store.list("fmp/") == ["fmp/part-00000.json.gz"]  # temp files are never listed
    assert store.get("fmp/part-00000.json.gz") == b"whole"
    assert not [p for p in (tmp_path / "fmp").iterdir() if p.name.endswith(".tmp") and "abc" not in p.name]


def test_a_manifest_lists_only_objects_that_exist(make_fmp_sim, fmp_settings) -> None:
    sim = make_fmp_sim(faults=Faults(symbol_faults={"MSFT": "empty"}))
    result = run_ingest(fmp_settings(sim), DAY, "eod", symbols=["AAPL", "MSFT"])
    folder = Path(result.manifest_uri or "").parent
    manifest = json.loads((folder / "_manifest.json").read_text())
    assert [f["path"] for f in manifest["files"]] == ["part-00000.json.gz"]
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "_run.json", "part-00000.json.gz"]
