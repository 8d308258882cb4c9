"""/imagine, mentions, threads and DMs end to end: real discord.py, real engine, both fakes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.harness import DiscordBot, ErrorLog
from tests.fakes.discord.interactions import DEFERRED_MESSAGE
from tests.fakes.gptproto import FakeGptProto, Outcome, image_serial


def _photo(serial: int, name: str = "photo.png") -> tuple[bytes, str, str]:
    """A small PNG, different for each serial."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (serial * 40 % 256, 90, 160)).save(buffer, "PNG")
    return buffer.getvalue(), name, "image/png"


async def test_commands_are_synced_to_the_configured_guild(bot: DiscordBot) -> None:
    [sync] = bot.fake.of("command_sync")
    assert sync.status == 200, sync.response  # the fake checks Discord's limits on commands
    assert sync.params["guild"] == str(bot.world.guild.id)
    commands = {command["name"]: command for command in sync.json}
    assert sorted(commands) == ["budget", "imagine", "usage"]
    command = commands["imagine"]
    options = {option["name"]: option for option in command["options"]}
    assert len(options) <= 25
    assert options["prompt"]["required"] is True
    assert [c["value"] for c in options["aspect_ratio"]["choices"]] == [
        "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
        "1:4", "4:1", "1:8", "8:1",
    ]  # fmt: skip
    # With no IMAGE_MODELS allow-list: the default model and the current ones.
    assert [c["value"] for c in options["model"]["choices"]] == [
        "gemini-2.5-flash-image", "gemini-3.1-flash-image", "gemini-3-pro-image",
        "gemini-3.1-flash-lite-image",
    ]  # fmt: skip
    assert [c["value"] for c in options["size"]["choices"]] == ["512", "1K", "2K", "4K"]
    assert (options["count"]["type"], options["count"]["min_value"]) == (4, 1)
    assert options["count"]["max_value"] == 4
    assert options["search"]["type"] == 5
    # As many image slots as the most generous model takes (14 for the 3-family).
    slots = [name for name in options if name.startswith("image")]
    assert slots == [f"image{n}" for n in range(1, 15)]
    assert all(options[slot]["type"] == 11 for slot in slots)
    assert bot.adapter is not None
    description = bot.adapter.describe()
    assert "Banana" in description and bot.fake.token not in description


async def test_an_allow_list_shapes_the_command(
    discord_fake: FakeDiscord, upstream: FakeGptProto, tmp_path: Path, error_log: ErrorLog
) -> None:
    harness = DiscordBot(discord_fake, upstream, tmp_path, image_models="gemini-2.5-flash-image")
    await harness.start()
    try:
        [sync] = discord_fake.of("command_sync")
        [command] = [command for command in sync.json if command["name"] == "imagine"]
        options = {option["name"]: option for option in command["options"]}
        # 2.5 alone: its ten ratios, no sizes, no search, three image slots.
        assert len(options["aspect_ratio"]["choices"]) == 10
        assert [c["value"] for c in options["model"]["choices"]] == ["gemini-2.5-flash-image"]
        assert "size" not in options and "search" not in options
        assert [name for name in options if name.startswith("image")] == [
            "image1", "image2", "image3",
        ]  # fmt: skip
    finally:
        await harness.stop()


@pytest.mark.parametrize("count", [0, 1, 3])
async def test_imagine_with_attachments_posts_the_upstream_bytes(
    bot: DiscordBot, count: int
) -> None:
    fake, upstream = bot.fake, bot.upstream
    upstream_seen_at_defer: list[int] = []
    fake.recorder.hooks.append(
        lambda call: (
            upstream_seen_at_defer.append(len(upstream.generations))
            if call.route == "interaction_callback"
            else None
        )
    )
    photos = {f"image{n}": _photo(n) for n in range(1, count + 1)}
    record = await fake.slash_command(
        "imagine",
        {"prompt": "a fox in a teacup", "aspect_ratio": "16:9"},
        user=bot.world.alice,
        attachments=photos,
    )
    message = await bot.result_of(record)

    # Deferred ("thinking") first, within Discord's 3 s, before the upstream was called.
    [defer] = fake.of("interaction_callback")
    assert defer.json["type"] == DEFERRED_MESSAGE and defer.status == 200
    assert upstream_seen_at_defer == [0]
    [generation] = upstream.generations
    assert [image for image in generation.input_images()] == [
        data for data, _, _ in photos.values()
    ]

    [attachment] = message["attachments"]
    assert bot.world.file_bytes(attachment) == generation.produced[0]
    assert attachment["filename"] == "image-1.png"
    assert message["content"].endswith("16:9 · gemini-2.5-flash-image · turn 1")
    assert _button_ids(message) == [f"banana:{a}:" for a in ("reroll", "refine", "delete")]


async def test_result_gets_a_thread_and_a_message_there_refines(bot: DiscordBot) -> None:
    fake, upstream, world = bot.fake, bot.upstream, bot.world
    record = await fake.slash_command("imagine", {"prompt": "a red kite"}, user=world.alice)
    result = await bot.result_of(record)
    thread = await bot.thread_of(result)
    [thread_call] = fake.of("thread_create")
    assert thread_call.json["name"] == "a red kite"

    ask = await fake.send_message(thread, "make the kite blue", author=world.bob)
    refined = await bot.reply_to(ask)

    first, second = upstream.generations
    assert second.input_images() == [first.produced[0]]
    assert bot.world.file_bytes(refined["attachments"][0]) == second.produced[0]
    assert refined["channel_id"] == thread["id"]
    assert "turn 2" in refined["content"]
    # THREAD_CREATE put the thread in discord.py's cache: no REST look-up was needed.
    assert fake.of("channel_get") == []


async def test_reply_to_an_earlier_result_branches_from_it(bot: DiscordBot) -> None:
    fake, upstream, world = bot.fake, bot.upstream, bot.world
    record = await fake.slash_command("imagine", {"prompt": "a lighthouse"}, user=world.alice)
    thread = await bot.thread_of(await bot.result_of(record))
    second = await bot.reply_to(await fake.send_message(thread, "at night", author=world.alice))
    await bot.reply_to(await fake.send_message(thread, "in a storm", author=world.alice))

    branch = await fake.send_message(thread, "with snow", author=world.alice, reply_to=second)
    await bot.reply_to(branch)

    generations = upstream.generations
    assert len(generations) == 4
    # The reply went back to turn 2's image, not the head (turn 3).
    assert generations[3].input_images() == [generations[1].produced[0]]
    assert image_serial(generations[3].input_images()[0]) == generations[1].serial


async def test_mention_in_a_channel_works_like_imagine(bot: DiscordBot) -> None:
    fake, upstream, world = bot.fake, bot.upstream, bot.world
    ask = await fake.send_message(
        world.general,
        "a castle made of cheese",
        author=world.bob,
        attachments=[_photo(1)],
        mention_bot=True,
    )
    result = await bot.reply_to(ask)
    [generation] = upstream.generations
    assert generation.input_images() == [_photo(1)[0]]
    assert "cheese" in str(generation.json) and f"<@{world.app_id}>" not in str(generation.json)
    assert world.file_bytes(result["attachments"][0]) == generation.produced[0]
    thread = await bot.thread_of(result)
    assert fake.of("typing"), "the bot showed it was working"

    # A plain message in the channel, without a mention, is not for the bot; nor are bots.
    await fake.send_message(world.general, "nice castle", author=world.alice)
    other_bot = world.add_member("helper-bot")
    other_bot.user["bot"] = True
    await fake.send_message(world.general, "draw me", author=other_bot, mention_bot=True)
    follow = await fake.send_message(thread, "add a moat", author=world.bob)
    await bot.reply_to(follow)
    assert len(upstream.generations) == 2


async def test_dm_messages_refine_the_last_image(bot: DiscordBot) -> None:
    fake, upstream, world = bot.fake, bot.upstream, bot.world
    dm = world.dm_with(world.alice)
    first = await bot.reply_to(await fake.send_message(dm, "a paper boat", author=world.alice))
    second = await bot.reply_to(await fake.send_message(dm, "now on a river", author=world.alice))

    one, two = upstream.generations
    assert one.input_images() == []
    assert two.input_images() == [one.produced[0]]
    assert world.file_bytes(first["attachments"][0]) == one.produced[0]
    assert world.file_bytes(second["attachments"][0]) == two.produced[0]
    assert fake.of("thread_create") == []


async def test_no_thread_where_it_cannot_be_made_but_replies_refine(bot: DiscordBot) -> None:
    fake, upstream, world = bot.fake, bot.upstream, bot.world
    record = await fake.slash_command(
        "imagine", {"prompt": "a snail"}, user=world.alice, channel=world.locked
    )
    result = await bot.result_of(record)
    [refused] = await fake.wait_for("thread_create")
    assert refused.status == 403
    assert int(result["id"]) not in world.guild.threads

    answer = await bot.reply_to(
        await fake.send_message(world.locked, "give it a hat", author=world.bob, reply_to=result)
    )
    first, second = upstream.generations
    assert second.input_images() == [first.produced[0]]
    assert answer["channel_id"] == world.locked["id"]


async def test_imagine_in_a_dm_answers_there_and_the_dm_continues_it(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    record = await fake.slash_command(
        "imagine", {"prompt": "a comet"}, user=world.bob, channel=world.dm_with(world.bob)
    )
    result = await bot.result_of(record)
    assert result["attachments"]
    assert fake.of("thread_create") == []
    # The DM is one conversation: the next message there refines what /imagine made.
    dm = world.dm_with(world.bob)
    await bot.reply_to(await fake.send_message(dm, "in watercolour", author=world.bob))
    first, second = bot.upstream.generations
    assert second.input_images() == [first.produced[0]]


def _button_ids(message: dict[str, Any]) -> list[str]:
    ids = [b["custom_id"] for row in message["components"] for b in row["components"]]
    return [custom_id.rsplit(":", 1)[0] + ":" for custom_id in ids]


async def test_model_text_is_shown_but_pings_nobody(bot: DiscordBot) -> None:
    bot.upstream.queue(Outcome.image("Here is your owl @everyone <@&123>"))
    record = await bot.fake.slash_command("imagine", {"prompt": "owl"}, user=bot.world.alice)
    result = await bot.result_of(record)
    assert result["content"].startswith("Here is your owl @everyone")
    [edit] = [c for c in bot.fake.of("webhook_message_edit") if c.params["token"] == record.token]
    assert edit.json["allowed_mentions"]["parse"] == []


async def test_in_a_forum_post_it_answers_in_place(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    post = await world.open_post(world.forum, "my drawings", owner=world.bob)
    record = await fake.slash_command(
        "imagine", {"prompt": "a heron"}, user=world.bob, channel=post
    )
    result = await bot.result_of(record)
    assert result["channel_id"] == post["id"]

    ask = await fake.send_message(post, "a crane", author=world.bob, mention_bot=True)
    answer = await bot.reply_to(ask)
    assert answer["channel_id"] == post["id"]
    assert fake.of("thread_create") == []
    # A post the bot did not open is not its thread: plain messages there are not prompts.
    await fake.send_message(post, "lovely", author=world.alice)
    reply = await bot.reply_to(
        await fake.send_message(post, "make it fly", author=world.alice, reply_to=answer)
    )
    assert len(bot.upstream.generations) == 3
    assert bot.upstream.generations[2].input_images() == [bot.upstream.generations[1].produced[0]]
    assert reply["channel_id"] == post["id"]


async def test_usage_is_private_and_shows_admins_the_server(bot: DiscordBot) -> None:
    alice = bot.world.alice
    await bot.result_of(await bot.fake.slash_command("imagine", {"prompt": "a fox"}, user=alice))

    mine = await bot.ephemeral_reply(await bot.fake.slash_command("usage", {}, user=alice))
    assert mine.startswith("Your usage: today 1 image, ")
    assert "Everyone here" not in mine

    await bot.restart(admin_user_ids=str(alice.id))
    admin = await bot.ephemeral_reply(await bot.fake.slash_command("usage", {}, user=alice))
    assert "Everyone here: today 1 image, " in admin
    assert "Estimated cost: $0.04 today" in admin
    assert len(bot.upstream.generations) == 1
