"""What the gptproto fake refuses per model, as Google does: each model's own limits from the
bot's model table (bot.upstream.BUILTIN), ids that are gone, and 400 INVALID_ARGUMENT for the
rest. A client that checks before sending never sees these; a wrong check would."""

from __future__ import annotations

from bot.errors import UnknownModel
from bot.upstream import BUILTIN, ModelCapabilities
from tests.fakes.gptproto_outcomes import Outcome
from tests.fakes.gptproto_render import Call

MAX_N = 10  # gptproto's OpenAI-style endpoints take n from 1 to 10 (it makes N calls)


def row(model: str) -> ModelCapabilities | None:
    """The model's limits; None for an id the table lists as retired."""
    try:
        return BUILTIN.get(model)
    except UnknownModel:
        return None


def refusal(call: Call, gone: set[str]) -> Outcome | None:
    """Google's answer to what this model cannot do; None when it can."""
    caps = row(call.model)
    if caps is None or call.model in gone:
        return Outcome.model_not_found(call.model)
    return next((problem for problem in _problems(call, caps) if problem is not None), None)


def _problems(call: Call, caps: ModelCapabilities) -> list[Outcome | None]:
    name = f"models/{call.model}"
    invalid = Outcome.invalid_argument
    most = caps.max_candidates if call.family == "gemini" else MAX_N
    return [
        invalid(f"Unsupported aspect ratio {call.ratio} for {name}.")
        if call.ratio is not None and call.ratio not in caps.ratios
        else None,
        invalid(f"Image size {call.image_size} is not supported by {name}.")
        if call.image_size is not None and call.image_size not in caps.image_sizes
        else None,
        invalid(f"{name} accepts at most {caps.max_images} input images.")
        if call.user_images > caps.max_images
        else None,
        invalid(f"Multiple candidates is not enabled for {name} (at most {most}).")
        if not 1 <= call.candidates <= most
        else None,
        invalid(f"Search as tool is not enabled for {name}.")
        if call.search and not caps.grounding
        else None,
    ]
