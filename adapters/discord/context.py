"""What every Discord handler shares: the engine, limits, and the mapping to thread keys."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Protocol

import discord

from adapters import common
from adapters.common import Clock, Delivered, Job, Outlet
from adapters.discord.delivery import InteractionOutlet
from adapters.discord.files import Downloads
from adapters.discord.results import Results
from adapters.discord.text import NO_MENTIONS
from bot.engine import Engine
from bot.models import ThreadKey

logger = logging.getLogger(__name__)

PLATFORM = "discord"
THREAD_HINT = "Reply in this thread to refine the image; reply to an earlier version to branch."
_SPACES = re.compile(r"\s+")


class OriginalLinks(Protocol):
    """Signed, expiring links to a result's exact bytes (bot.ops.Links, when PUBLIC_URL is set)."""

    ttl_seconds: float

    def url_for(self, image_sha256: str, *, mime: str) -> str: ...


@dataclass(frozen=True)
class Services:
    """The engine and the knobs the handlers need."""

    engine: Engine
    downloads: Downloads
    max_download_bytes: int
    progress_interval: float
    clock: Clock
    check_budget: float  # seconds the checks may take before an interaction is deferred anyway
    results: Results
    links: OriginalLinks | None = None


def parent_channel_id(channel: object) -> int:
    """A thread's parent channel, or the channel itself."""
    if isinstance(channel, discord.Thread):
        return channel.parent_id
    return int(getattr(channel, "id", 0))


def dm_key(channel_id: int) -> ThreadKey:
    """All of a DM is one conversation: every message refines the last image."""
    return common.dm_key(PLATFORM, workspace="dm", channel=str(channel_id))


def conversation_key(message: discord.Message) -> ThreadKey:
    """The conversation a result message belongs to: its thread, or the message itself."""
    if message.guild is None:
        return dm_key(message.channel.id)
    channel = message.channel
    thread = channel.id if isinstance(channel, discord.Thread) else message.id
    return ThreadKey(PLATFORM, str(message.guild.id), str(parent_channel_id(channel)), str(thread))


def fresh_key(interaction: discord.Interaction) -> ThreadKey:
    """Where a new picture asked for by an interaction starts."""
    if interaction.guild_id is None:
        return dm_key(interaction.channel_id or 0)
    channel = parent_channel_id(interaction.channel) or interaction.channel_id or 0
    return ThreadKey(PLATFORM, str(interaction.guild_id), str(channel), str(interaction.id))


def source_key(interaction: discord.Interaction) -> ThreadKey:
    """The conversation of the message a button was pressed on."""
    if interaction.message is not None:
        return conversation_key(interaction.message)
    return fresh_key(interaction)


def messageable(channel: object) -> discord.abc.Messageable | None:
    """The channel, when the bot can post in it."""
    return channel if isinstance(channel, discord.abc.Messageable) else None


def interaction_outlet(
    services: Services,
    interaction: discord.Interaction,
    *,
    post_to: discord.abc.Messageable | None = None,
) -> InteractionOutlet:
    return InteractionOutlet(
        interaction,
        interval=services.progress_interval,
        clock=services.clock,
        results=services.results,
        post_to=post_to,
    )


def roles_of(user: discord.User | discord.Member) -> tuple[str, ...]:
    if isinstance(user, discord.Member):
        return tuple(str(role.id) for role in user.roles if not role.is_default())
    return ()


def thread_name(prompt: str) -> str:
    name = _SPACES.sub(" ", prompt).strip() or "Image"
    return name if len(name) <= 100 else name[:99].rstrip() + "…"


async def run_job(
    services: Services,
    outlet: Outlet[discord.Message],
    job: Job,
    *,
    what: str,
    context: str,
) -> Delivered[discord.Message] | None:
    """Run one engine call and show its outcome; every failure is explained to the requester."""
    return await common.run_and_deliver(
        job,
        outlet,
        links=services.engine,
        platform=PLATFORM,
        what=f"discord {what}",
        context=context,
    )


async def start_thread(
    services: Services, channel: object, delivered: Delivered[discord.Message]
) -> None:
    """In a guild text channel, open a thread from the result; elsewhere replies carry on."""
    if not isinstance(channel, discord.TextChannel):
        return
    name = thread_name(delivered.reply.turn.prompt)
    try:
        thread = await channel.create_thread(
            message=delivered.message, name=name, auto_archive_duration=1440
        )
    except discord.Forbidden:
        logger.info("no permission to create a thread in channel %s", channel.id)
        return
    except discord.HTTPException as exc:
        logger.warning("could not create a thread in channel %s: %s", channel.id, exc)
        return
    key = ThreadKey(PLATFORM, str(channel.guild.id), str(channel.id), str(thread.id))
    await services.engine.link_thread(delivered.reply.turn.id, key=key)
    try:
        await thread.send(THREAD_HINT, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as exc:
        logger.info("could not post the hint in thread %s: %s", thread.id, exc)
