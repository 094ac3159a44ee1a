"""The DuckDB backend: the marts' Parquet files, locally or on S3.

A backend renders the ``{model}`` placeholders of a :class:`~api.queries.Query`
and returns rows as plain dicts (see :mod:`api.backend_types`; Athena lives in
:mod:`api.athena`). DuckDB and pyarrow are imported on first use so that the
Lambda (Athena) never loads them and the CLI loads neither.
"""

from __future__ import annotations

import math
import threading
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from api.backend_types import BackendError, Row
from api.queries import Param, Query
from core import lake
from core.aws import client_kwargs
from core.gold import MARTS, mart_uri

if TYPE_CHECKING:
    from core.settings import Settings


def clean_value(value: Any) -> Any:
    """JSON-friendly values: floats for decimals, None for NaN."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _param(value: Param) -> Any:
    return value.isoformat() if isinstance(value, date) else value


class DuckDBBackend:
    """DuckDB over ``<gold>/marts/*.parquet``: files locally, S3 via pyarrow.

    DuckDB's httpfs extension would need a download, so on S3 (moto locally)
    the marts are read with pyarrow's S3 filesystem and registered as Arrow
    tables; they are small and cached per publication ``run_id``.
    """

    name = "duckdb"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._db: Any = None
        self._tables: dict[str, Any] = {}
        self._tables_run_id: str | None = None

    def _connection(self) -> Any:
        with self._lock:
            if self._db is None:
                import duckdb

                self._db = duckdb.connect(":memory:")
            # One cursor per query: DuckDB connections are not shared across threads.
            return self._db.cursor()

    def run(self, query: Query, run_id: str) -> list[Row]:
        import duckdb

        cursor = self._connection()
        try:
            sql = self._render(query.sql, cursor, run_id)
            try:
                cursor.execute(sql, [_param(p) for p in query.params])
            except duckdb.Error as exc:
                raise BackendError(
                    f"query {query.name!r} failed on gold ({exc.__class__.__name__}: {exc})",
                    hint="check that the marts match the column contract; rebuild gold",
                ) from exc
            columns = [d[0] for d in cursor.description]
            return [dict(zip(columns, map(clean_value, row))) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def _render(self, sql: str, cursor: Any, run_id: str) -> str:
        used = [m for m in MARTS if "{" + m + "}" in sql]
        names: dict[str, str] = {}
        for model in used:
            uri = mart_uri(self.settings, model)
            if uri.startswith("s3://"):
                cursor.register(model, self._arrow_table(model, run_id))
                names[model] = model
            else:
                from pathlib import Path

                if not Path(uri).is_file():
                    raise BackendError(
                        f"gold mart {model} is missing at {uri}", hint="rebuild and publish gold"
                    )
                names[model] = "read_parquet('" + uri.replace("'", "''") + "')"
        return sql.format(**names)

    def _arrow_table(self, model: str, run_id: str) -> Any:
        with self._lock:
            if self._tables_run_id != run_id:
                self._tables, self._tables_run_id = {}, run_id
            if model not in self._tables:
                self._tables[model] = self._read_s3(model)
            return self._tables[model]

    def _read_s3(self, model: str) -> Any:
        import pyarrow.parquet as pq
        from pyarrow import fs

        kwargs = client_kwargs(self.settings)
        options: dict[str, Any] = {"region": kwargs["region_name"]}
        endpoint = kwargs.get("endpoint_url")
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            options.update(endpoint_override=host, scheme=scheme)
        if "aws_access_key_id" in kwargs:
            options.update(
                access_key=kwargs["aws_access_key_id"], secret_key=kwargs["aws_secret_access_key"]
            )
        bucket, key = lake.split(mart_uri(self.settings, model))
        try:
            return pq.read_table(f"{bucket}/{key}", filesystem=fs.S3FileSystem(**options))
        except (OSError, FileNotFoundError) as exc:
            raise BackendError(
                f"gold mart {model} is unreadable at s3://{bucket}/{key} ({exc})",
                hint="rebuild and publish gold",
            ) from exc
