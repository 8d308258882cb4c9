"""Making one job's images: one call, one call for several (the API's `n`), or N in parallel.

Each image becomes its own turn, so a job asks for N images and gets back, per image, either
what that turn stores or the error that cost it its image.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from bot.engine.admission import JobGate, QueueCallback
from bot.errors import BotError, DeclinedError
from bot.models import Image, Source, Usage
from bot.upstream import Generation, GenerationRequest, ImageGenerator

Verify = Callable[[Image], Awaitable[Image]]

MISSING = "The model made fewer images than asked for; this one was not made."


@dataclass(frozen=True)
class Made:
    """One image of a job and what its turn stores with it."""

    image: Image
    parts_json: str
    usage: Usage
    text: str


@dataclass(frozen=True)
class Batch:
    """What a job's calls brought: per image asked for, what was made or why not."""

    results: tuple[Made | BotError, ...]
    sources: tuple[Source, ...] = ()
    possibly_billed: int = 0

    @property
    def made(self) -> tuple[Made, ...]:
        return tuple(result for result in self.results if isinstance(result, Made))

    def first_error(self) -> BotError | None:
        return next((r for r in self.results if isinstance(r, BotError)), None)


def _split_usage(usage: Usage, count: int) -> list[Usage]:
    """A call's tokens shared out over its images, the remainder on the first, one image each."""

    def share(total: int, index: int) -> int:
        return total // count + (total % count if index == 0 else 0)

    return [
        Usage(
            input_tokens=share(usage.input_tokens, index),
            output_tokens=share(usage.output_tokens, index),
            total_tokens=share(usage.total_tokens, index),
            images=1,
        )
        for index in range(count)
    ]


def _results(generation: Generation, wanted: int) -> list[Made | BotError]:
    images = generation.images[:wanted]
    usages = _split_usage(generation.usage, len(images))
    results: list[Made | BotError] = [
        Made(
            image=image,
            parts_json=generation.parts_for(index),
            usage=usages[index],
            text=generation.text,
        )
        for index, image in enumerate(images)
    ]
    results += [DeclinedError(MISSING) for _ in range(wanted - len(images))]
    return results


class Maker:
    """Runs a job's upstream calls, each inside a slot of the gate, outputs verified there."""

    def __init__(self, *, generator: ImageGenerator, gate: JobGate, verify: Verify) -> None:
        self._generator = generator
        self._gate = gate
        self._verify = verify

    async def make(
        self,
        upstream: GenerationRequest,
        *,
        count: int,
        per_call: int,
        on_queued: QueueCallback | None,
    ) -> Batch:
        """count images: in one call when the model returns that many at once, else count
        calls at once (each waiting for its own slot); one image: its error is raised."""
        if count == 1 or per_call >= count:
            generation = await self._call(replace(upstream, count=count), on_queued)
            return Batch(
                tuple(_results(generation, count)),
                sources=generation.sources,
                possibly_billed=generation.possibly_billed,
            )
        single = replace(upstream, count=1)
        answers = await asyncio.gather(
            *(self._call(single, on_queued) for _ in range(count)), return_exceptions=True
        )
        results: list[Made | BotError] = []
        sources: dict[str, Source] = {}
        billed = 0
        for answer in answers:
            if isinstance(answer, BotError):
                billed += answer.possibly_billed
                results.append(answer)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                results += _results(answer, 1)
                sources.update((source.uri, source) for source in answer.sources)
                billed += answer.possibly_billed
        return Batch(tuple(results), sources=tuple(sources.values()), possibly_billed=billed)

    async def _call(
        self, upstream: GenerationRequest, on_queued: QueueCallback | None
    ) -> Generation:
        """The upstream's answer, once every image in it decodes whole within its budget."""
        async with self._gate.slot(on_queued):
            generation = await self._generator.generate(upstream)
            # Checked inside the slot, so no more images are decoded at once than jobs run.
            images = tuple([await self._verify(image) for image in generation.images])
        return replace(generation, images=images)
