"""Plain messages: mentions, messages in the bot's threads, replies to results, DMs."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import discord

from adapters.common import MessageSite, Reference, Route, route_message
from adapters.discord.context import (
    PLATFORM,
    Services,
    dm_key,
    parent_channel_id,
    roles_of,
    run_job,
    start_thread,
)
from adapters.discord.delivery import MessageOutlet
from adapters.discord.guard import admit, refusal_of, refuse_message
from adapters.options import parse_options
from bot.engine import Deliver, QueueCallback
from bot.errors import BotError
from bot.models import Reply, Request, ThreadKey

logger = logging.getLogger(__name__)

_USER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)


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
        engine = self._services.engine
        route = await route_message(_site_of(message, channel, me), threads=engine)
        if route is None:
            return
        ids = (f"message:{message.id}",)
        async with engine.answering(platform=PLATFORM, event_ids=ids) as first:
            if first:
                text = _without_mention(message.content, me.id)
                await self._answer(message, channel, route, text=text, claims=ids)

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
        self,
        message: discord.Message,
        channel: object,
        route: Route,
        *,
        text: str,
        claims: tuple[str, ...],
    ) -> None:
        services = self._services
        try:
            request = _request_of(message, route, text=text, claims=claims)
        except BotError as exc:  # an option typed without its value
            await refuse_message(message, exc.user_message)
            return
        limit = services.max_download_bytes
        check = admit(
            services.engine, request, message.attachments, refine=not route.fresh, limit_bytes=limit
        )
        refusal = await refusal_of(check, what=f"message {message.id}")
        if refusal is not None:
            await refuse_message(message, refusal)
            return

        async def job(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            attachments = await services.downloads.read_all(message.attachments, limit_bytes=limit)
            asked = replace(request, attachments=attachments)
            if route.fresh:
                return await services.engine.imagine(asked, on_queued=on_queued, deliver=deliver)
            return await services.engine.refine(asked, on_queued=on_queued, deliver=deliver)

        outlet = MessageOutlet(
            message,
            interval=services.progress_interval,
            clock=services.clock,
            results=services.results,
        )
        delivered = await run_job(services, outlet, job, what="message", context=str(message.id))
        if delivered is not None and route.fresh:
            await start_thread(services, channel, delivered)


def _request_of(
    message: discord.Message, route: Route, *, text: str, claims: tuple[str, ...]
) -> Request:
    """The request a message makes, its typed options (--ar, --model, --size, --n, --search)
    taken out of its text."""
    options = parse_options(text)
    return Request(
        key=route.key,
        user=str(message.author.id),
        text=options.text,
        ratio=options.ratio,
        model=options.model,
        size=options.size,
        count=options.count,
        search=options.search,
        reply_to=route.reply_to,
        roles=roles_of(message.author),
        claims=claims,
    )


def _without_mention(content: str, user_id: int) -> str:
    return re.sub(rf"<@!?{user_id}>", " ", content).strip()


def _site_of(message: discord.Message, channel: object, me: discord.ClientUser) -> MessageSite:
    """Where a message was posted: a DM, a thread, a reply to a result, a mention of the bot."""
    reference = message.reference
    replied = None if reference is None else reference.message_id
    if message.guild is None:
        key = dm_key(message.channel.id)
        answered = None if replied is None else Reference(str(replied), key)
        return MessageSite(replied_to=answered, conversation=key)
    guild, parent = str(message.guild.id), str(parent_channel_id(channel))

    def in_channel(thread: int) -> ThreadKey:
        return ThreadKey(PLATFORM, guild, parent, str(thread))

    return MessageSite(
        thread=in_channel(channel.id) if isinstance(channel, discord.Thread) else None,
        replied_to=None if replied is None else Reference(str(replied), in_channel(replied)),
        fresh=in_channel(message.id) if me.id in message.raw_mentions else None,
    )
