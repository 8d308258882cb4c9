"""After a restart: the users whose jobs it interrupted are told, where they asked."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import discord

from adapters.common import excerpt
from adapters.discord.context import PLATFORM
from adapters.discord.text import only, without_previews
from bot.models import ThreadKey, Turn

logger = logging.getLogger(__name__)

INTERRUPTED = (
    "Sorry <@{user}>, the bot restarted while making your image ({prompt}). Please ask again."
)


async def notify_interrupted(
    home: discord.Client,
    connected: Sequence[discord.Client],
    turns: Sequence[tuple[Turn, ThreadKey]],
) -> None:
    """Best effort: a turn whose place cannot be reached is logged, not retried."""
    for turn, key in turns:
        if key.platform != PLATFORM:
            continue
        prompt = without_previews(excerpt(turn.prompt))
        text = INTERRUPTED.format(user=turn.user, prompt=f"“{prompt}”")
        try:
            only_them = only(discord.Object(int(turn.user)))
            channel = await _channel_for(home, connected, key)
            await channel.send(text, allowed_mentions=only_them)
        except (discord.HTTPException, ValueError) as exc:
            logger.warning("could not tell user %s about turn %s: %s", turn.user, turn.id, exc)


async def _channel_for(
    home: discord.Client, connected: Sequence[discord.Client], key: ThreadKey
) -> discord.abc.Messageable:
    """The thread the conversation lives in when it is known, else its channel."""
    if key.thread.isdigit():
        for client in connected:
            thread = client.get_channel(int(key.thread))
            if isinstance(thread, discord.Thread):
                return thread
        if key.thread != key.channel:
            # Not cached: a standby's, another shard's, or an archived thread (or no thread).
            with contextlib.suppress(discord.HTTPException):
                found = await home.fetch_channel(int(key.thread))
                if isinstance(found, discord.Thread):
                    return found
    for client in connected:
        channel = client.get_channel(int(key.channel))
        if isinstance(channel, discord.abc.Messageable):
            return channel
    return home.get_partial_messageable(int(key.channel))
