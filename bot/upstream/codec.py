"""The wire's codecs: compact JSON with base64 spliced in as bytes, and strict base64."""

from __future__ import annotations

import binascii
import functools
import json
import time
from collections.abc import Callable
from typing import Any

from pydantic_core import SchemaError, SchemaValidator, ValidationError, core_schema, from_json

from bot.errors import UnreadableResponse

# Image data (megabytes of base64) needs no JSON escaping: it is spliced into the body as the
# bytes it already is, so the JSON encoder never scans it and no str copy of it is made.
_SLOT = "\x00spliced\x00"
_SLOT_JSON = json.dumps(_SLOT)
_SPLICE_OVER = 4096
_JSON_VERBATIM = bytes(set(range(0x20, 0x7F)) - {ord('"'), ord("\\")})
_SLICE = 256 * 1024  # characters plain() checks between handing over the GIL
# One base64 call holds the GIL for its whole input: a few milliseconds up to these sizes
# (base64 characters; image bytes), about the interpreter's switch interval. Past them the
# work goes in steps of that size, handing over the GIL between steps.
_DECODE_WHOLE = 4 * 1024 * 1024
_ENCODE_WHOLE = _DECODE_WHOLE // 4 * 3
_URLSAFE = bytes.maketrans(b"-_", b"+/")


class Verbatim:
    """JSON string content that needs no escaping (base64, a data URL), held as bytes.

    encode_json splices the pieces in where the string goes, copying them once into the body.
    """

    __slots__ = ("pieces",)

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces

    def __str__(self) -> str:
        return b"".join(self.pieces).decode("ascii")


def loads(data: str | bytes) -> Any:
    """json.loads(data), by pydantic-core's parser (jiter), several times faster, when it can.

    What jiter accepts json accepts, as the same values; json still reads what jiter refuses
    (a BOM, UTF-16, lone surrogates, deep nesting) and gives the verdict, errors included.
    """
    try:
        return from_json(data, cache_strings="keys")
    except ValueError:
        return json.loads(data)


def dumps(value: Any) -> str:
    """Compact JSON, exactly as json.dumps would write it, faster for long plain strings."""
    try:
        return encode_json(value).decode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which a str holds and UTF-8 cannot
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_text)


def encode_json(value: Any) -> bytes:
    """dumps(value) as UTF-8, each Verbatim written as the JSON string of its text."""
    spliced: list[Verbatim] = []

    def slot(node: Any) -> str:
        if not isinstance(node, Verbatim):
            raise TypeError(f"Object of type {type(node).__name__} is not JSON serializable")
        spliced.append(node)
        return _SLOT

    text = json.dumps(_lighten(value), ensure_ascii=False, separators=(",", ":"), default=slot)
    pieces = text.split(_SLOT_JSON) if spliced else [text]
    if len(pieces) != len(spliced) + 1:  # the marker occurred in the data itself
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_text).encode()
    joined = [pieces[0].encode("utf-8")]
    for data, piece in zip(spliced, pieces[1:], strict=True):
        joined += [b'"', *data.pieces, b'"', piece.encode("utf-8")]
    return joined[0] if len(joined) == 1 else b"".join(joined)


def _lighten(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _lighten(item) for key, item in node.items()}
    if isinstance(node, list | tuple):
        return [_lighten(item) for item in node]
    if isinstance(node, str) and len(node) > _SPLICE_OVER and plain(node):
        return Verbatim(node.encode("ascii"))
    return node


def _text(node: Any) -> str:
    if isinstance(node, Verbatim):
        return str(node)
    raise TypeError(f"Object of type {type(node).__name__} is not JSON serializable")


def plain(text: str) -> bool:
    """Whether JSON writes text as it is: printable ASCII without quotes or backslashes."""
    # Deleting every character JSON leaves as is must leave nothing (fast on bytes). Long
    # texts go in slices, handing the GIL over between them.
    if not text.isascii():
        return False
    for start in range(0, len(text), _SLICE):
        if text[start : start + _SLICE].encode("ascii").translate(None, _JSON_VERBATIM):
            return False
        if len(text) > _SLICE:
            time.sleep(0)
    return True


def decode_base64(text: Any) -> bytes:
    """Strict base64 (standard or URL-safe alphabet); anything else is unreadable."""
    if not isinstance(text, str) or not text:
        raise UnreadableResponse("The image service sent an image without data.")
    tried = len(text) <= _DECODE_WHOLE
    if tried and (data := _fast(text)) is not None:
        return data
    if "\n" in text or "\r" in text or " " in text:
        text, tried = "".join(text.split()), False
    try:
        if len(text) <= _DECODE_WHOLE:
            return _decode(text, fast=not tried)
        return _decode_in_steps(text)
    except (binascii.Error, ValueError) as exc:  # non-ASCII text is a ValueError
        raise UnreadableResponse("The image service sent image data that is not base64.") from exc


def _fast(text: str) -> bytes | None:
    """The bytes of text if the fast reader takes it, else None for binascii to decide."""
    reader = _fast_base64()
    if reader is None or len(text) % 4:
        return None
    try:
        return reader(text)
    except ValidationError:
        return None


def _decode(text: str, *, fast: bool = True) -> bytes:
    data = _fast(text) if fast else None
    if data is not None:
        return data
    if "-" in text or "_" in text:
        return binascii.a2b_base64(text.encode("ascii").translate(_URLSAFE), strict_mode=True)
    return binascii.a2b_base64(text, strict_mode=True)


def _decode_in_steps(text: str) -> bytes:
    # Only bodies over a megabyte hold strings this long, and those are read in a worker
    # thread: handing the GIL over between steps lets the event loop in at once instead of
    # after a whole switch interval. Padding may end only the last step, as in one call.
    pieces = []
    for start in range(0, len(text), _DECODE_WHOLE):
        piece = text[start : start + _DECODE_WHOLE]
        if piece.endswith("=") and start + _DECODE_WHOLE < len(text):
            raise binascii.Error("data after padding")
        pieces.append(_decode(piece))
        time.sleep(0)
    return b"".join(pieces)


@functools.cache
def _fast_base64() -> Callable[[str], bytes] | None:
    """pydantic-core's base64 reader (pydantic's engine), if it reads as _decode relies on.

    It is several times faster than binascii. Whatever binascii's strict mode refuses it
    refuses too (whitespace included), except missing padding, kept out by the length check;
    some of what decode_base64 accepts (line breaks, mixed alphabets, stray low bits) it
    refuses, and then binascii decides. A version that does not decode, or is lax, is unused.
    Built on first use, not at import.
    """
    try:
        config = core_schema.CoreConfig(val_json_bytes="base64")
        reader = SchemaValidator(core_schema.bytes_schema(), config)
    except (SchemaError, TypeError, ValueError):
        return None

    def read(text: str) -> bytes:
        # With a bytes schema it takes the str itself; its stub names only the mapping form.
        data: bytes = reader.validate_strings(text)  # type: ignore[arg-type]
        return data

    try:
        decodes = [read(text) for text in ("QUJD", "-_-_", "+/8=", "QQ==")]
    except ValidationError:
        return None
    if decodes != [b"ABC", b"\xfb\xff\xbf", b"\xfb\xff", b"A"]:
        return None
    for bad in ("QQ==QQ==", "QU J", "QUJ\n", "QUJ\r", "Q===", "====", "QU=D", "QUJ\u00e9"):
        try:
            read(bad)
        except ValidationError:
            continue
        return None
    return read


def encode_base64(data: bytes) -> Verbatim:
    """The base64 of data, for encode_json to splice into a body without another copy."""
    if len(data) <= _ENCODE_WHOLE:
        return Verbatim(binascii.b2a_base64(data, newline=False))
    # Megabyte attachments are encoded in a worker thread; steps let the event loop in.
    view, pieces = memoryview(data), []
    for start in range(0, len(data), _ENCODE_WHOLE):  # whole 3-byte groups: they join exactly
        pieces.append(binascii.b2a_base64(view[start : start + _ENCODE_WHOLE], newline=False))
        time.sleep(0)
    return Verbatim(*pieces)
