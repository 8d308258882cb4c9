"""A result made ready for Discord: every image within the upload limits, text and buttons.

Discord documents its upload limit per file (10 MiB, more in a boosted server: the larger is
used); a request body past 25 MiB has been refused in practice whatever its files weigh apart,
so a message's files together stay under that as well. An image that fits is posted byte for
byte as the model made it; one that does not is replaced by a preview within the limit
(bot.images.preview), said so in the text, with an Original button that reaches the exact
bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import discord

from adapters.common import Capabilities
from adapters.discord.layout import Shown, result_content, result_view
from bot.images import ImageWorkers, preview
from bot.models import Image, Reply, Turn

MiB = 1024 * 1024
FILE_LIMIT = 10 * MiB  # a bot's upload limit per file where no boost raises it (DMs too)
REQUEST_LIMIT = 25 * MiB  # one request's body, every file together
# The JSON payload and the multipart framing travel in the same body as the files.
FRAMING = 64 * 1024
MAX_FILES = 10
PLATFORM = "Discord"


@dataclass(frozen=True)
class UploadLimits:
    """What Discord takes in one message: per file, and for all of its files together."""

    per_file: int = FILE_LIMIT
    per_message: int = REQUEST_LIMIT - FRAMING


def upload_limits(guild: discord.Guild | None) -> UploadLimits:
    """The limits where the message goes: a boosted server's larger per-file limit counts."""
    per_file = max(FILE_LIMIT, guild.filesize_limit if guild is not None else 0)
    return UploadLimits(per_file=per_file, per_message=max(REQUEST_LIMIT, per_file) - FRAMING)


def allowances(sizes: Sequence[int], limits: UploadLimits) -> list[int]:
    """The bytes each image may weigh as posted: the smallest are kept whole while the rest
    share what is left of the message's limit, each within the per-file limit."""
    allowed = [0] * len(sizes)
    left = limits.per_message
    order = sorted(range(len(sizes)), key=lambda index: sizes[index])
    for place, index in enumerate(order):
        share = min(limits.per_file, left // (len(order) - place))
        allowed[index] = share
        left -= min(sizes[index], share)
    return allowed


@dataclass(frozen=True)
class Rendered:
    """A result as one Discord message."""

    content: str
    files: list[discord.File]
    view: discord.ui.View
    shown: tuple[Shown, ...]


class Results:
    """Turns a Reply into a message: previews where needed, the text, the buttons."""

    def __init__(
        self, *, capabilities: Capabilities | None = None, workers: ImageWorkers | None = None
    ) -> None:
        self._capabilities = capabilities
        self._workers = workers

    async def render(self, reply: Reply, *, limits: UploadLimits | None = None) -> Rendered:
        shown = await self.shown(reply, limits or UploadLimits())
        return Rendered(
            content=result_content(reply, shown),
            files=result_files(reply, shown),
            view=result_view(reply, shown, capabilities=self._capabilities),
            shown=shown,
        )

    async def shown(self, reply: Reply, limits: UploadLimits) -> tuple[Shown, ...]:
        """Each image (at most MAX_FILES) as posted: itself, or its preview when over."""
        branches = _indexed(reply.branches[:MAX_FILES])
        allowed = allowances([len(image.data) for _, _, image in branches], limits)
        return tuple(
            [
                await self._fitted(turn, index, image, limit)
                for (turn, index, image), limit in zip(branches, allowed, strict=True)
            ]
        )

    async def _fitted(self, turn: Turn, index: int, image: Image, limit: int) -> Shown:
        made = await preview(image, limit_bytes=limit, platform=PLATFORM, workers=self._workers)
        if made is None:
            return Shown(turn, index, image, image)
        return Shown(turn, index, image, made.image, note=made.footer)


def _indexed(branches: Sequence[tuple[Turn, Image]]) -> list[tuple[Turn, int, Image]]:
    """Each image with its place among its own turn's outputs (a turn may have several)."""
    seen: dict[int, int] = {}
    indexed = []
    for turn, image in branches:
        index = seen.get(turn.id, 0)
        seen[turn.id] = index + 1
        indexed.append((turn, index, image))
    return indexed


def result_files(reply: Reply, shown: Sequence[Shown] = ()) -> list[discord.File]:
    """What is uploaded: the upstream's bytes unchanged, or a preview (named so), each named
    after its turn: image-<turn>.<ext>, image-<turn>-<n>.<ext> when a turn has several."""
    items = (
        list(shown)
        or [Shown(turn, index, image, image) for turn, index, image in _indexed(reply.branches)][
            :MAX_FILES
        ]
    )
    per_turn: dict[int, int] = {}
    for item in items:
        per_turn[item.turn.id] = per_turn.get(item.turn.id, 0) + 1
    files = []
    for item in items:
        name = f"image-{item.turn.number}"
        if per_turn[item.turn.id] > 1:
            name += f"-{item.index + 1}"
        if item.previewed:
            name += "-preview"
        files.append(
            discord.File(io.BytesIO(item.posted.data), filename=f"{name}.{item.posted.extension}")
        )
    return files
