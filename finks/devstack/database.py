"""PostgreSQL for Prefect: create the role and database when missing.

Locally PostgreSQL accepts the ``postgres`` superuser without a password
(trust auth), so we connect as it to create what the configured URL names.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from core.errors import ConfigError, ServiceError


@dataclass(frozen=True)
class PgTarget:
    host: str
    port: int
    user: str
    password: str | None
    database: str

    @property
    def display(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


def parse(url: str) -> PgTarget:
    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    if not database:
        raise ConfigError(f"FINKS_DATABASE_URL has no database name ({parts.scheme}://…/?)",
                          hint="e.g. postgresql://finks@127.0.0.1:5432/finks_prefect")
    return PgTarget(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        database=database,
    )


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _admin(target: PgTarget):  # type: ignore[no-untyped-def]
    import asyncpg

    try:
        return await asyncpg.connect(host=target.host, port=target.port, user="postgres",
                                     database="postgres", timeout=10)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise ServiceError(
            f"cannot reach PostgreSQL at {target.host}:{target.port} as postgres ({exc})",
            hint="start PostgreSQL or unset FINKS_DATABASE_URL to use SQLite",
        ) from exc


async def _ensure(target: PgTarget) -> list[str]:
    created: list[str] = []
    conn = await _admin(target)
    try:
        if target.user != "postgres" and not await conn.fetchval(
            "SELECT 1 FROM pg_roles WHERE rolname = $1", target.user
        ):
            password = f" PASSWORD {_quote_literal(target.password)}" if target.password else ""
            await conn.execute(f"CREATE ROLE {_quote_ident(target.user)} LOGIN{password}")
            created.append(f"role {target.user}")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target.database):
            await conn.execute(
                f"CREATE DATABASE {_quote_ident(target.database)} OWNER {_quote_ident(target.user)}"
            )
            created.append(f"database {target.database}")
    finally:
        await conn.close()
    return created


async def _drop(target: PgTarget, drop_role: bool) -> bool:
    conn = await _admin(target)
    try:
        dropped = False
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target.database):
            await conn.execute(f"DROP DATABASE {_quote_ident(target.database)} WITH (FORCE)")
            dropped = True
        if drop_role and target.user != "postgres":
            await conn.execute(f"DROP ROLE IF EXISTS {_quote_ident(target.user)}")
        return dropped
    finally:
        await conn.close()


def _run(coro: Any) -> Any:
    """asyncio.run, also from code that already runs inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def ensure_database(url: str) -> list[str]:
    """Create the role and database named by *url* if missing; returns what was created."""
    result: list[str] = _run(_ensure(parse(url)))
    return result


def drop_database(url: str, drop_role: bool = False) -> bool:
    """Drop the database named by *url* (reset, tests); the role too when asked."""
    return bool(_run(_drop(parse(url), drop_role)))


def postgres_available(host: str = "127.0.0.1", port: int = 5432) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False
