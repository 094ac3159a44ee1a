"""The cloud path against a real moto server over HTTP: Athena queries, gold on S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from api import queries, samplegold
from api.app import create_app
from api.athena import AthenaBackend, literal
from api.backends import DuckDBBackend
from api.server import running_server
from core import lake
from core.aws import client_kwargs
from core.gold import read_published
from core.settings import Settings, load_settings

REGION = "ca-central-1"
KEY = "cloud-key"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def s3_settings(moto_url: str, tmp_path: Path) -> Settings:
    # A unique bucket prefix per test keeps tests independent on the shared server.
    prefix = f"finks-t{tmp_path.name[-12:].lower().replace('_', '-')}"
    settings = load_settings(
        env="local",
        storage="s3",
        s3_endpoint_url=moto_url,
        bucket_prefix=prefix,
        region=REGION,
        api_key=KEY,
        state_dir=str(tmp_path),
    )
    s3 = boto3.client("s3", **client_kwargs(settings))
    for zone in ("gold", "logs"):
        s3.create_bucket(
            Bucket=lake.bucket(settings, zone),
            CreateBucketConfiguration={"LocationConstraint": REGION},
        )
    return settings


def queue_athena_result(
    moto_url: str, columns: list[tuple[str, str]], rows: list[list[str | None]]
) -> None:
    """Queue one canned result set, shaped like Athena's (labels repeated as the first row)."""

    def row(values: list[str | None]) -> dict[str, Any]:
        return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}

    body = {
        "region": REGION,
        "results": [
            {
                "rows": [row([name for name, _ in columns])] + [row(r) for r in rows],
                "column_info": [
                    {"Name": n, "Label": n, "Type": t, "Nullable": "NULLABLE"} for n, t in columns
                ],
            }
        ],
    }
    assert (
        httpx.post(f"{moto_url}/moto-api/static/athena/query-results", json=body).status_code == 201
    )


PRICE_COLUMNS = [
    ("symbol", "varchar"),
    ("date", "date"),
    ("open", "double"),
    ("high", "double"),
    ("low", "double"),
    ("close", "double"),
    ("volume", "bigint"),
    ("vwap", "double"),
    ("change", "double"),
    ("change_pct", "decimal(12,6)"),
]


def test_athena_literals_quote_strings_and_dates() -> None:
    from datetime import date

    assert literal("O'Neil") == "'O''Neil'"
    assert literal(date(2024, 1, 2)) == "'2024-01-02'"
    assert literal(3) == "3"


def test_a_page_is_written_offset_first_the_only_order_trino_accepts() -> None:
    from datetime import date

    sql = queries.positions("growth", date(2024, 1, 2), limit=3, offset=5).sql
    assert sql.endswith("ORDER BY market_value DESC, symbol OFFSET 5 LIMIT 3")
    assert queries.portfolios(limit=3).sql.endswith("ORDER BY portfolio_id LIMIT 3")


def test_athena_backend_sends_parameterized_sql_and_types_the_results(
    moto_url: str, s3_settings: Settings
) -> None:
    backend = AthenaBackend.from_settings(s3_settings)
    queue_athena_result(
        moto_url,
        PRICE_COLUMNS,
        [
            [
                "AAPL",
                "2024-01-02",
                "179.0",
                "182.0",
                "178.0",
                "180.0",
                "1000000",
                "179.5",
                None,
                None,
            ],
            [
                "AAPL",
                "2024-01-03",
                "180.5",
                "183.5",
                "179.5",
                "181.5",
                "1001000",
                "181.0",
                "1.5",
                "0.833333",
            ],
        ],
    )
    from datetime import date

    query = queries.prices("AAPL", date(2024, 1, 1), date(2024, 1, 31), limit=101)
    rows = backend.run(query, run_id="r1")

    assert rows[0] == {
        "symbol": "AAPL",
        "date": "2024-01-02",
        "open": 179.0,
        "high": 182.0,
        "low": 178.0,
        "close": 180.0,
        "volume": 1000000,
        "vwap": 179.5,
        "change": None,
        "change_pct": None,
    }
    assert rows[1]["change_pct"] == pytest.approx(0.833333) and len(rows) == 2
    client = backend.client
    execution_id = client.list_query_executions()["QueryExecutionIds"][-1]
    sent = client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert '"finks_local_gold"."fct_daily_prices"' in sent["Query"] and "{" not in sent["Query"]
    # A page's size is part of the SQL (Trino's order: OFFSET before LIMIT), not a parameter.
    assert sent["Query"].endswith('ORDER BY "date" LIMIT 101')
    assert sent["QueryExecutionContext"]["Database"] == "finks_local_gold"
    assert sent["ExecutionParameters"] == ["'AAPL'", "'2024-01-01'", "'2024-01-31'"]
    assert sent["ResultConfiguration"]["OutputLocation"].startswith(
        f"s3://{lake.bucket(s3_settings, 'logs')}/athena-results/"
    )


def test_app_on_athena_serves_prices_with_freshness_from_s3(
    moto_url: str, s3_settings: Settings
) -> None:
    sample = samplegold.build(days=2, run_id="cloud-run")
    s3 = boto3.client("s3", **client_kwargs(s3_settings))
    s3.put_object(
        Bucket=lake.bucket(s3_settings, "gold"),
        Key="_published.json",
        Body=sample.files["_published.json"],
    )
    queue_athena_result(
        moto_url,
        PRICE_COLUMNS,
        [
            [
                "MSFT",
                "2024-01-02",
                "369.0",
                "372.0",
                "368.0",
                "370.0",
                "1000000",
                "369.5",
                None,
                None,
            ],
        ],
    )
    app = create_app(s3_settings, backend=AthenaBackend.from_settings(s3_settings))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        health = http.get("/v1/health").json()
        prices = http.get(
            "/v1/prices/MSFT?start=2024-01-01&end=2024-01-05", headers={"x-api-key": KEY}
        )
        again = http.get(
            "/v1/prices/MSFT?start=2024-01-01&end=2024-01-05", headers={"x-api-key": KEY}
        )
    assert health["backend"] == "athena" and health["gold"]["run_id"] == "cloud-run"
    assert prices.status_code == 200, prices.text
    assert (
        prices.json()["data"][0]["close"] == 370.0
        and prices.json()["meta"]["run_id"] == "cloud-run"
    )
    # The second request is a cache hit: no Athena query (whose queue is now empty) was needed.
    assert again.headers["x-cache"] == "hit" and again.json() == prices.json()


def test_duckdb_backend_reads_gold_parquet_from_s3(s3_settings: Settings) -> None:
    s3 = boto3.client("s3", **client_kwargs(s3_settings))
    samplegold.write(
        samplegold.build(days=3, run_id="s3-run"), lake.zone_uri(s3_settings, "gold"), s3_client=s3
    )

    published = read_published(s3_settings)
    assert published is not None and published.run_id == "s3-run"
    rows = DuckDBBackend(s3_settings).run(queries.portfolios(limit=10), published.run_id)
    assert [(r["portfolio_id"], r["days"]) for r in rows] == [("growth", 3), ("income", 3)]


def test_published_is_none_when_the_gold_bucket_has_no_publication(s3_settings: Settings) -> None:
    assert read_published(s3_settings) is None


def test_a_dedicated_workgroup_supplies_the_result_location(
    moto_url: str, s3_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    workgroup = f"{lake.bucket(s3_settings, 'logs')}-api"
    monkeypatch.setenv("FINKS_ATHENA_WORKGROUP", workgroup)
    monkeypatch.setenv("FINKS_ATHENA_SCHEMA", "finks_dev_gold")
    backend = AthenaBackend.from_settings(s3_settings)
    backend.client.create_work_group(
        Name=workgroup,
        Configuration={
            "ResultConfiguration": {
                "OutputLocation": f"s3://{lake.bucket(s3_settings, 'logs')}/wg/"
            },
            "EnforceWorkGroupConfiguration": True,
        },
    )
    queue_athena_result(moto_url, [("n", "bigint"), ("last_date", "date")], [["3", "2024-01-04"]])

    rows = backend.run(queries.portfolio_days("growth"), run_id="r")

    assert backend.output_location is None
    assert rows == [{"n": 3, "last_date": "2024-01-04"}]
    execution_id = backend.client.list_query_executions(WorkGroup=workgroup)["QueryExecutionIds"][
        -1
    ]
    sent = backend.client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert '"finks_dev_gold"."daily_portfolio_summary"' in sent["Query"]
