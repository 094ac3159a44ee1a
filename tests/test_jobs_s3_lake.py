"""The same jobs against an S3 lake: a real moto server over HTTP on a free port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from core import lake
from core.gold import read_published
from core.settings import load_settings
from jobs.bronze_to_silver import run
from jobs.dbt import run_dbt
from jobs.testdata import generate_bronze, trading_days
from tests.fixtures.lake import END_DATE, HOLDING_SYMBOLS


@pytest.fixture
def s3_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    boto3 = pytest.importorskip("boto3")
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = load_settings(env="local", storage="s3", state_dir=tmp_path / "state",
                             s3_endpoint_url=f"http://{host}:{port}",
                             bucket_prefix=f"finks-t{uuid.uuid4().hex[:8]}")
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name=settings.region,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for bucket in lake.buckets(settings).values():
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": settings.region})
    try:
        yield settings
    finally:
        server.stop()


def test_transform_and_publish_on_an_s3_lake(s3_settings: Any) -> None:
    settings = s3_settings
    gen = generate_bronze(settings, HOLDING_SYMBOLS, trading_days(END_DATE, 2))
    for day in gen.dates:
        result = run(settings, day)
        assert result.get("eod_prices").rows_written == gen.expected["eod_prices", day].rows
        assert result.get("eod_prices").silver_uri.startswith("s3://")
    fs = pafs.S3FileSystem(endpoint_override=settings.s3_endpoint.split("://")[1], scheme="http",
                           access_key="testing", secret_key="testing", region=settings.region)
    silver = f"{lake.bucket(settings, 'silver')}/quotes/date={END_DATE}/part-0.parquet"
    assert pq.read_table(silver, filesystem=fs).num_rows == gen.expected["quotes", END_DATE].rows

    built = run_dbt(settings, quiet=True)
    assert built.ok and built.published, (built.error, built.failed_tests)
    assert read_published(settings).run_id == built.run_id
    gold = f"{lake.bucket(settings, 'gold')}/marts/daily_portfolio_summary.parquet"
    assert pq.read_table(gold, filesystem=fs).num_rows > 0
