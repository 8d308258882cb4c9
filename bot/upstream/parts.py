"""The parts codec: model parts stored with each image's bytes swapped for its hash, and back.

An answer's parts are kept verbatim (thought signatures must be replayed byte for byte), but
their images are already stored once by sha256; the stored form names the image instead.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from bot.models import Image
from bot.upstream.port import Part

_INLINE_KEYS = ("inlineData", "inline_data")
_MIME_KEYS = ("mimeType", "mime_type")


def _swap(mapping: Mapping[str, Any], old: str, new: str, value: str) -> dict[str, Any]:
    """The mapping with one key replaced in place, so the part keeps its field order."""
    return {
        (new if key == old else key): (value if key == old else v) for key, v in mapping.items()
    }


def _inline(part: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    for key in _INLINE_KEYS:
        value = part.get(key)
        if isinstance(value, Mapping):
            return key, value
    return None


def reference_part(part: Mapping[str, Any], image: Image) -> dict[str, Any]:
    """The part with its image's base64 swapped for the image's hash: bytes are stored once."""
    found = _inline(part)
    if found is None:
        return dict(part)
    key, inline = found
    return {**part, key: _swap(inline, "data", "sha256", image.sha256)}


def restore_parts(parts_json: str, images: Mapping[str, Image]) -> tuple[Part, ...]:
    """The stored parts (see reference_part) with the image bytes put back, ready to replay.

    `images` maps each stored hash to the image to send in its place, which may be a converted
    copy: its own bytes and mime type go in, the part's signature stays as it was.
    """
    restored: list[Part] = []
    for part in json.loads(parts_json):
        found = _inline(part) if isinstance(part, dict) else None
        if found is not None and "sha256" in found[1]:
            key, inline = found
            image = images.get(inline["sha256"])
            if image is None:
                continue
            encoded = base64.b64encode(image.data).decode("ascii")
            part[key] = _typed(_swap(inline, "sha256", "data", encoded), image.mime_type)
        restored.append(Part(raw_json=json.dumps(part, separators=(",", ":"))))
    return tuple(restored)


def _typed(inline: dict[str, Any], mime: str) -> dict[str, Any]:
    """The inline data declaring this mime type, in whichever spelling it already used."""
    for key in _MIME_KEYS:
        if key in inline:
            inline[key] = mime
            return inline
    return {_MIME_KEYS[0]: mime, **inline}
