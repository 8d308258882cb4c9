"""Results over Discord's upload limit: a preview under it, said so, and the exact bytes one
click away (a signed link from the bot's own HTTP server when PUBLIC_URL is set)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from adapters.discord.results import UploadLimits, allowances
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.harness import DiscordBot, ErrorLog
from tests.fakes.gptproto import FakeGptProto, Outcome

MiB = 1024 * 1024
PUBLIC = "https://banana.example.com"


def _original_button(message: dict[str, Any]) -> str:
    [custom_id] = [
        str(button["custom_id"])
        for row in message["components"]
        for button in row["components"]
        if button["custom_id"].startswith("banana:original:")
    ]
    return custom_id


async def _large_result(bot: DiscordBot) -> dict[str, Any]:
    bot.upstream.queue(Outcome.large_image(20))
    record = await bot.fake.slash_command(
        "imagine",
        {"prompt": "a city at night", "model": "gemini-3.1-flash-image", "size": "4K"},
        user=bot.world.alice,
    )
    # A 4K image is decoded, checked and re-encoded: on a busy machine that takes a while.
    return await bot.result_of(record, within=90)


async def _get(port: int, target: str) -> tuple[int, bytes]:
    """GET on 127.0.0.1 as a reverse proxy in front of PUBLIC_URL would send it."""
    async with asyncio.timeout(30):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            raw = await reader.read(-1)
        finally:
            writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_a_20_mb_4k_answer_is_previewed_and_the_link_gives_the_exact_bytes(
    discord_fake: FakeDiscord, upstream: FakeGptProto, tmp_path: Path, error_log: ErrorLog
) -> None:
    bot = DiscordBot(discord_fake, upstream, tmp_path, public_url=PUBLIC, link_ttl_hours=2)
    await bot.start()
    try:
        result = await _large_result(bot)
        [generation] = upstream.generations
        original = generation.produced[0]
        assert len(original) > 19_000_000
        [attachment] = result["attachments"]
        posted = bot.world.file_bytes(attachment)
        assert len(posted) < 10 * MiB
        assert attachment["filename"] in ("image-1-preview.jpg", "image-1-preview.webp")
        with Image.open(io.BytesIO(posted)) as shown:
            assert shown.format in ("JPEG", "WEBP")
        assert "Preview: " in result["content"]
        assert "over Discord's 10 MiB upload limit" in result["content"]

        click = await discord_fake.click(result, _original_button(result), user=bot.world.bob)
        answer = await bot.refusal(click)  # an ephemeral answer, at once
        [url] = re.findall(r"\(<([^>]+)>\)", answer)
        assert url.startswith(f"{PUBLIC}/files/{hashlib.sha256(original).hexdigest()}.png?")
        assert "2 hours" in answer
        parts = urlsplit(url)
        assert bot.web is not None and bot.web.port is not None
        status, body = await _get(bot.web.port, f"{parts.path}?{parts.query}")
        assert status == 200
        assert hashlib.sha256(body).hexdigest() == hashlib.sha256(original).hexdigest()
        assert bot.world.previews() == []
    finally:
        await bot.stop()


async def test_without_public_url_the_original_button_says_how_to_get_links(
    bot: DiscordBot,
) -> None:
    result = await _large_result(bot)
    await bot.restart()  # the button is answered by whichever process runs the bot next
    click = await bot.fake.click(result, _original_button(result), user=bot.world.alice)
    answer = await bot.refusal(click)
    assert "PUBLIC_URL" in answer and "preview" in answer
    assert len(bot.upstream.generations) == 1


async def test_files_fitting_alone_but_not_together_are_previewed(bot: DiscordBot) -> None:
    # Three 2K images of about 9.5 MB: each under 10 MiB, together over a request's 25 MiB.
    bot.upstream.queue(*[Outcome.image(noise=9_500_000)] * 3)
    record = await bot.fake.slash_command(
        "imagine",
        {"prompt": "three storms", "model": "gemini-3.1-flash-image", "size": "2K", "count": 3},
        user=bot.world.alice,
    )
    result = await bot.result_of(record, within=90)
    originals = sorted(g.produced[0] for g in bot.upstream.generations)
    assert all(9 * MiB < len(original) < 10 * MiB for original in originals)
    posted = [bot.world.file_bytes(attachment) for attachment in result["attachments"]]
    assert len(posted) == 3 and sum(map(len, posted)) <= 25 * MiB
    previewed = [a["filename"] for a in result["attachments"] if "-preview." in a["filename"]]
    assert previewed and result["content"].count("Preview: ") == len(previewed)
    labels = [b["label"] for row in result["components"] for b in row["components"]]
    assert sum(label.startswith("Original ") for label in labels) == len(previewed)
    # What was not previewed is the model's bytes, unchanged.
    kept = [data for data, a in zip(posted, result["attachments"], strict=True)
            if "-preview." not in a["filename"]]  # fmt: skip
    assert all(data in originals for data in kept)


def test_a_message_keeps_small_files_whole_and_shares_the_rest_of_its_limit() -> None:
    limits = UploadLimits(per_file=10 * MiB, per_message=25 * MiB)
    # Each under the per-file limit, together over the message's: the smallest stays whole.
    sizes = [9 * MiB, 2 * MiB, 9_500_000, 9 * MiB]
    allowed = allowances(sizes, limits)
    assert allowed[1] >= sizes[1]
    assert sum(min(size, limit) for size, limit in zip(sizes, allowed, strict=True)) <= 25 * MiB
    assert all(limit <= 10 * MiB for limit in allowed)
    # When they fit together, nothing is previewed.
    assert all(
        size <= limit
        for size, limit in zip([3 * MiB] * 4, allowances([3 * MiB] * 4, limits), strict=True)
    )
    # One over the per-file limit alone.
    assert allowances([20 * MiB], limits) == [10 * MiB]
