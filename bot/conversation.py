"""What one turn sends upstream: the current image plus a bounded window of earlier prompts.

Sending the whole history would make turn N cost N images; the model only needs the picture
as it is now and a reminder of what was asked before, so a turn's cost stays flat.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from bot.models import Image, Turn
from bot.upstream import Content, GenerationRequest, Part

_INLINE_KEYS = ("inlineData", "inline_data")


def first_turn(
    *, model: str, prompt: str, images: Sequence[Image], ratio: str | None
) -> GenerationRequest:
    """A new picture from text and optional reference images."""
    parts = (Part(text=prompt), *(Part(image=image) for image in images))
    return GenerationRequest(model=model, contents=(Content("user", parts),), ratio=ratio)


def _context(earlier: Sequence[Turn]) -> str:
    listed = "\n".join(f"{index}. {turn.prompt}" for index, turn in enumerate(earlier, 1))
    return (
        "This image was made step by step in a conversation. "
        f"The earlier instructions, oldest first:\n{listed}"
    )


def refinement(
    *,
    model: str,
    prompt: str,
    current: Image,
    lineage: Sequence[Turn],
    extra: Sequence[Image],
    ratio: str | None,
    replay: bool,
) -> GenerationRequest:
    """Edit the current image; `lineage` ends with the turn that made it.

    With `replay` (Gemini 3 models) the last model answer goes back verbatim, thought
    signatures included, as the API requires; older turns travel as text only.
    """
    parent = lineage[-1]
    extras = tuple(Part(image=image) for image in extra)
    contents: tuple[Content, ...]
    if replay and parent.parts_json:
        before = lineage[:-1]
        asked = (*((Part(text=_context(before)),) if before else ()), Part(text=parent.prompt))
        answer = restore_parts(parent.parts_json, {current.sha256: current})
        contents = (
            Content("user", asked),
            Content("model", answer),
            Content("user", (Part(text=prompt), *extras)),
        )
    else:
        edit = (Part(image=current), Part(text=f"Now change the image: {prompt}"), *extras)
        contents = (Content("user", (Part(text=_context(lineage)), *edit)),)
    return GenerationRequest(model=model, contents=contents, ratio=ratio)


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
    """The stored parts (see reference_part) with the image bytes put back, ready to replay."""
    restored: list[Part] = []
    for part in json.loads(parts_json):
        found = _inline(part) if isinstance(part, dict) else None
        if found is not None and "sha256" in found[1]:
            key, inline = found
            image = images.get(inline["sha256"])
            if image is None:
                continue
            encoded = base64.b64encode(image.data).decode("ascii")
            part[key] = _swap(inline, "sha256", "data", encoded)
        restored.append(Part(raw_json=json.dumps(part, separators=(",", ":"))))
    return tuple(restored)
