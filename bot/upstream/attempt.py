"""One upstream attempt's bookkeeping: how far the request got, and what its failure means.

A request the upstream received whole may have made (and billed) an image even when the
answer never arrived, so the client tells that case apart from the ones that cost nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from bot.errors import BotError, ConfigError, Unavailable, UnreadableResponse, UpstreamTimeout
from bot.upstream.retry import Failure

# What an attempt's transport can raise: timeouts, httpx's errors, and aiohttp's as httpx's.
TRANSPORT_ERRORS = (TimeoutError, httpx.TransportError, httpx.DecodingError, httpx.InvalidURL)


class AttemptFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


@dataclass
class Progress:
    """How far one attempt got: whether the whole request went out, and the answer's status."""

    sent: bool = False
    status: int | None = None

    @property
    def possibly_billed(self) -> bool:
        """The upstream had the whole request and had not refused it: it may have made an
        image (and billed it) that a timeout or a dropped connection kept from us."""
        return self.sent and (self.status is None or 200 <= self.status < 300)


class TrackedBody(httpx.AsyncByteStream):
    """A request body that notes when the transport has taken its last byte."""

    def __init__(self, body: bytes, progress: Progress) -> None:
        self._body = body
        self._progress = progress

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._body
        # Both transports ask for the next chunk only once the previous one is written.
        self._progress.sent = True


def possibly_billed(error: BotError, count: int) -> BotError:
    """The error, carrying how many attempts may have been billed without a result (the
    engine records it in usage: `error.possibly_billed`)."""
    if count:
        error.possibly_billed = count
    return error


def transport_failure(exc: Exception) -> Failure:
    """What a timeout or transport error on one attempt amounts to."""
    if isinstance(exc, TimeoutError | httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return Failure(UpstreamTimeout(), True, "timeout")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.InvalidURL):
        config = ConfigError("GPTPROTO_BASE_URL or GPTPROTO_API_KEY is not usable over HTTP.")
        return Failure(config, False, "config")
    if isinstance(exc, httpx.DecodingError):
        return Failure(UnreadableResponse(), False, "unreadable")
    error = Unavailable(
        "The image service could not be reached or dropped the connection. "
        "Please try again in a few minutes."
    )
    return Failure(error, True, "connection")
