"""Checks for the transformation sessions (S12, S13, S14, S17).

Local checks work in a scratch lake under the check's work_dir: they generate
bronze with known defects (jobs.testdata), run the real jobs and dbt, and
compare with ground truth. They never touch the developer's lake.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from core import lake
from finks.checks import CheckContext, CheckFailed, Evidence

HOLDINGS = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "JPM", "V", "JNJ", "XOM"]
END = "2024-03-15"


def _project(ctx: CheckContext) -> Path:
    """The dbt project of the repository the check looks at."""
    return ctx.root / "dbt_project"


def _scratch(ctx: CheckContext, days: int = 3, transform: bool = True) -> tuple[Any, Any]:
    """A lake in the work dir with generated bronze (and silver, if ``transform``)."""
    from core.settings import load_settings
    from jobs.bronze_to_silver import run
    from jobs.testdata import generate_bronze, trading_days

    base = ctx.work_dir / "scratch"
    settings = load_settings(env="local", root=ctx.root, state_dir=base / "state",
                             lake_uri=str(base / "lake"))
    gen = generate_bronze(settings, HOLDINGS, trading_days(END, days))
    if transform:
        for day in gen.dates:
            result = run(settings, day, engine="duckdb")
            if not result.ok:
                raise CheckFailed(f"bronze→silver failed for {day}", figures=result.to_dict())
    return settings, gen


# ---- S12 -------------------------------------------------------------------
def dbt_dockerfile(ctx: CheckContext) -> Evidence:
    path = _project(ctx) / "Dockerfile"
    if not path.is_file():
        raise CheckFailed(f"{path} is missing")
    text = path.read_text()
    problems = []
    if not re.search(r"^FROM\s+\S+", text, re.MULTILINE):
        problems.append("no FROM line")
    for package in ("dbt-core", "dbt-athena"):
        if not re.search(rf"pip install[^\n]*{package}", text):
            problems.append(f"{package} is not installed")
    runs = re.findall(r"^(?:ENTRYPOINT|CMD)\s+(.*)$", text, re.MULTILINE)
    if not any("dbt" in line for line in runs):
        problems.append("neither ENTRYPOINT nor CMD runs dbt")
    if re.search(r"^USER\s+root\s*$", text, re.MULTILINE) or not re.search(r"^USER\s+\S+", text, re.MULTILINE):
        problems.append("does not drop root (no USER line)")
    if problems:
        raise CheckFailed(f"{path.name}: " + "; ".join(problems))
    return Evidence("dbt image: dbt-core + dbt-athena, non-root, runs dbt via jobs.dbt (not built: no Docker here)",
                    figures={"dockerfile": str(path.relative_to(ctx.root)) if path.is_relative_to(ctx.root) else str(path)})


def athena_profile_valid(ctx: CheckContext) -> Evidence:
    import yaml

    path = _project(ctx) / "profiles.yml"
    if not path.is_file():
        raise CheckFailed(f"{path} is missing")
    profiles = yaml.safe_load(path.read_text()) or {}
    outputs = (profiles.get("finks") or {}).get("outputs") or {} if isinstance(profiles, dict) else {}
    athena = outputs.get("athena")
    if not isinstance(athena, dict) or athena.get("type") != "athena":
        raise CheckFailed(f"{path}: no output 'athena' of type athena")
    # what dbt-athena's AthenaCredentials requires, plus the work group we provision
    missing = [k for k in ("s3_staging_dir", "region_name", "database", "schema", "work_group")
               if not athena.get(k)]
    if missing:
        raise CheckFailed(f"{path}: athena output lacks {', '.join(missing)}")
    if not str(athena["s3_staging_dir"]).startswith("s3://"):
        raise CheckFailed("athena s3_staging_dir must be an s3:// URI")
    try:
        import dbt.adapters.athena  # noqa: F401
        adapter = "installed"
    except ImportError:
        adapter = "not installed here (installed in the dbt image)"
    return Evidence(f"athena profile complete (work group, staging dir, Glue catalog); adapter {adapter}",
                    figures={"region": athena["region_name"], "database": athena["database"]})


def dbt_runs_locally(ctx: CheckContext) -> Evidence:
    from jobs.dbt import run_dbt

    settings, _ = _scratch(ctx, days=2)
    result = run_dbt(settings, select="stg_fmp_quotes", quiet=True)
    built = [n for n in result.nodes if n.resource_type == "model" and n.status == "success"]
    if not result.ok or [n.name for n in built] != ["stg_fmp_quotes"]:
        raise CheckFailed(f"dbt build of stg_fmp_quotes failed: {result.error or result.failed_tests}",
                          figures={"nodes": [(n.name, n.status) for n in result.nodes]})
    return Evidence("dbt-duckdb built stg_fmp_quotes from silver and its tests passed",
                    figures={"nodes": len(result.nodes), "run_id": result.run_id})


# ---- S13 -------------------------------------------------------------------
def spark_job_runs(ctx: CheckContext) -> Evidence:
    import pyarrow.parquet as pq

    settings, gen = _scratch(ctx, days=1, transform=False)
    target = ctx.work_dir / "glue-silver"
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.glue_bronze_to_silver", "--SOURCE", lake.zone_uri(settings, "bronze"),
         "--TARGET", str(target), "--DATE", END, "--MASTER", "local[2]"],
        check=False, capture_output=True, text=True, cwd=ctx.root, timeout=800)
    if proc.returncode != 0:
        raise CheckFailed("the Glue script failed", excerpt=proc.stderr[-2000:])
    counts = {}
    for name in ("eod_prices", "quotes", "profiles"):
        want = gen.expected[name, END].rows
        part = target / name / f"date={END}" / "part-0.parquet"
        if not part.is_file():
            raise CheckFailed(f"the Glue script wrote no {name} silver for {END} ({part} missing)")
        got = pq.read_table(part).num_rows
        if want == 0:
            raise CheckFailed(f"the generated bronze holds no {name} row for {END}: nothing to check")
        if got != want:
            raise CheckFailed(f"spark wrote {got} {name} rows, expected {want}")
        counts[name] = got
    return Evidence("Glue script (plain PySpark, Glue-style --SOURCE/--TARGET/--DATE) wrote silver",
                    figures=counts)


def engines_agree(ctx: CheckContext) -> Evidence:
    import shutil

    import pyarrow.parquet as pq

    from core.settings import load_settings
    from jobs.bronze_to_silver import run
    from jobs.engines import SparkEngine, spark_session

    settings, _gen = _scratch(ctx, days=2, transform=False)
    other = load_settings(env="local", root=ctx.root, state_dir=ctx.work_dir / "spark-state",
                          lake_uri=str(ctx.work_dir / "spark-lake"))
    shutil.copytree(lake.zone_uri(settings, "bronze"), lake.zone_uri(other, "bronze"), dirs_exist_ok=True)
    spark = spark_session("local[2]")
    compared = 0
    try:
        for day in _gen.dates:
            duck = run(settings, day, engine="duckdb")
            sprk = run(other, day, engine_instance=SparkEngine(spark))
            for d, s in zip(duck.datasets, sprk.datasets):
                if (d.rows_written, d.deduplicated, d.reasons) != (s.rows_written, s.deduplicated, s.reasons):
                    raise CheckFailed(f"{d.dataset} {day}: counts differ", figures={"duckdb": d.reasons,
                                                                                 "spark": s.reasons})
                rel = f"{d.dataset}/date={day}/part-0.parquet"
                a = pq.read_table(f"{lake.zone_uri(settings, 'silver')}/{rel}")
                b = pq.read_table(f"{lake.zone_uri(other, 'silver')}/{rel}")
                if a.schema.names != b.schema.names or [f.type for f in a.schema] != [f.type for f in b.schema]:
                    raise CheckFailed(f"{rel}: schemas differ", figures={"duckdb": str(a.schema),
                                                                         "spark": str(b.schema)})
                rows_a = sorted(tuple(r.values()) for r in a.to_pylist())
                rows_b = sorted(tuple(r.values()) for r in b.to_pylist())
                if rows_a != rows_b:
                    raise CheckFailed(f"{rel}: DuckDB and Spark silver differ")
                compared += len(rows_a)
    finally:
        spark.stop()
    if not compared:
        raise CheckFailed("DuckDB and Spark wrote no silver row to compare", figures={"dates": len(_gen.dates)})
    return Evidence("DuckDB and Spark wrote identical silver (duplicates, nulls, restatements, malformed input)",
                    figures={"rows_compared": compared, "dates": len(_gen.dates)})


# ---- S14 -------------------------------------------------------------------
def _full_build(ctx: CheckContext) -> tuple[Any, Any]:
    from jobs.dbt import run_dbt

    settings, _ = _scratch(ctx)
    result = run_dbt(settings, quiet=True)
    return settings, result


def staging_models_build(ctx: CheckContext) -> Evidence:
    import duckdb

    from jobs.dbt import run_dbt

    settings, _ = _scratch(ctx, days=2)
    result = run_dbt(settings, select="path:models/staging", quiet=True)
    if not result.ok:
        raise CheckFailed(f"staging build failed: {result.error or result.failed_tests}")
    con = duckdb.connect(str(Path(result.run_dir) / "candidate.duckdb"), read_only=True)
    try:
        counts = {m: con.execute(f"select count(*) from staging.{m}").fetchone()[0]  # type: ignore[index]
                  for m in ("stg_fmp_quotes", "stg_fmp_company_profile", "stg_fmp_eod_prices")}
    finally:
        con.close()
    if not all(counts.values()):
        raise CheckFailed("a staging view is empty", figures=counts)
    return Evidence("staging views stg_fmp_quotes, stg_fmp_company_profile, stg_fmp_eod_prices built",
                    figures=counts)


def portfolio_summary_correct(ctx: CheckContext) -> Evidence:
    import pyarrow.parquet as pq

    settings, result = _full_build(ctx)
    if not result.published:
        raise CheckFailed(f"gold not published: {result.publish_note}", figures={"failed": result.failed_tests})
    gold = lake.zone_uri(settings, "gold")
    summary = pq.read_table(f"{gold}/marts/daily_portfolio_summary.parquet").to_pylist()
    prices = {(r["symbol"], r["date"]): r["close"] for r in
              pq.read_table(f"{gold}/marts/fct_daily_prices.parquet").to_pylist()}
    import datetime as dt

    lots = []      # (portfolio, symbol, shares, opened)
    for line in (_project(ctx) / "seeds" / "holdings.csv").read_text().split()[1:]:
        pid, sym, shares, _cost, opened = line.split(",")
        lots.append((pid, sym, float(shares), dt.date.fromisoformat(opened)))
    checked = 0
    for row in summary:
        expect = sum(shares * prices[sym, row["date"]] for pid, sym, shares, opened in lots
                     if pid == row["portfolio_id"] and opened <= row["date"] and (sym, row["date"]) in prices)
        if abs(expect - row["market_value"]) > 0.05:
            raise CheckFailed(f"{row['portfolio_id']} {row['date']}: market value {row['market_value']} "
                              f"!= {expect:.2f} (shares × close)")
        checked += 1
    if not checked or not any(row["market_value"] for row in summary):
        raise CheckFailed("daily_portfolio_summary is empty or values every portfolio at 0",
                          figures={"rows": checked})
    return Evidence("daily_portfolio_summary published; market values equal Σ shares × close",
                    figures={"rows_checked": checked, "run_id": result.run_id})


def dbt_tests_pass(ctx: CheckContext) -> Evidence:
    _settings, result = _full_build(ctx)
    if not result.ok:
        raise CheckFailed(f"dbt tests failed: {', '.join(result.failed_tests) or result.error}",
                          figures={"failed": result.failed_tests})
    if not result.tests:
        raise CheckFailed("dbt ran no test", figures={"nodes": len(result.nodes)})
    units = sum(1 for n in result.tests if n.resource_type == "unit_test")
    return Evidence(f"{len(result.tests)} dbt tests passed ({units} unit tests)",
                    figures={"tests": len(result.tests), "unit_tests": units, "run_id": result.run_id})


def docs_generated(ctx: CheckContext) -> Evidence:
    import json

    from jobs.dbt import dbt_home, run_dbt

    settings, built = _full_build(ctx)
    if not built.published:
        raise CheckFailed("build failed before docs", figures={"failed": built.failed_tests})
    result = run_dbt(settings, "docs", quiet=True)
    docs = dbt_home(settings) / "docs"
    if not result.ok or not (docs / "index.html").is_file():
        raise CheckFailed(f"dbt docs generate failed: {result.error}")
    catalog = json.loads((docs / "catalog.json").read_text()) if (docs / "catalog.json").is_file() else {}
    models = sorted(k.split(".")[-1] for k in catalog.get("nodes", {}) if k.startswith("model."))
    built = sorted(n.name for n in built.nodes if n.resource_type == "model")
    undocumented = [m for m in built if m not in models]
    if not models or undocumented:
        raise CheckFailed(f"dbt docs catalog lacks models {undocumented or built}",
                          figures={"models_documented": models})
    return Evidence("dbt docs generated offline (index.html, catalog.json)",
                    figures={"models_documented": models})


# ---- S17 -------------------------------------------------------------------
def quality_tests_defined_and_pass(ctx: CheckContext) -> Evidence:
    import json

    _settings, result = _full_build(ctx)
    manifest = json.loads((Path(result.run_dir) / "target" / "manifest.json").read_text())
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    kinds = {str((t.get("test_metadata") or {}).get("name", "singular")) for t in tests}
    fresh = [s for s in manifest["sources"].values() if (s.get("freshness") or {}).get("error_after", {}).get("count")]
    missing = [k for k in ("relationships", "accepted_values", "expression_is_true", "unique", "not_null")
               if k not in kinds]
    if missing or not fresh or not manifest.get("unit_tests"):
        raise CheckFailed("quality tests missing: " + ", ".join(missing + ([] if fresh else ["freshness"])
                                                               + ([] if manifest.get("unit_tests") else ["unit"])))
    if not result.ok or set(result.freshness.values()) != {"pass"}:
        raise CheckFailed(f"quality tests failed: {result.failed_tests or result.freshness or result.error}")
    return Evidence("freshness, referential integrity, accepted values and business-rule tests pass",
                    figures={"tests": len(result.tests), "kinds": sorted(kinds),
                             "freshness": result.freshness, "quality_score": result.quality["quality_score"]})


def test_data_generator_injects_defects(ctx: CheckContext) -> Evidence:
    from jobs.bronze_to_silver import run

    settings, gen = _scratch(ctx, days=3, transform=False)
    injected: dict[str, int] = {}
    for day in gen.dates:
        result = run(settings, day)
        for d in result.datasets:
            exp = gen.expected[d.dataset, day]
            if (d.rows_written, d.deduplicated, d.reasons) != (exp.rows, exp.deduplicated, dict(exp.quarantined)):
                raise CheckFailed(f"{d.dataset} {day}: job result differs from injected defects",
                                  figures={"job": d.reasons, "injected": dict(exp.quarantined)})
            for reason, n in d.reasons.items():
                injected[reason] = injected.get(reason, 0) + n
            injected["duplicates_and_restatements"] = injected.get("duplicates_and_restatements", 0) + d.deduplicated
    if sum(injected.values()) == 0:
        raise CheckFailed("the generator injected no defect: nothing was tested", figures=injected)
    return Evidence("generated bronze with defects; the job caught every one as expected",
                    figures={"symbols": len(gen.symbols), "days": len(gen.dates), **injected})


def quality_results_recorded(ctx: CheckContext) -> Evidence:
    from jobs.quality import latest_quality

    settings, result = _full_build(ctx)
    record = latest_quality(settings)
    if not record or record["run_id"] != result.run_id:
        raise CheckFailed("no quality record for the last dbt run under <gold>/_quality/")
    if not record.get("tests_run"):
        raise CheckFailed("the quality record counts no test", figures={k: record.get(k) for k in ("tests_run", "quality_score")})
    return Evidence("quality results recorded per run under <gold>/_quality/",
                    figures={k: record[k] for k in ("tests_run", "tests_failed", "quality_score")})
