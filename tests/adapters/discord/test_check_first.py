"""Check, then speak: a request the engine refuses leaves nothing public behind, and no echo."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.errors import AccessDenied
from bot.models import Request
from tests.fakes.discord import payloads as p
from tests.fakes.discord.harness import DiscordBot
from tests.fakes.discord.http import Call
from tests.fakes.discord.interactions import DEFERRED_MESSAGE, MODAL, InteractionRecord

HOSTILE = "@everyone <@&1> look at https://evil.example/x"


def _by(record: InteractionRecord) -> Callable[[Call], bool]:
    return lambda call: call.params.get("token") == record.token


@pytest.mark.parametrize(
    ("setting", "words"),
    [("blocked_user_ids", "blocked"), ("allowed_channel_ids", "not enabled in this channel")],
)
async def test_imagine_refused_is_private_and_nothing_public_came_first(
    bot: DiscordBot, setting: str, words: str
) -> None:
    world = bot.world
    value = str(world.bob.id) if setting == "blocked_user_ids" else str(world.locked["id"])
    await bot.restart(**{setting: value})
    record = await bot.fake.slash_command("imagine", {"prompt": HOSTILE}, user=world.bob)

    text = await bot.refusal(record)
    assert words in text and "evil" not in text and "@everyone" not in text
    assert bot.fake.messages_in(world.general["id"]) == []
    assert world.deleted == {}, "no public 'thinking' message was posted and taken back"
    assert bot.upstream.generations == []


async def test_a_refused_mention_is_a_reply_that_pings_only_its_author(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    await bot.restart(allowed_channel_ids=str(world.locked["id"]))
    ask = await fake.send_message(world.general, HOSTILE, author=world.bob, mention_bot=True)

    answer = await bot.reply_to(ask, files=False)
    assert "not enabled in this channel" in answer["content"]
    assert "evil" not in answer["content"] and "@everyone" not in answer["content"]
    assert fake.of("typing") == [], "nothing showed the bot working on a refused request"
    [reply] = [body for body in fake.recorder.message_bodies() if body.get("message_reference")]
    mentions = reply["allowed_mentions"]
    assert mentions["parse"] == [] and mentions["users"] == [world.bob.id]
    assert [effect.users for effect in world.pings()] == [frozenset({world.bob.id})]
    assert bot.upstream.generations == []


async def test_a_blocked_user_in_the_bots_thread_gets_a_reply_and_no_typing(
    bot: DiscordBot,
) -> None:
    fake, world = bot.fake, bot.world
    await bot.restart(blocked_user_ids=str(world.bob.id))
    result, _ = await bot.imagined("a lantern")
    thread = world.guild.threads[int(result["id"])]
    ask = await fake.send_message(thread, f"make it {HOSTILE}", author=world.bob)

    answer = await bot.reply_to(ask, files=False)
    assert "blocked" in answer["content"] and "evil" not in answer["content"]
    assert [call for call in fake.of("typing") if call.params["channel"] == thread["id"]] == []
    assert [effect.users for effect in world.pings()] == [frozenset({world.bob.id})]
    assert len(bot.upstream.generations) == 1


@pytest.mark.parametrize("action", ["reroll", "refine"])
async def test_a_blocked_user_clicking_is_refused_before_any_deferral(
    bot: DiscordBot, action: str
) -> None:
    fake, world = bot.fake, bot.world
    result, turn = await bot.imagined()
    await bot.restart(blocked_user_ids=str(world.bob.id))
    click = await fake.click(result, f"banana:{action}:{turn}", user=world.bob)

    assert "blocked" in await bot.refusal(click)
    assert click.modal is None and click.response_type != MODAL
    assert len(bot.upstream.generations) == 1
    assert [m for m in fake.messages_in(result["id"]) if m["attachments"]] == []


async def _slow_check(bot: DiscordBot, refuse: bool) -> tuple[InteractionRecord, asyncio.Event]:
    """/imagine whose checks wait for the test: the bot has to defer before they end."""
    bot.adapter_options = {"check_budget": 0.05}
    await bot.restart()
    # The restarted engine's own check: the one before the restart reads a closed store.
    assert bot.engine is not None
    checked, release = bot.engine.precheck, asyncio.Event()

    async def precheck(request: Request, **options: object) -> None:
        await release.wait()
        if refuse:
            raise AccessDenied("Not here, not now.")
        await checked(request, **options)  # type: ignore[arg-type]

    setattr(bot.engine, "precheck", precheck)  # noqa: B010
    record = await bot.fake.slash_command("imagine", {"prompt": HOSTILE}, user=bot.world.alice)
    [defer] = await bot.fake.wait_for("interaction_callback", _by(record))
    assert defer.json["type"] == DEFERRED_MESSAGE and defer.json["data"]["flags"] & p.EPHEMERAL
    return record, release


async def test_a_slow_check_defers_privately_and_refuses_privately(bot: DiscordBot) -> None:
    record, release = await _slow_check(bot, refuse=True)
    release.set()
    assert await bot.ephemeral_reply(record) == "Not here, not now."
    assert bot.fake.messages_in(bot.world.general["id"]) == []
    assert bot.upstream.generations == []


async def test_a_slow_check_that_passes_posts_the_result_in_the_channel(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    record, release = await _slow_check(bot, refuse=False)
    release.set()

    def result(call: Call) -> bool:
        return call.params["channel"] == world.general["id"] and bool(call.files)

    [posted] = await fake.wait_for("message_create", result)
    [generation] = bot.upstream.generations
    assert world.file_bytes(posted.response["attachments"][0]) == generation.produced[0]
    await bot.thread_of(posted.response)
    [link] = await fake.wait_for("webhook_message_edit", _by(record))
    assert link.json["content"].startswith("Here it is: ")
    assert world.message(int(record.original_id or 0))["flags"] & p.EPHEMERAL
