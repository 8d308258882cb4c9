"""The floor: the work no bot can skip for one job, timed on the same machine in the same run.

Decode the base64 image of the upstream's answer, append the turn with its image in one store
transaction, and build what the Slack upload sends (the raw bytes as an HTTP payload).
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp.payload import BytesPayload

from bot.models import Image, ThreadKey
from storage.sqlite import SqliteStore
from tests.fakes.gptproto_images import make_image

SIZE = (1024, 1024)


def answer_image(serial: int, result_bytes: int) -> str:
    """The base64 text of a PNG the fake upstream would answer (distinct per serial)."""
    padding = max(0, result_bytes - len(make_image(serial, SIZE)))
    return base64.b64encode(make_image(serial, SIZE, padding=padding)).decode("ascii")


@dataclass(frozen=True)
class FloorTimes:
    decode: float
    store: float
    upload: float

    @property
    def core(self) -> float:
        return self.decode + self.store

    @property
    def slack(self) -> float:
        return self.decode + self.store + self.upload


class Floor:
    """Runs the unavoidable steps of a job against its own store file."""

    def __init__(self, path: Path) -> None:
        self._store = SqliteStore(path)
        self._thread = 0

    async def __aenter__(self) -> Floor:
        await self._store.open()
        thread = await self._store.create_thread(ThreadKey("slack", "T0001", "C0001", "floor"))
        self._thread = thread.id
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._store.close()

    async def job(self, encoded: str, started: float | None = None) -> tuple[FloorTimes, float]:
        """One job's floor; and its end measured from `started` (default: its own start)."""
        began = time.monotonic() if started is None else started
        t0 = time.monotonic()
        data = base64.b64decode(encoded)
        t1 = time.monotonic()
        await self._store.start_turn(
            self._thread,
            parent_id=None,
            user="UFLOOR",
            prompt="a lighthouse at dusk",
            ratio=None,
            model="gemini-2.5-flash-image",
            inputs=(Image(data, "image/png"),),
            owner="floor",
            lease=30.0,
        )
        t2 = time.monotonic()
        payload = BytesPayload(data, content_type="application/octet-stream")
        assert payload.size == len(data)
        t3 = time.monotonic()
        return FloorTimes(t1 - t0, t2 - t1, t3 - t2), t3 - began

    async def together(self, encoded: list[str]) -> list[float]:
        """Jobs arriving at once: each one's time from the common start to its end."""
        started = time.monotonic()

        async def one(text: str) -> float:
            await asyncio.sleep(0)  # every job starts before any finishes, as they would
            return (await self.job(text, started))[1]

        return list(await asyncio.gather(*(one(text) for text in encoded)))
