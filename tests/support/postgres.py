"""Throwaway PostgreSQL databases for tests, on the server TEST_POSTGRES_URL names.

    dsn = await fresh_database()                  # an empty database: the store migrates it
    dsn = await migrated_database()               # one with the bot's schema already
    dsn = await fresh_database(template=other)    # a copy of another (nothing connected to it)
    await empty_tables(dsn)                       # its rows gone, ids restarted: reuse it
    await drop_database(dsn)                      # connections to it are ended first

or `async with throwaway_database() as dsn: ...`. Each database is a real one of its own, so
several processes (or test workers) can share it. Making one costs 20-200 ms on a busy
machine (PostgreSQL copies a template's catalog), emptying the tables of one about 25 ms:
the store suite migrates one database per session and empties it before each test.
The server is required, not optional: CI provides one, so when it cannot be reached the test
fails and says how to point TEST_POSTGRES_URL at another.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from storage.postgres import PostgresStore
from storage.postgres_connection import CONNECT_ERRORS, describe
from storage.postgres_schema import VERSIONS_TABLE

SERVER_ENV = "TEST_POSTGRES_URL"
DEFAULT_SERVER = "postgresql://root@127.0.0.1:5432/test"
"""A database to connect to for CREATE and DROP DATABASE; the tests' own databases are new."""
PREFIX = "bot_test_"
"""Every database made here starts with it, so leftovers of a killed run are easy to find."""


def server_url() -> str:
    return os.environ.get(SERVER_ENV) or DEFAULT_SERVER


def dsn_of(database: str, *, server: str | None = None) -> str:
    """The server's URL with its database replaced (user, password, host and query kept)."""
    parts = urlsplit(server or server_url())
    return urlunsplit(parts._replace(path=f"/{database}"))


def database_of(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


@asynccontextmanager
async def _server() -> AsyncIterator[asyncpg.Connection]:
    url = server_url()
    try:
        db = await asyncpg.connect(url, timeout=5)
    except CONNECT_ERRORS as exc:
        reason: str | None = f"{type(exc).__name__}: {exc}"
    else:
        reason = None
    if reason is not None:  # failed outside the except: the driver's traceback adds nothing
        where = describe(url).rsplit("/", 1)[0]
        pytest.fail(
            f"PostgreSQL at {where} is needed for these tests and cannot be reached "
            f"({reason}). Start it, or point {SERVER_ENV} at another server: "
            f"{SERVER_ENV}=postgresql://user:password@host:port/database (any database "
            "there; the tests create and drop their own).",
            pytrace=False,
        )
    try:
        yield db
    finally:
        await db.close()


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a test database name: {name!r}")
    return f'"{name}"'


async def fresh_database(*, template: str | None = None) -> str:
    """The DSN of a new database on the test server: empty, or a copy of template's."""
    name = f"{PREFIX}{secrets.token_hex(6)}"
    source = f" TEMPLATE {_quoted(database_of(template))}" if template else ""
    async with _server() as db:
        await db.execute(f"CREATE DATABASE {_quoted(name)}{source}")
    return dsn_of(name)


async def drop_database(dsn: str) -> None:
    """Drop a database made by fresh_database, ending whatever is still connected to it."""
    async with _server() as db:
        await db.execute(f"DROP DATABASE IF EXISTS {_quoted(database_of(dsn))} WITH (FORCE)")


async def migrated_database() -> str:
    """A new database holding the bot's current schema and no rows.

    The store that migrated it is closed again, so it may also serve as a template.
    """
    dsn = await fresh_database()
    store = PostgresStore(dsn)
    await store.open()
    await store.close()
    return dsn


async def empty_tables(dsn: str) -> None:
    """Delete every row of the bot's tables (its schema version kept) and restart their ids."""
    db = await asyncpg.connect(dsn, timeout=5)
    try:
        tables = await db.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables"
            " WHERE schemaname = current_schema() AND tablename <> $1",
            VERSIONS_TABLE,
        )
        if tables:
            names = ", ".join(row["name"] for row in tables)
            await db.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await db.close()


@asynccontextmanager
async def throwaway_database(*, template: str | None = None) -> AsyncIterator[str]:
    """A fresh database's DSN for the block, dropped afterwards."""
    dsn = await fresh_database(template=template)
    try:
        yield dsn
    finally:
        await drop_database(dsn)
