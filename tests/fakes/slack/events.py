"""What Slack sends the bot: event, slash-command and interaction payloads, signed and POSTed."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

_ids = itertools.count(1)


def next_ts() -> str:
    """A fresh message timestamp in Slack's format."""
    return f"{int(time.time())}.{next(_ids):06d}"


def message_event(
    text: str,
    *,
    channel: str = "C0001",
    user: str = "UALICE",
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str = "channel",
    files: list[dict[str, Any]] | None = None,
    kind: str = "message",
    **extra: Any,
) -> dict[str, Any]:
    """A `message` (or `app_mention` with kind=...) event as Slack shapes it."""
    ts = ts or next_ts()
    event: dict[str, Any] = {
        "type": kind,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "team": extra.pop("team", "T0001"),
    }
    if kind == "message":
        event["channel_type"] = channel_type
    if thread_ts:
        event["thread_ts"] = thread_ts
    if files:
        event["files"] = files
        if kind == "message":
            event["subtype"] = "file_share"
    event.update(extra)
    return event


def event_callback(
    event: dict[str, Any], *, team_id: str = "T0001", event_id: str | None = None
) -> dict[str, Any]:
    """The Events API envelope around an event."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "api_app_id": "A0001",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [
            {"team_id": team_id, "user_id": "UBOT", "is_bot": True, "enterprise_id": None}
        ],
    }


def slash_command(
    text: str, *, channel: str = "C0001", user: str = "UALICE", team_id: str = "T0001"
) -> dict[str, str]:
    """The form fields of a /imagine invocation."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "team_domain": "fake",
        "channel_id": channel,
        "channel_name": "general",
        "user_id": user,
        "user_name": "alice",
        "command": "/imagine",
        "text": text,
        "api_app_id": "A0001",
        "response_url": "http://127.0.0.1:9/commands/response",
        "trigger_id": f"trigger-{next(_ids)}",
    }


def block_action(
    *,
    action_id: str,
    value: str,
    message: dict[str, Any],
    channel: str = "C0001",
    user: str = "UALICE",
    team_id: str = "T0001",
) -> dict[str, Any]:
    """A button click on a message the bot posted."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "alice", "team_id": team_id},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
            **({"thread_ts": message["thread_ts"]} if message.get("thread_ts") else {}),
        },
        "trigger_id": f"trigger-{next(_ids)}",
        "team": {"id": team_id, "domain": "fake"},
        "channel": {"id": channel, "name": "general"},
        "message": message,
        "response_url": "http://127.0.0.1:9/actions/response",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "result",
                "value": value,
                "type": "button",
                "action_ts": next_ts(),
            }
        ],
    }


def view_submission(
    view: dict[str, Any],
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    user: str = "UALICE",
    team_id: str = "T0001",
) -> dict[str, Any]:
    """The submission of a modal the bot opened, with the state values typed in."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "fake"},
        "user": {"id": user, "username": "alice", "team_id": team_id},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "trigger_id": f"trigger-{next(_ids)}",
        "view": {**view, "state": {"values": values}, "team_id": team_id},
        "response_urls": [],
    }


class EventSender:
    """Signs deliveries with the signing secret and POSTs them to the bot over HTTP."""

    def __init__(self, url: str, *, secret: str) -> None:
        self.url = url
        self._verifier = SignatureVerifier(secret)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EventSender:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(
        self,
        body: str,
        *,
        content_type: str,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """POST a raw body with Slack's signature headers; returns (status, text)."""
        assert self._session is not None, "use `async with EventSender(...)`"
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature
            or self._verifier.generate_signature(timestamp=stamp, body=body)
            or "",
            **(headers or {}),
        }
        async with self._session.post(self.url, data=body.encode(), headers=sent) as response:
            return response.status, await response.text()

    async def event(
        self, payload: dict[str, Any], *, retry_num: int | None = None, **kwargs: Any
    ) -> tuple[int, str]:
        """Deliver an Events API payload (optionally as Slack's retry number N)."""
        headers = dict(kwargs.pop("headers", None) or {})
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return await self.post(
            json.dumps(payload), content_type="application/json", headers=headers, **kwargs
        )

    async def command(self, fields: dict[str, str]) -> tuple[int, str]:
        """Deliver a slash command as Slack does: form-encoded fields."""
        return await self.post(urlencode(fields), content_type="application/x-www-form-urlencoded")

    async def interaction(self, payload: dict[str, Any]) -> tuple[int, str]:
        """Deliver an interaction as Slack does: one form field `payload` holding JSON."""
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, content_type="application/x-www-form-urlencoded")
