"""A slash command's options as Discord sends them: typed by value, members and roles resolved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.fakes.discord import payloads as p
from tests.fakes.discord.world import DiscordWorld

SUBCOMMAND, STRING_OPTION, INTEGER_OPTION, BOOLEAN_OPTION = 1, 3, 4, 5
USER_OPTION, ROLE_OPTION, NUMBER_OPTION, ATTACHMENT_OPTION = 6, 8, 10, 11


@dataclass(frozen=True)
class RoleOption:
    """A role given to a Role option (the guild's role with this id)."""

    id: int


OptionValue = str | int | float | bool | p.Member | RoleOption


def command_option(
    world: DiscordWorld, name: str, value: OptionValue, resolved: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One option as Discord sends it; members and roles also go in `resolved`."""
    if isinstance(value, p.Member):
        resolved.setdefault("users", {})[str(value.id)] = value.user
        member = world.guild.member_payload(value, with_user=False)
        resolved.setdefault("members", {})[str(value.id)] = member
        return {"name": name, "type": USER_OPTION, "value": str(value.id)}
    if isinstance(value, RoleOption):
        resolved.setdefault("roles", {})[str(value.id)] = world.guild.roles[value.id]
        return {"name": name, "type": ROLE_OPTION, "value": str(value.id)}
    kind = (
        BOOLEAN_OPTION if isinstance(value, bool)
        else INTEGER_OPTION if isinstance(value, int)
        else NUMBER_OPTION if isinstance(value, float)
        else STRING_OPTION
    )  # fmt: skip
    return {"name": name, "type": kind, "value": value}
