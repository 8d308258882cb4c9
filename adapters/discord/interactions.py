"""/imagine and /usage: their answers (commands.py registers them)."""

from __future__ import annotations

from dataclasses import replace

import discord

from adapters.discord.commands import ImagineOptions
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
            model=options.model,
            size=options.size,
            count=options.count,
            search=options.search,
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
