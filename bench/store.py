"""Store: load a thread's head and append a turn with 100,000 threads / 1,000,000 turns stored.

Both are timed through SqliteStore as the engine calls it (each call a hop to the connection's
thread and back), then through PostgresStore on the same rows, copied into a database of the
benchmark's own by `storage.migrate` (as `python -m bot migrate-store` copies them). Bytes per
turn are the database's size over its turns, less image bytes.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from pathlib import Path

import asyncpg

from bench.postgres import scratch_database
from bench.report import Row, judged, ms, percentile
from bench.sizes import Context
from bench.store_seed import append_turn, bulk_fill, prompt, thread_key, write_template
from storage.base import Store
from storage.migrate import copy_sqlite_to_postgres
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore

NAME = "store"
OP_TARGET = 0.002
BYTES_TARGET = 2048


async def timed_ops(store: Store, *, threads: int, count: int) -> tuple[list[float], list[float]]:
    """(head loads, appends), each the seconds one took, on random threads."""
    pick = random.Random(7)
    loads: list[float] = []
    appends: list[float] = []
    await store.open()
    try:
        for index in range(-(count // 10), count):
            key = thread_key(pick.randint(1, threads))
            started = time.perf_counter()
            thread = await store.get_thread(key)
            assert thread is not None and thread.head_id is not None, key
            head = await store.get_turn(thread.head_id)
            loaded = time.perf_counter()
            assert head is not None
            await append_turn(
                store,
                thread.id,
                parent_id=head.id,
                user=head.user,
                prompt=prompt(abs(index)),
                ratio=head.ratio,
                model=head.model,
            )
            appended = time.perf_counter()
            if index >= 0:  # the first tenth warms the caches, as a running bot's are
                loads.append(loaded - started)
                appends.append(appended - loaded)
    finally:
        await store.close()
    return loads, appends


def footprint(path: Path) -> tuple[int, int, int]:
    """(bytes of the database, bytes of image data in it, turns)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (page_count,), (page_size,) = (
            db.execute(f"PRAGMA {p}").fetchone() for p in ("page_count", "page_size")
        )
        (images,) = db.execute("SELECT coalesce(sum(size), 0) FROM images").fetchone()
        (turns,) = db.execute("SELECT count(*) FROM turns").fetchone()
    finally:
        db.close()
    return page_count * page_size, int(images), int(turns)


async def pg_footprint(dsn: str) -> tuple[int, int, int]:
    """(bytes of the bot's tables and indexes, bytes of image data, turns) on PostgreSQL."""
    connection = await asyncpg.connect(dsn)
    try:
        size = await connection.fetchval(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        )
        images = await connection.fetchval("SELECT coalesce(sum(size), 0) FROM images")
        turns = await connection.fetchval("SELECT count(*) FROM turns")
    finally:
        await connection.close()
    return int(size), int(images), int(turns)


def _op_rows(
    name: str, loads: list[float], appends: list[float], *, smoke: bool, judge: bool = True
) -> list[Row]:
    """p50 / p99 of each operation; judged against the embedded store's target only, as a
    server's commit waits for its own disk flush and network round trips."""
    rows = []
    for what, samples in (
        ("load head (get_thread + get_turn)", loads),
        ("append (start_turn + finish_turn)", appends),
    ):
        p99 = percentile(samples, 0.99)
        value = f"{ms(percentile(samples, 0.5))} / {ms(p99)}"
        if not judge:
            rows.append(Row(name, f"{what}: p50 / p99", value))
            continue
        verdict = judged(p99 <= OP_TARGET, smoke=smoke)
        rows.append(Row(name, f"{what}: p50 / p99", value, f"p99 <= {ms(OP_TARGET)}", verdict))
    return rows


def _bytes_row(name: str, per_turn: float, *, smoke: bool) -> Row:
    return Row(
        name,
        "database bytes per turn (images excluded)",
        f"{per_turn:,.0f} B",
        f"<= {BYTES_TARGET:,} B",
        judged(per_turn <= BYTES_TARGET, smoke=smoke),
    )


async def _on_postgres(path: Path, context: Context) -> list[Row]:
    sizes = context.sizes
    name = f"{NAME} (PostgreSQL)"
    async with scratch_database() as dsn:
        started = time.monotonic()
        await copy_sqlite_to_postgres(path, dsn)
        copied = time.monotonic() - started
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute("ANALYZE")  # as autovacuum would, once the rows are in
        finally:
            await connection.close()
        loads, appends = await timed_ops(
            PostgresStore(dsn), threads=sizes.store_threads, count=sizes.store_ops
        )
        size, images, turns = await pg_footprint(dsn)
    return [
        Row(name, f"{turns:,} turns: copied in (migrate-store)", f"{copied:.1f} s"),
        *_op_rows(name, loads, appends, smoke=sizes.smoke, judge=False),
        _bytes_row(name, (size - images) / turns, smoke=sizes.smoke),
    ]


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    path = context.workdir / "store.db"
    await write_template(path)
    started = time.monotonic()
    await asyncio.to_thread(bulk_fill, path, threads=sizes.store_threads, turns=sizes.store_turns)
    seeded = time.monotonic() - started
    template = context.workdir / "template.db"
    await asyncio.to_thread(_copy_file, path, template)  # the rows before the timed appends
    loads, appends = await timed_ops(
        SqliteStore(path), threads=sizes.store_threads, count=sizes.store_ops
    )
    size, images, turns = await asyncio.to_thread(footprint, path)
    smoke = sizes.smoke
    label = f"{sizes.store_threads:,} threads / {turns:,} turns"
    return [
        Row(NAME, f"{label}: seeded in", f"{seeded:.1f} s"),
        *_op_rows(NAME, loads, appends, smoke=smoke),
        _bytes_row(NAME, (size - images) / turns, smoke=smoke),
        *await _on_postgres(template, context),
    ]


def _copy_file(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as db, sqlite3.connect(target) as copy:
        db.backup(copy)
