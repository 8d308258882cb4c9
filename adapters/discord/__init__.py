"""Discord: /imagine, mentions, refinement in threads and DMs, persistent result buttons."""

from adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
