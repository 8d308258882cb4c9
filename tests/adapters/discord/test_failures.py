"""Every failure reaches the requester in plain words: privately, or as a reply to a message."""

from __future__ import annotations

import io
import itertools
import os

import pytest
from PIL import Image

from bot.models import Request
from tests.fakes.discord.harness import DiscordBot, ErrorLog
from tests.fakes.gptproto import Outcome


def _png(shade: int) -> tuple[bytes, str, str]:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (shade, 100, 200)).save(buffer, "PNG")
    return buffer.getvalue(), f"ref-{shade}.png", "image/png"


async def _imagine_fails(bot: DiscordBot, **attachments: tuple[bytes, str, str | None]) -> str:
    """Run /imagine, expect a private explanation, and that nothing public was left behind."""
    record = await bot.fake.slash_command(
        "imagine", {"prompt": "a tiger"}, user=bot.world.alice, attachments=attachments
    )
    text = await bot.ephemeral_reply(record)
    assert record.original_id in bot.world.deleted  # the public "thinking" message went away
    public = bot.fake.messages_in(bot.world.general["id"])
    assert [
        m for m in public if m.get("interaction_metadata", {}).get("id") == str(record.id)
    ] == []
    return text


async def _imagine_refused(bot: DiscordBot, **attachments: tuple[bytes, str, str | None]) -> str:
    """Run /imagine, expect a private refusal at once, and that nothing public came before it."""
    record = await bot.fake.slash_command(
        "imagine", {"prompt": "a tiger"}, user=bot.world.alice, attachments=attachments
    )
    text = await bot.refusal(record)
    assert bot.fake.messages_in(bot.world.general["id"]) == []
    assert bot.world.deleted == {}, "no public message was posted, so none had to go"
    return text


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        (Outcome.prompt_blocked("PROHIBITED_CONTENT"), ["blocked", "PROHIBITED_CONTENT"]),
        (Outcome.output_blocked("IMAGE_SAFETY"), ["withheld", "IMAGE_SAFETY"]),
        (Outcome.finish("NO_IMAGE"), ["without producing an image", "NO_IMAGE"]),
        (Outcome.text_only("Which tiger?"), ["Which tiger?"]),
        (Outcome.rate_limited("53s"), ["busy", "53 seconds"]),
        (Outcome.server_error(503), ["try again"]),
        (Outcome.html(), ["web page"]),
    ],
)
async def test_upstream_outcomes_are_explained(
    bot: DiscordBot, outcome: Outcome, words: list[str]
) -> None:
    bot.upstream.queue(outcome)
    text = await _imagine_fails(bot)
    for word in words:
        assert word in text


async def test_a_non_image_attachment_is_refused_before_the_upstream(bot: DiscordBot) -> None:
    text = await _imagine_refused(bot, image1=(b"just some notes", "notes.txt", "text/plain"))
    assert "'notes.txt' is not an image" in text and "text/plain" in text
    assert bot.upstream.generations == []
    assert bot.fake.of("cdn") == [], "nothing was downloaded"


async def test_an_attachment_over_the_size_limit_is_refused(bot: DiscordBot) -> None:
    await bot.restart(max_download_mb=0.01)
    noise = io.BytesIO()
    Image.frombytes("RGB", (128, 128), os.urandom(128 * 128 * 3)).save(noise, "PNG")
    assert len(noise.getvalue()) > 0.01 * 1024 * 1024
    text = await _imagine_refused(bot, image1=(noise.getvalue(), "noise.png", "image/png"))
    assert "too large" in text and "noise.png" in text
    assert bot.upstream.generations == []


async def test_content_is_checked_not_the_name(bot: DiscordBot) -> None:
    text = await _imagine_fails(bot, image1=(b"GIF89a-not-really", "cat.png", "image/png"))
    assert "'cat.png' is not an image I can read" in text
    assert bot.upstream.generations == []


async def test_too_many_images_in_a_thread_says_the_limit(bot: DiscordBot) -> None:
    fake, world = bot.fake, bot.world
    record = await fake.slash_command("imagine", {"prompt": "a bus"}, user=world.alice)
    thread = await bot.thread_of(await bot.result_of(record))
    ask = await fake.send_message(
        thread, "combine these", author=world.alice, attachments=[_png(1), _png(2), _png(3)]
    )
    answer = await bot.reply_to(ask, files=False)
    assert "the current image + at most 2 attachments" in answer["content"]
    assert len(bot.upstream.generations) == 1


async def test_user_rate_limit_says_when_to_come_back(bot: DiscordBot) -> None:
    await bot.restart(user_jobs_per_minute=1)
    first = await bot.fake.slash_command("imagine", {"prompt": "one"}, user=bot.world.alice)
    await bot.result_of(first)
    public_before = bot.fake.messages_in(bot.world.general["id"])
    second = await bot.fake.slash_command("imagine", {"prompt": "two"}, user=bot.world.alice)
    text = await bot.refusal(second)
    assert bot.fake.messages_in(bot.world.general["id"]) == public_before
    assert "please wait" in text and "second" in text


async def test_a_message_failure_is_a_reply(bot: DiscordBot) -> None:
    bot.upstream.queue(Outcome.prompt_blocked("SAFETY"))
    dm = bot.world.dm_with(bot.world.bob)
    answer = await bot.reply_to(
        await bot.fake.send_message(dm, "something bad", author=bot.world.bob), files=False
    )
    assert "blocked" in answer["content"] and "SAFETY" in answer["content"]


async def test_an_unexpected_error_is_logged_and_apologised_for(
    bot: DiscordBot, error_log: ErrorLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(request: Request, **_: object) -> None:
        raise RuntimeError("database exploded at /srv/secret/path")

    assert bot.engine is not None
    monkeypatch.setattr(bot.engine, "imagine", broken)
    error_log.expect("discord /imagine failed")
    text = await _imagine_fails(bot)
    assert text.startswith("Sorry, something went wrong")
    assert "exploded" not in text and "secret" not in text
    [record] = [r for r in error_log.records if "discord /imagine failed" in r.getMessage()]
    assert record.exc_info is not None and "exploded" in str(record.exc_info[1])


async def test_queue_position_is_shown_while_waiting(bot: DiscordBot) -> None:
    await bot.restart(max_concurrent_jobs=1)
    fake, world = bot.fake, bot.world
    bot.upstream.queue(Outcome.image().with_delay(1.0))
    first = await fake.slash_command("imagine", {"prompt": "first"}, user=world.alice)
    await bot.upstream.wait_for_requests(1)
    second = await fake.slash_command("imagine", {"prompt": "second"}, user=world.bob)

    [notice] = await fake.wait_for(
        "webhook_message_edit",
        lambda call: call.params["token"] == second.token and not call.files,
    )
    assert notice.json["content"].startswith("You are #1 in line")
    await bot.result_of(first)
    result = await bot.result_of(second)
    generations = bot.upstream.generations
    assert world.file_bytes(result["attachments"][0]) == generations[1].produced[0]
    # Progress edits of the waiting message are at least a second apart.
    notices = [
        call.at
        for call in fake.of("webhook_message_edit")
        if call.params["token"] == second.token and not call.files
    ]
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(notices))


async def test_a_mention_waiting_in_line_gets_a_placeholder_that_goes_away(bot: DiscordBot) -> None:
    await bot.restart(max_concurrent_jobs=1)
    fake, world = bot.fake, bot.world
    bot.upstream.queue(Outcome.image().with_delay(1.0))
    first = await fake.slash_command("imagine", {"prompt": "first"}, user=world.alice)
    await bot.upstream.wait_for_requests(1)
    ask = await fake.send_message(world.general, "second", author=world.bob, mention_bot=True)

    placeholder = await bot.reply_to(ask, files=False)
    assert placeholder["content"].startswith("You are #1 in line")
    await bot.result_of(first)
    result = await bot.reply_to(ask)
    assert world.file_bytes(result["attachments"][0]) == bot.upstream.generations[1].produced[0]
    assert int(placeholder["id"]) in world.deleted


async def test_roles_reach_the_access_rules(bot: DiscordBot) -> None:
    world = bot.world
    await bot.restart(allowed_role_ids=str(world.artist_role))
    allowed = await bot.fake.slash_command("imagine", {"prompt": "ok"}, user=world.alice)
    await bot.result_of(allowed)
    refused = await bot.fake.slash_command("imagine", {"prompt": "no"}, user=world.bob)
    assert "not on this bot's list" in await bot.refusal(refused)
    assert len(bot.upstream.generations) == 1
