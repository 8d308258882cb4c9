"""The files users attach: counted and screened from what Discord says of them, then read
within the download cap whatever they declared."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import discord
import httpx

from adapters.common import read_within
from bot.errors import ImageTooLarge, InputError, NotAnImage
from bot.models import Attachment
from bot.upstream import open_client

logger = logging.getLogger(__name__)

# Types Discord gives a file it could not classify: such a file may still be an image, which
# only its bytes can tell.
_UNTYPED = frozenset({"application/octet-stream", "binary/octet-stream"})


def could_be_image(attachment: discord.Attachment) -> bool:
    """Whether Discord's word for the file's type leaves room for an image."""
    kind = _kind(attachment)
    return kind is None or kind.startswith("image/") or kind in _UNTYPED


def count_images(attachments: Sequence[discord.Attachment]) -> int:
    """How many of the attachments could be images, before any of them is downloaded."""
    return sum(1 for attachment in attachments if could_be_image(attachment))


def screen(attachments: Sequence[discord.Attachment], *, limit_bytes: int) -> None:
    """Refuse, before any download, a file that says it is no image or is over the cap."""
    for attachment in attachments:
        if not could_be_image(attachment):
            raise NotAnImage(attachment.filename, f"it is {_kind(attachment)}")
        if attachment.size > limit_bytes:
            raise ImageTooLarge(
                attachment.filename,
                f"{_megabytes(attachment.size)} while the limit is {_megabytes(limit_bytes)}",
            )


class Downloads:
    """Reads attachments from Discord's CDN as a stream, stopping at the cap."""

    def __init__(self, *, timeout: float = 60.0) -> None:
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None

    async def read_all(
        self, attachments: Sequence[discord.Attachment], *, limit_bytes: int
    ) -> tuple[Attachment, ...]:
        """Every attachment's bytes, in order, once all of them passed the screen."""
        screen(attachments, limit_bytes=limit_bytes)
        return tuple([await self._read(item, limit_bytes) for item in attachments])

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _read(self, attachment: discord.Attachment, limit: int) -> Attachment:
        if self._http is None:
            self._http = await open_client(read_timeout=self._timeout)
        # The bytes as stored: a compressed answer would be inflated before it could be counted.
        headers = {"Accept-Encoding": "identity"}
        try:
            # httpx's timeout is per read: a server that drips bytes needs a deadline of its own.
            async with (
                asyncio.timeout(self._timeout),
                self._http.stream("GET", attachment.url, headers=headers) as response,
            ):
                data = await _bounded(response, attachment, limit)
        except (httpx.HTTPError, TimeoutError) as exc:
            failure = type(exc).__name__
            logger.warning("download of attachment %s failed: %s", attachment.id, failure)
            raise _not_downloaded(attachment) from None
        return Attachment(data=data, name=attachment.filename)


async def _bounded(response: httpx.Response, attachment: discord.Attachment, limit: int) -> bytes:
    """The body, refused as soon as it passes the cap (a declared size may be wrong)."""
    if response.status_code != 200:
        logger.warning("attachment %s answered HTTP %s", attachment.id, response.status_code)
        raise _not_downloaded(attachment)
    if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise _not_downloaded(attachment)
    return await read_within(response, limit=limit, too_large=lambda: _over_cap(attachment, limit))


def _over_cap(attachment: discord.Attachment, limit: int) -> ImageTooLarge:
    return ImageTooLarge(attachment.filename, f"it is over the {_megabytes(limit)} limit")


def _not_downloaded(attachment: discord.Attachment) -> InputError:
    return InputError(
        f"I could not download '{attachment.filename}' from Discord. Please attach it again."
    )


def _kind(attachment: discord.Attachment) -> str | None:
    kind = attachment.content_type
    return None if not kind else kind.split(";")[0].strip().lower()


def _megabytes(size: int) -> str:
    if size < 1_000_000:
        return f"{size / 1000:.0f} kB"
    return f"{size / 1_000_000:.1f} MB"
