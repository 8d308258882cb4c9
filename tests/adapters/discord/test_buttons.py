"""Re-roll, Refine (modal) and Delete on results, before and after a restart."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.discord import payloads as p
from tests.fakes.discord.harness import DiscordBot, turn_of
from tests.fakes.discord.interactions import (
    CHANNEL_MESSAGE,
    DEFERRED_MESSAGE,
    DEFERRED_UPDATE,
    MODAL,
    InteractionRecord,
)


async def _callback(bot: DiscordBot, record: InteractionRecord) -> Any:
    [call] = await bot.fake.wait_for(
        "interaction_callback", lambda call: call.params["token"] == record.token
    )
    assert call.status == 200, call.response
    return call.json


async def _rerolled_into_thread(bot: DiscordBot, result: dict[str, Any], turn: int) -> None:
    fake, world = bot.fake, bot.world
    before, since = len(bot.upstream.generations), len(fake.calls)
    click = await fake.click(result, f"banana:reroll:{turn}", user=world.bob)
    answer = await _callback(bot, click)
    # The result message starts a thread: the new version goes there, the ack stays private.
    assert answer["type"] == DEFERRED_MESSAGE and answer["data"]["flags"] & p.EPHEMERAL
    [posted] = await fake.wait_for(
        "message_create",
        lambda call: (
            call.index >= since and call.params["channel"] == result["id"] and bool(call.files)
        ),
    )
    generations = bot.upstream.generations
    assert len(generations) == before + 1
    assert generations[-1].input_images() == generations[0].input_images() == []
    assert str(generations[-1].json["contents"]) == str(generations[0].json["contents"])
    assert world.file_bytes(posted.response["attachments"][0]) == generations[-1].produced[0]
    await fake.wait_for("webhook_message_edit", lambda call: call.params["token"] == click.token)


async def _refined_by_modal(bot: DiscordBot, result: dict[str, Any], turn: int) -> None:
    fake, world = bot.fake, bot.world
    since = len(fake.calls)
    click = await fake.click(result, f"banana:refine:{turn}", user=world.bob)
    answer = await _callback(bot, click)
    assert answer["type"] == MODAL
    modal_id = answer["data"]["custom_id"]
    [source] = [g for g in bot.upstream.generations if g.produced][:1]

    submit = await fake.submit_modal(
        modal_id, {"instruction": "add falling snow"}, user=world.bob, message=result
    )
    await _callback(bot, submit)
    [posted] = await fake.wait_for(
        "message_create",
        lambda call: (
            call.index >= since and call.params["channel"] == result["id"] and bool(call.files)
        ),
    )
    latest = bot.upstream.generations[-1]
    assert latest.input_images() == [source.produced[0]]
    assert "add falling snow" in str(latest.json)
    assert world.file_bytes(posted.response["attachments"][0]) == latest.produced[0]


async def test_reroll_posts_a_new_version_in_the_thread(bot: DiscordBot) -> None:
    result, turn = await bot.imagined()
    await _rerolled_into_thread(bot, result, turn)


async def test_reroll_inside_the_thread_answers_there(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    result, _ = await bot.imagined()
    thread = world.guild.threads[int(result["id"])]
    refined = await bot.reply_to(await fake.send_message(thread, "bigger", author=world.alice))

    click = await fake.click(refined, f"banana:reroll:{turn_of(refined)}", user=world.alice)
    answer = await _callback(bot, click)
    assert answer["type"] == DEFERRED_MESSAGE and not answer.get("data", {}).get("flags")
    message = await bot.result_of(click)
    assert message["channel_id"] == thread["id"]
    second, third = bot.upstream.generations[1:]
    assert third.input_images() == second.input_images()


async def test_refine_button_opens_a_modal_and_refines_that_image(bot: DiscordBot) -> None:
    result, turn = await bot.imagined()
    await _refined_by_modal(bot, result, turn)


async def test_delete_by_the_requester_removes_the_result(bot: DiscordBot) -> None:
    result, turn = await bot.imagined()
    click = await bot.fake.click(result, f"banana:delete:{turn}", user=bot.world.alice)
    assert (await _callback(bot, click))["type"] == DEFERRED_UPDATE
    await bot.fake.wait_for(
        "webhook_message_delete", lambda call: call.params["token"] == click.token
    )
    assert int(result["id"]) in bot.world.deleted


async def test_delete_by_a_moderator_is_allowed(bot: DiscordBot) -> None:
    result, turn = await bot.imagined()
    await bot.fake.click(result, f"banana:delete:{turn}", user=bot.world.mod)
    await bot.fake.wait_for("webhook_message_delete")
    assert int(result["id"]) in bot.world.deleted


async def test_delete_by_someone_else_is_refused_privately(bot: DiscordBot) -> None:
    result, turn = await bot.imagined()
    click = await bot.fake.click(result, f"banana:delete:{turn}", user=bot.world.bob)
    answer = await _callback(bot, click)
    assert answer["type"] == CHANNEL_MESSAGE
    assert answer["data"]["flags"] & p.EPHEMERAL
    assert "Only the person who asked" in answer["data"]["content"]
    assert int(result["id"]) in bot.world.messages


async def test_buttons_keep_working_after_a_restart(bot: DiscordBot) -> None:
    result, turn = await bot.imagined()
    await bot.restart()
    assert bot.fake.gateway.connected == 1

    await _rerolled_into_thread(bot, result, turn)
    await _refined_by_modal(bot, result, turn)
    click = await bot.fake.click(result, f"banana:delete:{turn}", user=bot.world.alice)
    await bot.fake.wait_for(
        "webhook_message_delete", lambda call: call.params["token"] == click.token
    )
    assert int(result["id"]) in bot.world.deleted


@pytest.mark.parametrize("action", ["reroll", "refine", "delete"])
async def test_a_button_on_a_pruned_turn_explains_privately(bot: DiscordBot, action: str) -> None:
    result, turn = await bot.imagined()
    assert await bot.prune_everything() == 1
    click = await bot.fake.click(result, f"banana:{action}:{turn}", user=bot.world.alice)
    text = await bot.refusal(click)
    assert "no longer stored" in text or "no image to refine" in text
    assert len(bot.upstream.generations) == 1
