"""What one turn sends upstream: the current image plus a bounded window of earlier prompts.

Sending the whole history would make turn N cost N images; the model only needs the picture
as it is now and a reminder of what was asked before, so a turn's cost stays flat.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import Image, Turn
from bot.upstream import Content, GenerationRequest, Part, restore_parts


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
    stored_as: str | None = None,
) -> GenerationRequest:
    """Edit the current image; `lineage` ends with the turn that made it.

    With `replay` (Gemini 3 models) the last model answer goes back verbatim, thought
    signatures included, as the API requires; older turns travel as text only. `stored_as`
    is the hash the answer's parts name the image by, when `current` is a converted copy.
    """
    parent = lineage[-1]
    extras = tuple(Part(image=image) for image in extra)
    contents: tuple[Content, ...]
    if replay and parent.parts_json:
        before = lineage[:-1]
        asked = (*((Part(text=_context(before)),) if before else ()), Part(text=parent.prompt))
        answer = restore_parts(parent.parts_json, {stored_as or current.sha256: current})
        contents = (
            Content("user", asked),
            Content("model", answer),
            Content("user", (Part(text=prompt), *extras)),
        )
    else:
        edit = (Part(image=current), Part(text=f"Now change the image: {prompt}"), *extras)
        contents = (Content("user", (Part(text=_context(lineage)), *edit)),)
    return GenerationRequest(model=model, contents=contents, ratio=ratio)
