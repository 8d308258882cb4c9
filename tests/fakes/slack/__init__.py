"""Local fakes of Slack: the Web API, private file hosting, Socket Mode, and signed deliveries."""

from tests.fakes.slack.events import (
    EventSender,
    block_action,
    event_callback,
    message_event,
    slash_command,
    view_submission,
)
from tests.fakes.slack.web_api import LOGIN_PAGE, Call, FakeSlack
from tests.fakes.slack.workspace import Ephemeral, Message, Upload, Workspace

__all__ = [
    "LOGIN_PAGE",
    "Call",
    "Ephemeral",
    "EventSender",
    "FakeSlack",
    "Message",
    "Upload",
    "Workspace",
    "block_action",
    "event_callback",
    "message_event",
    "slash_command",
    "view_submission",
]
