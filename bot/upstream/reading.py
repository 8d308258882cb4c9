"""Answers read as a stream, decoded and counted as they arrive, never held beyond a cap.

httpx's own decoders inflate each network chunk in one call with no bound on the output: a
64 KiB chunk of gzip'd zeros becomes 64 MB at once, and a body gzip'd twice becomes gigabytes.
So the raw bytes are inflated here, at most PIECE decoded bytes per step, layer by layer.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

import httpx

# What one inflation step may produce: small enough that cap + PIECE is still the cap, large
# enough that a legitimate 34 MB answer takes a few dozen steps.
PIECE = 1024 * 1024
# A server that stacks more codings than this is not answering an API request.
MAX_CODINGS = 2
# What the client offers, so a server has no reason to use a coding read nowhere here.
ACCEPT_ENCODING = "gzip, deflate"

_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


@dataclass(frozen=True)
class Body:
    """What was read of a body: at most the cap, and how many decoded bytes came in all."""

    data: bytes
    read: int
    over: bool  # more than the cap arrived; `data` is cut at the cap


class _Inflater:
    """One content coding undone in bounded steps."""

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._zlib = zlib.decompressobj(_WBITS[coding])
        self._first = True

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of data, none over PIECE bytes."""
        pending = bool(data)
        while pending and not self._zlib.eof:
            piece = self._inflate(data)
            data = self._zlib.unconsumed_tail
            # A full piece may leave output inside zlib with no input left to push it out.
            pending = bool(data) or len(piece) == PIECE
            if piece:
                yield piece

    def _inflate(self, data: bytes) -> bytes:
        first, self._first = self._first, False
        try:
            return self._zlib.decompress(data, PIECE)
        except zlib.error as exc:
            # Some servers send "deflate" as a bare stream without the zlib header.
            if first and self._coding == "deflate":
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self._inflate(data)
            raise httpx.DecodingError(f"the {self._coding} stream is corrupt") from exc


def _inflaters(response: httpx.Response) -> list[_Inflater]:
    """The codings to undo, last applied first; one this client cannot read is refused."""
    codings = [
        value.strip().lower()
        for value in response.headers.get_list("content-encoding", split_commas=True)
        if value.strip().lower() not in ("", "identity")
    ]
    if len(codings) > MAX_CODINGS or any(coding not in _WBITS for coding in codings):
        raise httpx.DecodingError("the answer uses a content coding this client does not read")
    return [_Inflater(coding) for coding in reversed(codings)]


def _through(layers: Sequence[_Inflater], data: bytes) -> Iterator[bytes]:
    if not layers:
        if data:
            yield data
        return
    for piece in layers[0].feed(data):
        yield from _through(layers[1:], piece)


async def _decoded(response: httpx.Response) -> AsyncIterator[bytes]:
    layers = _inflaters(response)
    async for chunk in response.aiter_raw():
        for piece in _through(layers, chunk):
            yield piece


def declared_length(response: httpx.Response) -> int | None:
    """The decoded size the headers promise, when they can promise one (no coding)."""
    if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
        return None
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


async def read_capped(response: httpx.Response, limit: int, *, partial: bool = False) -> Body:
    """At most `limit` decoded bytes of the body; reading stops there and the response closes.

    A body over the limit comes back empty unless `partial` asks for what fitted: a refused
    answer is never joined into one more copy of itself.
    """
    kept: list[bytes] = []
    size = 0
    try:
        declared = declared_length(response)
        if declared is not None and declared > limit and not partial:
            return Body(b"", 0, over=True)
        async for piece in _decoded(response):
            if size + len(piece) > limit:
                kept = [*kept, piece[: limit - size]] if partial else []
                return Body(b"".join(kept), size + len(piece), over=True)
            kept.append(piece)
            size += len(piece)
        return Body(b"".join(kept), size, over=False)
    finally:
        await response.aclose()
