"""What one turn sends upstream: the current image plus a bounded window of earlier prompts.

Sending the whole history would make turn N cost N images; the model only needs the picture
as it is now and a reminder of what was asked before, so a turn's cost stays flat.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
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


_EDGE = 4096  # base64 characters compared at each end of an image (3 KB of it)
_SPOTS = 32  # and this many short stretches in between


def _encodes(data: str, image: Image) -> bool:
    """Whether base64 `data` is `image`, told from its length, its ends and spots in between.

    The parts and the outputs come from the same answer; this pairs them for a fraction of
    the cost of decoding megabytes of base64 a second time and hashing the result. Anything
    unusual (line breaks, the URL-safe alphabet) is not paired here and is decoded in full.
    """
    if len(data) != 4 * ((len(image.data) + 2) // 3):
        return False
    groups = len(data) // 4  # of 4 characters, each 3 bytes of the image
    edges = {0, max(0, groups - _EDGE // 4)}
    for group in edges | {groups * k // _SPOTS for k in range(1, _SPOTS)}:
        text = data[group * 4 : group * 4 + (_EDGE if group in edges else 64)]
        try:
            decoded = binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            return False
        if image.data[group * 3 : group * 3 + len(decoded)] != decoded:
            return False
    return True


def compact_parts(parts_json: str, outputs: Sequence[Image]) -> str:
    """Swap output images' base64 in the model's parts for their hash: the bytes are stored once."""
    try:
        parts = json.loads(parts_json)
    except ValueError:
        return "[]"
    if not isinstance(parts, list):
        return "[]"
    known = {image.sha256 for image in outputs}
    for part in parts:
        found = _inline(part) if isinstance(part, dict) else None
        if found is None:
            continue
        key, inline = found
        data = inline.get("data")
        if not isinstance(data, str):
            continue
        output = next((image for image in outputs if _encodes(data, image)), None)
        if output is not None:
            digest = output.sha256
        else:
            digest = hashlib.sha256(base64.b64decode(data)).hexdigest()
        if digest in known:
            part[key] = _swap(inline, "data", "sha256", digest)
    return json.dumps(parts, separators=(",", ":"))


def restore_parts(parts_json: str, images: Mapping[str, Image]) -> tuple[Part, ...]:
    """The stored parts with image bytes put back, each ready to be replayed verbatim."""
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
