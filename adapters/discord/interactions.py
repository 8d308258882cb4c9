"""/imagine and /usage: their registration and their answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import discord
from discord import app_commands

from adapters.discord.context import (
    PLATFORM,
    Services,
    fresh_key,
    interaction_outlet,
    messageable,
    roles_of,
    run_job,
    start_thread,
)
from adapters.discord.guard import acknowledge, admit
from adapters.discord.text import NO_MENTIONS, say
from bot.engine import Deliver, QueueCallback
from bot.models import Reply, Request
from bot.upstream import RATIOS


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
    """Slash commands: checked, then acknowledged within Discord's 3 seconds."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def imagine(self, interaction: discord.Interaction, options: ImagineOptions) -> None:
        services = self._services
        request = Request(
            key=fresh_key(interaction),
            user=str(interaction.user.id),
            text=options.prompt,
            ratio=options.ratio,
            roles=roles_of(interaction.user),
        )
        limit = min(services.max_download_bytes, interaction.filesize_limit)
        context = f"interaction {interaction.id}"
        check = admit(services.engine, request, options.images, limit_bytes=limit)
        budget, what = services.check_budget, f"/imagine {context}"
        opened = await acknowledge(interaction, check, private=False, budget=budget, what=what)
        if opened is None:
            return

        async def job(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            attachments = await services.downloads.read_all(options.images, limit_bytes=limit)
            asked = replace(request, attachments=attachments)
            return await services.engine.imagine(asked, on_queued=on_queued, deliver=deliver)

        # A private deferral cannot become the public result: that goes to the channel.
        post_to = messageable(interaction.channel) if opened.private else None
        outlet = interaction_outlet(services, interaction, post_to=post_to)
        delivered = await run_job(services, outlet, job, what="/imagine", context=context)
        if delivered is not None:
            await start_thread(services, interaction.channel, delivered)

    async def usage(self, interaction: discord.Interaction) -> None:
        """Answer /usage privately; members who can manage the server also see its totals."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        report = await self._services.engine.usage_report(
            platform=PLATFORM,
            workspace=str(interaction.guild_id) if interaction.guild_id else "dm",
            user=str(interaction.user.id),
            platform_admin=interaction.permissions.manage_guild,
        )
        await interaction.followup.send(
            say(report.render()), ephemeral=True, allowed_mentions=NO_MENTIONS
        )
