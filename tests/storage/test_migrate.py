"""Moving a SQLite database into PostgreSQL keeps every thread, turn, image, link and count."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import NamedTuple

import pytest

from bot.__main__ import main
from bot.errors import ConfigError
from bot.models import Budget, BudgetScope, Thread, ThreadKey, Turn, Usage
from storage.migrate import copy_sqlite_to_postgres
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore
from tests.support.postgres import throwaway_database
from tests.support.store import OWNER, START, Clock, claim, done_turn, image, new_thread


class Seeded(NamedTuple):
    thread: Thread
    moved: ThreadKey
    first: Turn
    second: Turn


async def _seed(path: Path, clock: Clock) -> Seeded:
    store = SqliteStore(path, clock=clock)
    await store.open()
    try:
        thread = await new_thread(store, "1700000000.000100")
        moved = ThreadKey("slack", "T1", "C1", "1700000000.000200")
        await store.add_alias(thread.id, key=moved)
        first = await done_turn(store, thread.id, inputs=(image("photo"),), cost_usd=0.04)
        second = await done_turn(
            store, thread.id, parent_id=first.id, prompt="at night", usage=Usage(10, 20, 30, 1),
            size="4K", cost_usd=0.24, possibly_billed=1,
        )  # fmt: skip
        await store.record_possibly_billed(platform="slack", workspace="T1", user="U1", calls=2)
        await store.set_budget(
            platform="slack", workspace="T1", scope=BudgetScope.ROLE, subject="R1", monthly_usd=9.5
        )
        await store.link_message(second.id, platform="slack", message_id="C1:1700000000.0003")
        await claim(store, "event:Ev1")
        await store.settle_claims(platform="slack", event_ids=["event:Ev1"], owner=OWNER)
        return Seeded(thread, moved, first, second)
    finally:
        await store.close()


async def test_every_row_arrives_and_ids_go_on_from_the_largest(tmp_path: Path) -> None:
    clock = Clock()
    source = tmp_path / "bot.db"
    seeded = await _seed(source, clock)
    async with throwaway_database() as dsn:
        copied = await copy_sqlite_to_postgres(source, dsn)
        target = PostgresStore(dsn, clock=clock)
        await target.open()
        try:
            thread = await target.get_thread(seeded.moved)
            second = seeded.second
            assert thread is not None and thread.head_id == second.id
            assert await target.get_turn(second.id) == second
            lineage = await target.lineage(second.id, limit=5)
            assert [t.id for t in lineage] == [seeded.first.id, second.id]
            [photo] = await target.load_images([image("photo").sha256])
            assert photo == image("photo")
            linked = await target.turn_for_message(
                platform="slack", message_id="C1:1700000000.0003"
            )
            assert linked == second
            assert await claim(target, "event:Ev1", owner="other") is False
            totals = await target.usage_totals(platform="slack", user="U1", since=START.date())
            assert (totals.jobs, totals.images, totals.possibly_billed) == (2, 2, 3)
            sizes = [(line.model, line.size, line.images) for line in totals.by_size]
            assert sizes == [(second.model, "4K", 1), (seeded.first.model, "1K", 1)]
            assert second.size == "4K" and seeded.first.size is None
            assert await target.budgets(platform="slack", workspace="T1") == [
                Budget("slack", "T1", BudgetScope.ROLE, "R1", 9.5)
            ]
            newer = await done_turn(target, thread.id)
            assert newer.id > second.id and newer.number == 3
        finally:
            await target.close()
    assert copied["turns"] == 2 and copied["thread_keys"] == 2 and copied["images"] == 3
    assert copied["usage_ledger"] == 3 and copied["budgets"] == 1  # 1K, 4K, the failed calls


async def test_a_database_that_holds_threads_already_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "bot.db"
    await _seed(source, Clock())
    async with throwaway_database() as dsn:
        await copy_sqlite_to_postgres(source, dsn)
        with pytest.raises(ConfigError, match="already holds threads"):
            await copy_sqlite_to_postgres(source, dsn)


async def test_the_command_copies_the_configured_database_and_says_what_it_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bot.db"
    await _seed(source, Clock())
    monkeypatch.chdir(tmp_path)  # no .env of the developer's is read
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{source}")
    monkeypatch.setenv("GPTPROTO_API_KEY", "sk-test-migrate")
    async with throwaway_database() as dsn:
        code = await asyncio.to_thread(main, ["migrate-store", "--to", dsn])
        target = PostgresStore(dsn)
        await target.open()
        try:
            assert await target.get_thread(ThreadKey("slack", "T1", "C1", "1700000000.000100"))
        finally:
            await target.close()
    out = capsys.readouterr().out
    assert code == 0 and "turns: 2" in out and "Point DATABASE_URL" in out
