"""Who may use the bot where: allow and block lists, roles, admins."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import AccessDenied
from bot.models import Request


@dataclass(frozen=True)
class AccessPolicy:
    """Empty allow lists mean everyone; the block list always wins; admins pass allow lists."""

    allowed_channels: frozenset[str] = frozenset()
    allowed_users: frozenset[str] = frozenset()
    blocked_users: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()
    allowed_roles: frozenset[str] = frozenset()

    def is_admin(self, user: str) -> bool:
        return user in self.admins

    def check(self, request: Request) -> None:
        """Raise AccessDenied, with the reason in plain words, when the request may not run."""
        user = request.user
        if user in self.blocked_users:
            raise AccessDenied("You have been blocked from using this bot.")
        if self.is_admin(user):
            return
        channel = request.key.channel
        if self.allowed_channels and channel not in self.allowed_channels:
            raise AccessDenied(
                "The bot is not enabled in this channel. Ask an admin where to use it."
            )
        if not (self.allowed_users or self.allowed_roles):
            return
        if user in self.allowed_users or self.allowed_roles.intersection(request.roles):
            return
        raise AccessDenied(
            "You are not on this bot's list of allowed users. Ask an admin for access."
        )
