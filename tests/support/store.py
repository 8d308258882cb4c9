"""Helpers shared by the store tests: a settable clock, images, keys, thread and turn writers."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.models import Image, Thread, ThreadKey, Turn, Usage
from storage.base import Store

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MODEL = "gemini-2.5-flash-image"
OWNER = "host:1:test"
"""The process the store tests write as; another process is any other name."""
LEASE = 30.0


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def image(seed: str, *, size: int = 64, mime_type: str = "image/png") -> Image:
    """Distinct bytes per seed, the same bytes for the same seed."""
    block = hashlib.sha256(seed.encode()).digest()
    return Image(data=(block * (size // 32 + 1))[:size], mime_type=mime_type)


def key(thread: str, *, platform: str = "slack", workspace: str = "T1") -> ThreadKey:
    return ThreadKey(platform, workspace, "C1", thread)


async def new_thread(
    store: Store, name: str = "t1", *, platform: str = "slack", workspace: str = "T1"
) -> Thread:
    """A thread under key(name, ...)."""
    return await store.create_thread(key(name, platform=platform, workspace=workspace))


async def pending_turn(
    store: Store,
    thread_id: int,
    *,
    parent_id: int | None = None,
    user: str = "U1",
    prompt: str = "p",
    inputs: tuple[Image, ...] = (),
    owner: str = OWNER,
    claims: tuple[str, ...] = (),
    model: str = MODEL,
    size: str | None = None,
) -> Turn:
    """Start one turn and leave it pending, held by owner."""
    return await store.start_turn(
        thread_id,
        parent_id=parent_id,
        user=user,
        prompt=prompt,
        ratio=None,
        model=model,
        inputs=inputs,
        owner=owner,
        lease=LEASE,
        claims=claims,
        size=size,
    )


async def done_turn(
    store: Store,
    thread_id: int,
    *,
    parent_id: int | None = None,
    user: str = "U1",
    prompt: str = "a banana",
    inputs: tuple[Image, ...] = (),
    outputs: tuple[Image, ...] | None = None,
    usage: Usage | None = None,
    cost_usd: float = 0.0,
    model: str = MODEL,
    size: str | None = None,
    possibly_billed: int = 0,
) -> Turn:
    """Start and finish one turn; by default it produces one image named after its prompt."""
    started = await pending_turn(
        store, thread_id, parent_id=parent_id, user=user, prompt=prompt, inputs=inputs,
        model=model, size=size,
    )  # fmt: skip
    return await store.finish_turn(
        started.id,
        owner=OWNER,
        outputs=outputs if outputs is not None else (image(f"out:{prompt}"),),
        text="",
        usage=usage or Usage(),
        parts_json="[]",
        cost_usd=cost_usd,
        possibly_billed=possibly_billed,
    )


async def claim(
    store: Store, event_id: str, *, platform: str = "slack", owner: str = OWNER
) -> bool:
    """Claim an event id for owner, for LEASE seconds."""
    return await store.claim_event(platform=platform, event_id=event_id, owner=owner, lease=LEASE)


@contextmanager
def side_connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection beside the store's, as another process would have."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        yield db
