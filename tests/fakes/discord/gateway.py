"""The fake Discord gateway: HELLO, heartbeats, IDENTIFY -> READY + GUILD_CREATE, dispatches.

A session that identifies with a `shard` of [id, count] gets, as from Discord, only the guilds
and events of its shard ((guild_id >> 22) % count == id; DMs go to shard 0).
"""

from __future__ import annotations

import asyncio
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
        self._shards: dict[web.WebSocketResponse, tuple[int, int]] = {}
        self._sequence = 0
        self._changed = asyncio.Condition()
        self.disconnects: list[tuple[int, int] | None] = []  # the shard of each ended session
        self.most_connected: dict[tuple[int, int] | None, int] = {}  # per shard, at any moment

    @property
    def connected_shards(self) -> list[tuple[int, int] | None]:
        """The shard each identified session runs (None: unsharded), in connection order."""
        return [self._shards.get(socket) for socket in self._sessions]

    async def wait_until(self, condition: Callable[[], bool], *, within: float = 10.0) -> None:
        """Return once condition() holds, checked at each identify and disconnect."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(condition)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

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
                self.disconnects.append(self._shards.pop(socket, None))
                await self._notify()
        return socket

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send an op-0 event to every identified session."""
        for socket in list(self._sessions):
            if self._on_shard(socket, data.get("guild_id") if isinstance(data, dict) else None):
                await self._send_event(socket, event, data)

    def _on_shard(self, socket: web.WebSocketResponse, guild_id: object) -> bool:
        shard = self._shards.get(socket)
        if shard is None:
            return True
        shard_id, count = shard
        return (int(str(guild_id)) >> 22) % count == shard_id if guild_id else shard_id == 0

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
        if data.get("shard") is not None:
            shard_id, count = data["shard"]
            self._shards[socket] = (int(shard_id), int(count))
        ready = self._ready() | {"resume_gateway_url": self._url()}
        ready["guilds"] = [g for g in ready["guilds"] if self._on_shard(socket, g["id"])]
        await self._send_event(socket, "READY", ready)
        guild = self._guild_create()
        if self._on_shard(socket, guild["id"]):
            await self._send_event(socket, "GUILD_CREATE", guild)
        self._sessions.append(socket)
        shard = self._shards.get(socket)
        at_once = self.connected_shards.count(shard)
        self.most_connected[shard] = max(self.most_connected.get(shard, 0), at_once)
        await self._notify()

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
