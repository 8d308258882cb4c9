"""Variations and upscale on Discord: N images in one message, each with its own buttons, and
an Upscale that re-renders one of them at the model's largest size."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord import payloads as p
from tests.fakes.discord.harness import DiscordBot
from tests.fakes.discord.interactions import DEFERRED_MESSAGE, MODAL
from tests.fakes.gptproto import image_serial


def _rows(message: dict[str, Any]) -> list[list[tuple[str, str]]]:
    """Each action row's buttons as (label, custom_id)."""
    return [
        [(button["label"], button["custom_id"]) for button in row["components"]]
        for row in message["components"]
    ]


def _turn(custom_id: str) -> int:
    return int(custom_id.split(":")[2])


async def _variations(bot: DiscordBot, model: str, count: int) -> dict[str, Any]:
    record = await bot.fake.slash_command(
        "imagine", {"prompt": "four owls", "model": model, "count": count}, user=bot.world.alice
    )
    result = await bot.result_of(record)
    await bot.thread_of(result)
    return result


async def test_four_images_from_a_3_family_model_are_four_calls_in_one_message(
    bot: DiscordBot,
) -> None:
    result = await _variations(bot, "gemini-3.1-flash-image", 4)
    generations = bot.upstream.generations
    assert len(generations) == 4
    assert all("candidateCount" not in g.json["generationConfig"] for g in generations)
    posted = [bot.world.file_bytes(attachment) for attachment in result["attachments"]]
    assert sorted(posted) == sorted(g.produced[0] for g in generations)
    assert [a["filename"] for a in result["attachments"]] == [
        f"image-{n}.png" for n in (1, 2, 3, 4)
    ]

    rows = _rows(result)
    assert len(rows) == 5  # one per image, and Delete
    turns = [_turn(row[0][1]) for row in rows[:4]]
    assert len(set(turns)) == 4
    for number, (row, turn) in enumerate(zip(rows, turns, strict=False), start=1):
        assert row == [
            (f"Re-roll {number}", f"banana:reroll:{turn}"),
            (f"Refine {number}", f"banana:refine:{turn}"),
            (f"Upscale {number}", f"banana:upscale:{turn}"),
        ]
    assert rows[4] == [("Delete", f"banana:delete:{turns[0]}")]
    assert result["content"].endswith("gemini-3.1-flash-image · turns 1, 2, 3, 4")


async def test_four_images_from_2_5_are_one_call_with_four_candidates(bot: DiscordBot) -> None:
    result = await _variations(bot, "gemini-2.5-flash-image", 4)
    [generation] = bot.upstream.generations
    assert generation.json["generationConfig"]["candidateCount"] == 4
    posted = [bot.world.file_bytes(attachment) for attachment in result["attachments"]]
    assert posted == generation.produced and len(posted) == 4
    rows = _rows(result)
    # 2.5 makes one size: no Upscale anywhere.
    assert [[label for label, _ in row] for row in rows] == [
        *([f"Re-roll {n}", f"Refine {n}"] for n in (1, 2, 3, 4)),
        ["Delete"],
    ]


async def test_refining_one_variation_starts_from_that_image(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    result = await _variations(bot, "gemini-3.1-flash-image", 3)
    third = _rows(result)[2][1][1]
    click = await fake.click(result, third, user=world.bob)
    [opened] = await fake.wait_for(
        "interaction_callback", lambda c: c.params["token"] == click.token
    )
    assert opened.json["type"] == MODAL
    submit = await fake.submit_modal(
        opened.json["data"]["custom_id"], {"instruction": "make it night"}, user=world.bob,
        message=result,
    )  # fmt: skip
    await fake.wait_for(
        "message_create", lambda c: c.params["channel"] == result["id"] and bool(c.files)
    )
    await fake.wait_for("webhook_message_edit", lambda c: c.params["token"] == submit.token)
    refinement = bot.upstream.generations[-1]
    sent = refinement.input_images()
    assert world.file_bytes(result["attachments"][2]) in sent
    others = {image_serial(world.file_bytes(a)) for a in result["attachments"][:2]}
    assert not others & {image_serial(image) for image in sent}


async def test_upscale_renders_that_image_at_4k_with_it_as_reference(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    result = await _variations(bot, "gemini-3.1-flash-image", 2)
    label, upscale = _rows(result)[1][2]
    assert label == "Upscale 2"
    before = len(bot.upstream.generations)
    click = await fake.click(result, upscale, user=world.bob)
    [answer] = await fake.wait_for(
        "interaction_callback", lambda c: c.params["token"] == click.token
    )
    assert answer.json["type"] == DEFERRED_MESSAGE and answer.json["data"]["flags"] & p.EPHEMERAL
    [posted] = await fake.wait_for(
        "message_create", lambda c: c.params["channel"] == result["id"] and bool(c.files)
    )
    generations = bot.upstream.generations
    assert len(generations) == before + 1
    request = generations[-1]
    assert request.json["generationConfig"]["imageConfig"]["imageSize"] == "4K"
    # The second image goes back (as the model's own turn, its signature kept), not the first.
    sent = request.input_images()
    assert world.file_bytes(result["attachments"][1]) in sent
    assert world.file_bytes(result["attachments"][0]) not in sent
    upscaled = posted.response
    assert world.file_bytes(upscaled["attachments"][0]) == request.produced[0]
    assert "· 4K ·" in upscaled["content"]
    # At 4K already: no Upscale on the new version, and a forged click is refused.
    assert [label for label, _ in _rows(upscaled)[0]] == ["Re-roll", "Refine", "Delete"]
    await bot.link_of(upscaled)
    forged = f"banana:upscale:{_turn(_rows(upscaled)[0][0][1])}"
    again = await fake.click(
        upscaled
        | {
            "components": [
                {
                    "type": 1,
                    "components": [
                        {"type": 2, "style": 2, "label": "Upscale", "custom_id": forged}
                    ],
                }
            ]
        },
        forged,
        user=world.bob,
    )
    assert "already 4K" in await bot.refusal(again)
    assert len(bot.upstream.generations) == before + 1


async def test_upscale_is_not_offered_on_a_model_with_one_size(bot: DiscordBot) -> None:
    result, turn = await bot.imagined("a pebble")
    assert [button["label"] for button in result["components"][0]["components"]] == [
        "Re-roll", "Refine", "Delete",
    ]  # fmt: skip
    forged = result | {
        "components": [
            {"type": 1, "components": [
                {"type": 2, "style": 2, "label": "Upscale", "custom_id": f"banana:upscale:{turn}"}
            ]}
        ]
    }  # fmt: skip
    click = await bot.fake.click(forged, f"banana:upscale:{turn}", user=bot.world.alice)
    assert "cannot upscale" in await bot.refusal(click)
    assert len(bot.upstream.generations) == 1
