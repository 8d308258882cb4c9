"""What every Discord handler shares: the engine, limits, and the mapping to thread keys."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import discord

from adapters import common
from adapters.common import Clock, Delivered, Job, Outlet
from bot.engine import Engine
from bot.errors import ImageTooLarge, InputError, NotAnImage
from bot.models import Attachment, ThreadKey

logger = logging.getLogger(__name__)

PLATFORM = "discord"
THREAD_HINT = "Reply in this thread to refine the image; reply to an earlier version to branch."
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Services:
    """The engine and the knobs the handlers need."""

    engine: Engine
    max_download_bytes: int
    progress_interval: float
    clock: Clock


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


def roles_of(user: discord.User | discord.Member) -> tuple[str, ...]:
    if isinstance(user, discord.Member):
        return tuple(str(role.id) for role in user.roles if not role.is_default())
    return ()


def thread_name(prompt: str) -> str:
    name = _SPACES.sub(" ", prompt).strip() or "Image"
    return name if len(name) <= 100 else name[:99].rstrip() + "…"


async def read_attachments(
    attachments: Sequence[discord.Attachment], *, limit_bytes: int
) -> tuple[Attachment, ...]:
    """Check type and size of every attachment before downloading any of them."""
    for attachment in attachments:
        kind = attachment.content_type
        if kind is not None and not kind.startswith("image/"):
            raise NotAnImage(attachment.filename, f"it is {kind.split(';')[0]}")
        if attachment.size > limit_bytes:
            raise ImageTooLarge(
                attachment.filename,
                f"{_megabytes(attachment.size)} while the limit is {_megabytes(limit_bytes)}",
            )
    downloaded = []
    for attachment in attachments:
        try:
            data = await attachment.read()
        except discord.HTTPException as exc:
            logger.warning("download of attachment %s failed: %s", attachment.id, exc)
            raise InputError(
                f"I could not download '{attachment.filename}' from Discord. "
                "Please attach it again."
            ) from None
        downloaded.append(Attachment(data=data, name=attachment.filename))
    return tuple(downloaded)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


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
        await thread.send(THREAD_HINT)
    except discord.HTTPException as exc:
        logger.info("could not post the hint in thread %s: %s", thread.id, exc)
