"""What the bot repeats (prompts, the model's text, errors) pings nobody and previews no link."""

from __future__ import annotations

from tests.fakes.discord.harness import DiscordBot
from tests.fakes.gptproto import Outcome

HOSTILE = "@everyone @here <@&{role}> <@{user}> see https://evil.example/a and discord.gg/raid"


def _hostile(bot: DiscordBot) -> str:
    world = bot.world
    return HOSTILE.format(role=world.moderator_role, user=world.mod.id)


def _assert_quiet(bot: DiscordBot) -> None:
    """Every message the bot sent or edited said whom it may ping, and no one was."""
    bodies = [body for body in bot.fake.recorder.message_bodies() if body.get("content")]
    assert bodies
    for body in bodies:
        assert body["allowed_mentions"]["parse"] == [], body
        assert body["allowed_mentions"].get("users", []) == [], body
    assert bot.world.pings() == []
    assert bot.world.previews() == []


async def test_results_failures_and_replies_ping_nobody_and_preview_nothing(
    bot: DiscordBot,
) -> None:
    fake, world, upstream = bot.fake, bot.world, bot.upstream
    hostile = _hostile(bot)
    upstream.queue(Outcome.image(f"Done. {hostile}"))
    record = await fake.slash_command("imagine", {"prompt": hostile}, user=world.alice)
    result = await bot.result_of(record)
    assert "<https://evil.example/a>" in result["content"]
    assert "<discord.gg/raid>" in result["content"]
    thread = await bot.thread_of(result)

    upstream.queue(Outcome.text_only(f"I would rather not. {hostile}"))
    failed = await bot.reply_to(
        await fake.send_message(thread, hostile, author=world.bob), files=False
    )
    assert "I would rather not." in failed["content"]

    upstream.queue(Outcome.image(hostile))
    ask = await fake.send_message(world.general, hostile, author=world.bob, mention_bot=True)
    await bot.reply_to(ask)
    upstream.queue(Outcome.text_only(hostile))
    again = await fake.slash_command("imagine", {"prompt": hostile}, user=world.alice)
    assert "<https://evil.example/a>" in await bot.ephemeral_reply(again)
    _assert_quiet(bot)


async def test_long_model_text_is_cut_with_a_note_and_keeps_links_wrapped(
    bot: DiscordBot,
) -> None:
    words = " ".join(f"https://example.com/{n}" for n in range(400))
    bot.upstream.queue(Outcome.image(words))
    record = await bot.fake.slash_command("imagine", {"prompt": "a map"}, user=bot.world.alice)
    content = (await bot.result_of(record))["content"]

    assert len(content) <= 2000
    assert "The model wrote more than fits in one message" in content
    assert content.endswith("· turn 1")
    assert "…" in content
    _assert_quiet(bot)
