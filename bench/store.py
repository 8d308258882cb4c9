"""Store: load a thread's head and append a turn with 100,000 threads / 1,000,000 turns stored.

Both are timed through SqliteStore as the engine calls it (each call a hop to the connection's
thread and back). Bytes per turn are the database's size over its turns, less image bytes.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from pathlib import Path

from bench.report import Row, judged, ms, percentile
from bench.sizes import Context
from bench.store_seed import append_turn, bulk_fill, prompt, thread_key, write_template
from storage.sqlite import SqliteStore

NAME = "store"
OP_TARGET = 0.002
BYTES_TARGET = 2048


async def timed_ops(path: Path, *, threads: int, count: int) -> tuple[list[float], list[float]]:
    """(head loads, appends), each the seconds one took, on random threads."""
    pick = random.Random(7)
    loads: list[float] = []
    appends: list[float] = []
    store = SqliteStore(path)
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


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    path = context.workdir / "store.db"
    await write_template(path)
    started = time.monotonic()
    await asyncio.to_thread(bulk_fill, path, threads=sizes.store_threads, turns=sizes.store_turns)
    seeded = time.monotonic() - started
    loads, appends = await timed_ops(path, threads=sizes.store_threads, count=sizes.store_ops)
    size, images, turns = await asyncio.to_thread(footprint, path)
    per_turn = (size - images) / turns
    smoke = sizes.smoke
    label = f"{sizes.store_threads:,} threads / {turns:,} turns"
    rows = [Row(NAME, f"{label}: seeded in", f"{seeded:.1f} s")]
    for what, samples in (
        ("load head (get_thread + get_turn)", loads),
        ("append (start_turn + finish_turn)", appends),
    ):
        p99 = percentile(samples, 0.99)
        rows.append(
            Row(
                NAME,
                f"{what}: p50 / p99",
                f"{ms(percentile(samples, 0.5))} / {ms(p99)}",
                f"p99 <= {ms(OP_TARGET)}",
                judged(p99 <= OP_TARGET, smoke=smoke),
            )
        )
    rows.append(
        Row(
            NAME,
            "database bytes per turn (images excluded)",
            f"{per_turn:,.0f} B",
            f"<= {BYTES_TARGET:,} B",
            judged(per_turn <= BYTES_TARGET, smoke=smoke),
        )
    )
    return rows
