"""Live probe for S14's mart: daily_portfolio_summary as published in the gold bucket, and as
the API's Athena query path serves it.

``<gold>/_published.json`` says where each mart of the served gold is: a Parquet
key of the gold bucket (the local target's publish) or an Athena table
``schema.table`` (dbt-athena's), whose files the Glue catalog locates. The
probe reads the summary and the daily prices through boto3 (DuckDB's httpfs
cannot be downloaded offline), then DuckDB checks every (portfolio, day) of the
summary against Σ shares × close of the holdings open that day (the dbt
project's holdings seed) — every row present, none extra, each within a cent
or so of rounding. Then it asks Athena for one portfolio's summary the way the
API does (api.athena, api.queries) and compares that with the Parquet.
"""

from __future__ import annotations

import io
from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.gold_sample import SUMMARY_COLUMNS, Sample, athena_sample
from validation.aws.live import Live
from validation.aws.transform import gold_bucket, list_keys, read_json, read_object, rerun

SUMMARY, PRICES = "daily_portfolio_summary", "fct_daily_prices"
TOLERANCE = 0.05            # money is rounded to cents per position, then summed
INJECTED = "moto runs no SQL: the Athena rows were injected (moto's static query results), so the Athena step " \
           "exercises the API's query path, not Athena's answer"


def _mart(live: Live, gold: str, model: str, path: str) -> tuple[Any, str]:
    """The mart's rows from its Parquet object(s), and where they were read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.lake import split

    if path.endswith(".parquet"):
        bucket, keys = gold, [path]
    else:  # an Athena table: the catalog knows its files
        schema, _, table = path.partition(".")
        location = live.client("glue").get_table(DatabaseName=schema, Name=table)["Table"]["StorageDescriptor"]["Location"]
        bucket, prefix = split(location)
        keys = [k for k in list_keys(live, bucket, prefix.rstrip("/") + "/") if not k.rsplit("/", 1)[-1].startswith(("_", "."))]
    tables = []
    for key in keys:
        data = read_object(live, bucket, key)
        if data is None:
            raise live.fail([f"{model}: s3://{bucket}/{key}, which _published.json names, does not exist"],
                            {"model": model, "path": path}, rerun(live))
        tables.append(pq.read_table(io.BytesIO(data)))
    if not tables:
        raise live.fail([f"{model}: no Parquet file under {path}"], {"model": model, "path": path}, rerun(live))
    return pa.concat_tables(tables, promote_options="default"), f"s3://{bucket}/{keys[0] if len(keys) == 1 else prefix}"


def _mismatches(summary: Any, prices: Any, holdings: str) -> tuple[list[str], int]:
    """Every (portfolio, day) where the summary's market value is not Σ shares × close, or is missing."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("summary", summary)
        con.register("prices", prices)
        rows = con.execute("""
            with holdings as (
                select * from read_csv(?, header = true, columns = {'portfolio_id': 'VARCHAR',
                    'symbol': 'VARCHAR', 'shares': 'DOUBLE', 'cost_basis': 'DOUBLE', 'opened_date': 'DATE'})
            ),
            expected as (
                select h.portfolio_id, p."date", sum(h.shares * p.close) as market_value
                from holdings as h join prices as p on p.symbol = h.symbol and p."date" >= h.opened_date
                group by h.portfolio_id, p."date"
            )
            select coalesce(e.portfolio_id, s.portfolio_id), coalesce(e."date", s."date"), e.market_value,
                   s.market_value
            from expected as e full outer join summary as s
                on s.portfolio_id = e.portfolio_id and s."date" = e."date"
            order by 1, 2
        """, [holdings]).fetchall()
    finally:
        con.close()
    problems = []
    for pid, day, expected, actual in rows:
        if actual is None:
            problems.append(f"{SUMMARY} has no row for {pid} {day} (Σ shares × close = {expected:.2f})")
        elif expected is None:
            problems.append(f"{SUMMARY} has a row for {pid} {day} where no holding is priced")
        elif abs(expected - actual) > TOLERANCE:
            problems.append(f"{SUMMARY} {pid} {day}: market value {actual} != {expected:.2f} (Σ shares × close)")
    return problems, len(rows)


def _athena_backend(database: str, workgroup: str, client: Any) -> Any:
    from api.athena import AthenaBackend

    class Watched(AthenaBackend):
        """The API's Athena backend on the probe's client, whose calls are recorded like every probe's."""

        @property
        def client(self) -> Any:
            return client

    return Watched(database, workgroup=workgroup, timeout=120)


def _athena_rows(live: Live, sample: Sample, run_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from api import queries

    lambda_env = live.plan.one("aws:lambda/function:Function").inputs.get("environment", {}).get("variables", {})
    database, workgroup = lambda_env.get("FINKS_ATHENA_SCHEMA"), lambda_env.get("FINKS_ATHENA_WORKGROUP")
    backend = _athena_backend(str(database), str(workgroup), live.client("athena"))
    query = queries.portfolio_summary(sample.portfolio_id, sample.start, sample.end, sample.table.num_rows + 1)
    return backend.run(query, run_id), {"database": database, "workgroup": workgroup, "query": query.name}


def _differences(served: list[dict[str, Any]], sample: Sample) -> list[str]:
    want = sample.table.to_pylist()
    if len(served) != len(want):
        return [f"Athena serves {len(served)} {SUMMARY} rows for {sample.portfolio_id} "
                f"{sample.start}..{sample.end}, gold's Parquet has {len(want)}"]
    out = []
    for got, row in zip(served, want):
        for column in SUMMARY_COLUMNS:
            a, b = got.get(column), row[column]
            same = (a is None and b is None) or (
                isinstance(b, (int, float)) and isinstance(a, (int, float)) and abs(a - b) <= 0.005) or (
                str(a) == (b.isoformat() if hasattr(b, "isoformat") else str(b)))
            if not same:
                out.append(f"Athena serves {sample.portfolio_id} {row['date']} {column}={a}, gold's Parquet has {b}")
    return out


def portfolio_summary(ctx: CheckContext) -> Evidence:
    """The served gold's daily_portfolio_summary equals Σ shares × close of the open holdings per
    portfolio and day, with no row missing or extra; the API's Athena query serves the same rows."""
    from core.gold import PUBLISHED_FILE

    live = Live.of(ctx)
    gold = gold_bucket(live)
    published = read_json(live, gold, PUBLISHED_FILE)
    if not isinstance(published, dict) or not published.get("run_id"):
        raise live.fail([f"gold was never published: no s3://{gold}/{PUBLISHED_FILE}"], {"gold": gold}, rerun(live))
    paths = published.get("paths") or {}
    missing = [m for m in (SUMMARY, PRICES) if m not in paths]
    if missing:
        raise live.fail([f"s3://{gold}/{PUBLISHED_FILE} names no {m}" for m in missing], {"paths": paths}, rerun(live))
    summary, summary_at = _mart(live, gold, SUMMARY, str(paths[SUMMARY]))
    prices, _ = _mart(live, gold, PRICES, str(paths[PRICES]))
    holdings = ctx.root / "dbt_project" / "seeds" / "holdings.csv"
    figures: dict[str, Any] = {"run_id": published["run_id"], "summary": summary_at, "rows": summary.num_rows}
    problems, compared = _mismatches(summary, prices, str(holdings))
    if not problems and not any(summary["market_value"].to_pylist()):
        problems = [f"{SUMMARY} ({summary_at}) is empty or values every portfolio at 0"]
    remedy = f"rebuild gold from silver ({rerun(live)}); if it stays wrong, the model is: read models/marts/{SUMMARY}.sql"
    if problems:
        raise live.fail(problems, figures, remedy)
    from api.backend_types import BackendError

    sample = athena_sample(summary)
    try:
        served, athena = _athena_rows(live, sample, str(published["run_id"]))
    except BackendError as exc:
        raise live.fail([f"the API's summary query failed on Athena: {exc.message}"], figures,
                        "check the API's Athena workgroup and the gold schema dbt-athena publishes") from None
    figures.update(athena=athena, athena_rows=len(served), compared=compared)
    differences = _differences(served, sample)
    if differences:
        raise live.fail(differences, figures, f"Athena ({athena['database']}) does not serve the published gold: "
                        + remedy)
    return live.evidence(f"{SUMMARY} of run {published['run_id']} ({summary_at}): {compared} portfolio-days equal "
                         f"Σ shares × close; Athena serves {sample.portfolio_id}'s {len(served)} days the same",
                         figures, [INJECTED])
