"""Grounding and drafts on Discord: the pages a grounded image drew on are listed under it,
and the drafts a Gemini 3 model sends before its final image are never posted."""

from __future__ import annotations

import io

from PIL import Image

from adapters.discord.layout import result_content, source_link
from adapters.discord.text import MAX_CONTENT
from bot.models import Reply, Source, ThreadKey, Turn, TurnStatus, Usage
from tests.fakes.discord.harness import DiscordBot
from tests.fakes.gptproto import Outcome


async def test_a_grounded_image_lists_its_sources_without_previews(bot: DiscordBot) -> None:
    record = await bot.fake.slash_command(
        "imagine",
        {"prompt": "today's skyline", "model": "gemini-3.1-flash-image", "search": True},
        user=bot.world.alice,
    )
    result = await bot.result_of(record)
    [generation] = bot.upstream.generations
    assert generation.json["tools"] == [{"google_search": {}}]
    serial = generation.serial
    assert (
        f"Sources: [Skyline {serial} \\| Example](<https://example.org/{serial}/skyline>) · "
        f"[news.example.com](<https://news.example.com/{serial}>)"
    ) in result["content"]
    assert bot.world.previews() == []


async def test_only_the_final_image_of_a_drafting_model_is_posted(bot: DiscordBot) -> None:
    fake, world, upstream = bot.fake, bot.world, bot.upstream
    upstream.queue(Outcome.image(drafts=2))
    record = await fake.slash_command(
        "imagine", {"prompt": "a clock tower", "model": "gemini-3-pro-image"}, user=world.bob
    )
    result = await bot.result_of(record)
    [generation] = upstream.generations
    [attachment] = result["attachments"]
    assert world.file_bytes(attachment) == generation.produced[0]
    with Image.open(io.BytesIO(world.file_bytes(attachment))) as posted:
        assert posted.size != (256, 256)  # the fake's drafts are 256×256

    # The drafts stay as history: the next turn replays them with their signatures (the fake
    # refuses a Gemini 3 request whose model parts lost theirs), the final image as current.
    thread = await bot.thread_of(result)
    await bot.reply_to(await fake.send_message(thread, "at noon", author=world.bob))
    _, refinement = upstream.generations
    assert generation.produced[0] in refinement.input_images()


def _turn() -> Turn:
    return Turn(
        id=1, thread_id=1, number=1, parent_id=None, user="1", prompt="p", ratio="1:1",
        model="gemini-3.1-flash-image", inputs=(), outputs=("x",), status=TurnStatus.DONE,
    )  # fmt: skip


def test_sources_are_inert_links_within_discords_limit() -> None:
    assert source_link(Source("Evil](https://x.example) [", "https://a.example/p (1)")) == (
        "[a.example](<https://a.example/p%20%281%29>)"
    )
    assert source_link(Source("ok", "javascript:alert(1)")) is None
    assert source_link(Source("", "https://b.example/")) == "[b.example](<https://b.example/>)"
    many = tuple(Source(f"Page {n}", f"https://example.org/{'x' * 200}/{n}") for n in range(10))
    reply = Reply(
        ThreadKey("discord", "g", "c", "t"), _turn(), (), "word " * 600, Usage(), sources=many
    )
    content = result_content(reply)
    assert len(content) <= MAX_CONTENT
    assert "Sources: [Page 0]" in content and "more" in content
    assert content.endswith("-# 1:1 · gemini-3.1-flash-image · turn 1")
