"""What an acknowledged Slack delivery's job carries through the job queue.

The payload is the delivery itself (an Events API body, a slash command's form), so the
process that runs the job rebuilds it exactly as the one that received it would have. Only
what no handler reads is left out: Slack's verification token, the authorizations list and,
on a payload too large for a queue row, the message's rich-text blocks (its text is kept).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

EVENT = "slack.event"
COMMAND = "slack.command"
MAX_PAYLOAD_BYTES = 256 * 1024
"""A queued job's payload at most: Slack's 40,000-character text and a few files' metadata fit."""

_UNREAD = ("token", "authorizations")


@dataclass(frozen=True)
class Deferral:
    """One job for the queue: which handler, its payload, its lock and its dedupe key."""

    kind: str
    payload: dict[str, Any]
    lock: str | None
    dedupe: str | None
    what: str  # for log lines


def event_deferral(
    body: dict[str, Any], *, thread: str | None, claims: tuple[str, ...]
) -> Deferral:
    """A message event's job: in line behind its thread's others, one per event id."""
    return Deferral(
        kind=EVENT,
        payload=body,
        lock=f"thread:{thread}" if thread else None,
        dedupe=claims[0] if claims else None,
        what=f"slack event {body.get('event_id')}",
    )


def command_deferral(command: dict[str, Any]) -> Deferral:
    """/imagine's job: a thread of its own (none yet), one per trigger id."""
    trigger = command.get("trigger_id")
    return Deferral(
        kind=COMMAND,
        payload=command,
        lock=None,
        dedupe=f"command:{trigger}" if trigger else None,
        what=f"slack /imagine {trigger}",
    )


def bounded(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The payload as a queue row holds it; None when even its essentials are too large."""
    kept = {key: value for key, value in payload.items() if key not in _UNREAD}
    if _size(kept) <= MAX_PAYLOAD_BYTES:
        return kept
    event = kept.get("event")
    if isinstance(event, dict):
        kept["event"] = {key: value for key, value in event.items() if key != "blocks"}
    return kept if _size(kept) <= MAX_PAYLOAD_BYTES else None


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, separators=(",", ":")).encode())
