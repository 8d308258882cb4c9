"""Gateway connections, one discord.py client per shard, so each shard can come and go alone.

A process may take a shard over while it runs others, or lose one to another process; one
client per shard lets it connect or close that shard without touching the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import NoReturn

import aiohttp
import discord

from adapters.discord.client import BananaClient
from bot.errors import ConfigError, Unavailable

logger = logging.getLogger(__name__)

INTENT_HINT = (
    "Discord refused the privileged Message Content intent. Open the Discord developer portal "
    "(https://discord.com/developers/applications), select this bot's application, and under "
    "Bot > Privileged Gateway Intents switch on MESSAGE CONTENT INTENT; then start the bot again."
)

ClientFactory = Callable[[int], BananaClient]
Ended = Callable[[int], None]


async def login(client: discord.Client, token: str) -> None:
    """Log a client in (REST only), turning discord.py's failures into the bot's errors."""
    try:
        await client.login(token)
    except discord.LoginFailure:
        raise ConfigError(
            "Discord refused DISCORD_TOKEN. Copy the bot token again from the developer portal "
            "(Bot > Reset Token)."
        ) from None
    except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
        raise Unavailable(f"Could not reach Discord to log in ({exc}).") from None


class Connections:
    """The shards this process is connected to (or connecting), each with its own client."""

    def __init__(
        self,
        *,
        token: str,
        new_client: ClientFactory,
        on_ended: Ended,
        ready_timeout: float,
    ) -> None:
        self._token = token
        self._new_client = new_client
        self._on_ended = on_ended
        self._ready_timeout = ready_timeout
        self._clients: dict[int, BananaClient] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}

    @property
    def clients(self) -> list[BananaClient]:
        return [self._clients[shard] for shard in sorted(self._clients)]

    async def open(self, shard: int) -> None:
        """Log a new client in and connect it; return once the shard is ready."""
        client = self._clients[shard] = self._new_client(shard)
        try:
            await login(client, self._token)
            await self._connect(shard, client)
        except BaseException:
            await self.close(shard)
            raise

    async def close(self, shard: int) -> None:
        """Disconnect a shard (nothing if it is not connected)."""
        client, task = self._clients.pop(shard, None), self._tasks.pop(shard, None)
        if client is not None:
            await client.close()
        if task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task

    async def close_all(self) -> None:
        for shard in list(self._clients):
            await self.close(shard)

    async def _connect(self, shard: int, client: BananaClient) -> None:
        task = self._tasks[shard] = asyncio.create_task(
            client.connect(reconnect=True), name=f"discord gateway shard {shard}"
        )
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait(
            {task, ready}, timeout=self._ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if task in done:
                _connection_failed(task.exception())
            raise Unavailable(
                f"Discord's gateway did not become ready in {self._ready_timeout:.0f} s."
            )
        task.add_done_callback(lambda ended: self._ended(shard, ended))

    def _ended(self, shard: int, task: asyncio.Task[None]) -> None:
        # Our own close() ends the task without an error; anything else lost the shard.
        if task.cancelled() or task.exception() is None or self._tasks.get(shard) is not task:
            return
        exc = task.exception()
        if isinstance(exc, discord.PrivilegedIntentsRequired):
            logger.error("%s", INTENT_HINT)
        else:
            logger.error("the Discord gateway connection of shard %s ended: %r", shard, exc)
        self._on_ended(shard)


def _connection_failed(exc: BaseException | None) -> NoReturn:
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        logger.error("%s", INTENT_HINT)
        raise ConfigError(INTENT_HINT)
    if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
        raise ConfigError("Discord's gateway refused DISCORD_TOKEN.")
    raise Unavailable(f"Could not connect to Discord's gateway ({exc}).")
