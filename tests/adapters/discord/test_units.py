"""The Discord adapter's pure pieces: result text and files, thread names, queue notices."""

from __future__ import annotations

import asyncio
import time

from adapters.discord.client import INSTRUCTION_ID, _submitted_value
from adapters.discord.context import thread_name
from adapters.discord.layout import result_content
from adapters.discord.progress import QueueNotice
from adapters.discord.results import result_files
from adapters.discord.text import MAX_CONTENT, fit, say, without_previews
from bot.models import Image, Reply, ThreadKey, Turn, TurnStatus, Usage


def _reply(text: str = "", *, images: int = 1, ratio: str | None = "4:3") -> Reply:
    turn = Turn(
        id=7, thread_id=1, number=3, parent_id=6, user="1", prompt="p", ratio=ratio,
        model="gemini-2.5-flash-image", inputs=(), outputs=(), status=TurnStatus.DONE,
    )  # fmt: skip
    pictures = tuple(
        Image(bytes([n]) * 10, "image/png" if n else "image/jpeg") for n in range(images)
    )
    return Reply(ThreadKey("discord", "g", "c", "t"), turn, pictures, text, Usage())


def test_long_model_text_is_cut_to_discords_limit_and_keeps_the_footer() -> None:
    content = result_content(_reply("word " * 1000))
    assert len(content) <= MAX_CONTENT
    assert content.endswith("-# 4:3 · gemini-2.5-flash-image · turn 3")
    assert "…\n-# The model wrote more than fits in one message" in content


def test_links_are_wrapped_so_discord_never_previews_them() -> None:
    assert without_previews("see https://a.example/x, ok") == "see <https://a.example/x>, ok"
    assert without_previews("[here](https://a.example/x)") == "[here](<https://a.example/x>)"
    assert without_previews("https://w.example/A_(b)") == "<https://w.example/A_(b)>"
    assert without_previews("<https://a.example> stays") == "<https://a.example> stays"
    assert without_previews("join discord.gg/raid now") == "join <discord.gg/raid> now"
    assert without_previews("@everyone <@&1> plain") == "@everyone <@&1> plain"


def test_a_cut_never_leaves_half_a_wrapped_link() -> None:
    text = "x" * 10 + " https://a.example/" + "y" * 50
    cut = say(text, limit=40)
    assert len(cut) <= 40 and cut.endswith("…")
    assert "https" not in cut, "the link is dropped whole rather than left bare"
    assert fit("short", 40) == "short"


def test_footer_alone_when_the_model_said_nothing() -> None:
    assert result_content(_reply(ratio=None)) == "-# auto ratio · gemini-2.5-flash-image · turn 3"


def test_files_carry_the_exact_bytes_and_the_real_extension() -> None:
    reply = _reply(images=2)
    files = result_files(reply)
    assert [f.filename for f in files] == ["image-3-1.jpg", "image-3-2.png"]
    assert [f.fp.read() for f in files] == [image.data for image in reply.images]
    assert [f.filename for f in result_files(_reply())] == ["image-3.jpg"]


def test_thread_names_are_one_line_and_at_most_100_characters() -> None:
    assert thread_name("  a red\n\nkite  ") == "a red kite"
    assert len(thread_name("x" * 300)) == 100
    assert thread_name("   ") == "Image"


def test_modal_values_are_found_in_rows_and_labels() -> None:
    rows = [{"type": 1, "components": [{"type": 4, "custom_id": INSTRUCTION_ID, "value": "a"}]}]
    labels = [{"type": 18, "component": {"type": 4, "custom_id": INSTRUCTION_ID, "value": "b"}}]
    assert _submitted_value(rows, INSTRUCTION_ID) == "a"
    assert _submitted_value(labels, INSTRUCTION_ID) == "b"
    assert _submitted_value(rows, "other") is None


async def test_queue_notice_shows_at_most_one_edit_per_interval_latest_wins() -> None:
    shown: list[tuple[float, str]] = []
    two_shown = asyncio.Event()

    async def show(text: str) -> None:
        shown.append((time.monotonic(), text))
        if len(shown) == 2:
            two_shown.set()

    notice = QueueNotice(show, interval=0.05, clock=time.monotonic)
    await notice(0)
    assert shown == [], "a job that never waited keeps the thinking state"
    await notice(3)
    await notice(2)
    await notice(1)
    assert [text for _, text in shown] == [shown[0][1]] and "#3" in shown[0][1]
    async with asyncio.timeout(2):
        await two_shown.wait()
    assert "#1" in shown[1][1], "the newest place in line, #2 was never shown"
    assert shown[1][0] - shown[0][0] >= 0.05
    await notice(0)
    await notice.close()
    await asyncio.sleep(0.08)
    assert len(shown) == 2, "closing dropped the pending edit"


async def test_closing_waits_for_an_edit_already_on_its_way() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def show(text: str) -> None:
        if "#1" in text:
            started.set()
            await release.wait()
        finished.append(text)

    notice = QueueNotice(show, interval=0.02, clock=time.monotonic)
    await notice(2)
    await notice(1)
    async with asyncio.timeout(2):
        await started.wait()
    closing = asyncio.create_task(notice.close())
    await asyncio.sleep(0)
    assert not closing.done(), "the result must not overtake the edit in flight"
    release.set()
    await closing
    assert [("#1" in text) for text in finished] == [False, True]
