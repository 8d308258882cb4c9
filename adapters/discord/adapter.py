"""The Discord adapter: connects discord.py to the engine and keeps its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import NoReturn

import aiohttp
import discord
import yarl
from discord import app_commands

from adapters.common import Clock, excerpt
from adapters.discord.buttons import Buttons
from adapters.discord.client import BananaClient, ResultButton
from adapters.discord.context import PLATFORM, Services
from adapters.discord.files import Downloads
from adapters.discord.interactions import (
    ImagineOptions,
    Interactions,
    add_imagine_command,
    add_usage_command,
)
from adapters.discord.messages import Messages
from adapters.discord.text import only, without_previews
from bot.config import Settings
from bot.engine import Engine
from bot.errors import ConfigError, Unavailable
from bot.models import ThreadKey, Turn

logger = logging.getLogger(__name__)

INTENT_HINT = (
    "Discord refused the privileged Message Content intent. Open the Discord developer portal "
    "(https://discord.com/developers/applications), select this bot's application, and under "
    "Bot > Privileged Gateway Intents switch on MESSAGE CONTENT INTENT; then start the bot again."
)
INTERRUPTED = (
    "Sorry <@{user}>, the bot restarted while making your image ({prompt}). Please ask again."
)


class DiscordAdapter:
    """Serves /imagine, mentions, threads, DMs and result buttons on Discord."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        clock: Clock = time.monotonic,
        progress_interval: float = 1.0,
        ready_timeout: float = 60.0,
        guild_ready_timeout: float = 2.0,
        drain_timeout: float = 5.0,
        check_budget: float = 2.0,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._services = Services(
            engine=engine,
            downloads=Downloads(),
            max_download_bytes=int(settings.max_download_mb * 1024 * 1024),
            progress_interval=progress_interval,
            clock=clock,
            check_budget=check_budget,
        )
        self._ready_timeout = ready_timeout
        self._guild_ready_timeout = guild_ready_timeout
        self._drain_timeout = drain_timeout
        self._client: BananaClient | None = None
        self._connection: asyncio.Task[None] | None = None
        self._interactions = Interactions(self._services)
        self._buttons = Buttons(self._services)
        self._messages: Messages | None = None
        self._in_flight: set[asyncio.Task[object]] = set()
        self._saved_endpoints: tuple[str, yarl.URL] | None = None
        self._synced: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, sync /imagine, connect the gateway in the background; return once ready."""
        token = self._settings.discord_token
        if token is None:
            raise ConfigError(
                "DISCORD_TOKEN is not set: put the bot token from the developer portal in it."
            )
        self._apply_endpoints()
        client = BananaClient(handlers=self, guild_ready_timeout=self._guild_ready_timeout)
        client.add_dynamic_items(ResultButton)
        tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
        add_imagine_command(tree, self.on_imagine)
        add_usage_command(tree, self.on_usage)
        self._client, self._messages = client, Messages(self._services, client=client)
        try:
            await self._login(client, token.get_secret_value())
            await self._sync(tree)
            await self._connect(client)
        except BaseException:
            await self.stop()
            raise
        logger.info("%s", self.describe())

    async def _login(self, client: BananaClient, token: str) -> None:
        try:
            await client.login(token)
        except discord.LoginFailure:
            raise ConfigError(
                "Discord refused DISCORD_TOKEN. Copy the bot token again from the developer portal "
                "(Bot > Reset Token)."
            ) from None
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            raise Unavailable(f"Could not reach Discord to log in ({exc}).") from None

    async def _connect(self, client: BananaClient) -> None:
        self._connection = asyncio.create_task(client.connect(reconnect=True))
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait(
            {self._connection, ready},
            timeout=self._ready_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if ready not in done:
            ready.cancel()
            if self._connection in done:
                self._connection_failed(self._connection.exception())
            raise Unavailable(
                f"Discord's gateway did not become ready in {self._ready_timeout:.0f} s."
            )
        self._connection.add_done_callback(self._connection_ended)

    def _connection_failed(self, exc: BaseException | None) -> NoReturn:
        if isinstance(exc, discord.PrivilegedIntentsRequired):
            logger.error("%s", INTENT_HINT)
            raise ConfigError(INTENT_HINT)
        if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
            raise ConfigError("Discord's gateway refused DISCORD_TOKEN.")
        raise Unavailable(f"Could not connect to Discord's gateway ({exc}).")

    def _connection_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if isinstance(exc, discord.PrivilegedIntentsRequired):
            logger.error("%s", INTENT_HINT)
        else:
            logger.error("the Discord gateway connection ended: %r", exc)

    async def _sync(self, tree: app_commands.CommandTree[discord.Client]) -> None:
        guild_ids = sorted(self._settings.discord_guild_ids)
        scopes: list[discord.Object | None] = [discord.Object(int(g)) for g in guild_ids] or [None]
        for guild in scopes:
            if guild is not None:
                tree.copy_global_to(guild=guild)
            where = f"guild {guild.id}" if guild else "all guilds"
            try:
                await tree.sync(guild=guild)
            except discord.HTTPException as exc:
                logger.error(
                    "could not register /imagine in %s (%s): is the bot in it, invited with the "
                    "applications.commands scope?", where, exc,
                )  # fmt: skip
                continue
            self._synced.append(where)

    async def stop(self) -> None:
        """Let running jobs finish (up to the drain timeout), then close the connection."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self._drain_timeout)
        if self._client is not None:
            await self._client.close()
        if self._connection is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._connection
        self._client = self._connection = None
        await self._services.downloads.close()
        self._restore_endpoints()

    def describe(self) -> str:
        """One line of what is served (never a secret)."""
        client = self._client
        if client is None or client.user is None:
            return "Discord: not connected"
        guilds = len(client.guilds)
        synced = ", ".join(self._synced) or "nowhere"
        return (
            f"Discord: bot {client.user} (id {client.user.id}) in {guilds} "
            f"guild{'s' if guilds != 1 else ''}; /imagine registered for {synced}"
        )

    def _apply_endpoints(self) -> None:
        # discord.py reads both as class attributes; the previous values come back in stop().
        if self._saved_endpoints is None:
            self._saved_endpoints = (
                discord.http.Route.BASE,
                discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
            )
        base, gateway = self._settings.discord_api_base_url, self._settings.discord_gateway_url
        if base is not None:
            discord.http.Route.BASE = str(base).rstrip("/")
        if gateway is not None:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)

    def _restore_endpoints(self) -> None:
        if self._saved_endpoints is not None:
            base, gateway = self._saved_endpoints
            discord.http.Route.BASE = base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
            self._saved_endpoints = None

    # -- events (the client's Handlers) ------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _tracked(self, what: str) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            yield
        except Exception:
            logger.exception("unhandled error in Discord %s", what)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def on_imagine(self, interaction: discord.Interaction, options: ImagineOptions) -> None:
        async with self._tracked(f"/imagine {interaction.id}"):
            await self._interactions.imagine(interaction, options)

    async def on_usage(self, interaction: discord.Interaction) -> None:
        async with self._tracked(f"/usage {interaction.id}"):
            await self._interactions.usage(interaction)

    async def on_message(self, message: discord.Message) -> None:
        if self._messages is not None:
            async with self._tracked(f"message {message.id}"):
                await self._messages.on_message(message)

    async def on_button(self, interaction: discord.Interaction, action: str, turn_id: int) -> None:
        async with self._tracked(f"{action} button on turn {turn_id}"):
            await self._buttons.click(interaction, action, turn_id)

    async def on_refine_submit(
        self, interaction: discord.Interaction, turn_id: int, message_id: int | None, text: str
    ) -> None:
        async with self._tracked(f"refine of turn {turn_id}"):
            await self._buttons.refine_submit(interaction, turn_id, message_id, text)

    async def on_malformed(self, interaction: discord.Interaction, custom_id: str) -> None:
        async with self._tracked(f"interaction {interaction.id}"):
            await self._buttons.malformed(interaction, custom_id)

    # -- after a restart ---------------------------------------------------------------------

    async def notify_failed(self, turns: Sequence[tuple[Turn, ThreadKey]]) -> None:
        """Tell users whose job a restart interrupted, where they asked (best effort)."""
        client = self._client
        if client is None:
            return
        for turn, key in turns:
            if key.platform != PLATFORM:
                continue
            prompt = without_previews(excerpt(turn.prompt))
            text = INTERRUPTED.format(user=turn.user, prompt=f"“{prompt}”")
            try:
                only_them = only(discord.Object(int(turn.user)))
                await _channel_for(client, key).send(text, allowed_mentions=only_them)
            except (discord.HTTPException, ValueError) as exc:
                logger.warning("could not tell user %s about turn %s: %s", turn.user, turn.id, exc)


def _channel_for(client: discord.Client, key: ThreadKey) -> discord.abc.Messageable:
    """The thread the conversation lives in when it is known, else its channel."""
    if key.thread.isdigit():
        thread = client.get_channel(int(key.thread))
        if isinstance(thread, discord.Thread):
            return thread
    channel = client.get_channel(int(key.channel))
    if isinstance(channel, discord.abc.Messageable):
        return channel
    return client.get_partial_messageable(int(key.channel))
