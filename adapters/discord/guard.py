"""Check, then speak: a request the engine would refuse is refused before anything public.

An interaction is refused with an ephemeral answer, a message with a reply that names no
one but its author; neither repeats what the user wrote.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

import discord

from adapters.common import APOLOGY
from adapters.discord.files import count_images, screen
from adapters.discord.text import NO_MENTIONS, only, say
from bot.engine import Engine
from bot.errors import BotError
from bot.models import Request

logger = logging.getLogger(__name__)

MALFORMED = "That button is damaged or out of date, so it does nothing."


@dataclass(frozen=True)
class Opened:
    """An interaction whose checks passed, deferred ("thinking")."""

    private: bool  # deferred ephemerally: a public result has to be posted elsewhere


async def admit(
    engine: Engine,
    request: Request,
    attachments: Sequence[discord.Attachment] = (),
    *,
    refine: bool = False,
    limit_bytes: int,
) -> None:
    """Raise what the job would raise: the engine's refusals, then the files' own."""
    await engine.precheck(request, refine=refine, attachments=count_images(attachments))
    screen(attachments, limit_bytes=limit_bytes)


async def refusal_of(check: Awaitable[None], *, what: str) -> str | None:
    """The sentence a failed check is refused with, or None when it passed."""
    try:
        await check
    except BotError as exc:
        logger.info("discord %s refused: %s", what, type(exc).__name__)
        return exc.user_message
    except Exception:
        logger.exception("discord %s: the checks failed", what)
        return APOLOGY
    return None


async def acknowledge(
    interaction: discord.Interaction,
    check: Awaitable[None],
    *,
    private: bool,
    budget: float,
    what: str,
) -> Opened | None:
    """Run the checks, then defer; a refusal is answered privately and the job never starts.

    Discord wants an answer within 3 s: checks still running after `budget` seconds get a
    private deferral, so that a refusal arriving later is private too.
    """
    task = asyncio.ensure_future(check)
    try:
        done, _ = await asyncio.wait({task}, timeout=budget)
        if not done:
            await interaction.response.defer(thinking=True, ephemeral=True)
            private = True
        refusal = await refusal_of(task, what=what)
    finally:
        task.cancel()
    if refusal is not None:
        await refuse(interaction, refusal)
        return None
    if not interaction.response.is_done():
        await interaction.response.defer(thinking=True, ephemeral=private)
    return Opened(private=private)


async def refuse(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral answer: the initial response when it is still open, else a follow-up."""
    content = say(text)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(content, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(
                content, ephemeral=True, allowed_mentions=NO_MENTIONS
            )
    except discord.HTTPException as exc:
        logger.warning("could not refuse interaction %s: %s", interaction.id, exc)


async def refuse_message(message: discord.Message, text: str) -> None:
    """A reply to the message that may ping its author and nobody else."""
    try:
        await message.channel.send(
            say(text),
            reference=message.to_reference(fail_if_not_exists=False),
            allowed_mentions=only(message.author),
        )
    except discord.HTTPException as exc:
        logger.warning("could not refuse message %s: %s", message.id, exc)
