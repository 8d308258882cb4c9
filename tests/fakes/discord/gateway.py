"""The fake Discord gateway: HELLO, heartbeats, IDENTIFY -> READY + GUILD_CREATE, dispatches."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

logger = logging.getLogger(__name__)

HELLO, HEARTBEAT, IDENTIFY, RESUME, INVALID_SESSION, HEARTBEAT_ACK = 10, 1, 2, 6, 9, 11
DISPATCH = 0
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_DISALLOWED_INTENTS = 4014
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message content


class FakeGateway:
    """One websocket endpoint; every connected, identified session receives each dispatch."""

    def __init__(
        self,
        *,
        token: str,
        ready: Callable[[], dict[str, Any]],
        guild_create: Callable[[], dict[str, Any]],
        url: Callable[[], str],
    ) -> None:
        self._token = token
        self._ready = ready
        self._guild_create = guild_create
        self._url = url
        self.refuse_privileged_intents = False
        self.identifies: list[dict[str, Any]] = []
        self.heartbeats = 0
        self._sessions: list[web.WebSocketResponse] = []
        self._sequence = 0

    @property
    def connected(self) -> int:
        return len(self._sessions)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await self._send(socket, {"op": HELLO, "d": {"heartbeat_interval": 41_250}})
        try:
            async for frame in socket:
                if frame.type is not WSMsgType.TEXT:
                    continue
                await self._receive(socket, json.loads(frame.data))
        finally:
            if socket in self._sessions:
                self._sessions.remove(socket)
        return socket

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send an op-0 event to every identified session."""
        for socket in list(self._sessions):
            await self._send_event(socket, event, data)

    async def close_all(self) -> None:
        for socket in list(self._sessions):
            await socket.close()

    async def _receive(self, socket: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        if op == HEARTBEAT:
            self.heartbeats += 1
            await self._send(socket, {"op": HEARTBEAT_ACK, "d": None})
        elif op == IDENTIFY:
            await self._identify(socket, payload["d"])
        elif op == RESUME:
            await self._send(socket, {"op": INVALID_SESSION, "d": False})

    async def _identify(self, socket: web.WebSocketResponse, data: dict[str, Any]) -> None:
        self.identifies.append(data)
        if data.get("token") != self._token:
            await socket.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        if self.refuse_privileged_intents and int(data.get("intents", 0)) & PRIVILEGED_INTENTS:
            await socket.close(code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return
        ready = self._ready() | {"resume_gateway_url": self._url()}
        await self._send_event(socket, "READY", ready)
        await self._send_event(socket, "GUILD_CREATE", self._guild_create())
        self._sessions.append(socket)

    async def _send_event(self, socket: web.WebSocketResponse, event: str, data: Any) -> None:
        self._sequence += 1
        await self._send(socket, {"op": DISPATCH, "t": event, "s": self._sequence, "d": data})

    async def _send(self, socket: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        if socket.closed:
            return
        try:
            await socket.send_str(json.dumps(payload))
        except ConnectionError:
            logger.debug("gateway session went away before %s", payload.get("t") or payload["op"])
