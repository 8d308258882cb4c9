"""Starting, stopping and restarting the Discord adapter; what it tells operators and users."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from adapters.discord import DiscordAdapter
from bot.bootstrap import open_engine
from bot.errors import ConfigError
from bot.models import ThreadKey
from storage.sqlite import SqliteStore
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.harness import DiscordBot, ErrorLog
from tests.fakes.gptproto import FakeGptProto

WANTED_INTENTS = (1 << 0) | (1 << 9) | (1 << 12) | (1 << 15)  # guilds, messages, DMs, content


async def test_identifies_with_only_the_needed_intents(bot: DiscordBot) -> None:
    [identify] = bot.fake.gateway.identifies
    assert identify["intents"] == WANTED_INTENTS


async def test_stop_puts_discord_py_endpoints_back(
    discord_fake: FakeDiscord, upstream: FakeGptProto, tmp_path: Path, error_log: ErrorLog
) -> None:
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    harness = DiscordBot(discord_fake, upstream, tmp_path)
    adapter = await harness.start()
    assert discord_fake.api_base == discord.http.Route.BASE
    assert "Banana" in adapter.describe()
    await harness.stop()
    assert before == (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    assert adapter.describe() == "Discord: not connected"
    assert discord_fake.gateway.connected == 0


async def test_without_guild_ids_commands_sync_globally(
    discord_fake: FakeDiscord, upstream: FakeGptProto, tmp_path: Path, error_log: ErrorLog
) -> None:
    harness = DiscordBot(discord_fake, upstream, tmp_path, discord_guild_ids="")
    await harness.start()
    try:
        [sync] = discord_fake.of("command_sync")
        assert sync.path.endswith(f"/applications/{discord_fake.world.app_id}/commands")
        assert [command["name"] for command in sync.json] == ["imagine", "usage", "budget"]
    finally:
        await harness.stop()


async def test_a_bad_token_is_a_clear_error(
    discord_fake: FakeDiscord, upstream: FakeGptProto, tmp_path: Path, error_log: ErrorLog
) -> None:
    before = discord.http.Route.BASE
    harness = DiscordBot(discord_fake, upstream, tmp_path, discord_token="not-the-token")
    with pytest.raises(ConfigError) as caught:
        await harness.start()
    assert "Discord refused DISCORD_TOKEN" in caught.value.user_message
    assert "not-the-token" not in caught.value.user_message
    assert before == discord.http.Route.BASE


async def test_a_refused_message_content_intent_gives_the_portal_hint(
    discord_fake: FakeDiscord, upstream: FakeGptProto, tmp_path: Path, error_log: ErrorLog
) -> None:
    discord_fake.gateway.refuse_privileged_intents = True
    error_log.expect("Message Content intent")
    harness = DiscordBot(discord_fake, upstream, tmp_path)
    with pytest.raises(ConfigError) as caught:
        await harness.start()
    hint = caught.value.user_message
    assert "MESSAGE CONTENT INTENT" in hint and "developer portal" in hint
    assert any("developer portal" in record.getMessage() for record in error_log.records)


async def test_missing_token_is_a_config_error(
    discord_fake: FakeDiscord, upstream: FakeGptProto, tmp_path: Path
) -> None:
    harness = DiscordBot(discord_fake, upstream, tmp_path)
    async with open_engine(harness.settings()) as engine:
        adapter = DiscordAdapter(engine=engine, settings=harness.settings(discord_token=None))
        with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
            await adapter.start()


async def test_users_hear_about_jobs_a_crash_interrupted(bot: DiscordBot, tmp_path: Path) -> None:
    fake, world = bot.fake, bot.world
    record = await fake.slash_command("imagine", {"prompt": "a kettle"}, user=world.alice)
    result = await bot.result_of(record)
    await bot.thread_of(result)
    await bot.stop()

    # What a crash in the middle of a refinement leaves behind: a pending turn.
    store = SqliteStore(tmp_path / "bot.db")
    await store.open()
    key = ThreadKey("discord", str(world.guild.id), world.general["id"], str(record.id))
    thread = await store.get_thread(key)
    assert thread is not None and thread.head_id is not None
    await store.start_turn(
        thread.id,
        parent_id=thread.head_id,
        user=str(world.alice.id),
        prompt="make it copper like https://example.com/copper",
        ratio=None,
        model="gemini-2.5-flash-image",
        inputs=[],
        owner="crashed",
        lease=0.0,
    )
    await store.close()

    await bot.start()
    [notice] = await fake.wait_for(
        "message_create", lambda call: "restarted" in (call.json or {}).get("content", "")
    )
    assert f"<@{world.alice.id}>" in notice.json["content"]
    assert "make it copper like <https://example.com/copper>" in notice.json["content"]
    assert world.previews() == []
    mentions = notice.json["allowed_mentions"]
    assert mentions["parse"] == [] and mentions["users"] == [world.alice.id]
