"""What the engine tells adapters about the store: threads, turns, messages, usage, budgets."""

from __future__ import annotations

from bot.engine.access import AccessPolicy
from bot.engine.budgets import BudgetChange, Budgets
from bot.engine.turns import GONE
from bot.engine.usage import UsageReport, usage_report
from bot.errors import NothingToRefine
from bot.models import Thread, ThreadKey, Turn
from storage.base import Store


class EngineRecords:
    """Lookups and links for adapters, usage reports and budgets: no job runs here."""

    _store: Store
    _access: AccessPolicy
    _budgets: Budgets

    # -- lookups for adapters ----------------------------------------------------------

    async def usage_report(
        self, *, platform: str, workspace: str, user: str, platform_admin: bool = False
    ) -> UsageReport:
        """The user's usage; with ADMIN_USER_IDS or the platform's admin flag, the workspace's."""
        admin = platform_admin or self._access.is_admin(user)
        return await usage_report(
            self._store, platform=platform, workspace=workspace, user=user, admin=admin
        )

    async def thread_for(self, key: ThreadKey) -> Thread | None:
        return await self._store.get_thread(key)

    async def link_thread(self, turn_id: int, *, key: ThreadKey) -> None:
        turn = await self._store.get_turn(turn_id)
        if turn is None:
            raise NothingToRefine(GONE)
        await self._store.add_alias(turn.thread_id, key=key)

    async def link_message(self, turn_id: int, *, platform: str, message_id: str) -> None:
        await self._store.link_message(turn_id, platform=platform, message_id=message_id)

    async def turn_for_message(self, *, platform: str, message_id: str) -> Turn | None:
        return await self._store.turn_for_message(platform=platform, message_id=message_id)

    async def get_turn(self, turn_id: int) -> Turn | None:
        return await self._store.get_turn(turn_id)

    # -- budgets ------------------------------------------------------------------------

    async def budget_report(self, *, platform: str, workspace: str) -> str:
        """The budgets that apply in a workspace and this month's spending."""
        return await self._budgets.report(platform=platform, workspace=workspace)

    async def change_budget(
        self,
        change: BudgetChange,
        *,
        platform: str,
        workspace: str,
        user: str,
        platform_admin: bool = False,
    ) -> str:
        """An admin's budget change (ADMIN_USER_IDS or the platform's admin flag)."""
        admin = platform_admin or self._access.is_admin(user)
        return await self._budgets.change(
            change, platform=platform, workspace=workspace, admin=admin
        )
