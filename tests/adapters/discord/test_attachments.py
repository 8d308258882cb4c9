"""Attachments are counted and screened before any download, and read within the cap."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from tests.fakes.discord.harness import DiscordBot

Upload = tuple[bytes, str, str | None]


def _png(shade: int, name: str | None = None) -> Upload:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (shade, 80, 120)).save(buffer, "PNG")
    return buffer.getvalue(), name or f"photo-{shade}.png", "image/png"


def _noise(side: int, name: str) -> Upload:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue(), name, "image/png"


async def test_ten_attachments_get_one_clear_message_and_no_download(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    ask = await fake.send_message(
        world.general,
        "combine all of these",
        author=world.bob,
        attachments=[_png(shade) for shade in range(10)],
        mention_bot=True,
    )
    answer = await bot.reply_to(ask, files=False)
    assert answer["content"] == "Too many images: this model takes at most 3 (you sent 10)."
    assert [m for m in fake.messages_in(world.general["id"]) if m["author"]["bot"]] == [answer]
    assert fake.of("cdn") == [], "not one attachment was downloaded"
    assert fake.of("typing") == []
    assert bot.upstream.generations == []


async def test_only_files_that_could_be_images_are_counted(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    files = [_png(shade) for shade in range(4)] + [(b"notes", "notes.txt", "text/plain")]
    ask = await fake.send_message(
        world.general, "these", author=world.bob, attachments=files, mention_bot=True
    )
    answer = await bot.reply_to(ask, files=False)
    assert "(you sent 4)" in answer["content"]
    assert fake.of("cdn") == []


@pytest.mark.parametrize("where", ["imagine", "mention"])
async def test_an_attachment_declaring_40_mb_is_refused_unread(bot: DiscordBot, where: str) -> None:
    fake, world = bot.fake, bot.world
    world.declare_size("huge.png", 40 * 1024 * 1024)
    if where == "imagine":
        record = await fake.slash_command(
            "imagine",
            {"prompt": "edit"},
            user=world.alice,
            attachments={"image1": _png(1, "huge.png")},
        )
        text = await bot.refusal(record)
    else:
        ask = await fake.send_message(
            world.general, "edit", author=world.alice, attachments=[_png(1, "huge.png")],
            mention_bot=True,
        )  # fmt: skip
        text = (await bot.reply_to(ask, files=False))["content"]
        assert fake.of("typing") == []
        assert [effect.users for effect in world.pings()] == [frozenset({world.alice.id})]
    assert text.startswith("'huge.png' is too large: 41.9 MB while the limit is")
    assert fake.of("cdn") == []
    assert bot.upstream.generations == []


async def test_an_attachment_larger_than_it_declares_is_cut_off_at_the_cap(
    bot: DiscordBot,
) -> None:
    fake, world = bot.fake, bot.world
    await bot.restart(max_download_mb=0.01)
    liar = _noise(96, "liar.png")
    assert len(liar[0]) > 0.01 * 1024 * 1024
    world.declare_size("liar.png", 1000)
    record = await fake.slash_command(
        "imagine", {"prompt": "edit"}, user=world.alice, attachments={"image1": liar}
    )

    text = await bot.ephemeral_reply(record)
    assert text.startswith("'liar.png' is too large: it is over the 10 kB limit")
    [download] = fake.of("cdn")
    assert download.headers.get("Accept-Encoding") == "identity"
    assert bot.upstream.generations == []
