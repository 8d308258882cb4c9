"""The bolt app: every delivery is answered, including those no listener takes.

Bolt answers what no listener takes with a 404 (over Socket Mode: no ack at all), so Slack
shows the user an error and delivers it again; a click whose payload bolt cannot read even
fails inside bolt with a 500. Both are acked here and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

logger = logging.getLogger(__name__)


def bolt_app(client: AsyncWebClient, secret: SecretStr | None, *, socket_mode: bool) -> AsyncApp:
    """Bolt, answering Slack only after the listeners have handed their work to the background."""
    app = AsyncApp(
        client=client,
        signing_secret=secret.get_secret_value() if secret else "",
        # Socket Mode envelopes are authenticated by the connection, not signed.
        request_verification_enabled=not socket_mode,
        # Listeners only start background work, so answering after them is still fast, and
        # an acked delivery has always been handed to the background before the ack leaves.
        process_before_response=True,
        # What no listener takes reaches _on_error, which acks it, instead of bolt's 404.
        raise_error_for_unhandled_request=True,
        logger=logging.getLogger("adapters.slack.bolt"),
        name="banana-bot",
    )
    app.use(UnreadableClicks())
    app.error(_on_error)
    return app


class UnreadableClicks(AsyncMiddleware):
    """Acks a block_actions payload without a readable action before bolt reads it and fails."""

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        body = req.body
        if body.get("type") == "block_actions" and not _readable_action(body.get("actions")):
            logger.info("acked and ignored a click that names no action")
            return BoltResponse(status=200, body="")
        return await next()


def _readable_action(actions: Any) -> bool:
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return False
    return isinstance(actions[0].get("action_id"), str)


async def _on_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
    """A delivery no listener handles is acked and dropped; a failed listener is logged."""
    if isinstance(error, BoltUnhandledRequestError):
        logger.info("acked and ignored a Slack %s", _kind(body))
        return BoltResponse(status=200, body="")
    logger.error("Slack listener failed on a %s", _kind(body), exc_info=error)
    return None


def _kind(body: dict[str, Any]) -> str:
    """What a delivery is, for a log line: its type, and its event type when it is an event."""
    event = body.get("event")
    kind = str(body.get("type") or body.get("command") or "delivery")
    return f"{kind} ({event.get('type')})" if isinstance(event, dict) else kind
