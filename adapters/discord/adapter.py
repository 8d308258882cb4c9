"""The Discord adapter: connects discord.py to the engine and keeps its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence

import discord
from discord import app_commands

from adapters.common import Clock
from adapters.discord.budgets import BudgetAsk, DiscordBudgets, add_budget_command
from adapters.discord.buttons import Buttons
from adapters.discord.client import BananaClient, OriginalButton, ResultButton
from adapters.discord.commands import (
    ImagineOptions,
    add_imagine_command,
    add_usage_command,
    command_shape,
)
from adapters.discord.connections import Connections, login
from adapters.discord.context import OriginalLinks, Services
from adapters.discord.endpoints import Endpoints
from adapters.discord.files import Downloads
from adapters.discord.interactions import Interactions
from adapters.discord.messages import Messages
from adapters.discord.notices import notify_interrupted
from adapters.discord.originals import Originals
from adapters.discord.results import Results
from adapters.discord.shards import ShardKeeper
from bot.config import Settings
from bot.engine import Engine
from bot.errors import ConfigError
from bot.images import ImageWorkers
from bot.models import ThreadKey, Turn

logger = logging.getLogger(__name__)

Tree = app_commands.CommandTree[discord.Client]


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
        links: OriginalLinks | None = None,
        images: ImageWorkers | None = None,
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
            results=Results(capabilities=engine.capabilities, workers=images),
            links=links,
        )
        self._ready_timeout = ready_timeout
        self._guild_ready_timeout = guild_ready_timeout
        self._drain_timeout = drain_timeout
        # REST only, never on the gateway: command sync, notices and message handling work
        # the same whichever shards (if any) this process holds.
        self._home: BananaClient | None = None
        self._connections: Connections | None = None
        self._keeper: ShardKeeper | None = None
        self._interactions = Interactions(self._services)
        self._buttons = Buttons(self._services)
        self._originals = Originals(self._services)
        self._budgets = DiscordBudgets(self._services)
        self._messages: Messages | None = None
        self._in_flight: set[asyncio.Task[object]] = set()
        base = settings.discord_api_base_url
        self._endpoints = Endpoints(
            api_base=None if base is None else str(base), gateway=settings.discord_gateway_url
        )
        self._synced: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, sync /imagine, connect the shards this process holds; return once ready.

        Holding none, it is a standby: it connects a shard once its holder lets it go.
        """
        token = self._settings.discord_token
        if token is None:
            raise ConfigError(
                "DISCORD_TOKEN is not set: put the bot token from the developer portal in it."
            )
        self._endpoints.apply()
        home, tree = self._new_client(None)
        self._home, self._messages = home, Messages(self._services, client=home)
        connections = self._connections = Connections(
            token=token.get_secret_value(),
            new_client=lambda shard: self._new_client(shard)[0],
            on_ended=self._shard_ended,
            ready_timeout=self._ready_timeout,
        )
        self._keeper = ShardKeeper(
            self._engine,
            connections,
            count=self._settings.discord_shard_count,
            candidates=self._settings.discord_shards,
        )
        try:
            await login(home, token.get_secret_value())
            await self._sync(tree)
            await self._keeper.start()
        except BaseException:
            await self.stop()
            raise
        logger.info("%s", self.describe())

    def _new_client(self, shard: int | None) -> tuple[BananaClient, Tree]:
        count = self._settings.discord_shard_count
        # One shard of one: identify as today, without a shard field.
        sharding = {} if shard is None or count == 1 else {"shard_id": shard, "shard_count": count}
        client = BananaClient(
            handlers=self, guild_ready_timeout=self._guild_ready_timeout, **sharding
        )
        client.add_dynamic_items(ResultButton, OriginalButton)
        tree: Tree = app_commands.CommandTree(client)
        add_imagine_command(tree, self.on_imagine, command_shape(self._engine))
        add_usage_command(tree, self.on_usage)
        add_budget_command(tree, self.on_budget)
        return client, tree

    def _shard_ended(self, shard: int) -> None:
        if self._keeper is not None:
            self._keeper.ended(shard)

    async def _sync(self, tree: Tree) -> None:
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
        """Let running jobs finish (up to the drain timeout), disconnect, release the shards."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self._drain_timeout)
        if self._keeper is not None:
            await self._keeper.stop()
        if self._connections is not None:
            await self._connections.close_all()
        if self._home is not None:
            await self._home.close()
        self._home = self._connections = self._keeper = None
        await self._services.downloads.close()
        self._endpoints.restore()

    def describe(self) -> str:
        """One line of what is served (never a secret)."""
        home, keeper = self._home, self._keeper
        if home is None or home.user is None or keeper is None:
            return "Discord: not connected"
        synced = ", ".join(self._synced) or "nowhere"
        bot = f"Discord: bot {home.user} (id {home.user.id})"
        standby = f"standby for shards {_listed(keeper.waiting)} of {keeper.count}"
        if not keeper.held:
            idle = standby if keeper.waiting else "no shard connected"
            return f"{bot}: {idle}; /imagine registered for {synced}"
        guilds = len({guild.id for client in self._clients() for guild in client.guilds})
        text = (
            f"{bot} in {guilds} guild{'s' if guilds != 1 else ''}; /imagine registered for {synced}"
        )
        if keeper.count > 1:
            text += f"; shards {_listed(keeper.held)} of {keeper.count}"
        return text + (f"; {standby}" if keeper.waiting else "")

    def _clients(self) -> list[BananaClient]:
        return self._connections.clients if self._connections is not None else []

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

    async def on_budget(self, interaction: discord.Interaction, ask: BudgetAsk) -> None:
        async with self._tracked(f"/budget {interaction.id}"):
            await self._budgets.answer(interaction, ask)

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

    async def on_original(
        self, interaction: discord.Interaction, turn_id: int, index: int, extension: str
    ) -> None:
        async with self._tracked(f"original of turn {turn_id}"):
            await self._originals.click(interaction, turn_id, index, extension)

    async def on_malformed(self, interaction: discord.Interaction, custom_id: str) -> None:
        async with self._tracked(f"interaction {interaction.id}"):
            await self._buttons.malformed(interaction, custom_id)

    # -- after a restart ---------------------------------------------------------------------

    async def notify_failed(self, turns: Sequence[tuple[Turn, ThreadKey]]) -> None:
        """Tell users whose job a restart interrupted, where they asked (best effort)."""
        if self._home is not None:
            await notify_interrupted(self._home, self._clients(), turns)


def _listed(shards: Sequence[int]) -> str:
    return ", ".join(map(str, shards))
