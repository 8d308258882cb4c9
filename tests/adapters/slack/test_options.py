"""Options typed into Slack prompts, checked against each model's limits before anything is
sent or posted, and carried to the upstream when the model can do them."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image as PilImage

from tests.adapters.answers import gemini_answer, image_part
from tests.fakes.gptproto import FakeGptProto
from tests.fakes.gptproto_images import make_image
from tests.fakes.slack import message_event, slash_command
from tests.fakes.slack.harness import CHANNEL, SlackBot, StartSlack

FLASH = "gemini-3.1-flash-image"
LITE = "gemini-3.1-flash-lite-image"
PRO = "gemini-3-pro-image"
OLD = "gemini-2.5-flash-image"


def png(shade: int = 0) -> bytes:
    out = io.BytesIO()
    PilImage.new("RGB", (12, 12), (shade, 90, 200)).save(out, format="PNG")
    return out.getvalue()


def image_config(request: Any) -> dict[str, Any]:
    config: dict[str, Any] = request.json["generationConfig"].get("imageConfig", {})
    return config


def posted(slack: SlackBot) -> list[str]:
    return [call.params.get("text", "") for call in slack.fake.called("chat.postMessage")]


async def refused_before_anything(
    slack: SlackBot, gptproto: FakeGptProto, text: str, **fields: Any
) -> str:
    """Mention the bot; assert nothing was sent or posted; the whisper's text."""
    event = await slack.mention(text, **fields)
    await slack.settle()
    assert gptproto.generations == []
    assert posted(slack) == [] and slack.fake.uploads == []
    assert slack.fake.downloads == []
    [whisper] = slack.whispered()
    assert (whisper.channel, whisper.thread_ts) == (CHANNEL, event["ts"])
    return whisper.text


async def test_four_references_are_refused_for_2_5_flash_before_any_call(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    files = [slack.fake.add_file(f"r{n}.png", png(n)) for n in range(4)]
    said = await refused_before_anything(slack, gptproto, "compose these", files=files)
    assert said == "Too many images: this model takes at most 3 (you sent 4)."


async def test_ten_references_go_to_3_1_flash(slack: SlackBot, gptproto: FakeGptProto) -> None:
    # Slack carries at most 10 files in a message; the terminal test sends all 14.
    images = [png(n * 20) for n in range(10)]
    files = [slack.fake.add_file(f"r{n}.png", data) for n, data in enumerate(images)]
    await slack.mention(f"compose these --model {FLASH}", files=files)
    await slack.settle()
    [request] = gptproto.generations
    assert request.model == FLASH
    assert request.input_images() == images
    assert len(slack.fake.uploads) == 1


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        (f"--model {LITE} --size 4K", f"{LITE} cannot make 4K images; it makes only 1K"),
        (f"--model {OLD} --size 2K", f"{OLD} cannot make 2K images"),
        (f"--model {PRO} --size 512", f"{PRO} cannot make 512 images; it makes 1K, 2K, 4K"),
        (f"--model {OLD} --search", f"{OLD} cannot search the web"),
        (f"--model {LITE} --search", f"{LITE} cannot search the web"),
        (f"--model {PRO} --ar 8:1", f"Unknown aspect ratio '8:1' for {PRO}"),
        ("--n 5", "Ask for 1 to 4 images at a time."),
        ("--model gemini-2.5-flash-image-preview", "gemini-3.1-flash-image"),
        ("--size", "The option --size needs a value"),
    ],
)
async def test_an_option_the_model_cannot_do_is_refused_with_a_sentence(
    slack: SlackBot, gptproto: FakeGptProto, options: str, sentence: str
) -> None:
    said = await refused_before_anything(slack, gptproto, f"a harbour {options}")
    assert sentence in said


async def test_imagine_with_an_impossible_size_posts_no_prompt(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    status, body = await slack.sender.command(slash_command(f"a harbour --model {LITE} --size 4K"))
    assert (status, body) == (200, "")
    await slack.settle()
    assert posted(slack) == [] and gptproto.generations == []
    [whisper] = slack.whispered()
    assert f"{LITE} cannot make 4K images" in whisper.text


async def test_imagine_with_an_option_missing_its_value_is_answered_at_once(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    status, body = await slack.sender.command(slash_command("a harbour --model"))
    assert status == 200 and body.startswith("The option --model needs a value")
    await slack.settle()
    assert posted(slack) == [] and gptproto.generations == []


@pytest.mark.parametrize(
    ("model", "options", "config"),
    [
        (FLASH, "--size 512 --ar 1:8", {"imageSize": "512", "aspectRatio": "1:8"}),
        (FLASH, "--size 4K", {"imageSize": "4K"}),
        (PRO, "--size 2K --ar 21:9", {"imageSize": "2K", "aspectRatio": "21:9"}),
        (LITE, "--ar 4:1", {"aspectRatio": "4:1"}),
        (OLD, "--ar 3:2", {"aspectRatio": "3:2"}),
    ],
)
async def test_the_options_reach_the_upstream_on_every_surface(
    slack: SlackBot, gptproto: FakeGptProto, model: str, options: str, config: dict[str, str]
) -> None:
    await slack.mention(f"a harbour --model {model} {options}")
    await slack.sender.command(slash_command(f"a harbour --model {model} {options}"))
    await slack.settle()
    requests = gptproto.generations
    assert [request.model for request in requests] == [model, model]
    for request in requests:
        assert image_config(request) == config


async def test_a_thread_reply_carries_its_options(slack: SlackBot, gptproto: FakeGptProto) -> None:
    event = await slack.mention(f"a harbour --model {FLASH}")
    await slack.settle()
    await slack.deliver(message_event("now at night --size 2K", thread_ts=event["ts"]))
    await slack.settle()
    first, second = gptproto.generations
    assert second.model == FLASH and image_config(second)["imageSize"] == "2K"
    assert second.input_images()[-1] == first.produced[0]


async def test_search_is_sent_where_the_model_grounds(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(image_model=FLASH)
    await slack.mention("today's weather in Lisbon as a poster --search")
    await slack.settle()
    [request] = gptproto.generations
    tools = request.json.get("tools") or []
    assert any("google_search" in tool or "googleSearch" in tool for tool in tools), tools


async def test_the_sources_of_a_grounded_answer_are_listed_under_the_image(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    grounding = {
        "groundingChunks": [
            {"web": {"uri": "https://weather.example/lisbon?a=1&b=2", "title": "<!here> Lisbon"}},
            {"web": {"uri": "javascript:alert(1)", "title": "not a page"}},
        ]
    }
    parts = [{"text": "Sunny."}, image_part(make_image(805, (1024, 1024)), "sig-1")]
    gptproto.queue(gemini_answer(parts, groundingMetadata=grounding))
    slack = await start_slack(image_model=FLASH)
    event = await slack.mention("today's weather in Lisbon as a poster --search")
    await slack.settle()
    words, sources, *_ = slack.result_message(event["ts"]).blocks
    assert words["text"]["text"] == "Sunny."
    assert sources["text"]["text"] == (
        "*Sources:* <https://weather.example/lisbon?a=1&amp;b=2|&lt;!here&gt; Lisbon>"
    )
