"""Reading Slack payloads: prompts and options, which events are user posts, where replies go."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from adapters import common
from adapters.common import MessageSite
from adapters.options import PromptOptions, parse_options
from bot.models import Request, ThreadKey

PLATFORM = "slack"

# Subtypes that are a person posting; everything else (edits, deletions, joins, bot posts) is not.
_USER_POST_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL_ID = re.compile(r"[CDG][A-Z0-9]{1,40}")
_TS = re.compile(r"\d{1,12}\.\d{1,9}")
_TURN_ID = re.compile(r"[1-9]\d{0,17}")


# A prompt with the bot's options (--ar, --model, --size, --n, --search) taken out of it.
Prompt = PromptOptions


@dataclass(frozen=True)
class Place:
    """Where a job's feedback and result go: a channel, a thread in it (or top level), a message."""

    channel: str
    thread_ts: str | None
    anchor_ts: str | None = None  # the user's message that gets the progress reaction


def parse_prompt(text: str, *, bot_user_id: str | None = None) -> Prompt:
    """Take the options and the bot's own mention out of a message's text.

    Raises BadArgument for an option typed without its value (`--size` alone).
    """
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return parse_options(text)


def prompt_request(
    prompt: Prompt,
    *,
    key: ThreadKey,
    user: str,
    reply_to: int | None = None,
    claims: tuple[str, ...] = (),
) -> Request:
    """The request a prompt makes, with every option typed into it."""
    return Request(
        key=key,
        user=user,
        text=prompt.text,
        ratio=prompt.ratio,
        model=prompt.model,
        size=prompt.size,
        count=prompt.count,
        search=prompt.search,
        reply_to=reply_to,
        claims=claims,
    )


def mentions(text: str, user_id: str) -> bool:
    """Whether the text mentions that user."""
    return any(found == user_id for found in _MENTION.findall(text or ""))


def is_user_post(event: dict[str, Any], *, bot_user_id: str | None) -> bool:
    """A message a person posted: not an edit, a deletion, a join, a bot's (or our own) post."""
    if event.get("subtype") not in _USER_POST_SUBTYPES:
        return False
    if event.get("bot_id") or event.get("bot_profile"):
        return False
    user = event.get("user")
    return bool(user) and user != bot_user_id


def is_direct_message(event: dict[str, Any]) -> bool:
    """DMs with the bot: channel_type im (message events) or a D channel (other events)."""
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


def team_of(body: dict[str, Any]) -> str:
    """The workspace id of an Events API body, a command's form or an interaction payload."""
    team = body.get("team_id") or body.get("team") or body.get("user", {}).get("team_id")
    if isinstance(team, dict):
        team = team.get("id")
    return str(team or "unknown")


def dm_key(team: str, event: dict[str, Any]) -> ThreadKey:
    """A DM's top level is one conversation (thread = channel); a thread in a DM is its own."""
    return common.dm_key(
        PLATFORM, workspace=team, channel=event["channel"], thread=event.get("thread_ts")
    )


def site_of(team: str, event: dict[str, Any], *, bot_user_id: str | None) -> MessageSite:
    """Where a message event was posted: a DM (or a thread in one), a mention, a thread reply."""
    channel, thread_ts = str(event["channel"]), event.get("thread_ts")
    if is_direct_message(event):
        key = dm_key(team, event)
        if not thread_ts:
            return MessageSite(conversation=key)
        root = message_id(channel, str(thread_ts))
        return MessageSite(thread=key, thread_root=root, conversation=key)
    if event.get("type") == "app_mention":
        key = ThreadKey(PLATFORM, team, channel, str(thread_ts or event["ts"]))
        return MessageSite(thread=key, fresh=key)
    if bot_user_id and mentions(str(event.get("text") or ""), bot_user_id):
        return MessageSite()  # the app_mention delivery of this same message is the one handled
    if not thread_ts:
        return MessageSite()
    return MessageSite(thread=ThreadKey(PLATFORM, team, channel, str(thread_ts)))


def place_of(key: ThreadKey, *, anchor_ts: str | None = None) -> Place:
    """Where replies for a thread key go: the DM top level when the thread is the channel."""
    thread_ts = None if key.thread == key.channel else key.thread
    return Place(channel=key.channel, thread_ts=thread_ts, anchor_ts=anchor_ts)


def message_id(channel: str, ts: str) -> str:
    """How a Slack message is named in the store (a ts is unique within its channel)."""
    return f"{channel}:{ts}"


# -- what a click or a modal says it is about ---------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """The result message a button was pressed on, and the turn the button names."""

    turn_id: int
    channel: str
    message_ts: str
    thread_ts: str | None = None

    @property
    def place(self) -> Place:
        return Place(self.channel, self.thread_ts)

    @property
    def message_id(self) -> str:
        return message_id(self.channel, self.message_ts)

    def key(self, team: str) -> ThreadKey:
        """The conversation the message is in, as its place names it."""
        return ThreadKey(PLATFORM, team, self.channel, self.thread_ts or self.channel)

    def metadata(self) -> str:
        """The origin as a modal's private_metadata, read back by `view_origin`."""
        return json.dumps(
            {
                "turn": self.turn_id,
                "channel": self.channel,
                "message_ts": self.message_ts,
                "thread_ts": self.thread_ts,
            }
        )


@dataclass(frozen=True)
class Click:
    """Who pressed a button, where, and on what; what the payload does not say is None."""

    user: str
    team: str
    place: Place | None  # where an answer only the clicker sees can go
    origin: Origin | None  # None when the payload does not name a turn on a message
    trigger_id: str | None = None


def click_of(body: dict[str, Any]) -> Click | None:
    """A block_actions payload read without trusting its shape; None without a clicker."""
    user = user_of(body)
    if user is None:
        return None
    container, message = _mapping(body.get("container")), _mapping(body.get("message"))
    channel_id = container.get("channel_id") or _field(body.get("channel"), "id")
    channel = _matching(_CHANNEL_ID, channel_id)
    thread_ts = _matching(_TS, container.get("thread_ts") or message.get("thread_ts"))
    actions = body.get("actions")
    value = _field(actions[0], "value") if isinstance(actions, list) and actions else None
    origin = _origin(value, channel, container.get("message_ts") or message.get("ts"), thread_ts)
    return Click(
        user=user,
        team=team_of(body),
        place=Place(channel, thread_ts) if channel else None,
        origin=origin,
        trigger_id=_field(body, "trigger_id"),
    )


def user_of(body: dict[str, Any]) -> str | None:
    """Who sent an interaction payload."""
    return _field(body.get("user"), "id")


def view_origin(view: dict[str, Any]) -> Origin | None:
    """The origin a modal was opened from, or None when its metadata is not what we wrote."""
    try:
        meta = json.loads(str(view.get("private_metadata") or ""))
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None
    channel = _matching(_CHANNEL_ID, meta.get("channel"))
    return _origin(meta.get("turn"), channel, meta.get("message_ts"), meta.get("thread_ts"))


def _origin(turn: Any, channel: str | None, message_ts: Any, thread_ts: Any) -> Origin | None:
    """An origin from values of unknown shape; None unless each is of the form Slack uses."""
    if isinstance(turn, int) and not isinstance(turn, bool):
        turn = str(turn)
    turn_id, ts = _matching(_TURN_ID, turn), _matching(_TS, message_ts)
    if turn_id is None or channel is None or ts is None:
        return None
    return Origin(int(turn_id), channel, ts, _matching(_TS, thread_ts))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _field(value: Any, name: str) -> str | None:
    found = _mapping(value).get(name)
    return found if isinstance(found, str) and found else None


def _matching(pattern: re.Pattern[str], value: Any) -> str | None:
    """The value when it is a string of the expected form, else None."""
    return value if isinstance(value, str) and pattern.fullmatch(value) else None
