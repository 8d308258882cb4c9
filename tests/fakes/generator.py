"""An in-process ImageGenerator: the engine's port without HTTP, for the fast engine tests.

It answers like a Gemini model: one image per call (`count` of them, each with its own parts,
when asked for several; a source when searching) whose pixels carry a serial number (so a
test can tell which image came back in a later turn), the model's parts in stored form, and a
thought signature for the models that think, which it checks is replayed on the next turn.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bot.errors import BotError, InvalidRequest
from bot.models import Image, Source, Usage
from bot.upstream import Generation, GenerationRequest, capabilities, check_request
from tests.fakes.gptproto_images import make_image, output_size


@dataclass
class Script:
    """What the next call does: fail with an error, or answer (after a delay) with text."""

    error: BotError | None = None
    text: str = ""
    delay: float = 0.0
    release: asyncio.Event | None = None  # when set, the call waits until the test sets it
    image: Image | None = None  # answer with exactly these bytes instead of a fresh image


@dataclass
class Call:
    """One recorded call and what it produced."""

    request: GenerationRequest
    serial: int
    produced: tuple[Image, ...] = ()

    @property
    def input_images(self) -> list[bytes]:
        return [image.data for image in self.request.images]

    @property
    def replayed(self) -> list[dict[str, Any]]:
        """The model parts sent back verbatim (thought signatures and restored images)."""
        return [
            json.loads(part.raw_json)
            for content in self.request.contents
            for part in content.parts
            if part.raw_json is not None
        ]

    @property
    def texts(self) -> list[str]:
        return [
            part.text
            for content in self.request.contents
            for part in content.parts
            if part.text is not None
        ]


@dataclass
class FakeGenerator:
    """Scriptable ImageGenerator; every call is recorded in `calls`."""

    calls: list[Call] = field(default_factory=list)
    signatures: set[str] = field(default_factory=set)
    in_flight: int = 0
    peak_in_flight: int = 0
    closed: bool = False
    _scripts: deque[Script] = field(default_factory=deque)
    _arrived: asyncio.Condition | None = None

    def queue(self, *scripts: Script) -> None:
        """Script the next calls in order; unscripted calls answer with an image."""
        self._scripts.extend(scripts)

    async def generate(self, request: GenerationRequest) -> Generation:
        check_request(request)
        call = Call(request, serial=len(self.calls) + 1)
        self.calls.append(call)
        await self._announce()
        script = self._scripts.popleft() if self._scripts else Script()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if script.release is not None:
                await script.release.wait()
            if script.delay:
                await asyncio.sleep(script.delay)
            self._check_replay(request)
            if script.error is not None:
                raise script.error
            return self._answer(call, script.text, script.image)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        self.closed = True

    async def wait_for_calls(self, count: int, *, within: float = 5.0) -> list[Call]:
        """Wait, with a deadline, until at least count calls have arrived."""
        condition = self._condition()
        async with asyncio.timeout(within), condition:
            await condition.wait_for(lambda: len(self.calls) >= count)
        return self.calls

    def _condition(self) -> asyncio.Condition:
        if self._arrived is None:
            self._arrived = asyncio.Condition()
        return self._arrived

    async def _announce(self) -> None:
        condition = self._condition()
        async with condition:
            condition.notify_all()

    def _check_replay(self, request: GenerationRequest) -> None:
        """A thinking model refuses a conversation whose earlier answer lost its signature."""
        if not capabilities(request.model).needs_signatures:
            return
        for content in request.contents:
            if content.role != "model":
                continue
            signed = [json.loads(part.raw_json) for part in content.parts if part.raw_json]
            if not any(part.get("thoughtSignature") in self.signatures for part in signed):
                raise InvalidRequest("the model's answer was replayed without its signature")

    def _answer(self, call: Call, text: str, given: Image | None = None) -> Generation:
        """count images (the API's `n`), each with its own parts; sources when searching."""
        request = call.request
        size = output_size(request.ratio, request.image_size)
        count = max(1, request.count)
        images = tuple(
            (given if given and index == 0 else None)
            or Image(make_image(call.serial, size, variant=index), "image/png")
            for index in range(count)
        )
        call.produced = images
        histories = tuple(
            self._parts(call, image, text, index) for index, image in enumerate(images)
        )
        sources = (
            (Source(f"Page {call.serial}", f"https://example.org/{call.serial}"),)
            if request.search
            else ()
        )
        return Generation(
            images=images,
            text=text,
            usage=Usage(
                input_tokens=10, output_tokens=1290 * count, total_tokens=10 + 1290 * count,
                images=count,
            ),
            parts_json=histories[0],
            finish_reason="STOP",
            candidate_parts=histories if count > 1 else (),
            sources=sources,
        )  # fmt: skip

    def _parts(self, call: Call, image: Image, text: str, index: int) -> str:
        # The stored form of an answer's part: the image named by its hash (bot.upstream.parts).
        part: dict[str, object] = {
            "inlineData": {"mimeType": image.mime_type, "sha256": image.sha256}
        }
        if capabilities(call.request.model).needs_signatures:
            signature = f"signature-{call.serial}-{index}"
            self.signatures.add(signature)
            part["thoughtSignature"] = signature
        parts = [*([{"text": text}] if text else []), part]
        return json.dumps(parts, separators=(",", ":"))
