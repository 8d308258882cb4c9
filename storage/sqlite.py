"""The embedded Store: one SQLite file in WAL mode, each connection on a thread of its own."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from bot.errors import ConfigError
from bot.models import Image, Thread, ThreadKey, Turn, Usage, UsageTotals
from storage import sqlite_ownership as ownership
from storage import sqlite_queries as queries
from storage import sqlite_records as records
from storage.sqlite_connection import Checkpointer, Role, connect
from storage.sqlite_rows import to_micros
from storage.sqlite_schema import migrate
from storage.sqlite_thread import SqliteThread
from storage.times import EVENT_RETENTION, as_utc, utc_now

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

PRUNE_BATCH = 500
"""Turns deleted per write transaction by prune(), so other writes wait only briefly."""
MIN_FREE_BYTES = 64 * 1024 * 1024
"""Free space below which the store reports itself unwritable: a few large images' worth."""


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged process may still write on the file system holding path."""
    stats = os.statvfs(path.parent)
    return stats.f_bavail * stats.f_frsize


class SqliteStore:
    """Store on one SQLite file: threads, a tree of turns, images once per hash, usage."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] = utc_now,
        min_free_bytes: int = MIN_FREE_BYTES,
    ) -> None:
        self._path = path
        self._clock = clock
        self._min_free_bytes = min_free_bytes
        self._writer: SqliteThread | None = None
        # Reads use their own connection: WAL lets them see the last commit while the
        # writer is busy (a prune batch, a large image).
        self._reader: SqliteThread | None = None
        self._checkpointer: Checkpointer | None = None

    async def open(self) -> None:
        """Connect and migrate the schema to the current version."""
        if self._writer is not None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            writer = await connect(self._path, Role.WRITER)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"Cannot open the database {self._path}: {exc}") from exc
        opened = [writer]
        try:
            await writer.run(lambda conn: migrate(conn, path=self._path))
            opened.append(reader := await connect(self._path, Role.READER))
            opened.append(checkpoints := await connect(self._path, Role.CHECKPOINTER))
        except BaseException as exc:
            for db in reversed(opened):
                await db.close()
            if isinstance(exc, sqlite3.Error):
                raise ConfigError(f"Cannot use the database {self._path}: {exc}") from exc
            raise
        self._writer, self._reader = writer, reader
        self._checkpointer = Checkpointer(checkpoints)
        self._checkpointer.start()

    async def close(self) -> None:
        reader, writer, checkpointer = self._reader, self._writer, self._checkpointer
        self._reader = self._writer = self._checkpointer = None
        if checkpointer is not None:
            await checkpointer.stop()
        if reader is not None:
            await reader.close()
        if writer is not None:
            # No ANALYZE/PRAGMA optimize: statistics taken while the database is small lead
            # the planner to scan tables once it holds a million turns; the indexes alone
            # give every query its plan.
            await writer.close()

    async def ping(self) -> bool:
        """True while the store answers a trivial query."""
        if self._reader is None:
            return False
        try:
            answer = await self._reader.run(lambda conn: conn.execute("SELECT 1").fetchall())
        except sqlite3.Error:
            return False
        return answer == [(1,)]

    async def probe_write(self) -> bool:
        """True when a one-row write commits and the disk has room for the next images.

        A rewrite of one row fits in pages SQLite already holds, so it can succeed on a full
        disk where the next job's images cannot: the free space is checked as well.
        """
        if self._writer is None:
            return False
        try:
            await self._write(records.probe_write, to_micros(self._clock()))
            free = await self._writer.run(lambda _: free_bytes(self._path))
        except (sqlite3.Error, OSError) as exc:
            logger.warning("the database %s cannot be written: %s", self._path, exc)
            return False
        if free < self._min_free_bytes:
            logger.warning("the disk of %s has %d bytes free", self._path, free)
            return False
        return True

    async def _read(
        self, work: Callable[Concatenate[sqlite3.Connection, P], T], /, *a: P.args, **k: P.kwargs
    ) -> T:
        if self._reader is None:
            raise RuntimeError("the store is not open")
        return await self._reader.run(lambda conn: work(conn, *a, **k))

    async def _write(
        self, work: Callable[Concatenate[sqlite3.Connection, P], T], /, *a: P.args, **k: P.kwargs
    ) -> T:
        """Run work as one write transaction; any error rolls all of it back."""
        if self._writer is None:
            raise RuntimeError("the store is not open")

        def transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn, *a, **k)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        result = await self._writer.run(transaction)
        if self._checkpointer is not None:
            self._checkpointer.poke()
        return result

    def _now(self) -> datetime:
        """The clock's time as stored (UTC, microseconds), so returned values match reads."""
        return as_utc(self._clock())

    # -- threads -------------------------------------------------------------------

    async def get_thread(self, key: ThreadKey) -> Thread | None:
        """The thread a key (or an alias of it) names; its `key` is the key asked."""
        return await self._read(queries.thread_by_key, key)

    async def create_thread(self, key: ThreadKey) -> Thread:
        """A new thread under key; returns the existing one if the key is taken."""
        return await self._write(queries.create_thread, key, now=self._now())

    async def thread_key(self, thread_id: int) -> ThreadKey | None:
        """The key a thread was created under."""
        return (await self._read(queries.first_keys, [thread_id])).get(thread_id)

    async def add_alias(self, thread_id: int, *, key: ThreadKey) -> None:
        """Let a second key name the same thread; a key naming another thread is refused."""
        await self._write(queries.add_alias, thread_id, key=key)

    # -- turns ---------------------------------------------------------------------

    async def start_turn(
        self,
        thread_id: int,
        *,
        parent_id: int | None,
        user: str,
        prompt: str,
        ratio: str | None,
        model: str,
        inputs: Sequence[Image],
        owner: str,
        lease: float,
        claims: Sequence[str] = (),
    ) -> Turn:
        """Store a pending turn held by owner, its inputs and its settled claims at once."""
        return await self._write(
            ownership.start_turn, thread_id, parent_id=parent_id, user=user, prompt=prompt,
            ratio=ratio, model=model, inputs=inputs, owner=owner, lease=lease, claims=claims,
            now=self._now(),
        )  # fmt: skip

    async def finish_turn(
        self,
        turn_id: int,
        *,
        owner: str,
        outputs: Sequence[Image],
        text: str,
        usage: Usage,
        parts_json: str,
        cost_usd: float = 0.0,
        head: bool = True,
    ) -> Turn:
        """Mark the owner's turn done, store its outputs, add usage; with head, move the head."""
        return await self._write(
            ownership.finish_turn, turn_id, owner=owner, outputs=outputs, text=text, usage=usage,
            parts_json=parts_json, cost_usd=cost_usd, now=self._now(), head=head,
        )  # fmt: skip

    async def move_head(self, turn_id: int) -> None:
        """Make a done turn its thread's head."""
        await self._write(queries.move_head, turn_id)

    async def fail_turn(self, turn_id: int, *, error: str) -> Turn:
        """Mark a pending turn failed with the message the user saw; a finished turn is kept."""
        return await self._write(queries.fail_turn, turn_id, error=error, now=self._now())

    async def get_turn(self, turn_id: int) -> Turn | None:
        return await self._read(queries.turn, turn_id)

    async def lineage(self, turn_id: int, *, limit: int) -> list[Turn]:
        """The turn and up to limit-1 of its done ancestors, oldest first."""
        if limit < 1:
            return []
        return await self._read(queries.ancestry, turn_id, limit=limit)

    async def load_images(self, hashes: Sequence[str]) -> list[Image]:
        """Image bytes by content hash, in the order asked; missing hashes are skipped."""
        return await self._read(queries.load_images, hashes)

    async def fail_expired(
        self, *, error: str, platforms: Sequence[str]
    ) -> list[tuple[Turn, ThreadKey]]:
        """Mark failed the pending turns of these platforms whose lease ran out; return them."""
        failed = await self._write(
            ownership.fail_expired, error=error, platforms=platforms, now=self._now()
        )
        if failed:
            logger.info("marked %s turns whose lease ran out as failed", len(failed))
        return failed

    # -- ownership -----------------------------------------------------------------

    async def renew(self, *, owner: str, lease: float) -> int:
        """Extend everything owner holds by lease seconds from now."""
        return await self._write(ownership.renew, owner=owner, lease=lease, now=self._now())

    async def acquire_lease(self, name: str, *, owner: str, lease: float) -> bool:
        """True when owner holds the named lease (free, run out, or held already)."""
        return await self._write(
            ownership.acquire_lease, name, owner=owner, lease=lease, now=self._now()
        )

    async def release_lease(self, name: str, *, owner: str) -> None:
        await self._write(ownership.release_lease, name, owner=owner)

    # -- platform messages ---------------------------------------------------------

    async def link_message(self, turn_id: int, *, platform: str, message_id: str) -> None:
        """Remember which platform message shows a turn's result."""
        await self._write(records.link_message, turn_id, platform=platform, message_id=message_id)

    async def turn_for_message(self, *, platform: str, message_id: str) -> Turn | None:
        return await self._read(records.turn_for_message, platform=platform, message_id=message_id)

    async def message_for_turn(self, turn_id: int, *, platform: str) -> str | None:
        return await self._read(records.message_for_turn, turn_id, platform=platform)

    # -- dedupe --------------------------------------------------------------------

    async def claim_event(self, *, platform: str, event_id: str, owner: str, lease: float) -> bool:
        """True when owner now holds the event id (first delivery, or its holder died)."""
        return await self._write(
            ownership.claim_event, platform=platform, event_id=event_id, owner=owner,
            lease=lease, now=self._now(),
        )  # fmt: skip

    async def settle_claims(self, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
        """The owner has answered these events."""
        await self._write(
            ownership.settle_claims, platform=platform, event_ids=event_ids, owner=owner
        )

    async def release_claims(self, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
        """The owner could not record these events: their next delivery is handled."""
        await self._write(
            ownership.release_claims, platform=platform, event_ids=event_ids, owner=owner
        )

    # -- usage ---------------------------------------------------------------------

    async def jobs_since(self, *, platform: str, user: str, since: datetime) -> int:
        """Turns a user started since a moment, not counting failed ones."""
        return await self._read(records.jobs_since, platform=platform, user=user, since=since)

    async def first_job_since(
        self, *, platform: str, user: str, since: datetime
    ) -> datetime | None:
        """When the first of those turns started."""
        return await self._read(records.first_job_since, platform=platform, user=user, since=since)

    async def usage_totals(
        self,
        *,
        platform: str,
        workspace: str | None = None,
        user: str | None = None,
        since: date,
    ) -> UsageTotals:
        """Sums from the ledger for a user and/or a workspace since a day (inclusive)."""
        return await self._read(
            records.usage_totals, platform=platform, workspace=workspace, user=user, since=since
        )

    # -- retention -----------------------------------------------------------------

    async def prune(self, *, before: datetime) -> int:
        """Delete turns older than a moment and images no turn refers to; returns turns removed."""
        removed = 0
        while True:
            batch = await self._write(records.prune_batch, before=before, size=PRUNE_BATCH)
            removed += batch
            if batch < PRUNE_BATCH:
                break
        await self._write(records.forget_events, before=self._clock() - EVENT_RETENTION)
        if removed:
            logger.info("pruned %s turns created before %s", removed, before.isoformat())
        return removed
