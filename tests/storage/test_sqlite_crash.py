"""Crash safety of the SQLite store: a writer killed at any moment loses nothing it committed."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

import pytest

from bot.models import ThreadKey, TurnStatus
from storage.sqlite import SqliteStore
from tests.support.store import side_connection

ROOT = Path(__file__).resolve().parents[2]


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
async def test_a_killed_writer_loses_nothing_it_committed(tmp_path: Path, mode: str) -> None:
    db_path = tmp_path / "bot.db"
    thread_key, done, pending = await _write_until_killed(db_path, mode=mode)

    with side_connection(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        left_pending = db.execute("SELECT count(*) FROM turns WHERE status = 'pending'").fetchone()
    store = SqliteStore(db_path)
    await store.open()
    try:
        reported = await store.fail_expired(
            error="The bot restarted during this job.", platforms=("cli",)
        )
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
        assert await store.fail_expired(error="again", platforms=("cli",)) == []
    finally:
        await store.close()
    assert len(done) >= 20
    assert mode == "loop" or pending
