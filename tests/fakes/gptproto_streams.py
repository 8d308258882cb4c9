"""Hostile bodies for the gptproto fake: a gzip bomb and a body that never ends, both streamed.

Neither is ever held whole: the bomb is about a megabyte that inflates to a gibibyte, and the
endless body is one small chunk written again and again until the client hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import struct
import zlib
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.gptproto_outcomes import Outcome
    from tests.fakes.gptproto_render import RecordedRequest

CHUNK = 64 * 1024
_MEBIBYTE = bytes(1024 * 1024)
# A gzip member with no name, no mtime, and "unknown" OS: only the deflate data varies.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


@functools.cache
def gzip_of_zeros(mebibytes: int = 1024) -> bytes:
    """A valid gzip member of `mebibytes` MiB of zeros, built in a fraction of a second.

    Compressing a gibibyte takes seconds; after a full flush the compressor forgets its
    window, so every further mebibyte of zeros compresses to the same block, made once.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(_MEBIBYTE) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(_MEBIBYTE, crc)
    size = (mebibytes * len(_MEBIBYTE)) & 0xFFFFFFFF
    deflated = block * mebibytes + compressor.flush()
    return _GZIP_HEADER + deflated + struct.pack("<II", crc, size)


async def stream(
    request: web.Request, outcome: Outcome, recorded: RecordedRequest, closing: asyncio.Event
) -> web.StreamResponse:
    """Write the outcome's body in chunks, forever when it repeats, counting what was written."""
    response = web.StreamResponse(status=outcome.status, headers=dict(outcome.headers))
    response.content_type = outcome.content_type
    response.enable_chunked_encoding()
    await response.prepare(request)
    body = memoryview(outcome.body)
    with contextlib.suppress(ConnectionError):  # the client hung up, as a capped reader does
        while not closing.is_set():
            for start in range(0, len(body), CHUNK):
                chunk = body[start : start + CHUNK]
                await response.write(chunk)
                recorded.streamed += len(chunk)
            if not outcome.repeat:
                await response.write_eof()
                break
    return response
