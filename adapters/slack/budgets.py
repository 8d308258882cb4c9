"""`/imagine budget ...`: the workspace's monthly cost budgets, seen and changed by admins.

Slack has no roles a bot can read, so role budgets mean nothing here; users are named by
id or by a mention (`<@U123|alice>` when the command escapes users).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from adapters.slack.parsing import PLATFORM, team_of
from adapters.slack.text import literal
from bot.engine import BUDGET_USAGE, Engine, parse_change
from bot.errors import BotError
from bot.models import BudgetScope

KEYWORD = "budget"
ADMINS_ONLY = "Only the bot's admins (ADMIN_USER_IDS) can see and change budgets."
NO_ROLES = (
    "Slack has no roles the bot can see, so role budgets do not apply here. Set a budget "
    "per user (`/imagine budget user U0123ABCD 5`) or for the workspace "
    "(`/imagine budget workspace 100`)."
)
USAGE = (
    "`/imagine budget` shows the budgets; `/imagine budget user MEMBER_ID USD|off` and "
    "`/imagine budget workspace USD|off` change them (USD a month)."
)
NOT_A_USER = (
    "Name the user by member id (U0123ABCD: their profile's ⋮ menu, Copy member ID), or as a "
    "mention when the command escapes users."
)

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def is_budget_command(text: str) -> bool:
    """Whether /imagine's text is the budget command rather than a prompt."""
    words = text.split(maxsplit=1)
    return bool(words) and words[0].lower() == KEYWORD


class SlackBudgets:
    """Answers the budget command; what it says is the command's (ephemeral) response."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def answer(self, command: dict[str, Any]) -> str:
        """The report, the confirmation of a change, or why neither was done (Slack markup)."""
        user = str(command.get("user_id") or "")
        if not self._engine.access.is_admin(user):
            return ADMINS_ONLY
        words = [_MENTION.sub(r"\1", word) for word in str(command.get("text") or "").split()]
        try:
            return await self._act(words[1:], team=team_of(command), user=user)
        except BotError as exc:
            return _shown(exc.user_message)

    async def _act(self, words: Sequence[str], *, team: str, user: str) -> str:
        if words and words[0].lower() == BudgetScope.ROLE.value:
            return NO_ROLES
        change = parse_change(words)
        if change is None:
            return _shown(await self._engine.budget_report(platform=PLATFORM, workspace=team))
        if change.scope is BudgetScope.USER and not _USER_ID.fullmatch(change.subject or ""):
            return NOT_A_USER
        done = await self._engine.change_budget(
            change, platform=PLATFORM, workspace=team, user=user
        )
        return _shown(done)


def _shown(text: str) -> str:
    """The engine's words made literal, its generic syntax swapped for the Slack command's."""
    if BUDGET_USAGE not in text:
        return literal(text)
    return literal(text.replace(BUDGET_USAGE, "").rstrip()) + " " + USAGE
