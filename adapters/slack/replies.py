"""What the bot posts in Slack: results with buttons, messages, reactions, the queue notice."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common import Capabilities, Clock, QueueThrottle
from adapters.slack.parsing import Origin, Place
from adapters.slack.results import blocks_for, long_words, summary
from adapters.slack.text import clip
from bot.models import Reply

logger = logging.getLogger(__name__)

REFINE_VIEW = "refine_modal"
INSTRUCTION_BLOCK = "instruction"
INSTRUCTION_INPUT = "text"

WORKING = "hourglass_flowing_sand"
SUCCEEDED = "white_check_mark"
FAILED = "x"


def refine_view(origin: Origin) -> dict[str, Any]:
    """The Refine modal; private_metadata remembers the turn and the message it was opened on."""
    return {
        "type": "modal",
        "callback_id": REFINE_VIEW,
        "private_metadata": origin.metadata(),
        "title": {"type": "plain_text", "text": "Refine image"},
        "submit": {"type": "plain_text", "text": "Refine"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": INSTRUCTION_BLOCK,
                "label": {"type": "plain_text", "text": "What should change?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": INSTRUCTION_INPUT,
                    "multiline": True,
                    "placeholder": {"type": "plain_text", "text": "make the sky purple --ar 16:9"},
                },
            }
        ],
    }


class SlackPoster:
    """Posts into a place; feedback calls are best effort and never raise.

    Every text given here is Slack markup already: what others wrote in it has been made
    literal (`adapters.slack.text`). Nothing posted unfurls, so a link in a prompt or in the
    model's words never turns into a preview of someone else's page.
    """

    def __init__(self, client: AsyncWebClient, *, capabilities: Capabilities | None = None) -> None:
        self.client = client
        # What each model can do, to offer Upscale only where it would be taken.
        self._capabilities = capabilities

    async def say(self, place: Place, text: str, **fields: Any) -> str:
        """Post a message in the place; returns its ts."""
        response = await self.client.chat_postMessage(
            channel=place.channel,
            thread_ts=place.thread_ts,
            text=clip(text),
            unfurl_links=False,
            unfurl_media=False,
            **fields,
        )
        return str(response["ts"])

    async def whisper(self, place: Place, user: str, text: str) -> bool:
        """A message only that user sees, in the place; False when Slack would not take it."""
        try:
            await self.client.chat_postEphemeral(
                channel=place.channel, user=user, thread_ts=place.thread_ts, text=clip(text)
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            logger.warning("could not answer %s privately in %s: %s", user, place.channel, error)
            return False
        return True

    async def try_say(self, place: Place, text: str) -> str | None:
        try:
            return await self.say(place, text)
        except Exception:
            logger.exception("could not post in %s/%s", place.channel, place.thread_ts)
            return None

    async def post_result(self, place: Place, reply: Reply) -> str:
        """Upload the images as they came, together; then the words and each image's buttons.

        One files.completeUploadExternal shares every image of the reply in one message (a
        gallery in Slack); the buttons follow in one message, a row per image, so a reply of
        four images costs four uploads and two messages. Returns the buttons message's ts.
        """
        branches = reply.branches
        uploads = [
            {
                "content": image.data,
                "filename": f"banana-{turn.number}.{image.extension}",
                "title": f"Image #{turn.number}",
            }
            for turn, image in branches
        ]
        # The model's words go in a message, not in the upload's comment: a file's comment
        # cannot be kept from unfurling the links it holds.
        await self.client.files_upload_v2(
            file_uploads=uploads, channel=place.channel, thread_ts=place.thread_ts
        )
        words = long_words(reply.text)
        if words is not None:
            await self.say(place, words)
        return await self.say(place, summary(reply), blocks=blocks_for(reply, self._capabilities))

    async def react(self, place: Place, name: str, *, remove: str | None = None) -> None:
        """Put a reaction on the place's anchor message (swapping out another one)."""
        if place.anchor_ts is None:
            return
        try:
            if remove is not None:
                await self.client.reactions_remove(
                    channel=place.channel, timestamp=place.anchor_ts, name=remove
                )
            await self.client.reactions_add(
                channel=place.channel, timestamp=place.anchor_ts, name=name
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            logger.warning("reaction %s on %s failed: %s", name, place.channel, error)

    async def delete(self, channel: str, ts: str) -> None:
        try:
            await self.client.chat_delete(channel=channel, ts=ts)
        except SlackApiError as exc:
            logger.warning("could not delete %s in %s: %s", ts, channel, exc.response.get("error"))


class QueueNotice:
    """'You are #N in line' in the thread while a job waits; chat.update at most once a second."""

    def __init__(
        self,
        poster: SlackPoster,
        place: Place,
        *,
        interval: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._poster = poster
        self._place = place
        self._ts: str | None = None
        self._throttle = QueueThrottle(self._show, interval=interval, clock=clock)

    async def update(self, position: int) -> None:
        """The core's queue callback: a place in line, or 0 when the job starts."""
        if position <= 0:
            await self.clear()
            return
        await self._throttle.offer(position)

    async def clear(self) -> None:
        """Remove the notice (the job started or ended)."""
        await self._throttle.close()
        if self._ts is not None:
            ts, self._ts = self._ts, None
            await self._poster.delete(self._place.channel, ts)

    async def _show(self, position: int) -> None:
        if self._ts is None:
            self._ts = await self._poster.try_say(self._place, _line(position))
            return
        try:
            await self._poster.client.chat_update(
                channel=self._place.channel, ts=self._ts, text=_line(position)
            )
        except SlackApiError as exc:
            logger.warning("queue notice update failed: %s", exc.response.get("error"))


def _line(position: int) -> str:
    return f":hourglass: You are #{position} in line. Your image starts as soon as a slot frees up."


async def tell(respond: AsyncRespond, text: str) -> None:
    """Answer a command through its response_url, seen only by the user who sent it."""
    try:
        await respond(text=clip(text), response_type="ephemeral")
    except Exception:
        logger.exception("could not answer through the response_url")
