"""A PostgreSQL database of the benchmark's own, on the server BENCH_POSTGRES_URL names."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg

SERVER_ENV = "BENCH_POSTGRES_URL"
DEFAULT_SERVER = "postgresql://root@127.0.0.1:5432/test"


def _with_database(server: str, name: str) -> str:
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """The DSN of a new, empty database, dropped (its connections ended) on exit."""
    server = os.environ.get(SERVER_ENV) or DEFAULT_SERVER
    name = f"bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _with_database(server, name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
