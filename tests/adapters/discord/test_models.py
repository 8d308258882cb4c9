"""Each model of the table through Discord, with its own limits: what it takes reaches the
upstream as asked, what it cannot do is refused before anything is posted or sent."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from tests.fakes.discord.harness import DiscordBot
from tests.fakes.discord.interactions import DEFERRED_MESSAGE


def _photos(count: int) -> dict[str, tuple[bytes, str, str]]:
    """`count` small PNGs, each different, for the image1..imageN options."""
    photos = {}
    for n in range(1, count + 1):
        buffer = io.BytesIO()
        Image.new("RGB", (48, 32), (n * 17 % 256, 80, 200)).save(buffer, "PNG")
        photos[f"image{n}"] = (buffer.getvalue(), f"ref-{n}.png", "image/png")
    return photos


def _image_config(generation: Any) -> dict[str, Any]:
    return dict(generation.json["generationConfig"].get("imageConfig") or {})


async def test_fourteen_references_reach_gemini_3_1_flash(bot: DiscordBot) -> None:
    photos = _photos(14)
    record = await bot.fake.slash_command(
        "imagine",
        {"prompt": "a collage of all of these", "model": "gemini-3.1-flash-image"},
        user=bot.world.alice,
        attachments=photos,
    )
    result = await bot.result_of(record)
    [generation] = bot.upstream.generations
    assert generation.model == "gemini-3.1-flash-image"
    assert generation.input_images() == [data for data, _, _ in photos.values()]
    assert bot.world.file_bytes(result["attachments"][0]) == generation.produced[0]
    assert "gemini-3.1-flash-image" in result["content"]


@pytest.mark.parametrize(
    ("options", "images", "refusal"),
    [
        ({"model": "gemini-2.5-flash-image"}, 4, "takes at most 3 (you sent 4)"),
        ({"model": "gemini-3.1-flash-lite-image", "size": "4K"}, 0, "cannot make 4K images"),
        ({"model": "gemini-3.1-flash-lite-image", "search": True}, 0, "cannot search the web"),
        ({"model": "gemini-2.5-flash-image", "size": "2K"}, 0, "cannot make 2K images"),
        ({"model": "gemini-3-pro-image", "aspect_ratio": "1:8"}, 0, "Unknown aspect ratio"),
        ({"model": "gemini-3-pro-image", "size": "512"}, 0, "it makes 1K, 2K, 4K"),
        ({"model": "gemini-2.5-flash-image-preview"}, 0, "gemini-3.1-flash-image"),
    ],
    ids=["2.5-four-images", "lite-4K", "lite-search", "2.5-2K", "pro-1:8", "pro-512", "retired"],
)
async def test_what_a_model_cannot_do_is_refused_before_anything_is_posted(
    bot: DiscordBot, options: dict[str, Any], images: int, refusal: str
) -> None:
    record = await bot.fake.slash_command(
        "imagine",
        {"prompt": "a harbour at dawn", **options},
        user=bot.world.alice,
        attachments=_photos(images),
    )
    assert refusal in await bot.refusal(record)
    assert bot.upstream.generations == []
    assert bot.fake.messages_in(bot.world.general["id"]) == []
    assert bot.fake.of("followup_create") == []


@pytest.mark.parametrize(
    ("options", "model", "config"),
    [
        (
            {"model": "gemini-3.1-flash-image", "size": "4K", "aspect_ratio": "8:1"},
            "gemini-3.1-flash-image",
            {"aspectRatio": "8:1", "imageSize": "4K"},
        ),
        (
            {"model": "gemini-3-pro-image", "size": "2K", "aspect_ratio": "21:9"},
            "gemini-3-pro-image",
            {"aspectRatio": "21:9", "imageSize": "2K"},
        ),
        (
            {"model": "gemini-3.1-flash-lite-image", "aspect_ratio": "1:4"},
            "gemini-3.1-flash-lite-image",
            {"aspectRatio": "1:4"},
        ),
        ({"aspect_ratio": "4:5"}, "gemini-2.5-flash-image", {"aspectRatio": "4:5"}),
    ],
    ids=["3.1-flash-4K-8:1", "pro-2K-21:9", "lite-1:4", "default-2.5"],
)
async def test_each_model_gets_the_options_it_takes(
    bot: DiscordBot, options: dict[str, Any], model: str, config: dict[str, Any]
) -> None:
    record = await bot.fake.slash_command(
        "imagine", {"prompt": "a lighthouse", **options}, user=bot.world.bob
    )
    result = await bot.result_of(record)
    [defer] = bot.fake.of("interaction_callback")
    assert defer.json["type"] == DEFERRED_MESSAGE
    [generation] = bot.upstream.generations
    assert generation.model == model
    assert _image_config(generation) == config
    assert bot.world.file_bytes(result["attachments"][0]) == generation.produced[0]
    size = config.get("imageSize")
    assert result["content"].endswith(
        f"-# {config['aspectRatio']} · {size + ' · ' if size else ''}{model} · turn 1"
    )


async def test_a_mention_takes_the_same_options_as_flags(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    ask = await fake.send_message(
        world.general,
        "a fox in the snow --model gemini-3-pro-image --size 2K --ar 3:2 --n 2",
        author=world.bob,
        mention_bot=True,
    )
    result = await bot.reply_to(ask)
    first, second = bot.upstream.generations
    for generation in (first, second):
        assert generation.model == "gemini-3-pro-image"
        assert _image_config(generation) == {"aspectRatio": "3:2", "imageSize": "2K"}
        assert "--size" not in str(generation.json["contents"])
        assert "a fox in the snow" in str(generation.json["contents"])
    posted = [world.file_bytes(attachment) for attachment in result["attachments"]]
    assert sorted(posted) == sorted([first.produced[0], second.produced[0]])


async def test_a_thread_message_with_a_flag_it_cannot_use_is_refused(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    result, _ = await bot.imagined("a meadow")
    thread = world.guild.threads[int(result["id"])]
    # The thread's model is 2.5, which makes one size: refused in a reply, nothing sent.
    ask = await fake.send_message(thread, "brighter --size 4K", author=world.alice)
    answer = await bot.reply_to(ask, files=False)
    assert "cannot make 4K images" in answer["content"]
    ask = await fake.send_message(thread, "brighter --size", author=world.alice)
    answer = await bot.reply_to(ask, files=False)
    assert "--size needs a value" in answer["content"]
    assert len(bot.upstream.generations) == 1


async def test_a_dm_takes_flags_too(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    dm = world.dm_with(world.alice)
    await bot.reply_to(
        await fake.send_message(
            dm, "a kite --model gemini-3.1-flash-image --size 512", author=world.alice
        )
    )
    [generation] = bot.upstream.generations
    assert generation.model == "gemini-3.1-flash-image"
    assert _image_config(generation)["imageSize"] == "512"
