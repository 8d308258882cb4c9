"""Where a job shows its progress, result and failure: an interaction, or a reply to a message."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import discord

from adapters.common import Clock
from adapters.discord.client import result_view
from adapters.discord.progress import QueueNotice
from adapters.discord.text import MAX_CONTENT, NO_MENTIONS, fit, say, without_previews
from bot.models import Reply

logger = logging.getLogger(__name__)

MAX_FILES = 10
TYPING_EVERY = 8.0  # Discord shows "is typing" for about 10 s per call
SHORTENED = "-# The model wrote more than fits in one message; this is the start of it."


def result_content(reply: Reply) -> str:
    """The model's words (links not unfurled, cut to fit) and a footer: ratio, model, turn."""
    turn = reply.turn
    footer = f"-# {turn.ratio or 'auto ratio'} · {turn.model} · turn {turn.number}"
    text = without_previews(reply.text.strip())
    room = MAX_CONTENT - len(footer) - 1
    if len(text) > room:
        footer = f"{SHORTENED}\n{footer}"
        text = fit(text, room - len(SHORTENED) - 1)
    return f"{text}\n{footer}" if text else footer


def result_files(reply: Reply) -> list[discord.File]:
    """The upstream's bytes, unchanged, named image-<turn>.<ext>."""
    images = reply.images[:MAX_FILES]
    number = reply.turn.number
    return [
        discord.File(
            io.BytesIO(image.data),
            filename=(
                f"image-{number}.{image.extension}"
                if len(images) == 1
                else f"image-{number}-{index}.{image.extension}"
            ),
        )
        for index, image in enumerate(images, start=1)
    ]


class _Outlet:
    """What both of a job's places on Discord share: the queue notice and how results are named."""

    def __init__(self, *, interval: float, clock: Clock) -> None:
        self._notice = QueueNotice(self._show, interval=interval, clock=clock)

    async def on_queued(self, position: int) -> None:
        await self._notice(position)

    def message_id(self, message: discord.Message) -> str:
        return str(message.id)

    async def _show(self, text: str) -> None:
        raise NotImplementedError


class InteractionOutlet(_Outlet):
    """A deferred interaction: progress edits its response; the result replaces it.

    With `post_to`, the result is posted there (a thread) and the response links to it.
    """

    def __init__(
        self,
        interaction: discord.Interaction,
        *,
        interval: float,
        clock: Clock,
        post_to: discord.abc.Messageable | None = None,
    ) -> None:
        super().__init__(interval=interval, clock=clock)
        self._interaction = interaction
        self._post_to = post_to

    def working(self) -> AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    async def _show(self, text: str) -> None:
        await self._interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)

    async def deliver(self, reply: Reply) -> discord.Message:
        await self._notice.close()
        content, files = result_content(reply), result_files(reply)
        view = result_view(reply.turn.id)
        if self._post_to is None:
            return await self._interaction.edit_original_response(
                content=content, attachments=files, view=view, allowed_mentions=NO_MENTIONS
            )
        message = await self._post_to.send(
            content, files=files, view=view, allowed_mentions=NO_MENTIONS
        )
        await self._interaction.edit_original_response(
            content=f"Here it is: {message.jump_url}", allowed_mentions=NO_MENTIONS
        )
        return message

    async def fail(self, text: str) -> None:
        await self._notice.close()
        interaction, content = self._interaction, say(text)
        try:
            if not interaction.response.is_done():
                await interaction.response.send_message(
                    content, ephemeral=True, allowed_mentions=NO_MENTIONS
                )
                return
            # The deferred response is public: drop it and tell only the requester.
            with contextlib.suppress(discord.NotFound):
                await interaction.delete_original_response()
            await interaction.followup.send(content, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException:
            logger.exception("could not tell user %s about a failure", interaction.user.id)


class MessageOutlet(_Outlet):
    """A user's message: typing while working, a placeholder while queued, a reply at the end."""

    def __init__(self, message: discord.Message, *, interval: float, clock: Clock) -> None:
        super().__init__(interval=interval, clock=clock)
        self._message = message
        self._placeholder: discord.Message | None = None

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_typing(self) -> None:
        while True:
            try:
                await self._message.channel.typing()
            except discord.HTTPException as exc:
                logger.debug("typing indicator refused: %s", exc)
                return
            await asyncio.sleep(TYPING_EVERY)

    async def _show(self, text: str) -> None:
        if self._placeholder is None:
            self._placeholder = await self._reply(text)
        else:
            await self._placeholder.edit(content=text, allowed_mentions=NO_MENTIONS)

    async def deliver(self, reply: Reply) -> discord.Message:
        await self._clear()
        view = result_view(reply.turn.id)
        return await self._reply(result_content(reply), files=result_files(reply), view=view)

    async def fail(self, text: str) -> None:
        await self._clear()
        try:
            await self._reply(say(text))
        except discord.HTTPException:
            logger.exception("could not tell user %s about a failure", self._message.author.id)

    async def _clear(self) -> None:
        await self._notice.close()
        if self._placeholder is not None:
            with contextlib.suppress(discord.HTTPException):
                await self._placeholder.delete()
            self._placeholder = None

    async def _reply(
        self,
        text: str,
        *,
        files: list[discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> discord.Message:
        return await self._message.channel.send(
            text,
            files=files if files else discord.utils.MISSING,
            view=view if view is not None else discord.utils.MISSING,
            reference=self._message.to_reference(fail_if_not_exists=False),
            mention_author=False,
            allowed_mentions=NO_MENTIONS,
        )
