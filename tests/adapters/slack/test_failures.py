"""Every way a Slack job can end badly leaves a clear message in the thread."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.models import ThreadKey, Turn, TurnStatus
from storage.sqlite import SqliteStore
from tests.fakes.gptproto import FakeGptProto, Outcome
from tests.fakes.slack import event_callback, message_event
from tests.fakes.slack.harness import (
    CHANNEL,
    USER,
    SlackBot,
    StartSlack,
    unexpected_errors,
)


async def failed_with(slack: SlackBot, event: dict[str, Any]) -> str:
    """The one message the bot left in the mention's thread, checking the failure reaction."""
    await slack.settle()
    assert [u for u in slack.fake.uploads if u.thread_ts == event["ts"]] == []
    assert slack.fake.reactions[(CHANNEL, event["ts"])] == {"x"}
    [said] = slack.said(event["ts"])
    return said


async def refused_privately(slack: SlackBot, event: dict[str, Any]) -> str:
    """The one answer to a mention refused before anything was posted or put on it for it."""
    await slack.settle()
    assert slack.said(event["ts"]) == []
    assert (CHANNEL, event["ts"]) not in slack.fake.reactions
    [whisper] = [e for e in slack.whispered() if e.thread_ts == event["ts"]]
    assert (whisper.channel, whisper.user) == (CHANNEL, USER)
    return whisper.text


async def test_a_blocked_prompt_is_explained_with_its_reason(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack()
    gptproto.queue(Outcome.prompt_blocked("PROHIBITED_CONTENT"))
    said = await failed_with(slack, await slack.mention("something forbidden"))
    assert "blocked" in said and "PROHIBITED_CONTENT" in said


async def test_no_image_is_explained(start_slack: StartSlack, gptproto: FakeGptProto) -> None:
    slack = await start_slack()
    gptproto.queue(Outcome.finish("NO_IMAGE"))
    said = await failed_with(slack, await slack.mention("an abstract idea"))
    assert "without producing an image" in said and "NO_IMAGE" in said


async def test_the_user_rate_limit_says_when_to_try_again(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(user_jobs_per_minute=1)
    await slack.mention("the first one")
    await slack.settle()
    said = await refused_privately(slack, await slack.mention("the second one"))
    assert "please wait" in said and "second" in said
    assert len(gptproto.generations) == 1


async def test_an_upstream_outage_is_explained(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(upstream_max_attempts=1)
    gptproto.queue(Outcome.server_error(503))
    said = await failed_with(slack, await slack.mention("a sunrise"))
    assert "unavailable" in said and "HTTP 503" in said


async def test_an_unexpected_failure_ends_in_an_apology_and_a_log(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack()
    slack.fake.fail("files.completeUploadExternal", "internal_error")
    event = await slack.mention("a comet")
    await slack.settle()
    said = slack.said(event["ts"])
    assert said == [":warning: Sorry, something went wrong on my side while making that image. "
                     "Please try again."]  # fmt: skip
    assert any("Slack job failed" in record.getMessage() for record in slack.errors)
    assert unexpected_errors(slack, allowed=("Slack job failed",)) == []
    slack.errors.clear()


async def test_a_queued_job_shows_its_place_in_line_until_it_starts(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(max_concurrent_jobs=1)
    gptproto.queue(Outcome.image().with_delay(0.5))
    await slack.mention("the slow one")
    await gptproto.wait_for_requests(1)
    second = await slack.mention("the queued one")
    [notice] = await slack.fake.wait_for(
        "chat.postMessage", lambda call: "in line" in call.params.get("text", "")
    )
    assert notice.params["thread_ts"] == second["ts"]
    assert "#1 in line" in notice.params["text"]
    await slack.settle()
    assert len(slack.fake.uploads) == 2
    assert all("in line" not in text for text in slack.said(second["ts"]))
    [deleted] = slack.fake.called("chat.delete")
    assert deleted.params["channel"] == CHANNEL


async def test_jobs_interrupted_by_a_restart_are_reported_in_their_threads(
    start_slack: StartSlack,
) -> None:
    slack = await start_slack()
    turn = Turn(
        id=7, thread_id=3, number=2, parent_id=6, user="UALICE", prompt="a moonlit harbour",
        ratio=None, model="gemini-2.5-flash-image", inputs=(), outputs=(),
        status=TurnStatus.FAILED, created_at=datetime.now(UTC),
    )  # fmt: skip
    key = ThreadKey("slack", "T0001", CHANNEL, "1700000000.000100")
    other = ThreadKey("discord", "G1", "C9", "T9")
    await slack.adapter.notify_failed([(turn, key), (turn, other)])
    [said] = slack.said("1700000000.000100")
    assert "<@UALICE>" in said and "restarted" in said and "a moonlit harbour" in said
    assert len(slack.fake.called("chat.postMessage")) == 1


async def test_after_stop_deliveries_are_not_acked_so_slack_retries_them(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack()
    await slack.adapter.stop()
    payload = event_callback(message_event("<@UBOT> too late", kind="app_mention"))
    status, _ = await slack.sender.event(payload)
    assert status == 503
    assert gptproto.generations == []


async def test_a_blocked_user_is_told_and_nothing_is_sent(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(blocked_user_ids="UALICE")
    said = await refused_privately(slack, await slack.mention("a harmless lighthouse"))
    assert "blocked from using this bot" in said
    assert gptproto.generations == []


async def test_outside_the_allowed_channels_the_bot_says_where_it_works(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(allowed_channel_ids="C0OTHER", admin_user_ids="UADMIN")
    said = await refused_privately(slack, await slack.mention("a quiet pier"))
    assert "not enabled in this channel" in said
    await slack.mention("an admin may", user="UADMIN")
    await slack.settle()
    assert len(gptproto.generations) == 1


async def test_a_result_that_could_not_be_posted_never_becomes_the_parent(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack()
    event = await slack.mention("a lighthouse")
    await slack.settle()
    [first] = gptproto.generations
    slack.fake.fail("files.completeUploadExternal", "internal_error")
    await slack.deliver(message_event("make it night", thread_ts=event["ts"]))
    await slack.settle()
    assert "Sorry, something went wrong" in slack.said(event["ts"])[-1]
    del slack.fake.failures["files.completeUploadExternal"]

    await slack.deliver(message_event("add a boat", thread_ts=event["ts"]))
    await slack.settle()
    _, undelivered, third = gptproto.generations
    # The next turn continues from the image the user has, not the one that never arrived.
    assert third.input_images() == [first.produced[0]]
    assert third.input_images() != [undelivered.produced[0]]
    assert len(slack.fake.uploads) == 2
    slack.errors.clear()


async def test_a_retry_of_an_event_the_full_database_could_not_record_is_answered(
    start_slack: StartSlack, gptproto: FakeGptProto, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack = await start_slack()
    real_start = SqliteStore.start_turn
    full = [sqlite3.OperationalError("database or disk is full")]

    async def start_turn(self: SqliteStore, *args: Any, **kwargs: Any) -> Turn:
        if full:
            raise full.pop()
        return await real_start(self, *args, **kwargs)

    monkeypatch.setattr(SqliteStore, "start_turn", start_turn)
    event = message_event("<@UBOT> a fox on a full disk", kind="app_mention")
    payload = event_callback(event)
    assert (await slack.sender.event(payload))[0] == 200
    await slack.settle()
    assert gptproto.generations == [] and slack.fake.uploads == []
    assert any("Sorry, something went wrong" in said for said in slack.said(event["ts"]))

    for retry in (1, 2):  # Slack's retries: the first is answered, the next is a repeat
        assert (await slack.sender.event(payload, retry_num=retry))[0] == 200
        await slack.settle()
    assert len(gptproto.generations) == 1
    [upload] = slack.fake.uploads
    assert upload.thread_ts == event["ts"]
    assert unexpected_errors(slack, allowed=("Slack job failed",)) == []
    slack.errors.clear()
