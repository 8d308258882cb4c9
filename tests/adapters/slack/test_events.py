"""Slack events end to end: signed deliveries over HTTP, bolt, the engine, the fake Web API."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image as PilImage

from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import FakeSlack, event_callback, message_event
from tests.fakes.slack.harness import (
    CHANNEL,
    SlackBot,
)


def png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    PilImage.new("RGB", (48, 32), colour).save(out, format="PNG")
    return out.getvalue()


def prompt_texts(request: Any) -> list[str]:
    return [
        part["text"]
        for content in request.json["contents"]
        for part in content["parts"]
        if "text" in part
    ]


async def test_a_mention_gets_the_upstream_image_in_a_thread_under_it(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    event = await slack.mention("a red fox in the snow --ar 16:9")
    await slack.settle()

    [request] = gptproto.generations
    assert prompt_texts(request) == ["a red fox in the snow"]
    assert request.json["generationConfig"]["imageConfig"]["aspectRatio"] == "16:9"
    [upload] = slack.fake.uploads
    assert upload.data == request.produced[0]
    assert (upload.channel_id, upload.thread_ts) == (CHANNEL, event["ts"])
    result = slack.result_message(event["ts"])
    turn = await slack.engine.turn_for_message(
        platform="slack", message_id=f"{CHANNEL}:{result.ts}"
    )
    assert turn is not None and turn.ratio == "16:9"
    buttons = result.blocks[-1]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("reroll", str(turn.id)),
        ("refine", str(turn.id)),
    ]
    assert slack.fake.reactions[(CHANNEL, event["ts"])] == {"white_check_mark"}
    added = [c.params["name"] for c in slack.fake.called("reactions.add")]
    assert added == ["hourglass_flowing_sand", "white_check_mark"]


async def test_the_models_text_comes_with_the_image(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    from tests.fakes.gptproto import Outcome

    gptproto.queue(Outcome.image("Here is your lighthouse"))
    event = await slack.mention("a lighthouse")
    await slack.settle()
    [upload] = slack.fake.uploads
    assert upload.thread_ts == event["ts"]
    words = slack.result_message(event["ts"]).blocks[0]
    assert words == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "Here is your lighthouse"},
    }


async def test_a_reply_in_the_thread_refines_the_previous_image(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    first = await slack.mention("a red fox")
    await slack.settle()
    await slack.deliver(message_event("make it wear a hat", thread_ts=first["ts"]))
    await slack.settle()

    first_request, second_request = gptproto.generations
    assert second_request.input_images() == [first_request.produced[0]]
    assert any("make it wear a hat" in text for text in prompt_texts(second_request))
    assert [u.thread_ts for u in slack.fake.uploads] == [first["ts"], first["ts"]]
    assert slack.fake.uploads[1].data == second_request.produced[0]


async def test_a_mention_inside_the_bots_thread_refines(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    first = await slack.mention("a castle")
    await slack.settle()
    await slack.mention("now at night", thread_ts=first["ts"])
    await slack.settle()
    first_request, second_request = gptproto.generations
    assert second_request.input_images() == [first_request.produced[0]]


async def test_a_message_in_a_thread_the_bot_never_answered_is_ignored(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    await slack.deliver(message_event("just chatting", thread_ts="1700000000.000001"))
    await slack.deliver(message_event("a top-level message"))
    await slack.settle()
    assert gptproto.generations == []
    assert slack.fake.called("chat.postMessage") == []


async def test_an_attached_image_is_downloaded_with_the_token_and_sent_upstream(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    photo = png()
    file = slack.fake.add_file("photo.png", photo)
    await slack.mention("turn this into a watercolour", files=[file])
    await slack.settle()
    [download] = slack.fake.downloads
    assert download.token == slack.fake.bot_token
    [request] = gptproto.generations
    assert request.input_images() == [photo]


async def test_a_file_on_a_foreign_host_is_not_fetched_with_the_token(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    async with FakeSlack() as elsewhere:
        url = elsewhere.add_file("x.png", png())["url_private"].replace("127.0.0.1", "localhost")
        event = await slack.mention("edit this", files=[{"name": "x.png", "url_private": url}])
        await slack.settle()
        assert elsewhere.downloads == []
    assert gptproto.generations == []
    [said] = slack.said(event["ts"])
    assert "'x.png'" in said and "stored in Slack" in said
    assert slack.fake.reactions[(CHANNEL, event["ts"])] == {"x"}


async def test_the_login_page_is_explained_as_a_missing_files_read_scope(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    slack.fake.scopes.discard("files:read")
    event = await slack.mention("edit this", files=[slack.fake.add_file("cat.png", png())])
    await slack.settle()
    assert gptproto.generations == []
    [said] = slack.said(event["ts"])
    assert "files:read" in said and "cat.png" in said


async def test_a_non_image_file_is_refused_by_name(slack: SlackBot, gptproto: FakeGptProto) -> None:
    notes = slack.fake.add_file("notes.txt", b"just some words", mimetype="text/plain")
    event = await slack.mention("use this", files=[notes])
    await slack.settle()
    assert gptproto.generations == []
    assert slack.fake.downloads == []  # the event says what it is: nothing to fetch
    assert slack.said(event["ts"]) == []
    [said] = [e.text for e in slack.whispered() if e.thread_ts == event["ts"]]
    assert "'notes.txt' is not an image" in said and "text/plain" in said


async def test_retries_of_a_taken_event_generate_once(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    event = message_event("<@UBOT> one fox only", kind="app_mention")
    payload = event_callback(event)
    for retry in (None, 1, 2):
        status, _ = await slack.sender.event(payload, retry_num=retry)
        assert status == 200
    await slack.settle()
    assert len(gptproto.generations) == 1
    assert len(slack.fake.uploads) == 1


async def test_a_retry_of_an_event_never_taken_is_handled(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    event = message_event("<@UBOT> a fox after a timeout", kind="app_mention")
    status, _ = await slack.sender.event(event_callback(event), retry_num=1)
    assert status == 200
    await slack.settle()
    assert len(gptproto.generations) == 1
    assert slack.fake.uploads[0].thread_ts == event["ts"]


@pytest.mark.parametrize("message_first", [True, False])
async def test_a_mention_delivered_as_app_mention_and_message_is_handled_once(
    slack: SlackBot, gptproto: FakeGptProto, message_first: bool
) -> None:
    first = await slack.mention("a boat")
    await slack.settle()
    as_message = message_event("<@UBOT> add a sail", thread_ts=first["ts"])
    as_mention = {**as_message, "type": "app_mention"}
    del as_mention["channel_type"]
    for event in (as_message, as_mention) if message_first else (as_mention, as_message):
        await slack.deliver(event)
    await slack.settle()
    assert len(gptproto.generations) == 2
    assert len(slack.fake.uploads) == 2


@pytest.mark.parametrize(
    "event",
    [
        {"user": "UBOT", "bot_id": "BBOT"},
        {"user": "UOTHERBOT", "bot_id": "BOTHER"},
        {"subtype": "bot_message", "bot_id": "BOTHER", "user": None},
        {"subtype": "message_changed", "user": None, "message": {"text": "edited"}},
        {"subtype": "message_deleted", "user": None, "previous_message": {"text": "x"}},
        {"subtype": "channel_join"},
    ],
    ids=["self", "other-bot", "bot-message", "changed", "deleted", "join"],
)
async def test_non_user_posts_in_a_bot_thread_are_ignored(
    slack: SlackBot, gptproto: FakeGptProto, event: dict[str, Any]
) -> None:
    first = await slack.mention("a tree")
    await slack.settle()
    fields = {k: v for k, v in event.items() if v is not None}
    posted = message_event("refine me", thread_ts=first["ts"], **fields)
    if event.get("user", "") is None:
        del posted["user"]
    await slack.deliver(posted)
    await slack.settle()
    assert len(gptproto.generations) == 1


async def test_a_bad_signature_or_a_stale_timestamp_is_refused(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    payload = event_callback(message_event("<@UBOT> sneaky", kind="app_mention"))
    status, _ = await slack.sender.event(payload, signature="v0=" + "0" * 64)
    assert status == 401
    stale, _ = await slack.sender.event(payload, timestamp=1_000_000_000)
    assert stale == 401
    await slack.settle()
    assert gptproto.generations == []
    assert slack.fake.called("chat.postMessage") == []


async def test_direct_messages_are_prompts_and_the_conversation_refines(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    await slack.deliver(message_event("a paper plane", channel="D0001", channel_type="im"))
    await slack.settle()
    await slack.deliver(message_event("make it blue", channel="D0001", channel_type="im"))
    await slack.settle()
    first_request, second_request = gptproto.generations
    assert prompt_texts(first_request) == ["a paper plane"]
    assert second_request.input_images() == [first_request.produced[0]]
    assert [(u.channel_id, u.thread_ts) for u in slack.fake.uploads] == [("D0001", None)] * 2


async def test_the_url_verification_challenge_is_answered(slack: SlackBot) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"})
    status, text = await slack.sender.post(body, content_type="application/json")
    assert status == 200 and "abc123" in text


async def test_a_dm_thread_under_an_earlier_result_continues_from_that_result(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    for text in ("a paper plane", "make it blue"):
        await slack.deliver(message_event(text, channel="D0001", channel_type="im"))
        await slack.settle()
    results = sorted(
        (m for m in slack.fake.messages.values() if m.channel == "D0001" and m.blocks),
        key=lambda m: m.ts,
    )
    under_first = results[0].ts
    for text in ("make it red", "and bigger"):
        reply = message_event(text, channel="D0001", channel_type="im", thread_ts=under_first)
        await slack.deliver(reply)
        await slack.settle()

    first, _blue, red, bigger = gptproto.generations
    assert red.input_images() == [first.produced[0]]
    assert bigger.input_images() == [red.produced[0]]
    assert [u.thread_ts for u in slack.fake.uploads[2:]] == [under_first, under_first]
