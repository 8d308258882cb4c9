"""Every click and every modal is authorised against the message it happens on: a turn id
from another conversation, or a value that was never ours, is refused privately and changes
nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.engine import ELSEWHERE
from bot.models import ThreadKey
from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import block_action
from tests.fakes.slack.harness import CHANNEL, SlackBot, as_payload
from tests.fakes.slack.workspace import Message

BOB = "UBOB"


async def two_threads(slack: SlackBot) -> tuple[Message, Message]:
    """Alice's and Bob's results, each in a thread of its own."""
    await slack.mention("alice's red balloon")
    await slack.settle()
    await slack.mention("bob's blue kite", user=BOB)
    await slack.settle()
    alice_ts, bob_ts = sorted({str(m.thread_ts) for m in slack.fake.messages.values() if m.blocks})
    return slack.result_message(alice_ts), slack.result_message(bob_ts)


def turn_of(result: Message) -> str:
    return str(result.blocks[-1]["elements"][0]["value"])


async def head(slack: SlackBot, result: Message) -> int | None:
    assert result.thread_ts is not None
    thread = await slack.engine.thread_for(ThreadKey("slack", "T0001", CHANNEL, result.thread_ts))
    return None if thread is None else thread.head_id


@pytest.mark.parametrize("action", ["reroll", "refine"])
async def test_a_click_on_bobs_result_carrying_alices_turn_is_refused(
    slack: SlackBot, gptproto: FakeGptProto, action: str
) -> None:
    alice, bob = await two_threads(slack)
    heads = (await head(slack, alice), await head(slack, bob))
    posted = len(slack.fake.called("chat.postMessage"))

    await slack.click(action, bob, user=BOB, value=turn_of(alice))
    await slack.settle()

    [whisper] = slack.whispered(BOB)
    assert (whisper.channel, whisper.thread_ts, whisper.text) == (CHANNEL, bob.thread_ts, ELSEWHERE)
    assert len(gptproto.generations) == 2
    assert len(slack.fake.called("chat.postMessage")) == posted
    assert slack.fake.called("views.open") == []
    assert (await head(slack, alice), await head(slack, bob)) == heads


async def test_a_refine_form_naming_alices_turn_on_bobs_message_is_refused(
    slack: SlackBot, gptproto: FakeGptProto
) -> None:
    alice, bob = await two_threads(slack)
    await slack.click("refine", bob, user=BOB)
    view = await slack.opened_form()
    forged = {**json.loads(view["private_metadata"]), "turn": int(turn_of(alice))}
    heads = (await head(slack, alice), await head(slack, bob))

    submitted = {**view, "private_metadata": json.dumps(forged)}
    status, _ = await slack.submit(submitted, "pop it", user=BOB)
    assert status == 200
    await slack.settle()

    [whisper] = slack.whispered(BOB)
    assert (whisper.thread_ts, whisper.text) == (bob.thread_ts, ELSEWHERE)
    assert len(gptproto.generations) == 2
    assert all("pop it" not in text for text in slack.said(str(bob.thread_ts)))
    assert (await head(slack, alice), await head(slack, bob)) == heads


def _value(value: str) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        payload["actions"][0]["value"] = value

    return change


def _no_message_ts(payload: dict[str, Any]) -> None:
    del payload["container"]["message_ts"]
    del payload["message"]["ts"]


@pytest.mark.parametrize(
    ("forge", "answer"),
    [
        (_value("abc"), ELSEWHERE),
        (_value(""), ELSEWHERE),
        (_value("1e3"), ELSEWHERE),
        (_value("-1"), ELSEWHERE),
        (_value("99999"), "no longer stored"),
        (_no_message_ts, ELSEWHERE),
    ],
    ids=["letters", "empty", "exponent", "negative", "unknown-turn", "no-message-ts"],
)
async def test_a_malformed_click_is_refused_privately_without_a_traceback(
    slack: SlackBot,
    gptproto: FakeGptProto,
    forge: Callable[[dict[str, Any]], None],
    answer: str,
) -> None:
    event = await slack.mention("a pebble")
    await slack.settle()
    result = slack.result_message(event["ts"])
    payload = block_action(action_id="reroll", value=turn_of(result), message=as_payload(result))
    forge(payload)
    status, _ = await slack.sender.interaction(payload)
    assert status == 200
    await slack.settle()

    [whisper] = slack.whispered()
    assert answer in whisper.text and whisper.thread_ts == event["ts"]
    assert len(gptproto.generations) == 1
    assert all("re-roll" not in text for text in slack.said(event["ts"]))


@pytest.mark.parametrize(
    "metadata",
    ["not json", "[]", '{"turn": "x", "channel": "C0001", "message_ts": "1.2"}', '{"turn": 1}', ""],
    ids=["not-json", "a-list", "bad-turn", "no-place", "empty"],
)
async def test_a_refine_form_with_unreadable_metadata_is_refused_in_the_form(
    slack: SlackBot, gptproto: FakeGptProto, metadata: str
) -> None:
    event = await slack.mention("a shell")
    await slack.settle()
    await slack.click("refine", slack.result_message(event["ts"]))
    view = await slack.opened_form()
    status, body = await slack.submit({**view, "private_metadata": metadata}, "add sand")
    assert status == 200
    answer = json.loads(body)
    assert answer["response_action"] == "errors"
    assert answer["errors"] == {"instruction": ELSEWHERE}
    await slack.settle()
    assert len(gptproto.generations) == 1
