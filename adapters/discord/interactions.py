"""/imagine, the result buttons and the refine modal."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord
from discord import app_commands

from adapters.discord.client import RefineModal
from adapters.discord.context import (
    PLATFORM,
    Services,
    conversation_key,
    dm_key,
    parent_channel_id,
    read_attachments,
    roles_of,
    run_job,
    start_thread,
)
from adapters.discord.delivery import InteractionOutlet
from bot.engine import Deliver, QueueCallback
from bot.errors import NothingToRefine
from bot.models import Reply, Request, ThreadKey, Turn
from bot.upstream import RATIOS

logger = logging.getLogger(__name__)

GONE = NothingToRefine.default_message
NOT_YOURS = "Only the person who asked for this image, or a moderator, can delete it."


@dataclass(frozen=True)
class ImagineOptions:
    prompt: str
    ratio: str | None
    images: tuple[discord.Attachment, ...]


ImagineHandler = Callable[[discord.Interaction, ImagineOptions], Awaitable[None]]


def add_imagine_command(
    tree: app_commands.CommandTree[discord.Client], handler: ImagineHandler
) -> None:
    """Register /imagine on the tree; the callback hands everything to `handler`."""

    @tree.command(name="imagine", description="Make an image from a prompt, or edit/combine images")
    @app_commands.describe(
        prompt="What to draw, or how to change the attached images",
        aspect_ratio="Shape of the result (default: like the input image, else square)",
        image1="An image to edit or use as a reference",
        image2="A second image to combine",
        image3="A third image to combine",
    )
    @app_commands.choices(aspect_ratio=[app_commands.Choice(name=r, value=r) for r in RATIOS])
    async def imagine(
        interaction: discord.Interaction,
        prompt: str,
        aspect_ratio: str | None = None,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
    ) -> None:
        images = tuple(image for image in (image1, image2, image3) if image is not None)
        await handler(interaction, ImagineOptions(prompt, aspect_ratio, images))


UsageHandler = Callable[[discord.Interaction], Awaitable[None]]


def add_usage_command(
    tree: app_commands.CommandTree[discord.Client], handler: UsageHandler
) -> None:
    """Register /usage: the caller's images and tokens (and the server's, for admins)."""

    @tree.command(name="usage", description="Your images and tokens today and over 30 days")
    async def usage(interaction: discord.Interaction) -> None:
        await handler(interaction)


class Interactions:
    """Slash command, buttons and modal: always acknowledged within Discord's 3 seconds."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def _outlet(
        self, interaction: discord.Interaction, *, post_to: discord.abc.Messageable | None = None
    ) -> InteractionOutlet:
        services = self._services
        return InteractionOutlet(
            interaction,
            interval=services.progress_interval,
            clock=services.clock,
            post_to=post_to,
        )

    async def imagine(self, interaction: discord.Interaction, options: ImagineOptions) -> None:
        await interaction.response.defer(thinking=True)
        engine = self._services.engine
        limit = min(self._services.max_download_bytes, interaction.filesize_limit)

        async def job(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            attachments = await read_attachments(options.images, limit_bytes=limit)
            request = Request(
                key=_fresh_key(interaction),
                user=str(interaction.user.id),
                text=options.prompt,
                attachments=attachments,
                ratio=options.ratio,
                roles=roles_of(interaction.user),
            )
            return await engine.imagine(request, on_queued=on_queued, deliver=deliver)

        outlet, context = self._outlet(interaction), f"interaction {interaction.id}"
        delivered = await run_job(self._services, outlet, job, what="/imagine", context=context)
        if delivered is not None:
            await start_thread(self._services, interaction.channel, delivered)

    async def usage(self, interaction: discord.Interaction) -> None:
        """Answer /usage privately; members who can manage the server also see its totals."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        report = await self._services.engine.usage_report(
            platform=PLATFORM,
            workspace=str(interaction.guild_id) if interaction.guild_id else "dm",
            user=str(interaction.user.id),
            platform_admin=interaction.permissions.manage_guild,
        )
        await interaction.followup.send(report.render(), ephemeral=True)

    async def button(self, interaction: discord.Interaction, action: str, turn_id: int) -> None:
        if action == "reroll":
            await self._reroll(interaction, turn_id)
            return
        turn = await self._services.engine.get_turn(turn_id)
        if turn is None or not turn.outputs:
            await interaction.response.send_message(GONE, ephemeral=True)
        elif action == "refine":
            await interaction.response.send_modal(RefineModal(turn_id))
        elif action == "delete":
            await self._delete(interaction, turn)

    async def refine_submit(
        self, interaction: discord.Interaction, turn_id: int, instruction: str
    ) -> None:
        thread = _thread_started_from(interaction.message)
        await interaction.response.defer(thinking=True, ephemeral=thread is not None)
        request = Request(
            key=_source_key(interaction),
            user=str(interaction.user.id),
            text=instruction,
            reply_to=turn_id,
            roles=roles_of(interaction.user),
        )

        async def job(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await self._services.engine.refine(request, on_queued=on_queued, deliver=deliver)

        outlet = self._outlet(interaction, post_to=thread)
        await run_job(self._services, outlet, job, what="refine", context=f"turn {turn_id}")

    async def _reroll(self, interaction: discord.Interaction, turn_id: int) -> None:
        thread = _thread_started_from(interaction.message)
        await interaction.response.defer(thinking=True, ephemeral=thread is not None)
        user, roles = str(interaction.user.id), roles_of(interaction.user)

        async def job(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await self._services.engine.reroll(
                turn_id, user=user, roles=roles, on_queued=on_queued, deliver=deliver
            )

        outlet = self._outlet(interaction, post_to=thread)
        await run_job(self._services, outlet, job, what="re-roll", context=f"turn {turn_id}")

    async def _delete(self, interaction: discord.Interaction, turn: Turn) -> None:
        if str(interaction.user.id) != turn.user and not interaction.permissions.manage_messages:
            await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            return
        await interaction.response.defer()
        try:
            await interaction.delete_original_response()
        except discord.NotFound:
            logger.info("result of turn %s was already deleted", turn.id)


def _fresh_key(interaction: discord.Interaction) -> ThreadKey:
    if interaction.guild_id is None:
        return dm_key(interaction.channel_id or 0)
    channel = parent_channel_id(interaction.channel) or interaction.channel_id or 0
    return ThreadKey(PLATFORM, str(interaction.guild_id), str(channel), str(interaction.id))


def _source_key(interaction: discord.Interaction) -> ThreadKey:
    """The conversation of the message a button was pressed on."""
    if interaction.message is not None:
        return conversation_key(interaction.message)
    return _fresh_key(interaction)


def _thread_started_from(message: discord.Message | None) -> discord.Thread | None:
    """The thread opened from a result, where a new version of it belongs."""
    if message is None or message.guild is None:
        return None
    return message.guild.get_thread(message.id)
