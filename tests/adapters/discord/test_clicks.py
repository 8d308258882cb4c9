"""A click or a modal is honoured only for the turns of the message it was used on."""

from __future__ import annotations

from typing import Any

import pytest

from bot.engine import ELSEWHERE
from bot.models import ThreadKey
from tests.fakes.discord.harness import DiscordBot
from tests.fakes.discord.interactions import MODAL

MALFORMED = "That button is damaged or out of date, so it does nothing."


async def _two_results(bot: DiscordBot) -> tuple[dict[str, Any], int, dict[str, Any], int]:
    alice_result, alice_turn = await bot.imagined("alice's owl", user=bot.world.alice)
    bob_result, bob_turn = await bot.imagined("bob's fox", user=bot.world.bob)
    return alice_result, alice_turn, bob_result, bob_turn


async def _head_of(bot: DiscordBot, result: dict[str, Any]) -> int | None:
    assert bot.engine is not None
    thread = await bot.engine.thread_for(
        ThreadKey("discord", str(bot.world.guild.id), bot.world.general["id"], result["id"])
    )
    assert thread is not None
    return thread.head_id


async def _nothing_changed(
    bot: DiscordBot, alice: dict[str, Any], alice_turn: int, bob: dict[str, Any]
) -> None:
    """No upstream call, no new version in either thread, alice's head where it was."""
    assert len(bot.upstream.generations) == 2
    assert await _head_of(bot, alice) == alice_turn
    for result in (alice, bob):
        assert [m for m in bot.fake.messages_in(result["id"]) if m["attachments"]] == []


@pytest.mark.parametrize("action", ["reroll", "refine", "delete"])
async def test_a_click_carrying_another_conversations_turn_is_refused(
    bot: DiscordBot, action: str
) -> None:
    world = bot.world
    alice, alice_turn, bob, _ = await _two_results(bot)
    # bob's result as a forging client shows it: with the buttons of alice's. Through them
    # alice could delete bob's result, and bob re-roll or refine hers.
    forged = bob | {"components": alice["components"]}
    clicker = world.alice if action == "delete" else world.bob
    click = await bot.fake.click(forged, f"banana:{action}:{alice_turn}", user=clicker)

    assert await bot.refusal(click) == ELSEWHERE
    assert click.modal is None and click.response_type != MODAL
    assert int(bob["id"]) in world.messages and int(alice["id"]) in world.messages
    await _nothing_changed(bot, alice, alice_turn, bob)


async def test_a_click_on_a_button_its_message_does_not_have_is_refused(bot: DiscordBot) -> None:
    alice, alice_turn, bob, _ = await _two_results(bot)
    click = await bot.fake.click(bob, f"banana:reroll:{alice_turn}", user=bot.world.bob)
    assert await bot.refusal(click) == ELSEWHERE
    await _nothing_changed(bot, alice, alice_turn, bob)


@pytest.mark.parametrize("opened_on", ["bob", "alice"])
async def test_a_forged_modal_submission_is_refused(bot: DiscordBot, opened_on: str) -> None:
    world = bot.world
    alice, alice_turn, bob, _ = await _two_results(bot)
    # The modal names the message it came from; either it is bob's (whose conversation
    # alice's turn is not in) or it disagrees with the message Discord says it came from.
    source = bob if opened_on == "bob" else alice
    custom_id = f"banana:refine-modal:{alice_turn}:{source['id']}"
    submit = await bot.fake.submit_modal(
        custom_id, {"instruction": "make it mine"}, user=world.bob, message=bob
    )

    assert await bot.refusal(submit) == ELSEWHERE
    await _nothing_changed(bot, alice, alice_turn, bob)


async def test_the_modal_checks_the_user_again_when_it_is_submitted(bot: DiscordBot) -> None:
    world = bot.world
    result, turn = await bot.imagined()
    click = await bot.fake.click(result, f"banana:refine:{turn}", user=world.bob)
    [opened] = await bot.fake.wait_for(
        "interaction_callback", lambda call: call.params["token"] == click.token
    )
    assert opened.json["type"] == MODAL
    await bot.restart(blocked_user_ids=str(world.bob.id))

    submit = await bot.fake.submit_modal(
        opened.json["data"]["custom_id"], {"instruction": "more"}, user=world.bob, message=result
    )
    assert "blocked" in await bot.refusal(submit)
    assert len(bot.upstream.generations) == 1
    assert await _head_of(bot, result) == turn


@pytest.mark.parametrize(
    "custom_id",
    [
        "banana:reroll:abc",
        "banana:reroll",
        "banana:refine:",
        "banana:delete:1:2",
        "banana:explode:1",
        "banana:reroll:99999999999999999999",
        "somebody-else:1",
    ],
)
async def test_a_malformed_button_gets_a_private_refusal(bot: DiscordBot, custom_id: str) -> None:
    result, _ = await bot.imagined()
    click = await bot.fake.click(result, custom_id, user=bot.world.alice)
    assert await bot.refusal(click) == MALFORMED
    assert len(bot.upstream.generations) == 1
    assert int(result["id"]) in bot.world.messages


@pytest.mark.parametrize(
    "custom_id",
    ["banana:refine-modal:x", "banana:refine-modal:", "banana:refine-modal:1:y", "other"],
)
async def test_a_malformed_modal_gets_a_private_refusal(bot: DiscordBot, custom_id: str) -> None:
    result, _ = await bot.imagined()
    submit = await bot.fake.submit_modal(
        custom_id, {"instruction": "more"}, user=bot.world.alice, message=result
    )
    assert await bot.refusal(submit) == MALFORMED
    assert len(bot.upstream.generations) == 1
