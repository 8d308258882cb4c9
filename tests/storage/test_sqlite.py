"""What only the SQLite store promises: WAL, migrations, serialised writes, indexed reads."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.models import BudgetScope, ThreadKey, Usage
from storage import sqlite as sqlite_module
from storage import sqlite_schema
from storage.sqlite import SqliteStore
from tests.support.store import (
    LEASE,
    MODEL,
    OWNER,
    Clock,
    claim,
    done_turn,
    image,
    key,
    pending_turn,
    side_connection,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "bot.db"


@pytest.fixture
async def store(db_path: Path, clock: Clock) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(db_path, clock=clock)
    await opened.open()
    yield opened
    await opened.close()


def _scalar(path: Path, sql: str) -> object:
    with side_connection(path) as db:
        return db.execute(sql).fetchone()[0]


async def _trace(store: SqliteStore, statements: list[str], *, readers: bool = True) -> None:
    """Record every statement the store's writer (and reader) runs, in order."""
    connections = (store._writer, store._reader) if readers else (store._writer,)
    for connection in connections:
        assert connection is not None
        await connection.run(lambda db: db.set_trace_callback(statements.append))


# -- opening and migrating ----------------------------------------------------------


async def test_open_creates_the_directory_in_wal_mode_at_the_current_version(
    store: SqliteStore, db_path: Path
) -> None:
    assert await asyncio.to_thread(db_path.is_file)
    assert _scalar(db_path, "PRAGMA journal_mode") == "wal"
    assert _scalar(db_path, "PRAGMA user_version") == sqlite_schema.SCHEMA_VERSION >= 1


async def test_reopening_an_up_to_date_database_changes_nothing(
    db_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="storage")
    first = SqliteStore(db_path, clock=clock)
    await first.open()
    thread = await first.create_thread(key("kept"))
    await done_turn(first, thread.id)
    await first.close()
    schema = _scalar(db_path, "SELECT group_concat(sql, ';') FROM sqlite_master")
    assert [r for r in caplog.records if "migrated" in r.getMessage()]
    caplog.clear()

    again = SqliteStore(db_path, clock=clock)
    await again.open()
    try:
        reopened = await again.get_thread(key("kept"))
        assert reopened is not None and reopened.turn_count == 1
    finally:
        await again.close()

    assert _scalar(db_path, "SELECT group_concat(sql, ';') FROM sqlite_master") == schema
    assert _scalar(db_path, "PRAGMA user_version") == sqlite_schema.SCHEMA_VERSION
    assert not [r for r in caplog.records if "migrated" in r.getMessage()]


async def test_a_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with side_connection(db_path) as db:
        db.execute(f"PRAGMA user_version = {sqlite_schema.SCHEMA_VERSION + 1}")

    store = SqliteStore(db_path)
    with pytest.raises(ConfigError, match="newer version") as raised:
        await store.open()

    assert str(db_path) in raised.value.user_message
    assert await store.ping() is False


async def test_a_file_that_is_not_a_database_is_a_config_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    await asyncio.to_thread(db_path.write_bytes, b"this is not SQLite, just some text " * 200)

    with pytest.raises(ConfigError, match="Cannot"):
        await SqliteStore(db_path).open()


async def test_another_programs_database_is_refused_and_left_alone(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)

    def foreign() -> None:
        with sqlite3.connect(db_path) as db:
            db.execute("CREATE TABLE threads (forum TEXT)")
            db.execute("INSERT INTO threads VALUES ('not ours')")

    await asyncio.to_thread(foreign)
    with pytest.raises(ConfigError, match="another program's tables"):
        await SqliteStore(db_path).open()
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT forum FROM threads").fetchall() == [("not ours",)]
        assert db.execute("PRAGMA user_version").fetchone() == (0,)


async def test_each_migration_is_applied_whole_or_not_at_all(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    current = SqliteStore(db_path)
    await current.open()
    await current.close()
    broken = ("CREATE TABLE half_done (x INTEGER)", "CREATE TABLE threads (x INTEGER)")
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", (*sqlite_schema.MIGRATIONS, broken))
    monkeypatch.setattr(sqlite_schema, "SCHEMA_VERSION", len(sqlite_schema.MIGRATIONS))

    with pytest.raises(ConfigError, match="already exists"):
        await SqliteStore(db_path).open()
    assert _scalar(db_path, "PRAGMA user_version") == sqlite_schema.SCHEMA_VERSION - 1
    assert _scalar(db_path, "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'") == 0

    fixed = (*sqlite_schema.MIGRATIONS[:-1], ("CREATE TABLE added (x INTEGER)",))
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", fixed)
    upgraded = SqliteStore(db_path)
    await upgraded.open()
    await upgraded.close()
    assert _scalar(db_path, "PRAGMA user_version") == len(fixed)
    assert _scalar(db_path, "SELECT count(*) FROM sqlite_master WHERE name = 'added'") == 1


def _all_pages_in_the_main_file(path: Path) -> bool:
    with side_connection(path) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    return bool(path.stat().st_size >= pages * page_size)


async def test_commits_reach_the_database_file_by_a_background_checkpoint(
    store: SqliteStore, db_path: Path
) -> None:
    await store.create_thread(key("checkpointed"))  # the migration is in the WAL too

    async with asyncio.timeout(5):
        # The file is another process's view: there is no event to wait for, only polling.
        while not await asyncio.to_thread(_all_pages_in_the_main_file, db_path):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


# -- writes ---------------------------------------------------------------------------


async def test_a_failed_write_rolls_back_without_disturbing_concurrent_ones(
    store: SqliteStore, db_path: Path
) -> None:
    thread = await store.create_thread(key("mixed"))

    async def start(n: int) -> int:
        parent = 999_999 if n % 3 == 0 else None  # no such turn: the transaction fails
        turn = await pending_turn(
            store, thread.id, parent_id=parent, prompt=f"p{n}", inputs=(image(f"img{n}"),)
        )
        return turn.number

    results = await asyncio.gather(*(start(n) for n in range(30)), return_exceptions=True)

    numbers = sorted(r for r in results if isinstance(r, int))
    assert sum(isinstance(r, LookupError) for r in results) == 10
    assert numbers == list(range(1, 21))
    assert _scalar(db_path, "SELECT count(*) FROM turns") == 20
    assert _scalar(db_path, "SELECT count(*) FROM images") == 20
    assert _scalar(db_path, "SELECT turn_count FROM threads") == 20


async def test_an_image_used_by_many_turns_is_stored_once(
    store: SqliteStore, db_path: Path, clock: Clock
) -> None:
    thread = await store.create_thread(key("shared"))
    photo = image("photo", size=20_000)
    first = await done_turn(store, thread.id, inputs=(photo,), outputs=(photo,))
    clock.advance(days=1)
    await done_turn(store, thread.id, parent_id=first.id, inputs=(photo, photo))

    count = f"SELECT count(*) FROM images WHERE sha256 = x'{photo.sha256}'"
    assert _scalar(db_path, count) == 1
    assert _scalar(db_path, "SELECT sum(size) FROM images") == 20_000 + 64  # + one output

    await store.prune(before=clock.now)
    assert _scalar(db_path, count) == 1
    await store.prune(before=clock.advance(seconds=1))
    assert _scalar(db_path, "SELECT count(*) FROM images") == 0


async def test_prune_runs_in_batches_letting_other_writes_through(
    store: SqliteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "PRUNE_BATCH", 4)
    thread = await store.create_thread(key("long"))
    for n in range(23):
        await done_turn(store, thread.id, prompt=f"old {n}")
    cutoff = clock.advance(days=31)
    newest = await done_turn(store, thread.id, prompt="new")
    statements: list[str] = []
    await _trace(store, statements, readers=False)

    removed, claimed = await asyncio.gather(store.prune(before=cutoff), claim(store, "Ev1"))

    assert (removed, claimed) == (23, True)
    batches: dict[str, int] = {}  # each batch's DELETE (traced again for every FK action)
    for index, sql in enumerate(statements):
        if sql.startswith("DELETE FROM turns"):
            batches.setdefault(sql, index)
    claimed_at = next(i for i, sql in enumerate(statements) if "INTO events" in sql)
    assert len(batches) == 6
    assert claimed_at < max(batches.values())
    assert await store.get_turn(newest.id) is not None


# -- reads ----------------------------------------------------------------------------


async def test_turn_and_thread_reads_never_touch_the_image_table(
    store: SqliteStore, db_path: Path
) -> None:
    thread = await store.create_thread(key("blobs"))
    root = await done_turn(store, thread.id, inputs=(image("in"),))
    leaf = await done_turn(store, thread.id, parent_id=root.id)
    await store.link_message(leaf.id, platform="slack", message_id="m1")
    with side_connection(db_path) as db:
        db.execute("ALTER TABLE images RENAME TO images_elsewhere")

    assert await store.get_thread(key("blobs")) is not None
    assert await store.get_turn(leaf.id) == leaf
    assert await store.lineage(leaf.id, limit=6) == [root, leaf]
    assert await store.turn_for_message(platform="slack", message_id="m1") == leaf
    with pytest.raises(sqlite3.OperationalError, match="no such table: images"):
        await store.load_images(leaf.outputs)


_BIG_TABLES = {
    "threads", "thread_keys", "turns", "images", "turn_images", "messages", "events",
    "usage_ledger",
}  # fmt: skip


def _full_scans(db: sqlite3.Connection, statement: str) -> list[str]:
    plan = db.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
    aliases = dict(re.findall(r"\b(\w+) AS (\w+)\b", statement))
    tables = {alias: table for table, alias in aliases.items()}
    scans = [re.match(r"SCAN (\w+)", row[3]) for row in plan]
    return [m.group(1) for m in scans if m and tables.get(m.group(1), m.group(1)) in _BIG_TABLES]


async def test_every_statement_of_the_hot_paths_uses_an_index(
    store: SqliteStore, db_path: Path, clock: Clock
) -> None:
    statements: list[str] = []
    await _trace(store, statements)
    thread = await store.create_thread(ThreadKey("discord", "G1", "C1", "I1"))
    await store.add_alias(thread.id, key=ThreadKey("discord", "G1", "C1", "M1"))
    root = await done_turn(store, thread.id, inputs=(image("a"),))
    leaf = await done_turn(store, thread.id, parent_id=root.id, inputs=(image("b"),))
    await store.get_thread(ThreadKey("discord", "G1", "C1", "M1"))
    await store.thread_key(thread.id)
    await store.get_turn(leaf.id)
    await store.lineage(leaf.id, limit=6)
    await store.load_images([*leaf.inputs, *leaf.outputs])
    await store.link_message(leaf.id, platform="discord", message_id="M2")
    await store.turn_for_message(platform="discord", message_id="M2")
    await store.message_for_turn(leaf.id, platform="discord")
    await claim(store, "E1", platform="discord")
    await store.settle_claims(platform="discord", event_ids=["E1"], owner=OWNER)
    await claim(store, "E2", platform="discord")
    await store.release_claims(platform="discord", event_ids=["E2"], owner=OWNER)
    await store.acquire_lease("thread:1", owner=OWNER, lease=LEASE)
    await store.renew(owner=OWNER, lease=LEASE)
    await store.release_lease("thread:1", owner=OWNER)
    await store.first_job_since(platform="discord", user="U1", since=clock.now)
    await store.jobs_since(platform="discord", user="U1", since=clock.now)
    await store.usage_totals(platform="discord", user="U1", since=clock.now.date())
    await store.usage_totals(platform="discord", workspace="G1", since=clock.now.date())
    await store.record_possibly_billed(platform="discord", workspace="G1", user="U1", calls=1)
    await store.set_budget(
        platform="discord", workspace="G1", scope=BudgetScope.USER, subject="U1", monthly_usd=1.0
    )
    await store.budgets(platform="discord", workspace="G1")
    await store.set_budget(
        platform="discord", workspace="G1", scope=BudgetScope.USER, subject="U1", monthly_usd=None
    )
    pending = await pending_turn(store, thread.id, parent_id=leaf.id)
    await store.fail_turn(pending.id, error="x")
    await pending_turn(store, thread.id, parent_id=leaf.id, claims=("E3",))
    await store.fail_expired(error="restarted", platforms=("discord",))
    await store.prune(before=clock.advance(days=1))

    checked = [s for s in statements if re.match(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH)", s)]
    assert len(checked) > 30
    with side_connection(db_path) as db:
        scans = {s: found for s in checked if (found := _full_scans(db, s))}
    assert scans == {}


# -- size -----------------------------------------------------------------------------


async def test_a_turn_takes_well_under_two_kilobytes_besides_its_images(
    store: SqliteStore, db_path: Path
) -> None:
    prompt = "Make the banana wear a tiny top hat and sit on a velvet cushion, studio light. "
    parts = '[{"text": "Here you go"}, {"inlineData": {"mimeType": "image/png", "sha256": "%s"}}]'
    turns = 0
    for t in range(40):
        thread = await store.create_thread(ThreadKey("slack", "T1", "C1", f"17000000{t:02}.0001"))
        parent = None
        for n in range(15):
            started = await store.start_turn(
                thread.id, parent_id=parent, user=f"U{t % 7}", prompt=prompt, ratio="16:9",
                model=MODEL, inputs=(image(f"ref{t}"),), owner=OWNER, lease=LEASE,
            )  # fmt: skip
            output = image(f"out{t}-{n}")
            await store.link_message(started.id, platform="slack", message_id=f"{t}.{n}")
            done = await store.finish_turn(
                started.id, owner=OWNER, outputs=(output,), text="Here you go",
                usage=Usage(10, 1290, 1300, 1), parts_json=parts % output.sha256,
            )  # fmt: skip
            parent = done.id
            turns += 1

    with side_connection(db_path) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        image_bytes = db.execute("SELECT sum(size) FROM images").fetchone()[0]
    per_turn = ((pages - free) * page_size - image_bytes) / turns
    assert per_turn < 1536, per_turn


async def test_stores_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    stores = [SqliteStore(path) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        thread = await stores[0].create_thread(key("t1"))
        assert await stores[3].get_thread(key("t1")) == thread
    finally:
        for store in stores:
            await store.close()
    with side_connection(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION
