"""Where a job shows its progress, result and failure: an interaction, or a reply to a message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import discord

from adapters.common import Clock
from adapters.discord.progress import QueueNotice
from adapters.discord.results import Rendered, Results, upload_limits
from adapters.discord.text import NO_MENTIONS, say
from bot.models import Reply

logger = logging.getLogger(__name__)

TYPING_EVERY = 8.0  # Discord shows "is typing" for about 10 s per call


class _Outlet:
    """What both of a job's places on Discord share: the queue notice and how results are named."""

    def __init__(self, *, interval: float, clock: Clock, results: Results) -> None:
        self._notice = QueueNotice(self._show, interval=interval, clock=clock)
        self._results = results

    async def on_queued(self, position: int) -> None:
        await self._notice(position)

    def message_id(self, message: discord.Message) -> str:
        return str(message.id)

    async def _rendered(self, reply: Reply, guild: discord.Guild | None) -> Rendered:
        return await self._results.render(reply, limits=upload_limits(guild))

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
        results: Results,
        post_to: discord.abc.Messageable | None = None,
    ) -> None:
        super().__init__(interval=interval, clock=clock, results=results)
        self._interaction = interaction
        self._post_to = post_to

    def working(self) -> AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    async def _show(self, text: str) -> None:
        await self._interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)

    async def deliver(self, reply: Reply) -> discord.Message:
        await self._notice.close()
        where = getattr(self._post_to, "guild", None) if self._post_to else None
        made = await self._rendered(reply, where or self._interaction.guild)
        if self._post_to is None:
            return await self._interaction.edit_original_response(
                content=made.content,
                attachments=made.files,
                view=made.view,
                allowed_mentions=NO_MENTIONS,
            )
        message = await self._post_to.send(
            made.content, files=made.files, view=made.view, allowed_mentions=NO_MENTIONS
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

    def __init__(
        self, message: discord.Message, *, interval: float, clock: Clock, results: Results
    ) -> None:
        super().__init__(interval=interval, clock=clock, results=results)
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
        made = await self._rendered(reply, self._message.guild)
        return await self._reply(made.content, files=made.files, view=made.view)

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
