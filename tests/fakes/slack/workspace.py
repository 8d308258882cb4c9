"""The fake workspace's state and the Web API methods that read and change it."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Answer = dict[str, Any]


@dataclass
class Message:
    """A message the bot posted (and how it looks now)."""

    channel: str
    ts: str
    text: str
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    history: list[str] = field(default_factory=list)


CHUNK = 64 * 1024


@dataclass(frozen=True)
class Hosted:
    """A private file's body: its bytes, then `padding` zero bytes made as they are sent."""

    data: bytes
    mimetype: str
    padding: int = 0
    encoding: str | None = None  # a Content-Encoding sent whatever the client accepts

    def chunks(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), CHUNK):
            yield self.data[start : start + CHUNK]
        zeros, left = bytes(CHUNK), self.padding
        while left > 0:
            yield zeros[: min(left, CHUNK)]
            left -= CHUNK


@dataclass
class Ephemeral:
    """A message only one user sees (chat.postEphemeral)."""

    channel: str
    user: str
    text: str
    thread_ts: str | None = None


@dataclass
class Upload:
    """A file shared by files.completeUploadExternal, with the bytes that were uploaded."""

    file_id: str
    filename: str
    data: bytes
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None
    title: str | None


class Workspace:
    """Messages, reactions, files and uploads, changed the way Slack's methods change them."""

    def __init__(self, *, team_id: str, bot_user_id: str, bot_id: str) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.messages: dict[tuple[str, str], Message] = {}
        self.reactions: dict[tuple[str, str], set[str]] = {}
        self.uploads: list[Upload] = []
        self.ephemerals: list[Ephemeral] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.pending_uploads: dict[str, tuple[str, bytes | None]] = {}
        self.socket_url = ""
        self.upload_base = ""
        self._ids = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def new_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ids):06d}"

    def method(self, name: str) -> Callable[[dict[str, Any]], Answer] | None:
        """The handler of a Web API method, or None for a method the fake does not know."""
        found: Callable[[dict[str, Any]], Answer] | None = getattr(
            self, "m_" + name.replace(".", "_"), None
        )
        return found

    def thread_messages(self, channel: str, thread_ts: str) -> list[Message]:
        """Messages the bot posted (and did not delete) in a thread, oldest first."""
        found = [
            m
            for m in self.messages.values()
            if m.channel == channel and m.thread_ts == thread_ts and not m.deleted
        ]
        return sorted(found, key=lambda m: m.ts)

    # -- methods --------------------------------------------------------------------------

    def m_auth_test(self, _: dict[str, Any]) -> Answer:
        return ok(
            url="https://fake.slack.com/",
            team="Fake",
            user="banana",
            team_id=self.team_id,
            user_id=self.bot_user_id,
            bot_id=self.bot_id,
            is_enterprise_install=False,
        )

    def m_chat_postMessage(self, p: dict[str, Any]) -> Answer:
        if not p.get("channel") or not (p.get("text") or p.get("blocks")):
            return error("no_text" if p.get("channel") else "channel_not_found")
        refused = refusal(p)
        if refused is not None:
            return error(refused)
        message = Message(
            channel=p["channel"],
            ts=self.new_ts(),
            text=p.get("text", ""),
            thread_ts=p.get("thread_ts"),
            blocks=json_param(p.get("blocks")) or [],
        )
        self.messages[(message.channel, message.ts)] = message
        return ok(channel=message.channel, ts=message.ts, message=self._message_json(message))

    def m_chat_postEphemeral(self, p: dict[str, Any]) -> Answer:
        if not p.get("channel"):
            return error("channel_not_found")
        if not p.get("user"):
            return error("user_not_in_channel")
        if not (p.get("text") or p.get("blocks")):
            return error("no_text")
        self.ephemerals.append(
            Ephemeral(p["channel"], p["user"], p.get("text", ""), p.get("thread_ts"))
        )
        return ok(message_ts=self.new_ts())

    def m_chat_update(self, p: dict[str, Any]) -> Answer:
        message = self.messages.get((p.get("channel", ""), p.get("ts", "")))
        if message is None or message.deleted:
            return error("message_not_found")
        message.history.append(message.text)
        message.text = p.get("text", message.text)
        message.blocks = json_param(p.get("blocks")) or message.blocks
        return ok(channel=message.channel, ts=message.ts, text=message.text)

    def m_chat_delete(self, p: dict[str, Any]) -> Answer:
        message = self.messages.get((p.get("channel", ""), p.get("ts", "")))
        if message is None or message.deleted:
            return error("message_not_found")
        message.deleted = True
        return ok(channel=message.channel, ts=message.ts)

    def m_reactions_add(self, p: dict[str, Any]) -> Answer:
        names = self.reactions.setdefault((p["channel"], p["timestamp"]), set())
        if p["name"] in names:
            return error("already_reacted")
        names.add(p["name"])
        return ok()

    def m_reactions_remove(self, p: dict[str, Any]) -> Answer:
        names = self.reactions.setdefault((p["channel"], p["timestamp"]), set())
        if p["name"] not in names:
            return error("no_reaction")
        names.discard(p["name"])
        return ok()

    def m_conversations_replies(self, p: dict[str, Any]) -> Answer:
        found = [
            self._message_json(m)
            for m in self.messages.values()
            if m.channel == p["channel"] and p["ts"] in (m.ts, m.thread_ts) and not m.deleted
        ]
        return ok(messages=sorted(found, key=lambda m: m["ts"]), has_more=False)

    def m_files_info(self, p: dict[str, Any]) -> Answer:
        info = self.files.get(p.get("file", ""))
        return ok(file=info) if info else error("file_not_found")

    def m_files_getUploadURLExternal(self, p: dict[str, Any]) -> Answer:
        if not p.get("filename") or not p.get("length"):
            return error("invalid_arguments")
        file_id = self.new_id("F")
        self.pending_uploads[file_id] = (p["filename"], None)
        return ok(upload_url=f"{self.upload_base}/{file_id}", file_id=file_id)

    def m_files_completeUploadExternal(self, p: dict[str, Any]) -> Answer:
        shared = []
        for item in json_param(p.get("files")) or []:
            filename, data = self.pending_uploads.pop(item["id"], ("", None))
            if data is None:
                return error("file_not_found")
            upload = Upload(
                file_id=item["id"],
                filename=filename,
                data=data,
                channel_id=p.get("channel_id"),
                thread_ts=p.get("thread_ts"),
                initial_comment=p.get("initial_comment"),
                title=item.get("title"),
            )
            self.uploads.append(upload)
            shared.append({"id": upload.file_id, "name": filename, "title": upload.title})
        return ok(files=shared)

    def m_views_open(self, p: dict[str, Any]) -> Answer:
        if not p.get("trigger_id"):
            return error("invalid_trigger_id")
        view = json_param(p.get("view")) or {}
        return ok(view={**view, "id": self.new_id("V")})

    def m_apps_connections_open(self, _: dict[str, Any]) -> Answer:
        return ok(url=self.socket_url)

    def _message_json(self, message: Message) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "message",
            "text": message.text,
            "ts": message.ts,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
        }
        if message.thread_ts:
            out["thread_ts"] = message.thread_ts
        return out


# Slack's own limits on a message (docs.slack.dev: chat.postMessage, block kit reference).
TEXT_LIMIT = 40_000
SECTION_LIMIT = 3_000
MAX_BLOCKS = 50


def refusal(p: dict[str, Any]) -> str | None:
    """The error Slack answers for a message over its limits, or None."""
    if _units(str(p.get("text") or "")) > TEXT_LIMIT:
        return "msg_too_long"
    blocks = json_param(p.get("blocks")) or []
    ids = [block["block_id"] for block in blocks if "block_id" in block]
    if len(blocks) > MAX_BLOCKS or len(ids) != len(set(ids)):
        return "invalid_blocks"
    for block in blocks:
        if block.get("type") == "section" and _units(block["text"]["text"]) > SECTION_LIMIT:
            return "invalid_blocks"
        if block.get("type") == "actions" and len(block["elements"]) > 25:
            return "invalid_blocks"
    return None


def _units(text: str) -> int:
    """Slack measures in UTF-16 code units: an emoji counts twice."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def ok(**fields: Any) -> Answer:
    return {"ok": True, **fields}


def error(code: str) -> Answer:
    return {"ok": False, "error": code}


def json_param(value: Any) -> Any:
    """A parameter that arrives as JSON text in a form or query, or as JSON already."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value
