"""The PostgreSQL store's connection pool, and a DSN named in messages without its password."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from bot.errors import ConfigError
from storage.postgres_schema import migrate

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a connection: a server that does not answer is a configuration error."""

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    asyncio.TimeoutError,
)
"""What a database call raises when the server refuses, fails or is gone."""
CONNECT_ERRORS: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, ValueError)
"""What connecting raises besides: a DSN asyncpg cannot read."""


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection handed back without asyncpg's session reset."""

    def get_reset_query(self) -> str:
        # The store leaves no session state behind (no SET, LISTEN or cursor; migrate frees
        # its advisory lock), so the RESET ALL and the rest asyncpg sends on every release
        # would only add a round trip to each call; an open transaction is still rolled back.
        return ""


def describe(dsn: str) -> str:
    """host:port/database of a DSN, with no user name or password: safe to log and to show."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    hosts = parts.netloc.rpartition("@")[2] or query.get("host", ["localhost"])[0]
    if "port" in query:
        hosts += f":{query['port'][0]}"
    elif ":" not in hosts.rsplit("]", 1)[-1]:  # an IPv6 address is [::1] or [::1]:port
        hosts += ":5432"
    database = unquote(parts.path.lstrip("/")) or query.get("dbname", ["(default)"])[0]
    return f"{hosts}/{database}"


def scrub(text: str, dsn: str) -> str:
    """text with every form of the DSN's password replaced, for a message that quotes a driver."""
    parts = urlsplit(dsn)
    secrets = set(parse_qs(parts.query).get("password", []))
    raw = parts.netloc.rpartition("@")[0].partition(":")[2]
    if raw:
        secrets |= {raw, unquote(raw)}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


async def open_pool(dsn: str, *, min_size: int, max_size: int) -> asyncpg.Pool:
    """A pool on the database, its schema migrated; ConfigError naming host and database."""
    where = describe(dsn)
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT,
            connection_class=_Connection,
        )
    except CONNECT_ERRORS as exc:
        # `from None`: the driver's own text could quote the DSN; only the scrubbed one is kept.
        raise ConfigError(
            f"Cannot connect to the PostgreSQL database {where}: {_reason(exc, dsn)}. Check "
            "DATABASE_URL and that the server is running."
        ) from None
    try:
        async with pool.acquire() as db:
            await migrate(db, where=where)
    except BaseException as exc:
        await pool.close()
        if isinstance(exc, DRIVER_ERRORS):
            raise ConfigError(
                f"Cannot use the PostgreSQL database {where}: {_reason(exc, dsn)}."
            ) from None
        raise
    return pool


def _reason(exc: BaseException, dsn: str) -> str:
    return scrub(f"{type(exc).__name__}: {exc}".rstrip(": "), dsn)
