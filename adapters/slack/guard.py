"""Check, then speak: the engine's checks run before anything is posted on a user's behalf.

A refusal is whispered (chat.postEphemeral) to the one who asked, where they asked: the
channel never sees an echo of a prompt the bot will not run. A click or a modal is honoured
only on a message of the conversation its turn belongs to.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond

from adapters.common import APOLOGY
from adapters.slack.files import SlackFiles
from adapters.slack.parsing import PLATFORM, Click, Origin, Place, Prompt, parse_prompt
from adapters.slack.replies import SlackPoster, tell
from adapters.slack.text import literal
from bot.engine import ELSEWHERE, Engine
from bot.errors import AccessDenied, BotError
from bot.models import Request, Turn

logger = logging.getLogger(__name__)


class Guard:
    """Runs the checks a job would fail later, while nothing has been posted for it yet."""

    def __init__(self, *, engine: Engine, poster: SlackPoster, files: SlackFiles) -> None:
        self._engine = engine
        self._poster = poster
        self._files = files

    async def prompt(
        self, text: str, place: Place, user: str, *, bot_user_id: str | None
    ) -> Prompt | None:
        """The prompt and its options; None (the user told why) for an option without a value."""
        try:
            return parse_prompt(text, bot_user_id=bot_user_id)
        except BotError as exc:
            await self._refuse(exc, place, user, context=f"options in {place.channel}")
            return None

    async def message(
        self, request: Request, place: Place, *, files: list[dict[str, Any]], refine: bool
    ) -> bool:
        """A message's request, with its files judged by what the event says, none fetched."""
        try:
            images = self._files.count_images(files)
            await self._engine.precheck(request, refine=refine, attachments=images)
            self._files.screen(files)
        except Exception as exc:
            await self._refuse(exc, place, request.user, context=f"message in {request.key}")
            return False
        return True

    async def command(self, request: Request, place: Place, respond: AsyncRespond) -> bool:
        """/imagine's request, before its prompt is posted in the channel."""
        try:
            await self._engine.precheck(request)
        except Exception as exc:
            context = f"/imagine in {place.channel}"
            await self._refuse(exc, place, request.user, context=context, respond=respond)
            return False
        return True

    async def click(self, click: Click, *, upscale: bool = False) -> tuple[Turn, Origin] | None:
        """The turn a button names, if it is the clicked message's and the clicker may go on;
        an upscale also needs a model that makes a larger size than the turn's."""
        try:
            origin = _named(click.origin)
            turn = await self._turn_at(origin)
            key = origin.key(click.team)
            if upscale:
                asked = self._engine.upscale_request(turn, key=key, user=click.user)
                await self._engine.precheck(asked, refine=True)
            else:
                again = Request(
                    key=key, user=click.user, text=turn.prompt, model=turn.model, size=turn.size
                )
                await self._engine.precheck(again)
        except Exception as exc:
            await self._refuse(exc, click.place, click.user, context=f"click on {click.origin}")
            return None
        return turn, origin

    async def submission(self, origin: Origin, request: Request) -> bool:
        """A Refine modal's request, on the turn and message the modal was opened from."""
        try:
            await self._turn_at(origin)
            await self._engine.precheck(request, refine=True)
        except Exception as exc:
            await self._refuse(exc, origin.place, request.user, context=f"refine of {origin}")
            return False
        return True

    async def _turn_at(self, origin: Origin) -> Turn:
        return await self._engine.turn_at(
            origin.turn_id, platform=PLATFORM, message_id=origin.message_id
        )

    async def _refuse(
        self,
        exc: Exception,
        place: Place | None,
        user: str,
        *,
        context: str,
        respond: AsyncRespond | None = None,
    ) -> None:
        """Tell the user alone; a failure of the check itself is logged and apologised for."""
        if isinstance(exc, BotError):
            logger.info("refused %s for %s: %s", context, user, type(exc).__name__)
            text = exc.user_message
        else:
            logger.error("could not check %s for %s", context, user, exc_info=exc)
            text = APOLOGY
        if place is None:
            logger.info("no channel to answer %s in about %s", user, context)
            return
        if not await self._poster.whisper(place, user, literal(text)) and respond is not None:
            await tell(respond, literal(text))


def _named(origin: Origin | None) -> Origin:
    """A click that does not say which turn on which message is refused like a foreign one."""
    if origin is None:
        raise AccessDenied(ELSEWHERE)
    return origin
