"""What a message does to people on Discord: whom it pings, which links it previews.

Discord's rules: without `allowed_mentions` every mention in the content pings (and a reply
pings the author it replies to); with it, only what `parse`, `users`, `roles` and
`replied_user` allow. A link previews unless it is wrapped in <...> or the message carries
the SUPPRESS_EMBEDS flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SUPPRESS_EMBEDS = 1 << 2
_EVERYONE = re.compile(r"@(?:everyone|here)")
_USER = re.compile(r"<@!?([0-9]+)>")
_ROLE = re.compile(r"<@&([0-9]+)>")
_LINK = re.compile(
    r"(?<!<)(?:\b[a-zA-Z][a-zA-Z0-9+.-]*://|\b(?:discord(?:app)?\.com/invite|discord\.gg)/)[^\s<>]+"
)


@dataclass(frozen=True)
class Effect:
    """What one message create or edit by the bot did."""

    message_id: int
    everyone: bool
    users: frozenset[int]
    roles: frozenset[int]
    previews: tuple[str, ...]

    @property
    def pings(self) -> bool:
        return self.everyone or bool(self.users) or bool(self.roles)


def effect_of(
    message_id: int, body: dict[str, Any], *, flags: int, replied_author: int | None
) -> Effect:
    content = str(body.get("content") or "")
    allowed = body.get("allowed_mentions")
    users = {int(found) for found in _USER.findall(content)}
    roles = {int(found) for found in _ROLE.findall(content)}
    everyone = bool(_EVERYONE.search(content))
    if allowed is None:
        replied = replied_author is not None
    else:
        parse = set(allowed.get("parse") or [])
        everyone = everyone and "everyone" in parse
        if "users" not in parse:
            users &= {int(user) for user in allowed.get("users") or []}
        if "roles" not in parse:
            roles &= {int(role) for role in allowed.get("roles") or []}
        replied = replied_author is not None and bool(allowed.get("replied_user"))
    if replied and replied_author is not None:
        users.add(replied_author)
    suppressed = flags & SUPPRESS_EMBEDS
    previews = () if suppressed else tuple(_LINK.findall(content))
    return Effect(message_id, everyone, frozenset(users), frozenset(roles), previews)
