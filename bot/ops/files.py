"""GET /files/{sha}.{ext}: a result's exact bytes, for a link bot.ops.links signed.

Only a valid, unexpired signature reaches the store, and then only for the one image it names;
the answer is streamed in chunks, each of which must leave within a deadline, so a client that
reads slowly holds no more than its own connection and one image's bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from aiohttp import web

from bot.models import Image
from bot.ops.links import Checked, Links, Verdict

logger = logging.getLogger(__name__)

FILES_PATH = "/files/{name}"
CHUNK = 256 * 1024
FORGED = (
    "This link is not valid: it was changed, or it was not made by this bot. "
    "Ask the bot for the image again to get a new link."
)
EXPIRED = "This link has expired. Ask the bot for the image again to get a new link."
GONE = "This image is not kept here any more."
BUSY = "Too many downloads are running; please try again in a moment."
_PLAIN = {
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class ImageSource(Protocol):
    """The one thing the route may ask of the store."""

    async def load_images(self, hashes: Sequence[str]) -> list[Image]: ...


class FileRoute:
    """Serves the images links point to; at most max_downloads at once, the rest told to wait."""

    def __init__(
        self,
        links: Links,
        source: ImageSource,
        *,
        max_downloads: int = 8,
        send_timeout: float = 30.0,
    ) -> None:
        self.links = links
        self._source = source
        self._downloads = asyncio.Semaphore(max_downloads)
        self._send_timeout = send_timeout

    def mount(self, app: web.Application) -> None:
        """GET (and HEAD) /files/{name} on the app, behind the server's own defences."""
        app.router.add_get(FILES_PATH, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        checked = self._check(request)
        if checked.verdict is not Verdict.VALID:
            logger.debug("http: refused a %s link to a file", checked.verdict.value)
            return _plain(403, FORGED if checked.verdict is Verdict.FORGED else EXPIRED)
        if self._downloads.locked():
            return _plain(503, BUSY, {"Retry-After": "5"})
        async with self._downloads:
            images = await self._source.load_images([checked.sha256])
            if not images:
                return _plain(404, GONE)
            return await self._send(request, images[0], checked)

    def _check(self, request: web.Request) -> Checked:
        expires, sig = request.query.getall("expires", []), request.query.getall("sig", [])
        if len(expires) != 1 or len(sig) != 1:
            return Checked(Verdict.FORGED)
        return self.links.check(request.match_info["name"], expires=expires[0], sig=sig[0])

    async def _send(
        self, request: web.Request, image: Image, checked: Checked
    ) -> web.StreamResponse:
        name = request.match_info["name"]
        response = web.StreamResponse(
            headers={
                "Content-Type": image.mime_type,
                "Content-Disposition": f'inline; filename="{name}"',
                "Cache-Control": f"private, max-age={self.links.seconds_left(checked.expires)}",
                "X-Content-Type-Options": "nosniff",
            }
        )
        response.content_length = len(image.data)
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        try:
            await self._stream(response, memoryview(image.data))
        except (TimeoutError, ConnectionError):
            logger.debug("http: a download of %s stopped before its end", name)
            if request.transport is not None:
                request.transport.abort()
            return response
        logger.info("http: served %s (%d bytes)", name, len(image.data))
        return response

    async def _stream(self, response: web.StreamResponse, data: memoryview) -> None:
        # One write of 20 MB would sit whole in the transport's buffer, with no deadline for
        # the client to read it: chunk by chunk, each waits until the client took the last.
        for start in range(0, len(data), CHUNK):
            async with asyncio.timeout(self._send_timeout):
                await response.write(data[start : start + CHUNK])
        await response.write_eof()


def _plain(status: int, text: str, extra: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text, headers={**_PLAIN, **(extra or {})})
