"""Several bot processes on one store, each with its own engine and Discord adapter.

Each replica is what one process would run: an engine under its own instance id (so the
store tells their leases apart) with a short lease, and the real adapter on the fake Discord.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from adapters.discord import DiscordAdapter
from bot.config import Settings
from bot.engine import Engine, EngineOptions, JobGate, UserLimits
from storage.base import Store
from tests.fakes.discord import FakeDiscord
from tests.fakes.generator import FakeGenerator


@dataclass
class StoreClock:
    """The store's idea of now: moved by hand to let a lease run out at once, or stopped so
    that none ever runs out (a lease then changes hands only when it is released)."""

    skew: timedelta = timedelta(0)
    frozen: datetime | None = None

    def __call__(self) -> datetime:
        return self.frozen or datetime.now(UTC) + self.skew

    def advance(self, seconds: float) -> None:
        self.skew += timedelta(seconds=seconds)
        if self.frozen is not None:
            self.frozen += timedelta(seconds=seconds)

    def freeze(self) -> None:
        self.frozen = self()


class Severable:
    """A store a replica can be cut off from: its lease calls fail, as with a lost database."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.cut = False

    async def acquire_lease(self, name: str, *, owner: str, lease: float) -> bool:
        if self.cut:
            raise ConnectionError("the database is out of reach")
        return await self._store.acquire_lease(name, owner=owner, lease=lease)

    async def release_lease(self, name: str, *, owner: str) -> None:
        if self.cut:
            raise ConnectionError("the database is out of reach")
        await self._store.release_lease(name, owner=owner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class Replica:
    """One process: an engine named `instance` on the shared store, and its Discord adapter."""

    def __init__(
        self,
        fake: FakeDiscord,
        store: Store,
        instance: str,
        *,
        lease: float,
        **settings: Any,
    ) -> None:
        self.instance = instance
        self.store = Severable(store)
        self.generator = FakeGenerator()
        self.engine = Engine(
            store=cast(Store, self.store),
            generator=self.generator,
            gate=JobGate(max_concurrent=2, max_queue=5),
            user_limits=UserLimits(per_minute=0, per_day=0, counter=store),
            options=EngineOptions(instance=instance, lease_seconds=lease),
        )
        values: dict[str, Any] = {
            "discord_token": fake.token,
            "discord_api_base_url": fake.api_base,
            "discord_gateway_url": fake.gateway_url,
            "discord_guild_ids": str(fake.world.guild.id),
        }
        self.settings = Settings(_env_file=None, **(values | settings))  # type: ignore[call-arg]
        self.adapter = DiscordAdapter(
            engine=self.engine, settings=self.settings, guild_ready_timeout=0.05
        )
        self.started = False

    async def start(self) -> Replica:
        await self.adapter.start()
        self.started = True
        return self

    async def stop(self) -> None:
        if self.started:
            self.started = False
            await self.adapter.stop()
