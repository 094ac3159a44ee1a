"""Athena backend: the same queries against the Glue tables dbt-athena builds.

Values travel as Athena execution parameters (SQL literals), results come
back as strings and are typed again from the result set's column metadata.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from api.backend_types import BackendError, Row
from api.queries import Param, Query
from core import lake
from core.aws import client_kwargs
from core.gold import MARTS

if TYPE_CHECKING:
    from core.settings import Settings

_INTEGER = {"tinyint", "smallint", "integer", "int", "bigint"}
_FLOAT = {"double", "float", "real", "decimal"}


def literal(value: Param) -> str:
    """An Athena execution parameter: parameters are substituted as SQL literals."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = value.isoformat() if isinstance(value, date) else str(value)
    return "'" + text.replace("'", "''") + "'"


def _converter(athena_type: str) -> Callable[[str], Any]:
    kind = athena_type.lower().split("(")[0].strip()
    if kind in _INTEGER:
        return int
    if kind in _FLOAT:
        return float
    if kind == "boolean":
        return lambda v: v.lower() == "true"
    return str


class AthenaBackend:
    name = "athena"

    def __init__(
        self,
        database: str,
        *,
        workgroup: str = "primary",
        output_location: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        poll_interval: float = 0.2,
        timeout: float = 60.0,
    ) -> None:
        self.database = database
        self.workgroup = workgroup
        self.output_location = output_location
        self.client_kwargs = client_kwargs or {}
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AthenaBackend:
        # The same variables as dbt-athena's profile (FINKS_ATHENA_SCHEMA is the
        # Glue database dbt builds gold into) and the Lambda's environment
        # (FINKS_ATHENA_WORKGROUP), until Settings grows athena_* fields.
        database = os.environ.get("FINKS_ATHENA_SCHEMA", f"{settings.project}_{settings.env}_gold")
        workgroup = os.environ.get("FINKS_ATHENA_WORKGROUP", "primary")
        # A dedicated workgroup enforces its own result location; "primary" needs one.
        output = os.environ.get("FINKS_ATHENA_OUTPUT") or (
            f"s3://{lake.bucket(settings, 'logs')}/athena-results/"
            if workgroup == "primary"
            else None
        )
        return cls(
            database.replace("-", "_"),
            workgroup=workgroup,
            output_location=output,
            client_kwargs=client_kwargs(settings)
            if settings.is_local
            else {"region_name": settings.region},
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("athena", **self.client_kwargs)
        return self._client

    def render(self, sql: str) -> str:
        return sql.format(**{m: f'"{self.database}"."{m}"' for m in MARTS})

    def run(self, query: Query, run_id: str) -> list[Row]:
        request: dict[str, Any] = {
            "QueryString": self.render(query.sql),
            "QueryExecutionContext": {"Database": self.database},
            "WorkGroup": self.workgroup,
        }
        if query.params:
            request["ExecutionParameters"] = [literal(p) for p in query.params]
        if self.output_location:
            request["ResultConfiguration"] = {"OutputLocation": self.output_location}
        try:
            execution_id = self.client.start_query_execution(**request)["QueryExecutionId"]
        except Exception as exc:  # botocore errors carry the service's reason
            raise BackendError(f"Athena refused query {query.name!r}: {exc}") from exc
        self._wait(execution_id, query.name)
        return self._rows(execution_id)

    def _wait(self, execution_id: str, name: str) -> None:
        deadline = time.monotonic() + self.timeout
        delay = self.poll_interval
        while True:
            status = self.client.get_query_execution(QueryExecutionId=execution_id)[
                "QueryExecution"
            ]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return
            if state in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                raise BackendError(
                    f"Athena query {name!r} ({execution_id}) {state.lower()}: {reason}"
                )
            if time.monotonic() > deadline:
                raise BackendError(
                    f"Athena query {name!r} ({execution_id}) still {state} after {self.timeout:.0f}s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _rows(self, execution_id: str) -> list[Row]:
        rows: list[Row] = []
        columns: list[str] = []
        converters: list[Callable[[str], Any]] = []
        token: str | None = None
        first_page = True
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self.client.get_query_results(**kwargs)
            result_set = page["ResultSet"]
            if first_page:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [c.get("Label") or c["Name"] for c in info]
                converters = [_converter(c.get("Type", "varchar")) for c in info]
            for i, raw in enumerate(result_set.get("Rows", [])):
                values = [cell.get("VarCharValue") for cell in raw.get("Data", [])]
                # Athena repeats the column labels as the first row of a SELECT.
                if first_page and i == 0 and values == columns:
                    continue
                rows.append(
                    {
                        c: (None if v is None else conv(v))
                        for c, conv, v in zip(columns, converters, values)
                    }
                )
            first_page = False
            token = page.get("NextToken")
            if not token:
                return rows
