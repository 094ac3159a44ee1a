"""The two engines. Each only loads bronze into ``bronze_raw``, keeps the
checked rows as ``bronze_checked`` and executes the shared SQL of
:mod:`jobs.datasets`; neither holds transformation logic.

Loading raw JSON is the one thing that differs: DuckDB reads the gzipped
arrays with ``read_json_objects`` and extracts every field in one call per
record, Spark reads whole files as text and parses them with
``from_json(..., 'array<string>')``. Both expose every FMP field as text, so
typing, validation and deduplication happen in the shared SQL. Each file is
parsed once: the checked rows are computed once and then read by the silver
and quarantine writes and the counts.
"""

from __future__ import annotations

import glob
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jobs.datasets import Dataset, raw_column, render


@dataclass
class EngineOutput:
    rows_read: int
    rows_written: int
    deduplicated: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    silver_file: Path | None = None
    quarantine_file: Path | None = None


class Engine(Protocol):
    name: str

    def transform(self, dataset: Dataset, date: str, files: list[str], out_dir: Path) -> EngineOutput: ...

    def close(self) -> None: ...


# how DuckDB names the file it could not read ("Malformed JSON in file "<path>", at byte ...")
_NAMED_FILE = re.compile(r'in file "([^"]+)"')


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        import duckdb

        self.con = duckdb.connect(":memory:")
        # row order in silver carries no meaning; not keeping it lets DuckDB stream the COPYs
        self.con.execute("SET preserve_insertion_order = false")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = {_sql_str(memory_limit)}")

    def _unparseable(self, files: list[str]) -> list[str]:
        """Those of ``files`` DuckDB cannot parse as a JSON array, each probed on its own."""
        import duckdb

        bad = []
        for f in files:
            try:
                self.con.execute(f"SELECT count(*) FROM read_json_objects({_sql_str(f)}, format='array')")
            except duckdb.Error:
                bad.append(f)
        return bad

    def _culprits(self, error: Exception, candidates: list[str]) -> list[str]:
        """The unparseable files behind ``error``: the one its message names when probing
        confirms it, else every candidate that fails a probe (none: not a file's fault)."""
        named = _NAMED_FILE.search(str(error))
        if named and named.group(1) in candidates and self._unparseable([named.group(1)]):
            return [named.group(1)]
        return self._unparseable(candidates)

    def _load(self, dataset: Dataset, files: list[str], bad: list[str]) -> None:
        good = [f for f in files if f not in bad]
        # one parse per record: all fields in one json_extract_string call (same text, same NULLs)
        paths = ", ".join(_sql_str("$." + f) for f in dataset.fields)
        cols = ", ".join(f"fields[{i}] AS {raw_column(f)}" for i, f in enumerate(dataset.fields, 1))
        nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {raw_column(f)}" for f in dataset.fields)
        parts = []
        if good:
            # a parsed element's text starts with '{' exactly when it is an object
            parts.append(
                "SELECT filename, TRUE AS file_ok, starts_with(record, '{') AS is_object, record, "
                f"{cols} FROM (SELECT filename, CAST(json AS VARCHAR) AS record, "
                f"json_extract_string(json, [{paths}]) AS fields "
                f"FROM read_json_objects({_list(good)}, format='array', filename=true))"
            )
        for f in bad:
            parts.append(f"SELECT {_sql_str(f)} AS filename, FALSE AS file_ok, FALSE AS is_object, "
                         f"CAST(NULL AS VARCHAR) AS record, {nulls}")
        self.con.execute("CREATE OR REPLACE TEMP VIEW bronze_raw AS " + " UNION ALL ".join(parts))

    def _check(self, dataset: Dataset, files: list[str], sql: str) -> None:
        """One statement parses every file once. DuckDB cannot skip a broken file, so when
        one aborts the statement, it is set aside as unparseable and the statement runs
        again without it (a day with a broken file costs part of a second pass)."""
        import duckdb

        bad: list[str] = []
        while True:
            self._load(dataset, files, bad)
            try:
                self.con.execute("CREATE OR REPLACE TEMP TABLE bronze_checked AS " + sql)
                return
            except duckdb.InvalidInputException as exc:
                found = self._culprits(exc, [f for f in files if f not in bad])
                if not found:
                    raise
                bad += found

    def transform(self, dataset: Dataset, date: str, files: list[str], out_dir: Path) -> EngineOutput:
        sql = render(dataset, date)
        self._check(dataset, files, sql["checked"])
        out_dir.mkdir(parents=True, exist_ok=True)
        silver = out_dir / "silver.parquet"
        quarantine = out_dir / "quarantine.parquet"
        written = self.con.execute(f"COPY ({sql['silver']}) TO {_sql_str(str(silver))} (FORMAT parquet)")
        rows_written = (written.fetchone() or (0,))[0]
        self.con.execute(f"COPY ({sql['quarantine']}) TO {_sql_str(str(quarantine))} (FORMAT parquet)")
        counts = self.con.execute(sql["counts"]).fetchone() or (0, 0, 0)
        reasons = dict(self.con.execute(sql["reasons"]).fetchall())
        self.con.execute("DROP TABLE bronze_checked")
        return _output(counts, rows_written, reasons, silver, quarantine)

    def close(self) -> None:
        self.con.close()


def _list(files: list[str]) -> str:
    return "[" + ", ".join(_sql_str(f) for f in files) + "]"


def _output(counts: Any, written: Any, reasons: dict[str, int], silver: Path,
            quarantine: Path) -> EngineOutput:
    """``counts`` is (rows read, valid rows, rejects): the valid rows not written were duplicates."""
    read, valid, quarantined = (int(c or 0) for c in counts)
    written = int(written or 0)
    return EngineOutput(read, written, valid - written, quarantined,
                        {str(k): int(v) for k, v in reasons.items()}, silver, quarantine if quarantined else None)


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


# A local driver runs seconds-long jobs: the client compiler alone (C1) and the serial collector
# start faster and burn less CPU than the server defaults (C2, G1 with its threads); a long job
# on a cluster sets its own options.
SPARK_DRIVER_JAVA_OPTIONS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"


def spark_session(master: str = "local[*]", app: str = "finks-bronze-to-silver") -> Any:
    """A SparkSession configured so its SQL means what DuckDB's means."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master).appName(app)
        .config("spark.sql.session.timeZone", "UTC")
        # TIMESTAMP without time zone, like DuckDB's TIMESTAMP
        .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.driver.extraJavaOptions", SPARK_DRIVER_JAVA_OPTIONS)
        .getOrCreate()
    )


class SparkEngine:
    name = "spark"

    def __init__(self, spark: Any | None = None, master: str = "local[*]") -> None:
        self.spark = spark or spark_session(master)

    def _load(self, dataset: Dataset, files: list[str]) -> None:
        text = self.spark.read.text(files, wholetext=True).selectExpr("_metadata.file_path AS filename",
                                                                       "value")
        text.createOrReplaceTempView("bronze_text")
        cols = ", ".join(f"get_json_object(e, '$.{f}') AS {raw_column(f)}" for f in dataset.fields)
        nulls = ", ".join(f"CAST(NULL AS STRING) AS {raw_column(f)}" for f in dataset.fields)
        self.spark.sql(f"""
            CREATE OR REPLACE TEMPORARY VIEW bronze_raw AS
            WITH f AS (SELECT filename, from_json(value, 'array<string>') AS arr FROM bronze_text)
            SELECT filename, TRUE AS file_ok, coalesce(substr(ltrim(e), 1, 1) = '{{', FALSE) AS is_object,
                   e AS record, {cols}
            FROM f LATERAL VIEW explode(arr) t AS e WHERE arr IS NOT NULL
            UNION ALL
            SELECT filename, FALSE, FALSE, CAST(NULL AS STRING), {nulls} FROM f WHERE arr IS NULL
        """)

    def _write(self, query: str, dest: Path) -> Path:
        tmp = dest.with_suffix(".spark")
        self.spark.sql(query).coalesce(1).write.mode("overwrite").parquet(str(tmp))
        parts = glob.glob(str(tmp / "part-*.parquet"))
        if len(parts) != 1:
            raise RuntimeError(f"spark wrote {len(parts)} part files to {tmp}, expected 1")
        shutil.move(parts[0], dest)
        shutil.rmtree(tmp)
        return dest

    def transform(self, dataset: Dataset, date: str, files: list[str], out_dir: Path) -> EngineOutput:
        sql = render(dataset, date)
        self._load(dataset, files)
        # computed once and cut from its lineage: silver joins bronze_checked with itself, and
        # with the whole typing CASE behind both sides the optimizer runs out of heap. (Not
        # reliable storage: a lost executor fails the job, which the flow then retries.)
        self.spark.sql(sql["checked"]).localCheckpoint().createOrReplaceTempView("bronze_checked")
        out_dir.mkdir(parents=True, exist_ok=True)
        silver = self._write(sql["silver"], out_dir / "silver.parquet")
        quarantine = self._write(sql["quarantine"], out_dir / "quarantine.parquet")
        counts = tuple(self.spark.sql(sql["counts"]).collect()[0])
        reasons = {r["reason"]: r["n"] for r in self.spark.sql(sql["reasons"]).collect()}
        self.spark.catalog.dropTempView("bronze_checked")
        return _output(counts, _parquet_rows(silver), reasons, silver, quarantine)

    def close(self) -> None:
        """The session is shared (getOrCreate); stopping it is the owner's call."""


def make_engine(name: str, **kwargs: Any) -> Engine:
    if name == "duckdb":
        return DuckDBEngine(**kwargs)
    if name == "spark":
        return SparkEngine(**kwargs)
    from core.errors import UsageError

    raise UsageError(f"unknown engine {name!r}", hint="use duckdb or spark")
