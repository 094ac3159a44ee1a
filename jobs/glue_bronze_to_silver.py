"""Glue job script: bronze→silver for one date on Spark.

On AWS Glue (``awsglue`` importable) arguments arrive Glue-style and the
GlueContext's SparkSession is used; anywhere else it runs on plain PySpark:

    python -m jobs.glue_bronze_to_silver --SOURCE .finks/lake/bronze \
        --TARGET .finks/lake/silver --DATE 2024-03-15 [--DATASETS eod_prices,quotes]

The transformation is the shared SQL of ``jobs/sql`` (the same text DuckDB
runs locally). On Glue, ship the ``jobs`` and ``finks`` packages with
``--extra-py-files`` (a wheel of this repository) so the import below works.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

REQUIRED = ["SOURCE", "TARGET", "DATE"]


def parse_args(argv: list[str]) -> dict[str, str]:
    """Glue's getResolvedOptions when present, else the same flags via argparse."""
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        parser = argparse.ArgumentParser(description="finks bronze→silver (Spark)")
        for name in REQUIRED:
            parser.add_argument(f"--{name}", required=True)
        parser.add_argument("--DATASETS", default="")
        parser.add_argument("--MASTER", default="local[*]")
        parser.add_argument("--FINKS_ENV", default="")
        return {k: v for k, v in vars(parser.parse_args(argv[1:])).items()}
    # optional arguments must be asked for only when present: Glue rejects missing ones
    options = [name for name in ("DATASETS", "FINKS_ENV") if f"--{name}" in argv]
    resolved = dict(getResolvedOptions(argv, ["JOB_NAME", *REQUIRED, *options]))
    resolved.setdefault("DATASETS", "")
    resolved.setdefault("FINKS_ENV", "dev")
    resolved["MASTER"] = ""
    return resolved


def spark_for(args: dict[str, str]) -> tuple[Any, Any]:
    """(SparkSession, Glue job or None)."""
    try:
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from awsglue.job import Job  # type: ignore[import-not-found]
        from pyspark.context import SparkContext
    except ImportError:
        from jobs.engines import spark_session

        return spark_session(args.get("MASTER") or "local[*]"), None
    glue = GlueContext(SparkContext.getOrCreate())
    spark = glue.spark_session
    for key, value in (("spark.sql.session.timeZone", "UTC"),
                       ("spark.sql.timestampType", "TIMESTAMP_NTZ"),
                       ("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")):
        spark.conf.set(key, value)
    job = Job(glue)
    job.init(args["JOB_NAME"], args)
    return spark, job


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv if argv is None else argv))
    from core.settings import load_settings
    from jobs.bronze_to_silver import run
    from jobs.engines import SparkEngine

    source, target = args["SOURCE"].rstrip("/"), args["TARGET"].rstrip("/")
    # settings only supply the S3 endpoint and region; the zones come from the arguments.
    # On Glue the environment is a job argument (never "local": that would aim at moto).
    env = args.get("FINKS_ENV") or None
    settings = (load_settings(env=env, storage="s3") if source.startswith("s3://")
                else load_settings(env=env))
    spark, job = spark_for(args)
    datasets = [d for d in args.get("DATASETS", "").split(",") if d]
    result = run(settings, args["DATE"], datasets or None, engine_instance=SparkEngine(spark),
                 bronze_uri=source, silver_uri=target)
    print(json.dumps(result.to_dict(), default=str))
    if job is not None:
        job.commit()
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
