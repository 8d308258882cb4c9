"""/budget show | set | remove: a server's monthly cost budgets, per member, role or server.

Only admins use it: a member in ADMIN_USER_IDS or with the Manage Server permission. The
command is visible to everyone (admins by id may lack the permission Discord would hide it
behind) and refuses the others; every answer is ephemeral.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord
from discord import app_commands

from adapters.discord.context import PLATFORM, Services
from adapters.discord.text import NO_MENTIONS, say
from bot.engine import BUDGET_USAGE, parse_change
from bot.errors import BotError

ADMINS_ONLY = "Only the bot's admins (ADMIN_USER_IDS) or members who can manage this server can see and change budgets."  # noqa: E501
ONE_TARGET = "Name exactly one of member, role or server (server: True for the whole server)."
USAGE = (
    "`/budget show` lists them; `/budget set usd:5 member:@someone` (or `role:@Artists`, or "
    "`server:True`) sets one, in USD a month; `/budget remove member:@someone` removes it."
)
_USER = re.compile(r"\buser (\d{5,20})\b")
_ROLE = re.compile(r"\brole (\d{5,20})\b")
Target = discord.Member | discord.User | None


@dataclass(frozen=True)
class BudgetAsk:
    """One /budget command: show, or set (usd) / remove (usd None) one budget."""

    action: str  # "show" | "set" | "remove"
    usd: float | None = None
    member: str | None = None
    role: str | None = None
    server: bool = False


BudgetHandler = Callable[[discord.Interaction, BudgetAsk], Awaitable[None]]


def add_budget_command(
    tree: app_commands.CommandTree[discord.Client], handler: BudgetHandler
) -> None:
    """Register /budget show, /budget set and /budget remove (servers only)."""
    group = app_commands.Group(
        name="budget", description="See and change monthly cost budgets (admins)", guild_only=True
    )

    @group.command(name="show", description="The budgets set here and this month's spending")
    async def show(interaction: discord.Interaction) -> None:
        await handler(interaction, BudgetAsk("show"))

    @group.command(
        name="set", description="Set a monthly budget in USD for a member, a role, or the server"
    )
    @app_commands.describe(
        usd="USD a month", member="A member's own budget", role="Each member of this role",
        server="The whole server together",
    )  # fmt: skip
    async def set_budget(
        interaction: discord.Interaction,
        usd: app_commands.Range[float, 0, 999_999],
        member: Target = None,
        role: discord.Role | None = None,
        server: bool = False,
    ) -> None:
        await handler(interaction, _ask("set", usd, member, role, server))

    @group.command(
        name="remove", description="Remove the budget of a member, a role, or the server"
    )
    @app_commands.describe(member="That member's", role="That role's", server="The server's")
    async def remove_budget(
        interaction: discord.Interaction,
        member: Target = None,
        role: discord.Role | None = None,
        server: bool = False,
    ) -> None:
        await handler(interaction, _ask("remove", None, member, role, server))

    tree.add_command(group)


def _ask(
    action: str, usd: float | None, member: Target, role: discord.Role | None, server: bool
) -> BudgetAsk:
    return BudgetAsk(
        action,
        usd=usd,
        member=None if member is None else str(member.id),
        role=None if role is None else str(role.id),
        server=server,
    )


class DiscordBudgets:
    """Answers /budget with the engine's words, privately."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def answer(self, interaction: discord.Interaction, ask: BudgetAsk) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        text = await self._text(interaction, ask)
        await interaction.followup.send(say(text), ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def _text(self, interaction: discord.Interaction, ask: BudgetAsk) -> str:
        engine = self._services.engine
        user, manager = str(interaction.user.id), interaction.permissions.manage_guild
        workspace = str(interaction.guild_id or "dm")
        if not (manager or engine.access.is_admin(user)):
            return ADMINS_ONLY
        try:
            if ask.action == "show":
                report = await engine.budget_report(platform=PLATFORM, workspace=workspace)
                return _shown(report)
            words = _words(ask)
            change = parse_change(words) if words is not None else None
            if change is None:
                return ONE_TARGET
            done = await engine.change_budget(
                change, platform=PLATFORM, workspace=workspace, user=user, platform_admin=manager
            )
        except BotError as exc:
            return _shown(exc.user_message)
        return _shown(done)


def _words(ask: BudgetAsk) -> list[str] | None:
    """The engine's budget words for the command; None unless exactly one target is named."""
    targets = [
        *(["user", ask.member] if ask.member else []),
        *(["role", ask.role] if ask.role else []),
        *(["workspace"] if ask.server else []),
    ]
    if len([word for word in targets if word in ("user", "role", "workspace")]) != 1:
        return None
    amount = "off" if ask.usd is None else f"{ask.usd:g}"
    return [*targets, amount]


def _shown(text: str) -> str:
    """The engine's words for Discord: ids as mentions (never pinging), its syntax as ours."""
    text = _ROLE.sub(r"role <@&\1>", _USER.sub(r"user <@\1>", text))
    if BUDGET_USAGE in text:
        text = text.replace(BUDGET_USAGE, "").rstrip() + " " + USAGE
    return text.replace("the workspace", "the server")
