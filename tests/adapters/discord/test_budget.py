"""/budget on Discord: admins (Manage Server, or ADMIN_USER_IDS) see and set monthly budgets
per member, role and server; a request over one is refused with the engine's sentence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscord, OptionValue, RoleOption
from tests.fakes.discord import payloads as p
from tests.fakes.discord.harness import DiscordBot, ErrorLog
from tests.fakes.gptproto import FakeGptProto


@pytest.fixture
async def admin_bot(
    discord_fake: FakeDiscord, upstream: FakeGptProto, tmp_path: Path, error_log: ErrorLog
) -> AsyncIterator[tuple[DiscordBot, p.Member]]:
    """The bot, and a member who can manage the server (in the guild before the bot starts)."""
    world = discord_fake.world
    role = world.ids.next()
    world.guild.roles[role] = p.role(role, "Admins", permissions=p.MANAGE_GUILD, position=3)
    owner = world.add_member("owner", roles=[role])
    harness = DiscordBot(discord_fake, upstream, tmp_path)
    await harness.start()
    try:
        yield harness, owner
    finally:
        await harness.stop()


async def test_a_role_budget_refuses_a_request_over_it(
    admin_bot: tuple[DiscordBot, p.Member],
) -> None:
    bot, owner = admin_bot
    fake, world = bot.fake, bot.world
    artists = RoleOption(world.artist_role)
    record = await fake.slash_command(
        "budget", {"usd": 0.1, "role": artists}, user=owner, subcommand="set"
    )
    said = await bot.ephemeral_reply(record)
    assert (
        said == f"The monthly budget of each member of role <@&{world.artist_role}> is now $0.10."
    )

    # alice is an Artist: one 3 Pro image costs $0.134, over the $0.10 her role grants.
    ask = await fake.slash_command(
        "imagine", {"prompt": "a gilded frame", "model": "gemini-3-pro-image"}, user=world.alice
    )
    # Refused before anything is posted: the engine checks budgets with the other limits.
    refusal = await bot.refusal(ask)
    assert refusal.startswith("That would pass your monthly budget of $0.10")
    assert bot.upstream.generations == []
    assert [m for m in fake.messages_in(world.general["id"]) if m["attachments"]] == []
    # bob has no role budget: his request goes through.
    await bot.result_of(
        await fake.slash_command(
            "imagine", {"prompt": "a plain frame", "model": "gemini-3-pro-image"}, user=world.bob
        )
    )
    assert len(bot.upstream.generations) == 1

    shown = await bot.ephemeral_reply(
        await fake.slash_command("budget", {}, user=owner, subcommand="show")
    )
    assert f"each member of role <@&{world.artist_role}>: $0.10 a month" in shown
    assert "Spent here this month: $0.13." in shown


async def test_member_and_server_budgets_are_set_and_removed(
    admin_bot: tuple[DiscordBot, p.Member],
) -> None:
    bot, owner = admin_bot
    fake, world = bot.fake, bot.world

    async def budget(subcommand: str, **options: OptionValue) -> str:
        record = await fake.slash_command("budget", options, user=owner, subcommand=subcommand)
        return await bot.ephemeral_reply(record)

    assert await budget("set", usd=5.0, member=world.bob) == (
        f"The monthly budget of user <@{world.bob.id}> is now $5.00."
    )
    assert await budget("set", usd=100.0, server=True) == (
        "The monthly budget of the server is now $100.00."
    )
    assert await budget("remove", member=world.bob) == (
        f"Removed the monthly budget of user <@{world.bob.id}>."
    )
    assert "Name exactly one" in await budget("set", usd=1.0)
    assert "Name exactly one" in await budget("remove", member=world.bob, server=True)
    shown = await budget("show")
    assert "the server: $100.00 a month" in shown and f"<@{world.bob.id}>" not in shown
    assert world.pings() == []


async def test_budgets_are_for_admins_only(admin_bot: tuple[DiscordBot, p.Member]) -> None:
    bot, _ = admin_bot
    world = bot.world
    for subcommand, options in (("show", {}), ("set", {"usd": 1.0, "server": True})):
        record = await bot.fake.slash_command(
            "budget", options, user=world.bob, subcommand=subcommand
        )
        assert (await bot.ephemeral_reply(record)).startswith("Only the bot's admins")
    await bot.restart(admin_user_ids=str(world.bob.id))
    record = await bot.fake.slash_command(
        "budget", {"usd": 2.0, "member": world.alice}, user=world.bob, subcommand="set"
    )
    assert "is now $2.00" in await bot.ephemeral_reply(record)
