"""A fake Slack on 127.0.0.1, port 0: the Web API, the upload and file hosts, Socket Mode."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.local_server import serve_locally
from tests.fakes.slack.workspace import Ephemeral, Hosted, Message, Upload, Workspace, error

LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Slack</title></head>"
    "<body><h1>Sign in to your workspace</h1></body></html>"
)


@dataclass
class Call:
    """One request the fake received: the API method and its merged parameters."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: bytes = b""

    @property
    def token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


class FakeSlack:
    """The Slack the bot talks to; records every call (with parameters and bytes)."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.workspace = Workspace(team_id=team_id, bot_user_id=bot_user_id, bot_id=bot_id)
        self.calls: list[Call] = []
        self.downloads: list[Call] = []
        self.acks: list[dict[str, Any]] = []
        self.failures: dict[str, str] = {}
        self.redirects: dict[str, str] = {}
        self.scopes = {"files:read", "files:write", "chat:write", "reactions:write"}
        self._hosted: dict[str, Hosted] = {}
        self._changed = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> FakeSlack:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files-pri/{path:.*}", self._private_file)
        app.router.add_get("/socket", self._socket)
        self._runner, self.port = await serve_locally(app)
        self.workspace.socket_url = f"ws://127.0.0.1:{self.port}/socket"
        self.workspace.upload_base = f"{self.base}/upload"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for socket in self._sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The SLACK_API_URL that points a client at this fake."""
        return f"{self.base}/api/"

    @property
    def uploads(self) -> list[Upload]:
        return self.workspace.uploads

    @property
    def ephemerals(self) -> list[Ephemeral]:
        return self.workspace.ephemerals

    @property
    def messages(self) -> dict[tuple[str, str], Message]:
        return self.workspace.messages

    @property
    def reactions(self) -> dict[tuple[str, str], set[str]]:
        return self.workspace.reactions

    # -- scripting ------------------------------------------------------------------------

    def add_file(
        self,
        name: str,
        data: bytes,
        *,
        mimetype: str = "image/png",
        size: int | None = None,
        encoding: str | None = None,
    ) -> dict[str, Any]:
        """Host a private file; returns the file object an event carries (declaring `size`)."""
        hosted = Hosted(data, mimetype, encoding=encoding)
        return self._host(name, hosted, size=len(data) if size is None else size)

    def add_growing_file(
        self, name: str, data: bytes, *, padding: int, mimetype: str = "image/png"
    ) -> dict[str, Any]:
        """A file that declares len(data) bytes but sends `padding` more, with no length."""
        return self._host(name, Hosted(data, mimetype, padding), size=len(data))

    def _host(self, name: str, hosted: Hosted, *, size: int) -> dict[str, Any]:
        file_id = self.workspace.new_id("F")
        path = f"/files-pri/{self.workspace.team_id}-{file_id}/{name}"
        self._hosted[path] = hosted
        info = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": hosted.mimetype,
            "filetype": name.rsplit(".", 1)[-1],
            "size": size,
            "url_private": f"{self.base}{path}",
            "url_private_download": f"{self.base}{path}?download=1",
        }
        self.workspace.files[file_id] = info
        return info

    def redirect(self, path: str, location: str) -> str:
        """Make /files-pri{path} answer 302 to location; returns its full URL."""
        self.redirects[path] = location
        return f"{self.base}/files-pri{path}"

    def fail(self, method: str, error_code: str) -> None:
        """Make every later call of a method answer ok=false with that error."""
        self.failures[method] = error_code

    # -- observing --------------------------------------------------------------------------

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        *,
        count: int = 1,
        within: float = 10.0,
    ) -> list[Call]:
        """Wait until count calls of a method (matching predicate) were recorded."""

        def matching() -> list[Call]:
            return [
                call
                for call in self.calls
                if call.method == method and (predicate is None or predicate(call))
            ]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(matching()) >= count), within)
        return matching()

    def called(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def thread_messages(self, channel: str, thread_ts: str) -> list[Message]:
        return self.workspace.thread_messages(channel, thread_ts)

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    # -- the Web API ----------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        body = await request.read()
        if request.content_type == "application/json" and body:
            params.update(json.loads(body))
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        call = Call(method, params, dict(request.headers), body)
        await self._record(call)
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        handler = self.workspace.method(method)
        if call.token != expected:
            answer = error("invalid_auth")
        elif method in self.failures:
            answer = error(self.failures[method])
        elif handler is None:
            answer = error("unknown_method")
        else:
            answer = handler(params)
        return web.json_response(answer)

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        data = await request.read()
        await self._record(Call("upload", {"file_id": file_id}, dict(request.headers), data))
        pending = self.workspace.pending_uploads
        if file_id not in pending:
            return web.Response(status=404, text="not found")
        pending[file_id] = (pending[file_id][0], data)
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def _private_file(self, request: web.Request) -> web.StreamResponse:
        """Private files need the bot token; without it Slack answers its login page (200)."""
        call = Call("download", {"path": request.path}, dict(request.headers))
        self.downloads.append(call)
        await self._record(call)
        tail = request.path.removeprefix("/files-pri")
        if tail in self.redirects:
            raise web.HTTPFound(self.redirects[tail])
        readable = call.token == self.bot_token and "files:read" in self.scopes
        if not readable or request.path not in self._hosted:
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        return await self._send(request, self._hosted[request.path])

    async def _send(self, request: web.Request, hosted: Hosted) -> web.StreamResponse:
        """The body in chunks; `download.end` records how much went out before it stopped."""
        response = web.StreamResponse(headers={"Content-Type": hosted.mimetype})
        if hosted.encoding:
            response.headers["Content-Encoding"] = hosted.encoding
        if hosted.padding:
            response.enable_chunked_encoding()
        else:
            response.content_length = len(hosted.data)
        await response.prepare(request)
        sent, complete = 0, False
        try:
            for chunk in hosted.chunks():
                await response.write(chunk)
                sent += len(chunk)
            await response.write_eof()
            complete = True
        except ConnectionError:
            pass  # the client stopped reading and hung up
        end = {"path": request.path, "sent": sent, "complete": complete}
        await self._record(Call("download.end", end, {}))
        return response

    # -- Socket Mode -------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await self._record(Call("socket.connect", {}, dict(request.headers)))
        await socket.send_json({"type": "hello", "num_connections": 1})
        async for frame in socket:
            if frame.type == WSMsgType.TEXT:
                ack = json.loads(frame.data)
                self.acks.append(ack)
                await self._record(Call("socket.ack", ack, {}))
        return socket

    async def send_envelope(
        self,
        payload: dict[str, Any],
        *,
        kind: str = "events_api",
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Send an envelope to every connected Socket Mode client; returns its envelope_id."""
        envelope_id = self.workspace.new_id("env-")
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        for socket in self._sockets:
            if not socket.closed:
                await socket.send_json(envelope)
        return envelope_id
