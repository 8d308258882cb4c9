"""Engines for tests: the real client on FakeGptProto over HTTP, or the in-process fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from bot.engine import AccessPolicy, Engine, EngineOptions, JobGate, JobObserver, UserLimits
from bot.models import Request, ThreadKey
from bot.upstream import GptProtoClient, UpstreamObserver
from storage.base import Store
from storage.memory import MemoryStore
from storage.sqlite import SqliteStore
from tests.fakes.generator import FakeGenerator
from tests.fakes.gptproto import FakeGptProto, RecordedSleeps

API_KEY = "sk-test-engine-key"


@asynccontextmanager
async def engine_on(
    fake: FakeGptProto,
    tmp_path: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    access: AccessPolicy | None = None,
    observer: JobObserver | None = None,
    upstream_observer: UpstreamObserver | None = None,
    max_concurrent: int = 4,
) -> AsyncIterator[tuple[Engine, SqliteStore]]:
    """An opened engine and its store; retries sleep no real time."""
    store = (
        SqliteStore(tmp_path / "bot.db", clock=clock) if clock else SqliteStore(tmp_path / "bot.db")
    )
    await store.open()
    client = GptProtoClient(
        base_url=fake.url,
        api_key=API_KEY,
        observer=upstream_observer,
        sleep=RecordedSleeps(),
        max_connections=max_concurrent,
    )
    engine = Engine(
        store=store,
        generator=client,
        gate=JobGate(max_concurrent=max_concurrent, max_queue=10),
        user_limits=UserLimits(per_minute=0, per_day=0, counter=store),
        access=access,
        observer=observer,
    )
    try:
        yield engine, store
    finally:
        await client.aclose()
        await store.close()


def request(
    thread: str,
    text: str = "a banana on the moon",
    *,
    user: str = "UALICE",
    platform: str = "slack",
    workspace: str = "T1",
    channel: str = "C1",
    roles: tuple[str, ...] = (),
) -> Request:
    return Request(
        key=ThreadKey(platform, workspace, channel, thread), user=user, text=text, roles=roles
    )


@asynccontextmanager
async def fast_engine(
    *,
    access: AccessPolicy | None = None,
    max_concurrent: int = 4,
    per_minute: int = 0,
    store: Store | None = None,
    observer: JobObserver | None = None,
    clock: Callable[[], datetime] | None = None,
    options: EngineOptions | None = None,
) -> AsyncIterator[tuple[Engine, Store, FakeGenerator]]:
    """An engine on the in-memory store and the in-process generator: no HTTP, no disk."""
    store = store or (MemoryStore(clock=clock) if clock else MemoryStore())
    await store.open()
    generator = FakeGenerator()
    engine = Engine(
        store=store,
        generator=generator,
        gate=JobGate(max_concurrent=max_concurrent, max_queue=10),
        user_limits=UserLimits(per_minute=per_minute, per_day=0, counter=store),
        access=access,
        options=options,
        observer=observer,
    )
    try:
        yield engine, store, generator
    finally:
        await store.close()
