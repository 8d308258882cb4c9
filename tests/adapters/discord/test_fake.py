"""The fake Discord speaks well enough for the real discord.py client (no bot code involved)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import discord
import pytest
import yarl
from discord import app_commands

from tests.fakes.discord import FakeDiscord


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def pointed_at(discord_fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> FakeDiscord:
    monkeypatch.setattr(discord.http.Route, "BASE", discord_fake.api_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(discord_fake.gateway_url)
    )
    return discord_fake


def _quick_client() -> discord.Client:
    """A client that does not wait long for guilds the fake never sends."""
    return discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)


async def _connected(client: discord.Client, token: str) -> asyncio.Task[None]:
    await client.login(token)
    task = asyncio.create_task(client.connect())
    await asyncio.wait_for(client.wait_until_ready(), 5)
    return task


async def test_client_logs_in_syncs_and_gets_an_interaction(pointed_at: FakeDiscord) -> None:
    fake = pointed_at
    client = _quick_client()
    tree = app_commands.CommandTree(client)
    seen: asyncio.Queue[tuple[str, int]] = asyncio.Queue()

    @tree.command(name="ping", description="answers")
    async def ping(interaction: discord.Interaction, word: str) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(
            f"pong {word}", file=discord.File(io.BytesIO(b"x" * 10), "a.bin")
        )
        await seen.put((word, interaction.user.id))

    task = await _connected(client, fake.token)
    try:
        await tree.sync()
        assert client.get_guild(fake.world.guild.id) is not None
        [sync] = fake.of("command_sync")
        assert sync.json[0]["name"] == "ping"

        await fake.slash_command("ping", {"word": "hi"}, user=fake.world.alice)
        assert await asyncio.wait_for(seen.get(), 5) == ("hi", fake.world.alice.id)
        [followup] = await fake.wait_for("followup_create")
        assert followup.json["content"] == "pong hi"
        assert followup.files[0].data == b"x" * 10
        # The first follow-up after "thinking" replaced the loading message.
        [message] = fake.messages_in(fake.world.general["id"])
        assert message["content"] == "pong hi"
    finally:
        await client.close()
        await task


async def test_initial_response_rules_are_enforced(pointed_at: FakeDiscord) -> None:
    fake = pointed_at
    client = _quick_client()
    tree = app_commands.CommandTree(client)
    outcome: asyncio.Queue[BaseException | None] = asyncio.Queue()

    @tree.command(name="twice", description="answers twice")
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        with contextlib.suppress(discord.InteractionResponded):
            await interaction.response.defer()  # discord.py refuses locally; ask the fake below
        route = discord.http.Route(
            "POST",
            "/interactions/{id}/{token}/callback",
            id=interaction.id,
            token=interaction.token,
        )
        try:
            await client.http.request(route, json={"type": 5})
        except discord.HTTPException as exc:
            await outcome.put(exc)
        else:
            await outcome.put(None)

    task = await _connected(client, fake.token)
    try:
        await fake.slash_command("twice", {}, user=fake.world.alice)
        error = await asyncio.wait_for(outcome.get(), 5)
        assert isinstance(error, discord.HTTPException)
        assert error.code == 40060

        fake.interactions.response_deadline = 0.0
        await fake.slash_command("twice", {}, user=fake.world.bob)
        [late] = await fake.wait_for("interaction_callback", lambda call: call.status == 404)
        assert late.response["code"] == 10062
    finally:
        await client.close()
        await task


async def test_bad_token_is_refused(pointed_at: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.default())
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("wrong")
    finally:
        await client.close()


async def test_refused_privileged_intent_closes_with_4014(pointed_at: FakeDiscord) -> None:
    fake = pointed_at
    fake.gateway.refuse_privileged_intents = True
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)
    try:
        await client.login(fake.token)
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(client.connect(), 5)
    finally:
        await client.close()


async def test_message_limits_are_enforced(pointed_at: FakeDiscord) -> None:
    fake = pointed_at
    client = _quick_client()
    task = await _connected(client, fake.token)
    try:
        channel = client.get_partial_messageable(int(fake.world.general["id"]))
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        assert too_long.value.code == 50035
        big = discord.File(io.BytesIO(b"0" * (10 * 1024 * 1024 + 1)), "big.png")
        with pytest.raises(discord.HTTPException) as too_big:
            await channel.send(file=big)
        assert too_big.value.status == 413
        sent = await channel.send("x" * 2000)
        assert fake.world.message(sent.id)["content"] == "x" * 2000
    finally:
        await client.close()
        await task
