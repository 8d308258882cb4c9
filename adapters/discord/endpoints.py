"""discord.py's REST base and gateway URL, which it reads as class attributes, not per client.

Every adapter in a process therefore shares them (a test runs several, one per process it
plays): the first to start saves discord.py's values, the last to stop puts them back, so one
adapter stopping never sends another's calls to the real Discord.
"""

from __future__ import annotations

from typing import ClassVar

import discord
import yarl


class Endpoints:
    """One adapter's use of the process-wide endpoints, from start to stop."""

    _users: ClassVar[int] = 0
    _saved: ClassVar[tuple[str, yarl.URL] | None] = None

    def __init__(self, *, api_base: str | None, gateway: str | None) -> None:
        self._api_base = api_base
        self._gateway = gateway
        self._applied = False

    def apply(self) -> None:
        if self._applied:
            return
        if Endpoints._users == 0:
            Endpoints._saved = (
                discord.http.Route.BASE,
                discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
            )
        Endpoints._users += 1
        self._applied = True
        if self._api_base is not None:
            discord.http.Route.BASE = self._api_base.rstrip("/")
        if self._gateway is not None:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._gateway)

    def restore(self) -> None:
        if not self._applied:
            return
        self._applied = False
        Endpoints._users -= 1
        if Endpoints._users == 0 and Endpoints._saved is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = (
                Endpoints._saved
            )
            Endpoints._saved = None
