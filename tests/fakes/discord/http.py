"""Plumbing of the fake Discord REST API: recorded calls, Discord's error shape, bodies."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_REQUEST_BYTES = 25 * 1024 * 1024  # every file of one request together
MAX_FILES = 10
MAX_ROWS = 5
MAX_CONTENT_CHARS = 2000
MAX_CUSTOM_ID_CHARS = 100
MESSAGE_ROUTES = ("message_create", "message_edit", "followup_create", "webhook_message_edit")


@dataclass(frozen=True)
class UploadedFile:
    """One `files[n]` part of a multipart request."""

    name: str
    filename: str
    data: bytes = field(repr=False)


@dataclass
class Call:
    """One request the fake received, as parsed, with what it answered."""

    route: str
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    files: list[UploadedFile]
    at: float
    status: int = 0
    response: Any = None
    index: int = -1  # position in the recorder's list


@dataclass(frozen=True)
class RawBody:
    """A non-JSON answer (files on the CDN)."""

    data: bytes = field(repr=False)
    content_type: str


class DiscordHTTPError(Exception):
    """Answered as Discord's error body: {"message": ..., "code": ...}."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_response(data: Any, *, status: int = 200) -> web.Response:
    # discord.py decodes JSON only when the content type is exactly application/json.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


async def read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
    """JSON body, or multipart `payload_json` + `files[n]`."""
    if request.content_type == "multipart/form-data":
        payload: Any = None
        files: list[UploadedFile] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            data = bytes(await part.read())
            if part.name == "payload_json":
                payload = json.loads(data)
            else:
                files.append(UploadedFile(part.name or "", part.filename or "", data))
        return payload, files
    if request.can_read_body:
        return await request.json(), []
    return None, []


def check_message_body(payload: dict[str, Any], files: list[UploadedFile]) -> None:
    """The limits Discord enforces on a message create or edit."""
    content = payload.get("content") or ""
    if len(content) > MAX_CONTENT_CHARS:
        raise DiscordHTTPError(
            400,
            50035,
            f"Invalid Form Body: content must be {MAX_CONTENT_CHARS} or fewer in length.",
        )
    for upload in files:
        if len(upload.data) > MAX_FILE_BYTES:
            raise DiscordHTTPError(413, 40005, "Request entity too large")
    if sum(len(upload.data) for upload in files) > MAX_REQUEST_BYTES:
        raise DiscordHTTPError(413, 40005, "Request entity too large")
    if len(files) > MAX_FILES:
        raise DiscordHTTPError(400, 50035, "Invalid Form Body: at most 10 files")
    seen: set[str] = set()
    rows = payload.get("components") or []
    if len(rows) > MAX_ROWS:
        raise DiscordHTTPError(400, 50035, "Invalid Form Body: at most 5 action rows")
    for row in rows:
        children = row.get("components", [])
        if row.get("type") != 1 or not 1 <= len(children) <= 5:
            raise DiscordHTTPError(400, 50035, "Invalid Form Body: bad action row")
        for child in children:
            custom_id = child.get("custom_id", "")
            if len(custom_id) > MAX_CUSTOM_ID_CHARS or custom_id in seen:
                raise DiscordHTTPError(400, 50035, "Invalid Form Body: bad custom_id")
            seen.add(custom_id)


Handler = Callable[[web.Request, Call], Awaitable[tuple[int, Any]]]


class Recorder:
    """Keeps every call; tests wait for one with a deadline instead of sleeping."""

    def __init__(self, *, token: str) -> None:
        self._token = token
        self.calls: list[Call] = []
        self.hooks: list[Callable[[Call], None]] = []
        self._changed = asyncio.Condition()

    def wrap(self, route: str, handler: Handler, *, auth: bool = True) -> Any:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            payload, files = await read_body(request)
            call = Call(
                route=route,
                method=request.method,
                path=request.path,
                params=dict(request.match_info),
                query=dict(request.query),
                headers=dict(request.headers),
                json=payload,
                files=files,
                at=time.monotonic(),
            )
            for hook in self.hooks:
                hook(call)
            try:
                if auth and request.headers.get("Authorization") != f"Bot {self._token}":
                    raise DiscordHTTPError(401, 0, "401: Unauthorized")
                call.status, call.response = await handler(request, call)
            except DiscordHTTPError as exc:
                call.status, call.response = exc.status, {"message": exc.message, "code": exc.code}
            await self._record(call)
            if call.status == 204:
                return web.Response(status=204)
            if isinstance(call.response, RawBody):
                raw = call.response
                return web.Response(body=raw.data, content_type=raw.content_type)
            return json_response(call.response, status=call.status)

        return endpoint

    async def _record(self, call: Call) -> None:
        async with self._changed:
            call.index = len(self.calls)
            self.calls.append(call)
            self._changed.notify_all()

    def of(self, route: str) -> list[Call]:
        return [call for call in self.calls if call.route == route]

    def message_bodies(self) -> list[dict[str, Any]]:
        """Every message the bot sent or edited, as its JSON (or multipart payload_json) body."""
        bodies = []
        for call in self.calls:
            if not isinstance(call.json, dict):
                continue
            if call.route in MESSAGE_ROUTES:
                bodies.append(call.json)
            elif call.route == "interaction_callback" and call.json.get("type") in (4, 7):
                bodies.append(call.json.get("data") or {})
        return bodies

    async def wait_for(
        self,
        route: str,
        where: Callable[[Call], bool] = lambda call: True,
        *,
        count: int = 1,
        within: float = 10.0,
    ) -> list[Call]:
        """The first `count` calls of a route matching `where`, once they have all arrived."""

        def matching() -> list[Call]:
            return [call for call in self.of(route) if where(call)]

        try:
            async with self._changed:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(matching()) >= count), within
                )
                return matching()[:count]
        except TimeoutError:
            seen = "\n".join(f"  {c.method} {c.path} -> {c.status}" for c in self.calls)
            raise AssertionError(
                f"no {count} matching {route!r} call(s) within {within} s; calls:\n{seen}"
            ) from None
