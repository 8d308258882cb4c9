"""The Original button on a preview: the exact bytes the model made, which Discord would not
take as an upload, reached through a signed, expiring link from the bot's HTTP server."""

from __future__ import annotations

import logging

import discord

from adapters.discord.buttons import shown_turn
from adapters.discord.context import Services
from adapters.discord.guard import refusal_of, refuse
from adapters.discord.text import NO_MENTIONS
from bot.engine import GONE
from bot.errors import NothingToRefine

logger = logging.getLogger(__name__)

NO_LINKS = (
    "This image is larger than Discord lets a bot upload, so a preview is shown here; the bot "
    "keeps the original. To hand out a link to the exact file, the bot's operator sets "
    "PUBLIC_URL to the address where the bot's HTTP server can be reached."
)
MIME_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
    "avif": "image/avif",
}


class Originals:
    """Answers an Original click privately: the link, or how an operator turns links on."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def click(
        self, interaction: discord.Interaction, turn_id: int, index: int, extension: str
    ) -> None:
        found: list[str] = []

        async def check() -> None:
            message = None if interaction.message is None else interaction.message.id
            turn = await shown_turn(self._services.engine, turn_id, message)
            if index >= len(turn.outputs):
                raise NothingToRefine(GONE)
            found.append(turn.outputs[index])

        refusal = await refusal_of(check(), what=f"original of turn {turn_id}")
        if refusal is not None:
            await refuse(interaction, refusal)
            return
        text = self._answer(found[0], extension)
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    def _answer(self, sha256: str, extension: str) -> str:
        links = self._services.links
        if links is None:
            return NO_LINKS
        mime = MIME_TYPES.get(extension, "application/octet-stream")
        url = links.url_for(sha256, mime=mime)
        hours = max(1, round(links.ttl_seconds / 3600))
        kind = extension.upper() if extension != "bin" else "file"
        return (
            f"[Download the original {kind}](<{url}>), byte for byte as the model made it.\n"
            f"-# The link works for {hours} hour{'s' if hours != 1 else ''}; "
            "click Original again for a new one."
        )
