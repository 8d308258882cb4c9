"""The images of one gptproto fake answer: per candidate, drafts and finals, tagged and cheap."""

from __future__ import annotations

from collections.abc import Callable

from tests.fakes import gptproto_models
from tests.fakes.gptproto_images import encoded_image, output_size, signature, stand_in
from tests.fakes.gptproto_outcomes import Outcome
from tests.fakes.gptproto_render import Call, Made

Publish = Callable[[int, int, str, bytes], str]  # (serial, index, mime, data) -> its URL
_DRAFT_SIZE = (256, 256)


def make(outcome: Outcome, call: Call, *, padding: int, publish: Publish) -> Made:
    """The images one answer carries: per candidate, its drafts and final images."""
    if outcome.kind != "image":
        return Made()
    size = output_size(call.ratio, call.image_size)
    candidates = max(1, call.candidates)
    encoded = [
        encoded_image(
            call.serial, size, mime=outcome.mime, padding=padding,
            variant=index, noise=outcome.noise,
        )
        for index in range(candidates * outcome.count)
    ]  # fmt: skip
    drafted = [
        encoded_image(call.serial, _DRAFT_SIZE, variant=100 + index)
        for index in range(candidates * outcome.drafts)
    ]
    stand_ins = [stand_in(i, data) for i, (_, data) in enumerate([*encoded, *drafted])]
    images = tuple((outcome.mime, marker) for _, _, marker in stand_ins[: len(encoded)])
    signed_drafts = tuple(("image/png", marker) for _, _, marker in stand_ins[len(encoded) :])
    raw = tuple(data for data, _ in encoded)
    thinking = outcome.thinking
    if thinking is None:
        thinking = thinks(call.model) and call.family == "gemini"
    drafts: tuple[tuple[str, str], ...] = ()
    signatures: tuple[str, ...] = ()
    if thinking or outcome.drafts:
        per_candidate = outcome.count + outcome.drafts + (1 if outcome.text else 0)
        signatures = tuple(signature() for _ in range(candidates * per_candidate))
    if thinking:
        stand_ins.append(stand_in(len(stand_ins), encoded_image(call.serial, _DRAFT_SIZE)[1]))
        drafts = (("image/png", stand_ins[-1][2]),)
    urls: tuple[str, ...] = ()
    if outcome.shape == "url":
        urls = tuple(publish(call.serial, i, outcome.mime, d) for i, d in enumerate(raw))
    return Made(
        images=images,
        raw=raw,
        drafts=drafts,
        signed_drafts=signed_drafts,
        draft_raw=tuple(data for data, _ in drafted),
        candidates=candidates,
        urls=urls,
        signatures=signatures,
        stand_ins=tuple((marker, data) for marker, data, _ in stand_ins),
    )


def thinks(model: str) -> bool:
    """Whether the model signs its parts (and so must get them back): its table row says."""
    caps = gptproto_models.row(model)
    return caps.needs_signatures if caps is not None else model.startswith("gemini-3")
