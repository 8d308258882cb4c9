"""The parts codec: model parts stored with each image's bytes swapped for its hash, and back.

An answer's parts are kept verbatim (thought signatures must be replayed byte for byte), but
their images are already stored once by sha256; the stored form names the image instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bot.models import Image
from bot.upstream.codec import encode_base64, loads
from bot.upstream.port import Part

_INLINE_KEYS = ("inlineData", "inline_data")
_MIME_KEYS = ("mimeType", "mime_type")


def _swap(mapping: Mapping[str, Any], old: str, new: str, value: object) -> dict[str, Any]:
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
    copy: its own bytes and mime type go in, the part's signature stays as it was. Nothing is
    written yet: the parts' JSON and base64 are, with the request, off the loop when large.
    """
    restored: list[Part] = []
    for part in loads(parts_json):
        if not isinstance(part, dict):
            restored.append(Part(raw_json=json.dumps(part, separators=(",", ":"))))
            continue
        found = _inline(part)
        if found is None or "sha256" not in found[1]:
            restored.append(Part(raw_json=_Stored(part)))
        elif (image := images.get(found[1]["sha256"])) is not None:
            restored.append(Part(raw_json=_Stored(part, image, found[0])))
    return tuple(restored)


@dataclass(frozen=True, eq=False)
class _Stored:
    """A stored part to replay (see port.Replayed), with its image put back when it names one."""

    part: dict[str, Any] = field(repr=False)  # as stored; never changed
    image: Image | None = field(default=None, repr=False)
    key: str = ""  # which of _INLINE_KEYS names the image

    @property
    def size(self) -> int:
        return _weight(self.part) + (len(self.image.data) // 3 * 4 if self.image else 0)

    @cached_property
    def json(self) -> str:
        return json.dumps(self.value(), separators=(",", ":"), default=str)

    def value(self) -> dict[str, Any]:
        if self.image is None:
            return self.part
        inline = _swap(self.part[self.key], "sha256", "data", encode_base64(self.image.data))
        return {**self.part, self.key: _typed(inline, self.image.mime_type)}


def _weight(node: Any) -> int:
    """About how many bytes a parsed JSON value takes written out."""
    if isinstance(node, str):
        return len(node) + 2
    if isinstance(node, dict):
        return sum(len(key) + 3 + _weight(value) for key, value in node.items()) + 2
    if isinstance(node, list):
        return sum(_weight(value) + 1 for value in node) + 2
    return 8


def _typed(inline: dict[str, Any], mime: str) -> dict[str, Any]:
    """The inline data declaring this mime type, in whichever spelling it already used."""
    for key in _MIME_KEYS:
        if key in inline:
            inline[key] = mime
            return inline
    return {_MIME_KEYS[0]: mime, **inline}
