"""What only the SQLite store promises: WAL, migrations, serialised writes, crash safety."""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.models import ThreadKey, TurnStatus, Usage
from storage import sqlite as sqlite_module
from storage import sqlite_schema
from storage.sqlite import SqliteStore
from tests.support.store import Clock, done_turn, image, key

ROOT = Path(__file__).resolve().parents[2]
MODEL = "gemini-2.5-flash-image"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "bot.db"


@pytest.fixture
async def store(db_path: Path, clock: Clock) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(db_path, clock=clock)
    await opened.open()
    yield opened
    await opened.close()


@contextmanager
def side_connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection beside the store's, as another process would have."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        yield db


def _scalar(path: Path, sql: str) -> object:
    with side_connection(path) as db:
        return db.execute(sql).fetchone()[0]


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


async def test_concurrent_turns_on_one_thread_get_distinct_numbers(store: SqliteStore) -> None:
    thread = await store.create_thread(key("busy"))

    turns = await asyncio.gather(
        *(
            store.start_turn(
                thread.id, parent_id=None, user=f"U{n}", prompt=f"p{n}", ratio=None,
                model=MODEL, inputs=(image(f"in{n}"),),
            )
            for n in range(50)
        )
    )  # fmt: skip

    assert sorted(t.number for t in turns) == list(range(1, 51))
    stored = [await store.get_turn(t.id) for t in turns]
    assert [s.number if s else None for s in stored] == [t.number for t in turns]
    after = await store.get_thread(key("busy"))
    assert after is not None and after.turn_count == 50


async def test_a_failed_write_rolls_back_without_disturbing_concurrent_ones(
    store: SqliteStore, db_path: Path
) -> None:
    thread = await store.create_thread(key("mixed"))

    async def start(n: int) -> int:
        parent = 999_999 if n % 3 == 0 else None  # no such turn: the transaction fails
        turn = await store.start_turn(
            thread.id, parent_id=parent, user="U1", prompt=f"p{n}", ratio=None, model=MODEL,
            inputs=(image(f"img{n}"),),
        )  # fmt: skip
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
    await store._writer.set_trace_callback(statements.append)  # type: ignore[union-attr]

    removed, claimed = await asyncio.gather(
        store.prune(before=cutoff), store.claim_event(platform="slack", event_id="Ev1")
    )

    assert (removed, claimed) == (23, True)
    batches: dict[str, int] = {}  # each batch's DELETE (traced again for every FK action)
    for index, sql in enumerate(statements):
        if sql.startswith("DELETE FROM turns"):
            batches.setdefault(sql, index)
    claim = next(i for i, sql in enumerate(statements) if "INSERT OR IGNORE INTO events" in sql)
    assert len(batches) == 6
    assert claim < max(batches.values())
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


_BIG_TABLES = {"threads", "thread_keys", "turns", "images", "turn_images", "messages", "events"}


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
    for connection in (store._writer, store._reader):
        await connection.set_trace_callback(statements.append)  # type: ignore[union-attr]
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
    await store.claim_event(platform="discord", event_id="E1")
    await store.jobs_since(platform="discord", user="U1", since=clock.now)
    await store.usage_totals(platform="discord", user="U1", since=clock.now.date())
    await store.usage_totals(platform="discord", workspace="G1", since=clock.now.date())
    pending = await store.start_turn(
        thread.id, parent_id=leaf.id, user="U1", prompt="p", ratio=None, model=MODEL, inputs=()
    )
    await store.fail_turn(pending.id, error="x")
    await store.fail_pending(error="restarted")
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
                model=MODEL, inputs=(image(f"ref{t}"),),
            )  # fmt: skip
            output = image(f"out{t}-{n}")
            await store.link_message(started.id, platform="slack", message_id=f"{t}.{n}")
            done = await store.finish_turn(
                started.id, outputs=(output,), text="Here you go",
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


# -- crashes --------------------------------------------------------------------------


async def _write_until_killed(
    db_path: Path, *, mode: str
) -> tuple[ThreadKey, list[int], list[int]]:
    """Run the writer child, SIGKILL it; returns its thread and the turns it reported."""
    stop_after = 20 + random.randint(0, 30)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.storage.crash_writer", str(db_path), mode, str(stop_after),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    reported: dict[str, list[int]] = {"done": [], "pending": []}
    try:
        async with asyncio.timeout(30):
            while len(reported["done"]) < stop_after + 1 and not reported["pending"]:
                line = await child.stdout.readline()
                if not line:
                    pytest.fail(f"writer exited early: {(await child.stderr.read()).decode()}")
                kind, turn_id = line.decode().split()
                reported[kind].append(int(turn_id))
    finally:
        child.kill()
        await child.wait()
    for late in (await child.stdout.read()).decode().splitlines():
        kind, turn_id = late.split()
        reported[kind].append(int(turn_id))
    thread = ThreadKey("cli", "local", "cli", f"crash-{child.pid}")
    return thread, reported["done"], reported["pending"]


@pytest.mark.parametrize("mode", ["loop", "pending"])
async def test_a_killed_writer_loses_nothing_it_committed(db_path: Path, mode: str) -> None:
    thread_key, done, pending = await _write_until_killed(db_path, mode=mode)

    with side_connection(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        left_pending = db.execute("SELECT count(*) FROM turns WHERE status = 'pending'").fetchone()
    store = SqliteStore(db_path)
    await store.open()
    try:
        reported = await store.fail_pending(error="The bot restarted during this job.")
        assert len(reported) == left_pending[0]
        assert set(pending) <= {turn.id for turn, _ in reported}
        assert all(k.platform == "cli" and turn.status is TurnStatus.FAILED for turn, k in reported)
        for turn_id in done:
            turn = await store.get_turn(turn_id)
            assert turn is not None and turn.status is TurnStatus.DONE
            images = await store.load_images([*turn.inputs, *turn.outputs])
            assert [len(i.data) for i in images] == [1500, 800, 3000]
        thread = await store.get_thread(thread_key)
        assert thread is not None and thread.head_id is not None
        assert thread.head_id == done[-1] if mode == "pending" else thread.head_id >= done[-1]
        assert await store.fail_pending(error="again") == []
    finally:
        await store.close()
    assert len(done) >= 20
    assert mode == "loop" or pending
