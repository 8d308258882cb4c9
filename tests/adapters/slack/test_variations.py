"""Several images per request, each with its own buttons; Upscale; drafts; long words."""

from __future__ import annotations

import json
from typing import Any

from tests.adapters.answers import gemini_answer, image_part
from tests.fakes.gptproto import FakeGptProto, Outcome
from tests.fakes.gptproto_images import make_image
from tests.fakes.slack import Message
from tests.fakes.slack.harness import CHANNEL, SlackBot, StartSlack

FLASH = "gemini-3.1-flash-image"
OLD = "gemini-2.5-flash-image"


def rows(message: Message) -> list[list[tuple[str, str]]]:
    """Each image's buttons on a result message: (action_id, turn id) per button."""
    return [
        [(button["action_id"], button["value"]) for button in block["elements"]]
        for block in message.blocks
        if block["type"] == "actions"
    ]


def completes(slack: SlackBot) -> list[Any]:
    return slack.fake.called("files.completeUploadExternal")


async def test_four_variations_on_3_1_flash_take_four_calls_and_show_four_button_rows(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(image_model=FLASH)
    event = await slack.mention("a lighthouse --n 4")
    await slack.settle()

    requests = gptproto.generations
    assert len(requests) == 4
    assert all("candidateCount" not in r.json["generationConfig"] for r in requests)
    # One completeUploadExternal shares all four, in the thread, as the upstream sent them.
    [complete] = completes(slack)
    assert len(json.loads(complete.params["files"])) == 4
    uploads = slack.fake.uploads
    assert {u.thread_ts for u in uploads} == {event["ts"]}
    assert sorted(u.data for u in uploads) == sorted(r.produced[0] for r in requests)
    result = slack.result_message(event["ts"])
    shown = rows(result)
    assert len(shown) == 4
    turn_ids = [row[0][1] for row in shown]
    assert len(set(turn_ids)) == 4
    for row, turn_id in zip(shown, turn_ids, strict=True):
        assert row == [("reroll", turn_id), ("refine", turn_id), ("upscale", turn_id)]
    # Each image's upload is titled with the number its buttons' caption shows.
    numbers = []
    for turn_id in turn_ids:
        turn = await slack.engine.get_turn(int(turn_id))
        assert turn is not None
        numbers.append(turn.number)
    assert sorted(str(u.title) for u in uploads) == sorted(f"Image #{n}" for n in numbers)


async def test_four_variations_on_2_5_flash_take_one_call_with_four_candidates(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    event = await slack.mention(f"a lighthouse --n 4 --model {OLD}")
    await slack.settle()

    [request] = gptproto.generations
    assert request.json["generationConfig"].get("candidateCount") == 4
    assert len(slack.fake.uploads) == 4
    shown = rows(slack.result_message(event["ts"]))
    assert len(shown) == 4
    # 2.5 Flash makes one size: nothing to upscale to.
    assert all([a for a, _ in row] == ["reroll", "refine"] for row in shown)


async def test_a_click_on_one_variation_rerolls_that_one(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(image_model=FLASH)
    event = await slack.mention("a lighthouse --n 2")
    await slack.settle()
    result = slack.result_message(event["ts"])
    second = rows(result)[1][0][1]

    await slack.click("reroll", result, value=second)
    await slack.settle()
    assert len(gptproto.generations) == 3
    again = slack.result_message(event["ts"])
    assert again.ts != result.ts and len(rows(again)) == 1


async def test_upscale_renders_the_chosen_image_at_4k_with_it_as_reference(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(image_model=FLASH)
    event = await slack.mention("a lighthouse --n 2")
    await slack.settle()
    result = slack.result_message(event["ts"])
    [first, second] = [row[0][1] for row in rows(result)]
    chosen = await slack.engine.get_turn(int(second))
    assert chosen is not None
    [chosen_image] = [u.data for u in slack.fake.uploads if u.title == f"Image #{chosen.number}"]
    [other_image] = [u.data for u in slack.fake.uploads if u.data != chosen_image]

    await slack.click("upscale", result, value=second)
    await slack.settle()
    upscale = gptproto.generations[-1]
    assert upscale.json["generationConfig"]["imageConfig"]["imageSize"] == "4K"
    # The chosen image is the reference (the thread's replayed history may carry drafts too).
    assert chosen_image in upscale.input_images()
    assert other_image not in upscale.input_images()
    assert slack.fake.uploads[-1].thread_ts == event["ts"]
    assert slack.fake.uploads[-1].data == upscale.produced[0]
    # At 4K already, so the new result offers no Upscale.
    [row] = rows(slack.result_message(event["ts"]))
    assert [action for action, _ in row] == ["reroll", "refine"]
    assert first != second


async def test_an_upscale_click_on_a_largest_image_is_refused_privately(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(image_model=FLASH)
    event = await slack.mention("a lighthouse --size 4K")
    await slack.settle()
    result = slack.result_message(event["ts"])
    [row] = rows(result)
    assert [action for action, _ in row] == ["reroll", "refine"]
    before = slack.said(event["ts"])

    # A stale or forged click still arrives: it is refused before anything is posted.
    await slack.click("upscale", result, value=row[0][1])
    await slack.settle()
    assert len(gptproto.generations) == 1
    [whisper] = slack.whispered()
    assert whisper.text == f"This image is already 4K, the largest {FLASH} makes."
    assert slack.said(event["ts"]) == before


def _drafted_answer(final: bytes, drafts: list[bytes]) -> Outcome:
    """A Gemini 3 answer whose drafts are plain image parts with a signature, final last."""
    parts = [image_part(data, f"sig-draft-{n}") for n, data in enumerate(drafts)]
    parts += [{"text": "Here is the harbour."}, image_part(final, "sig-final")]
    return gemini_answer(parts)


async def test_drafts_are_not_delivered_only_the_final_image_is(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(image_model=FLASH)
    drafts = [make_image(901, (256, 256)), make_image(902, (512, 512))]
    final = make_image(903, (1024, 1024))
    gptproto.queue(_drafted_answer(final, drafts))
    event = await slack.mention("a harbour")
    await slack.settle()
    [upload] = slack.fake.uploads
    assert upload.data == final
    assert len(rows(slack.result_message(event["ts"]))) == 1


async def test_long_words_come_in_a_message_of_their_own_under_slacks_limit(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    gptproto.queue(Outcome.image("<b>tale</b> " + "🍌 and more words " * 5_000))
    event = await slack.mention("a lighthouse")
    await slack.settle()
    words, result = slack.fake.thread_messages(CHANNEL, event["ts"])
    assert not words.blocks
    assert words.text.startswith("&lt;b&gt;tale&lt;/b&gt; 🍌 and more words")
    size = len(words.text) + words.text.count("🍌")
    assert 38_000 < size < 40_000
    assert words.text.endswith("… (the model's text was shortened to fit in a Slack message)")
    assert [b["type"] for b in result.blocks] == ["context", "actions"]


async def test_a_20_mb_result_is_uploaded_as_it_came(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    # Slack takes files up to 1 GB, so even a 4K PNG goes as it is: no preview, no link.
    gptproto.image_padding = 20 * 1024 * 1024
    slack = await start_slack(image_model=FLASH)
    event = await slack.mention("a harbour --size 4K")
    await slack.settle()
    [request] = gptproto.generations
    [upload] = slack.fake.uploads
    assert len(upload.data) > 20 * 1024 * 1024
    assert upload.data == request.produced[0]
    assert upload.thread_ts == event["ts"]
