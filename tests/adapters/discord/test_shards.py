"""Exactly one process holds the gateway connection of each shard, across processes on one store.

Each replica is a process of its own as far as the store can tell (its own engine and
instance id) with the real discord.py client; the fake gateway records every IDENTIFY, the
shard it carried and every disconnect, and the tests wait for those, never for a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters.discord.shards import lease_name
from bot.config import load_settings
from bot.errors import ConfigError
from storage.memory import MemoryStore
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.harness import ErrorLog
from tests.fakes.discord.http import Call
from tests.fakes.discord.replicas import Replica, StoreClock

LEASE = 0.6  # seconds: each replica renews, and a standby retries, every 0.2 s
MakeReplica = Callable[..., Replica]


@pytest.fixture
def clock() -> StoreClock:
    return StoreClock()


@pytest.fixture
async def store(clock: StoreClock) -> AsyncIterator[MemoryStore]:
    shared = MemoryStore(clock=clock)
    await shared.open()
    yield shared
    await shared.close()


@pytest.fixture
async def replicas(
    discord_fake: FakeDiscord, store: MemoryStore, error_log: ErrorLog
) -> AsyncIterator[MakeReplica]:
    made: list[Replica] = []

    def make(instance: str, **settings: Any) -> Replica:
        made.append(Replica(discord_fake, store, instance, lease=LEASE, **settings))
        return made[-1]

    yield make
    for replica in reversed(made):
        await replica.stop()


async def answered_by(fake: FakeDiscord, *replicas: Replica) -> Replica:
    """Mention the bot in the guild; the one replica whose engine made the answer."""
    world = fake.world
    ask = await fake.send_message(world.general, "a red fox", author=world.alice, mention_bot=True)

    def answers(call: Call) -> bool:
        reference = (call.json or {}).get("message_reference") or {}
        return str(reference.get("message_id")) == ask["id"] and bool(call.files)

    await fake.wait_for("message_create", answers)
    [answering] = [replica for replica in replicas if replica.generator.calls]
    assert len(answering.generator.calls) == 1
    return answering


async def test_one_process_connects_the_other_stands_by_then_takes_over(
    discord_fake: FakeDiscord, replicas: MakeReplica, clock: StoreClock
) -> None:
    gateway = discord_fake.gateway
    first = await replicas("first").start()
    second = await replicas("second").start()
    [identify] = gateway.identifies
    assert "shard" not in identify, "one shard identifies as before sharding"
    assert gateway.connected == 1
    assert "standby" not in first.adapter.describe()
    assert "standby for shards 0 of 1" in second.adapter.describe()
    assert "Banana" in second.adapter.describe()

    clock.freeze()  # no lease runs out: the shard changes hands only if stop releases it
    stopped = time.monotonic()
    await first.stop()
    await gateway.wait_until(lambda: len(gateway.identifies) == 2 and gateway.connected == 1)
    assert time.monotonic() - stopped < LEASE, "a released shard is taken at the next retry"
    assert gateway.disconnects == [None]
    assert gateway.most_connected == {None: 1}
    assert "standby" not in second.adapter.describe()
    assert await answered_by(discord_fake, first, second) is second


async def test_a_holder_cut_off_from_the_database_disconnects_before_the_standby_connects(
    discord_fake: FakeDiscord, replicas: MakeReplica, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = discord_fake.gateway
    first = await replicas("first").start()
    await replicas("second").start()

    first.store.cut = True  # it can no longer renew, nor release: as good as dead
    cut = time.monotonic()
    await gateway.wait_until(lambda: len(gateway.identifies) == 2 and gateway.connected == 1)
    assert time.monotonic() - cut < 2 * LEASE
    assert gateway.disconnects == [None], "the holder let go before its lease ran out"
    assert gateway.most_connected == {None: 1}
    assert "could not renew the lease of Discord shard 0: disconnecting it" in caplog.text


async def test_two_shards_two_processes_each_identify_one(
    discord_fake: FakeDiscord, replicas: MakeReplica, clock: StoreClock
) -> None:
    gateway, world = discord_fake.gateway, discord_fake.world
    only_zero = await replicas("first", discord_shard_count=2, discord_shard_ids="0").start()
    any_shard = await replicas("second", discord_shard_count=2).start()
    assert [identify["shard"] for identify in gateway.identifies] == [[0, 2], [1, 2]]
    assert gateway.connected_shards == [(0, 2), (1, 2)]
    assert only_zero.adapter.describe().endswith("; shards 0 of 2")
    assert any_shard.adapter.describe().endswith("; shards 1 of 2; standby for shards 0 of 2")

    # Discord sends a guild's events to its shard only: one process answers them.
    on_zero = (world.guild.id >> 22) % 2 == 0
    holder = only_zero if on_zero else any_shard
    assert await answered_by(discord_fake, only_zero, any_shard) is holder

    clock.freeze()
    await only_zero.stop()
    await gateway.wait_until(
        lambda: len(gateway.identifies) == 3 and gateway.connected_shards == [(1, 2), (0, 2)]
    )
    assert [identify["shard"] for identify in gateway.identifies][2:] == [[0, 2]]
    assert "standby" not in any_shard.adapter.describe()
    assert gateway.most_connected == {(0, 2): 1, (1, 2): 1}


async def test_a_process_whose_lease_was_taken_disconnects_at_once(
    discord_fake: FakeDiscord,
    replicas: MakeReplica,
    store: MemoryStore,
    clock: StoreClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = discord_fake.gateway
    first = await replicas("first").start()
    assert gateway.connected == 1

    # It froze past its lease, and another process took the shard in the meantime.
    async with asyncio.timeout(5):
        while True:
            clock.advance(2 * LEASE)
            if await store.acquire_lease(lease_name(0, 1), owner="intruder", lease=60):
                break
    with caplog.at_level(logging.WARNING):
        await gateway.wait_until(lambda: gateway.connected == 0, within=2 * LEASE)
    assert "another process took the lease of Discord shard 0: disconnecting it" in caplog.text
    assert "standby for shards 0 of 1" in first.adapter.describe()


def test_shard_settings() -> None:
    def shards(**values: Any) -> tuple[int, ...]:
        return load_settings(_env_file=None, **values).discord_shards

    assert shards() == (0,)
    assert shards(discord_shard_count=3) == (0, 1, 2)
    assert shards(discord_shard_count=4, discord_shard_ids="3, 1") == (1, 3)
    with pytest.raises(ConfigError) as caught:
        shards(discord_shard_count=2, discord_shard_ids="2")
    assert "DISCORD_SHARD_IDS" in caught.value.user_message
    with pytest.raises(ConfigError):
        shards(discord_shard_count=0)
    assert lease_name(0, 1) != lease_name(0, 2), "processes started with another count never mix"
