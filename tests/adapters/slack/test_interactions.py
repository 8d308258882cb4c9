"""/imagine, the Re-roll and Refine buttons and the Refine modal, end to end over HTTP."""

from __future__ import annotations

import json
import time

from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import slash_command
from tests.fakes.slack.harness import (
    CHANNEL,
    USER,
    SlackBot,
)
from tests.fakes.slack.workspace import json_param


async def test_imagine_acks_fast_posts_the_prompt_and_answers_in_its_thread(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    started = time.monotonic()
    status, body = await slack.sender.command(slash_command("a koi pond --ar 9:16"))
    assert status == 200 and body == ""
    assert time.monotonic() - started < 3
    await slack.settle()

    [asked] = [m for m in slack.fake.messages.values() if m.thread_ts is None]
    assert asked.text == f"<@{USER}> asked: a koi pond"
    [request] = gptproto.generations
    assert request.json["generationConfig"]["imageConfig"]["aspectRatio"] == "9:16"
    [upload] = slack.fake.uploads
    assert (upload.channel_id, upload.thread_ts, upload.data) == (
        CHANNEL,
        asked.ts,
        request.produced[0],
    )
    assert slack.fake.reactions[(CHANNEL, asked.ts)] == {"white_check_mark"}


async def test_imagine_usage_is_answered_privately_and_generates_nothing(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    await slack.mention("a lantern")
    await slack.settle()
    posted_before = len(slack.fake.called("chat.postMessage"))
    status, body = await slack.sender.command(slash_command("usage"))
    assert status == 200
    # a plain-text answer to the command is shown only to the user who asked
    assert body.startswith("Your usage: today 1 image, ")
    assert "Everyone here" not in body  # the workspace's totals are for admins only
    status, body = await slack.sender.command(slash_command("  --ar 16:9 "))
    assert "/imagine a red fox" in body
    await slack.settle()
    assert len(gptproto.generations) == 1
    assert len(slack.fake.called("chat.postMessage")) == posted_before


async def test_reroll_makes_a_new_image_from_the_same_inputs_in_the_same_thread(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    event = await slack.mention("a snail --ar 3:2")
    await slack.settle()
    await slack.click("reroll", slack.result_message(event["ts"]))
    await slack.settle()

    first, second = gptproto.generations
    assert second.json["contents"] == first.json["contents"]
    assert second.json["generationConfig"] == first.json["generationConfig"]
    assert [u.thread_ts for u in slack.fake.uploads] == [event["ts"], event["ts"]]
    assert slack.fake.uploads[1].data == second.produced[0]
    assert f"<@{USER}> asked for a re-roll." in slack.said(event["ts"])


async def test_refine_opens_a_modal_and_its_submission_refines_that_turn(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    event = await slack.mention("a lake")
    await slack.settle()
    payload = await slack.click("refine", slack.result_message(event["ts"]))
    [opened] = await slack.fake.wait_for("views.open")
    assert opened.params["trigger_id"] == payload["trigger_id"]
    view = json_param(opened.params["view"])

    status, _ = await slack.submit({**view, "id": "V1"}, "add a moon --ar 1:1")
    assert status == 200
    await slack.settle()

    first, second = gptproto.generations
    assert second.input_images() == [first.produced[0]]
    assert any("add a moon" in p.get("text", "") for p in second.json["contents"][-1]["parts"])
    assert second.json["generationConfig"]["imageConfig"]["aspectRatio"] == "1:1"
    assert [u.thread_ts for u in slack.fake.uploads] == [event["ts"], event["ts"]]


async def test_refine_from_an_older_result_branches_from_it(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    event = await slack.mention("a hill")
    await slack.settle()
    older = slack.result_message(event["ts"])
    await slack.click("reroll", older)
    await slack.settle()
    await slack.click("refine", older)
    await slack.submit(await slack.opened_form(), "add a tree")
    await slack.settle()

    first, _rerolled, branched = gptproto.generations
    assert branched.input_images() == [first.produced[0]]


async def test_an_empty_refine_instruction_is_refused_in_the_modal(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    event = await slack.mention("a kite")
    await slack.settle()
    await slack.click("refine", slack.result_message(event["ts"]))
    status, body = await slack.submit(await slack.opened_form(), "   ")
    assert status == 200
    assert json.loads(body)["response_action"] == "errors"
    await slack.settle()
    assert len(gptproto.generations) == 1


async def test_when_the_refine_form_cannot_open_the_thread_says_what_to_do(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    event = await slack.mention("a bridge")
    await slack.settle()
    slack.fake.fail("views.open", "expired_trigger_id")
    await slack.click("refine", slack.result_message(event["ts"]))
    await slack.settle()
    assert "reply in this thread with your change" in slack.said(event["ts"])[-1]
    assert len(gptproto.generations) == 1
