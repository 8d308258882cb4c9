"""The gptproto client: one shared pool, three endpoint families, typed outcomes, retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as random_module
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, Literal, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from bot.errors import (
    AnswerTooLarge,
    BotError,
    ConfigError,
    Unavailable,
    UnreadableResponse,
)
from bot.models import Image
from bot.upstream.attempt import (
    TRANSPORT_ERRORS,
    AttemptFailed,
    Progress,
    TrackedBody,
    possibly_billed,
    transport_failure,
)
from bot.upstream.catalog import ModelTable
from bot.upstream.extract import conclude_fetched, digest, parse_json
from bot.upstream.payloads import encode_request, request_size, sniff_image
from bot.upstream.pools import Pools, Wire
from bot.upstream.port import BUILTIN, Api, Generation, GenerationRequest, check_request
from bot.upstream.reading import ACCEPT_ENCODING, read_capped
from bot.upstream.retry import Failure, RetryPolicy, classify_status

logger = logging.getLogger(__name__)

# Bodies above this are parsed, decoded and encoded in a worker thread so that one large
# image never stalls the event loop that serves every other job. Measured: reading a 512 KiB
# answer or encoding a 512 KiB image costs the loop about 1-1.5 ms, a thread hop about 0.1 ms.
LARGE_BODY = 512 * 1024
# The largest answer read before it is refused. A 4K PNG is 15-25 MB, about 34 MB as base64
# in JSON; twice that still leaves room for a second image or a verbose gateway, while a
# runaway or hostile body costs at most this much memory per job in flight.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# An error says what went wrong in a few hundred bytes; whatever follows is never needed.
MAX_ERROR_BYTES = 64 * 1024

P = ParamSpec("P")
T = TypeVar("T")


class UpstreamObserver(Protocol):
    """Receives one call per attempt and per retry (for metrics)."""

    def on_attempt(self, *, seconds: float, outcome: str) -> None: ...

    def on_retry(self, *, reason: str, delay: float) -> None: ...


class GptProtoClient:
    """An ImageGenerator that calls gptproto (or any compatible gateway) over HTTP."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        auth_scheme: Literal["bearer", "raw"] = "bearer",
        api: Api = Api.GEMINI,
        timeout: float = 180.0,
        max_attempts: int = 4,
        max_backoff: float = 30.0,
        max_total: float | None = None,
        max_connections: int = 4,
        observer: UpstreamObserver | None = None,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = random_module.random,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        transport: Wire = "aiohttp",
        models: ModelTable = BUILTIN,
    ) -> None:
        if timeout <= 0 or max_attempts < 1 or max_connections < 1 or max_answer_bytes < 1:
            raise ConfigError(
                "Upstream timeout, attempts, connections and answer size must be positive."
            )
        if transport not in ("aiohttp", "httpx"):
            raise ConfigError("UPSTREAM_TRANSPORT must be aiohttp or httpx.")
        self._max_answer_bytes = max_answer_bytes
        self._models = models
        self._base_url = base_url.rstrip("/")
        self._origin = _origin(self._base_url)
        self._api_key = api_key.strip()
        self._headers = _headers(self._api_key, auth_scheme)
        self._api = api
        self._timeout = timeout
        # Two full-length attempts' worth of time: enough for quick 5xx retries and a long
        # RetryInfo pause, while a hung upstream costs the user minutes rather than a quarter hour.
        self._max_total = max_total if max_total is not None else 2 * timeout
        self._policy = RetryPolicy(max_attempts=max_attempts, max_backoff=max_backoff)
        self._observer = observer
        self._http = http
        self._pools = Pools(max_connections=max_connections, timeout=timeout, wire=transport)
        self._sleep = sleep
        self._random = random

    def __repr__(self) -> str:
        return f"GptProtoClient(base_url={self._base_url!r}, api={self._api.value!r})"

    async def generate(self, request: GenerationRequest) -> Generation:
        """One image generation, retried on transient failures; every failure is a BotError."""
        caps = check_request(request, api=self._api, models=self._models)
        if request.image_size is not None and request.image_size not in caps.image_sizes:
            # The one size of a single-size model, named: such models refuse imageSize itself.
            request = replace(request, image_size=None)
        large = request_size(request) > LARGE_BODY
        path, body = await _offload(large, encode_request, self._api, request)
        return await self._call(self._base_url + path, body, request.model)

    async def aclose(self) -> None:
        """Close the connection pools this client created (an injected client stays open)."""
        await self._pools.aclose()

    @contextlib.asynccontextmanager
    async def _lease(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._http is not None:
            yield self._http
        else:
            async with self._pools.lease() as client:
                yield client

    async def _call(self, url: str, body: bytes, model: str) -> Generation:
        deadline = time.monotonic() + self._max_total
        failed = billed = 0  # billed: attempts that may have made an image we never got
        while True:
            started = time.monotonic()
            attempt_timeout = max(0.001, min(self._timeout, deadline - started))
            try:
                generation = await self._attempt(url, body, model, attempt_timeout)
            except AttemptFailed as exc:
                failure = exc.failure
                self._observe(started, failure.reason)
                failed += 1
                billed += failure.possibly_billed
                delay = self._next_delay(failure, failed, billed, deadline)
                if delay is None:
                    raise possibly_billed(failure.error, billed) from exc.__cause__
                if self._observer is not None:
                    self._observer.on_retry(reason=failure.reason, delay=delay)
                await self._sleep(delay)
            except BotError as error:
                self._observe(started, _snake(type(error).__name__))
                possibly_billed(error, billed)
                raise
            else:
                self._observe(started, "ok")
                return replace(generation, possibly_billed=billed) if billed else generation

    def _next_delay(
        self, failure: Failure, failed: int, billed: int, deadline: float
    ) -> float | None:
        """The pause before another attempt, or None to give up (and log why)."""
        delay = self._policy.delay(failed, failure.server_delay, self._random)
        # A second attempt that may be billed without a result is never risked.
        exhausted = failed >= self._policy.max_attempts or billed > 1
        if not failure.retryable or exhausted or delay >= deadline - time.monotonic():
            if failure.retryable:
                logger.warning(
                    "upstream gave up after %d attempt(s): %s%s",
                    failed,
                    failure.reason,
                    f" ({billed} possibly billed without a result)" if billed else "",
                )
            return None
        if failure.possibly_billed:
            logger.warning(
                "upstream attempt %d: the request was sent, then %s; an image may already "
                "have been made and billed. Retrying once in %.1f s",
                failed,
                failure.reason,
                delay,
            )
        else:
            logger.warning(
                "upstream attempt %d failed (%s); retrying in %.1f s", failed, failure.reason, delay
            )
        return delay

    async def _attempt(self, url: str, body: bytes, model: str, seconds: float) -> Generation:
        progress = Progress()
        headers = {**self._headers, "Content-Length": str(len(body))}
        try:
            async with asyncio.timeout(seconds):
                async with (
                    self._lease() as http,
                    http.stream(
                        "POST",
                        url,
                        content=TrackedBody(body, progress),
                        headers=headers,
                        timeout=seconds,
                    ) as response,
                ):
                    progress.status = response.status_code
                    return await self._read(response, model, http)
        except TRANSPORT_ERRORS as exc:
            failure = transport_failure(exc)
            if failure.retryable and progress.possibly_billed:
                failure = replace(failure, possibly_billed=True)
            raise AttemptFailed(failure) from exc

    async def _read(
        self, response: httpx.Response, model: str, http: httpx.AsyncClient
    ) -> Generation:
        if not 200 <= response.status_code < 300:
            error = await read_capped(response, MAX_ERROR_BYTES, partial=True)
            payload = _json_or_none(error.data)
            raise AttemptFailed(self._classify(response.status_code, payload, response, model))
        content = await self._read_answer(response, self._max_answer_bytes)
        large = len(content) > LARGE_BODY
        read = await _offload(large, digest, content)
        if isinstance(read, Generation):
            return read
        if isinstance(read, tuple):
            raise AttemptFailed(self._classify(*read, response, model))
        fetched: list[Image] = []
        room = self._max_answer_bytes - len(content)
        for url in read.image_urls:
            fetched.append(await self._fetch_image(url, http, room))
            room -= len(fetched[-1].data)
        large = large or sum(len(image.data) for image in fetched) > LARGE_BODY
        return await _offload(large, conclude_fetched, read, tuple(fetched))

    async def _read_answer(self, response: httpx.Response, limit: int) -> bytes:
        body = await read_capped(response, max(0, limit))
        if body.over:
            logger.warning(
                "upstream answer over %d bytes (%d read); stopped reading", limit, body.read
            )
            raise AnswerTooLarge(limit=self._max_answer_bytes, read=body.read)
        return body.data

    def _classify(self, status: int, payload: Any, response: httpx.Response, model: str) -> Failure:
        return classify_status(
            status, payload, response.headers, model=model, scrub=self._scrub, models=self._models
        )

    async def _fetch_image(self, url: str, http: httpx.AsyncClient, room: int) -> Image:
        # The key goes only to the upstream's own origin, never to a third-party image host.
        headers = {"Authorization": self._headers["Authorization"]}
        same_origin = _origin(url) == self._origin
        try:
            async with http.stream(
                "GET", url, headers=headers if same_origin else None
            ) as response:
                if response.status_code != 200:
                    raise UnreadableResponse(
                        "The image the service made could not be downloaded "
                        f"(HTTP {response.status_code})."
                    )
                data = await self._read_answer(response, room)
        except httpx.TransportError as exc:
            raise Unavailable("The image the service made could not be downloaded.") from exc
        mime = sniff_image(data, response.headers.get("content-type"))
        if mime is None:
            raise UnreadableResponse("The image the service made could not be downloaded.")
        return Image(data=data, mime_type=mime)

    def _scrub(self, text: str) -> str:
        return _SECRET_LIKE.sub("[redacted]", text.replace(self._api_key, "[redacted]"))

    def _observe(self, started: float, outcome: str) -> None:
        if self._observer is not None:
            self._observer.on_attempt(seconds=time.monotonic() - started, outcome=outcome)


# Upstreams sometimes echo a (masked) key back; anything shaped like one is withheld.
_SECRET_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{6,}")


async def _offload(large: bool, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    if large:
        return await asyncio.to_thread(function, *args, **kwargs)
    return function(*args, **kwargs)


def _headers(api_key: str, auth_scheme: Literal["bearer", "raw"]) -> dict[str, str]:
    """The request headers; a key no header can carry is refused before any call."""
    if not api_key:
        raise ConfigError("GPTPROTO_API_KEY is empty.")
    if not api_key.isascii() or not api_key.isprintable() or " " in api_key:
        raise ConfigError("GPTPROTO_API_KEY holds characters an HTTP header cannot carry.")
    authorization = f"Bearer {api_key}" if auth_scheme == "bearer" else api_key
    return {
        "Authorization": authorization,
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Accept-Encoding": ACCEPT_ENCODING,
    }


def _json_or_none(content: bytes) -> Any:
    try:
        return parse_json(content)
    except UnreadableResponse:
        return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    return (parts.scheme, (parts.hostname or "").lower(), port)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
