"""Check, then speak: a request the engine would refuse posts nothing on the user's behalf;
the refusal goes to that user alone, where they asked."""

from __future__ import annotations

import io

from PIL import Image as PilImage

from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import message_event, slash_command
from tests.fakes.slack.harness import CHANNEL, USER, SlackBot, StartSlack

HOSTILE = "<!here> look <https://evil.example|free stuff> <@U0VICTIM>"


def png() -> bytes:
    out = io.BytesIO()
    PilImage.new("RGB", (8, 8), (10, 200, 10)).save(out, format="PNG")
    return out.getvalue()


def posted_by_the_bot(slack: SlackBot) -> list[str]:
    """Every text the bot posted in public (messages and notes), whatever the thread."""
    return [call.params.get("text", "") for call in slack.fake.called("chat.postMessage")]


async def test_imagine_from_a_blocked_user_is_refused_privately_with_no_echo(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(blocked_user_ids=USER)
    status, _ = await slack.sender.command(slash_command(HOSTILE))
    assert status == 200
    await slack.settle()

    assert posted_by_the_bot(slack) == []
    assert slack.fake.reactions == {}
    [whisper] = slack.whispered()
    assert (whisper.channel, whisper.thread_ts) == (CHANNEL, None)
    assert "blocked from using this bot" in whisper.text
    assert "evil.example" not in whisper.text and "VICTIM" not in whisper.text
    assert gptproto.generations == []


async def test_imagine_outside_the_allowed_channels_is_refused_privately(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(allowed_channel_ids="C0OTHER")
    await slack.sender.command(slash_command(HOSTILE, channel=CHANNEL))
    await slack.settle()

    assert posted_by_the_bot(slack) == []
    [whisper] = slack.whispered()
    assert whisper.channel == CHANNEL and "not enabled in this channel" in whisper.text
    assert gptproto.generations == []


async def test_imagine_with_an_unknown_ratio_is_refused_before_the_prompt_is_posted(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    await slack.sender.command(slash_command("a fox --ar 7:3"))
    await slack.settle()
    assert posted_by_the_bot(slack) == []
    [whisper] = slack.whispered()
    assert "7:3" in whisper.text
    assert gptproto.generations == []


async def test_a_reroll_by_a_blocked_user_posts_no_note(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(blocked_user_ids="UBOB")
    event = await slack.mention("a kettle")
    await slack.settle()
    posted = len(slack.fake.called("chat.postMessage"))

    await slack.click("reroll", slack.result_message(event["ts"]), user="UBOB")
    await slack.settle()

    assert len(slack.fake.called("chat.postMessage")) == posted
    assert all("re-roll" not in text for text in slack.said(event["ts"]))
    [whisper] = slack.whispered("UBOB")
    assert (whisper.channel, whisper.thread_ts) == (CHANNEL, event["ts"])
    assert "blocked" in whisper.text
    assert len(gptproto.generations) == 1


async def test_a_refine_form_submitted_by_a_blocked_user_posts_no_note(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(blocked_user_ids="UBOB")
    event = await slack.mention("a teapot")
    await slack.settle()
    await slack.click("refine", slack.result_message(event["ts"]))
    view = await slack.opened_form()
    posted = len(slack.fake.called("chat.postMessage"))

    status, _ = await slack.submit(view, HOSTILE, user="UBOB")
    assert status == 200
    await slack.settle()

    assert len(slack.fake.called("chat.postMessage")) == posted
    [whisper] = slack.whispered("UBOB")
    assert whisper.thread_ts == event["ts"] and "blocked" in whisper.text
    assert len(gptproto.generations) == 1


async def test_a_refinement_over_the_image_limit_is_refused_before_any_download(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    first = await slack.mention("a garden")
    await slack.settle()
    files = [slack.fake.add_file(f"ref{i}.png", png()) for i in range(3)]
    reply = message_event("use these", thread_ts=first["ts"], files=files)
    await slack.deliver(reply)
    await slack.settle()

    assert slack.fake.downloads == []
    assert (CHANNEL, reply["ts"]) not in slack.fake.reactions
    [whisper] = slack.whispered()
    assert whisper.thread_ts == first["ts"]
    assert "current image + at most 2" in whisper.text
    assert len(gptproto.generations) == 1
