"""A local gptproto: the three endpoint families over real HTTP, scripted per test, recording.

async with FakeGptProto() as fake:
    fake.queue(Outcome.overloaded(), Outcome.image("here it is"))
    ... point the client at fake.url ...
    request = (await fake.wait_for_requests(2))[-1]
    assert fake.image_serial(generation.images[0].data) == request.serial
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import deque
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes import gptproto_models
from tests.fakes.gptproto_images import image_serial
from tests.fakes.gptproto_made import make, thinks
from tests.fakes.gptproto_outcomes import Outcome
from tests.fakes.gptproto_render import (
    Call,
    Made,
    RecordedRequest,
    missing_signature,
    render,
    understand,
)
from tests.fakes.gptproto_streams import stream
from tests.fakes.local_server import serve_locally

__all__ = ["FakeGptProto", "Outcome", "RecordedRequest", "RecordedSleeps", "image_serial"]

_GEMINI_PATH = re.compile(r"^/v1(?:beta)?/models/([^/:]+):generateContent$")
_FAMILIES = {"/v1/images/generations": "images", "/v1/chat/completions": "chat"}


class RecordedSleeps:
    """A stand-in for asyncio.sleep that records the delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


class FakeGptProto:
    """The fake server; by default every generation request gets one fresh image."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        latency: float = 0.0,
        image_padding: int = 0,
        check_signatures: bool = True,
        check_models: bool = True,
    ) -> None:
        self.api_key = api_key  # when set, other keys get gptproto's 401
        self.latency = latency
        self.image_padding = image_padding
        self.check_signatures = check_signatures
        self.check_models = check_models  # refuse what each model cannot do (gptproto_models)
        self.gone: set[str] = set()  # model ids a test has shut down: 404 NOT_FOUND
        self.default = Outcome.image()
        self.requests: list[RecordedRequest] = []
        self.produced: list[bytes] = []
        self.signatures: set[str] = set()
        self._outcomes: deque[Outcome] = deque()
        self._files: dict[str, tuple[bytes, str]] = {}
        self._serial = 0
        self.in_flight = 0
        self.peak_in_flight = 0  # most generation requests being answered at once
        self.hold: asyncio.Event | None = None  # when set, answers wait until the test sets it
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    image_serial = staticmethod(image_serial)

    async def __aenter__(self) -> FakeGptProto:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve_locally(
            app, backlog=1024, access_log=None, shutdown_timeout=1.0
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def queue(self, *outcomes: Outcome) -> None:
        """Answer the next generation requests with these, in order; then the default."""
        self._outcomes.extend(outcomes)

    @property
    def pending(self) -> int:
        """Queued outcomes not yet used."""
        return len(self._outcomes)

    @property
    def generations(self) -> list[RecordedRequest]:
        """The generation requests (any family), in arrival order."""
        return [request for request in self.requests if request.family is not None]

    async def wait_for_in_flight(self, count: int, *, within: float = 10.0) -> None:
        """Wait, with a deadline, until count generation requests are being answered at once."""
        async with asyncio.timeout(within):
            while self.in_flight < count:  # noqa: ASYNC110 - in_flight is the thing awaited
                await asyncio.sleep(0.01)

    async def wait_for_requests(self, count: int, *, within: float = 5.0) -> list[RecordedRequest]:
        """The generation requests once there are at least `count`, or TimeoutError."""
        async with asyncio.timeout(within):
            while len(self.generations) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.generations

    # -- serving -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        parsed = await _parse(raw)
        family, model = _family(request, parsed)
        recorded = RecordedRequest(
            request.method, request.path, dict(request.headers), raw, parsed, family, model
        )
        if family is not None:
            self._serial += 1
            recorded.serial = self._serial
        self.requests.append(recorded)
        self._changed.set()
        if request.method == "GET" and request.path.startswith("/files/"):
            return self._serve_file(request.path.removeprefix("/files/"))
        if family is None or request.method != "POST":
            missing = Outcome.google_error(404, "NOT_FOUND", f"{request.path} was not found.")
            return _json_response(404, missing.error)
        if not self._authorised(request.headers.get("Authorization")):
            return _json_response(401, Outcome.invalid_signature().error)
        refusal = self._refusal(family, recorded)
        if refusal is not None:
            return _json_response(refusal.status, refusal.error)
        outcome = self._outcomes.popleft() if self._outcomes else self.default
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await self._pause(self.latency if outcome.delay is None else outcome.delay)
            if self.hold is not None:
                await self.hold.wait()
            return await self._answer(request, outcome, recorded)
        finally:
            self.in_flight -= 1

    async def _answer(
        self, request: web.Request, outcome: Outcome, recorded: RecordedRequest
    ) -> web.StreamResponse:
        if outcome.kind == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=200)
        if outcome.kind == "stream":
            return await stream(request, outcome, recorded, self._closing)
        if outcome.kind == "raw":
            return web.Response(
                status=outcome.status,
                body=outcome.body,
                headers={"Content-Type": outcome.content_type},
            )
        if outcome.kind == "error":
            return _json_response(outcome.status, outcome.error, dict(outcome.headers))
        assert recorded.family is not None and recorded.model is not None
        call = understand(recorded.family, recorded.model, recorded.serial, recorded.json)
        # A plain image costs about a millisecond: made on the loop, which beats contending
        # for the GIL; padded (megabyte) answers are made in a worker thread.
        if self.image_padding:
            made, body = await asyncio.to_thread(self._produce, outcome, call)
        else:
            made, body = self._produce(outcome, call)
        recorded.produced.extend(made.raw)
        self.produced.extend(recorded.produced)
        self.signatures.update(made.signatures)
        return web.Response(body=body, content_type="application/json")

    def _produce(self, outcome: Outcome, call: Call) -> tuple[Made, bytes]:
        made = self._make(outcome, call)
        text = json.dumps(render(outcome, call, made))
        # Image data goes in after encoding: json would only re-scan megabytes of base64.
        for marker, data in made.stand_ins:
            text = text.replace(marker, data)
        return made, text.encode()

    def _make(self, outcome: Outcome, call: Call) -> Made:
        return make(outcome, call, padding=self.image_padding, publish=self._publish)

    def host_file(self, name: str, data: bytes, mime: str) -> str:
        """Serve bytes at GET /files/<name> (like an image CDN); returns the URL."""
        self._files[name] = (data, mime)
        return f"{self.url}/files/{name}"

    def _publish(self, serial: int, index: int, mime: str, data: bytes) -> str:
        name = f"{serial}-{index}.{'jpg' if mime == 'image/jpeg' else 'png'}"
        return self.host_file(name, data, mime)

    def _serve_file(self, name: str) -> web.Response:
        if name not in self._files:
            return web.Response(status=404, text="not found")
        data, mime = self._files[name]
        return web.Response(body=data, content_type=mime)

    def _authorised(self, header: str | None) -> bool:
        if self.api_key is None:
            return True
        return header in (f"Bearer {self.api_key}", self.api_key)

    def _refusal(self, family: str, recorded: RecordedRequest) -> Outcome | None:
        model = recorded.model or ""
        if self.check_models:
            call = understand(family, model, recorded.serial, recorded.json)
            refused = gptproto_models.refusal(call, self.gone)
            if refused is not None:
                return refused
        if not (self.check_signatures and family == "gemini" and thinks(model)):
            return None
        problem = missing_signature(recorded.json, self.signatures)
        return Outcome.invalid_argument(problem) if problem else None

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)


def _family(request: web.Request, body: Any) -> tuple[str | None, str | None]:
    match = _GEMINI_PATH.match(request.path)
    if match:
        return "gemini", match.group(1)
    family = _FAMILIES.get(request.path)
    if family is None:
        return None, None
    model = body.get("model") if isinstance(body, dict) else None
    return family, str(model or "")


async def _parse(raw: bytes) -> Any:
    try:
        if len(raw) > 1_000_000:
            return await asyncio.to_thread(json.loads, raw)
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers,
    )
