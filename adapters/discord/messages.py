"""Plain messages: mentions, messages in the bot's threads, replies to results, DMs."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import discord

from adapters.discord.context import (
    PLATFORM,
    Services,
    dm_key,
    parent_channel_id,
    read_attachments,
    roles_of,
    run_job,
    start_thread,
)
from adapters.discord.delivery import MessageOutlet
from bot.engine import QueueCallback
from bot.models import Reply, Request, ThreadKey

logger = logging.getLogger(__name__)

_USER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)


@dataclass(frozen=True)
class Route:
    """What a message asks for: a fresh picture, or a refinement (of a given turn)."""

    key: ThreadKey
    fresh: bool = False
    reply_to: int | None = None


class Messages:
    """Turns a user's message into an engine call, or ignores it."""

    def __init__(self, services: Services, *, client: discord.Client) -> None:
        self._services = services
        self._client = client

    async def on_message(self, message: discord.Message) -> None:
        me = self._client.user
        if me is None or message.author.bot or message.type not in _USER_MESSAGES:
            return
        channel = await self._channel_of(message)
        route = await self._route(message, channel, me)
        if route is None:
            return
        engine = self._services.engine
        if not await engine.claim_event(platform=PLATFORM, event_id=f"message:{message.id}"):
            return
        await self._answer(message, channel, route, text=_without_mention(message.content, me.id))

    async def _route(
        self, message: discord.Message, channel: object, me: discord.ClientUser
    ) -> Route | None:
        engine = self._services.engine
        replied = await self._replied_turn(message)
        if message.guild is None:
            return Route(dm_key(message.channel.id), reply_to=replied)
        guild = str(message.guild.id)
        if isinstance(channel, discord.Thread):
            key = ThreadKey(PLATFORM, guild, str(channel.parent_id), str(channel.id))
            if await engine.thread_for(key) is not None:
                return Route(key, reply_to=replied)
        parent = str(parent_channel_id(channel))
        if replied is not None and message.reference is not None:
            return Route(
                ThreadKey(PLATFORM, guild, parent, str(message.reference.message_id)),
                reply_to=replied,
            )
        if me.id in message.raw_mentions:
            return Route(ThreadKey(PLATFORM, guild, parent, str(message.id)), fresh=True)
        return None

    async def _replied_turn(self, message: discord.Message) -> int | None:
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        turn = await self._services.engine.turn_for_message(
            platform=PLATFORM, message_id=str(reference.message_id)
        )
        return turn.id if turn is not None else None

    async def _channel_of(self, message: discord.Message) -> object:
        """The message's channel; a thread the cache does not know yet is fetched."""
        channel = message.channel
        if message.guild is None or not isinstance(channel, discord.PartialMessageable):
            return channel
        try:
            return await self._client.fetch_channel(channel.id)
        except discord.HTTPException as exc:
            logger.warning("could not look up channel %s: %s", channel.id, exc)
            return channel

    async def _answer(
        self, message: discord.Message, channel: object, route: Route, *, text: str
    ) -> None:
        services = self._services
        author = message.author

        async def job(on_queued: QueueCallback) -> Reply:
            attachments = await read_attachments(
                message.attachments, limit_bytes=services.max_download_bytes
            )
            request = Request(
                key=route.key,
                user=str(author.id),
                text=text,
                attachments=attachments,
                reply_to=route.reply_to,
                roles=roles_of(author),
            )
            if route.fresh:
                return await services.engine.imagine(request, on_queued=on_queued)
            return await services.engine.refine(request, on_queued=on_queued)

        outlet = MessageOutlet(message, interval=services.progress_interval, clock=services.clock)
        delivered = await run_job(services, outlet, job, what="message")
        if delivered is not None and route.fresh:
            await start_thread(services, channel, delivered)


def _without_mention(content: str, user_id: int) -> str:
    return re.sub(rf"<@!?{user_id}>", " ", content).strip()
