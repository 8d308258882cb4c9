"""Everything is answered: a delivery the bot does not handle is acked (HTTP 200, or the
Socket Mode envelope's ack), nothing else happens, and nothing is logged as a problem."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import Call, FakeSlack, block_action, event_callback, message_event
from tests.fakes.slack.harness import (
    CHANNEL,
    USER,
    SlackBot,
    as_payload,
)
from tests.fakes.slack.workspace import Message

USER_OBJECT = {"id": USER, "username": "alice", "team_id": "T0001"}
TEAM = {"id": "T0001", "domain": "fake"}


def shortcut() -> dict[str, Any]:
    return {
        "type": "shortcut",
        "callback_id": "make_a_banana",
        "trigger_id": "trigger-shortcut",
        "user": USER_OBJECT,
        "team": TEAM,
        "token": "legacy-verification-token",
    }


def message_action() -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": "banana_this",
        "trigger_id": "trigger-message-action",
        "user": USER_OBJECT,
        "team": TEAM,
        "channel": {"id": CHANNEL, "name": "general"},
        "message": {"type": "message", "ts": "1700000000.000200", "text": "hi", "user": USER},
        "message_ts": "1700000000.000200",
        "response_url": "http://127.0.0.1:9/actions/response",
        "token": "legacy-verification-token",
    }


def unknown_button() -> dict[str, Any]:
    message = Message(channel=CHANNEL, ts="1700000000.000300", text="x", blocks=[])
    return block_action(action_id="delete", value="1", message=as_payload(message))


def click_without_action() -> dict[str, Any]:
    return {**unknown_button(), "actions": []}


def unknown_view() -> dict[str, Any]:
    view = {"id": "V9", "type": "modal", "callback_id": "someone_elses_modal", "state": {}}
    return {"type": "view_submission", "user": USER_OBJECT, "team": TEAM, "view": view}


INTERACTIONS = [shortcut, message_action, unknown_button, click_without_action, unknown_view]
NAMES = ["shortcut", "message-action", "unknown-action-id", "no-action", "unknown-view"]


def quiet(records: list[logging.LogRecord]) -> list[str]:
    """Log lines at WARNING or above."""
    return [r.getMessage() for r in records if r.levelno >= logging.WARNING]


def acking(envelope_id: str) -> Callable[[Call], bool]:
    return lambda call: call.params["envelope_id"] == envelope_id


def nothing_happened(fake: FakeSlack, gptproto: FakeGptProto) -> None:
    methods = {call.method for call in fake.calls}
    assert methods <= {"auth.test", "apps.connections.open", "socket.connect", "socket.ack"}
    assert gptproto.generations == []


@pytest.mark.parametrize("make", INTERACTIONS, ids=NAMES)
async def test_an_unhandled_interaction_over_http_is_acked_and_ignored(
    slack: SlackBot, gptproto: FakeGptProto, caplog: pytest.LogCaptureFixture, make: Any
) -> None:
    with caplog.at_level(logging.INFO):
        status, body = await slack.sender.interaction(make())
        await slack.settle()
    assert (status, body) == (200, "")
    nothing_happened(slack.fake, gptproto)
    assert quiet(caplog.records) == []


async def test_an_unhandled_event_over_http_is_acked_and_ignored(
    slack: SlackBot, gptproto: FakeGptProto, caplog: pytest.LogCaptureFixture
) -> None:
    event = {"type": "reaction_added", "user": USER, "reaction": "banana", "item": {}}
    with caplog.at_level(logging.INFO):
        status, _ = await slack.sender.event(event_callback(event))
        await slack.settle()
    assert status == 200
    nothing_happened(slack.fake, gptproto)
    assert quiet(caplog.records) == []


async def test_every_unhandled_envelope_over_socket_mode_is_acked(
    slack_socket: SlackBot, gptproto: FakeGptProto, caplog: pytest.LogCaptureFixture
) -> None:
    fake = slack_socket.fake
    reaction = {"type": "reaction_added", "user": USER, "reaction": "banana", "item": {}}
    with caplog.at_level(logging.INFO):
        sent = [await fake.send_envelope(make(), kind="interactive") for make in INTERACTIONS]
        sent.append(await fake.send_envelope(event_callback(reaction)))
        for envelope in sent:
            await fake.wait_for("socket.ack", acking(envelope))
        await slack_socket.settle()
    nothing_happened(fake, gptproto)
    assert quiet(caplog.records) == []

    # Still serving what it does handle.
    await fake.send_envelope(event_callback(message_event("<@UBOT> a fox", kind="app_mention")))
    await fake.wait_for("files.completeUploadExternal")
