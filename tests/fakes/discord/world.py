"""What the fake Discord knows: one guild, its channels and threads, DMs, messages, files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.discord import payloads as p
from tests.fakes.discord.http import DiscordHTTPError, UploadedFile, check_message_body
from tests.fakes.discord.mentions import Effect, effect_of

Dispatch = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class StoredFile:
    data: bytes = field(repr=False)
    filename: str
    content_type: str | None


class DiscordWorld:
    """The state behind both the gateway and REST, with Discord's rules on messages."""

    def __init__(self, *, dispatch: Dispatch, cdn_base: Callable[[], str]) -> None:
        self.ids = p.Snowflakes()
        self._dispatch = dispatch
        self._cdn_base = cdn_base
        self.app_id = self.ids.next()
        self.bot = p.user(self.app_id, "Banana", bot=True)
        self.guild = p.Guild(id=self.ids.next(), name="Test Guild")
        self.dms: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.deleted: dict[int, dict[str, Any]] = {}
        self.files: dict[int, StoredFile] = {}
        self.forbid_threads_in: set[int] = set()
        self.effects: list[Effect] = []  # whom each of the bot's creates and edits pinged
        self._declared_sizes: dict[str, int] = {}
        self._populate()

    def _populate(self) -> None:
        guild = self.guild
        guild.roles[guild.id] = p.role(
            guild.id, "@everyone", permissions=p.EVERYONE_PERMISSIONS, position=0
        )
        self.moderator_role = self.ids.next()
        guild.roles[self.moderator_role] = p.role(
            self.moderator_role, "Moderator", permissions=p.MANAGE_MESSAGES, position=1
        )
        self.artist_role = self.ids.next()
        guild.roles[self.artist_role] = p.role(
            self.artist_role, "Artist", permissions=0, position=2
        )
        guild.members[self.app_id] = p.Member(self.bot)
        self.alice = self.add_member("alice", roles=[self.artist_role])
        self.bob = self.add_member("bob")
        self.mod = self.add_member("mod", roles=[self.moderator_role])
        self.general = self.add_channel("general")
        self.locked = self.add_channel("no-threads")
        self.forbid_threads_in.add(int(self.locked["id"]))
        self.forum = self.add_channel("gallery", type=p.FORUM)

    def add_member(self, name: str, *, roles: list[int] | None = None) -> p.Member:
        member = p.Member(p.user(self.ids.next(), name), list(roles or []))
        self.guild.members[member.id] = member
        return member

    def add_channel(self, name: str, *, type: int = p.TEXT) -> dict[str, Any]:
        channel = p.channel(self.ids.next(), self.guild.id, name, type=type)
        self.guild.channels[int(channel["id"])] = channel
        return channel

    def dm_with(self, member: p.Member) -> dict[str, Any]:
        for channel in self.dms.values():
            if channel["recipients"][0]["id"] == member.user["id"]:
                return channel
        channel = p.dm_channel(self.ids.next(), member.user)
        self.dms[int(channel["id"])] = channel
        return channel

    # -- lookups -----------------------------------------------------------------------

    def channel(self, channel_id: int) -> dict[str, Any]:
        for table in (self.guild.channels, self.guild.threads, self.dms):
            if channel_id in table:
                return table[channel_id]
        raise DiscordHTTPError(404, 10003, "Unknown Channel")

    def message(self, message_id: int, *, channel_id: int | None = None) -> dict[str, Any]:
        message = self.messages.get(message_id)
        if message is None or (channel_id is not None and int(message["channel_id"]) != channel_id):
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        return message

    def in_channel(self, channel_id: int, *, ephemeral: bool = False) -> list[dict[str, Any]]:
        """Messages of a channel, oldest first (ephemeral ones only when asked)."""
        return [
            message
            for message in self.messages.values()
            if int(message["channel_id"]) == channel_id
            and bool(message["flags"] & p.EPHEMERAL) == ephemeral
        ]

    def file_bytes(self, attachment: dict[str, Any]) -> bytes:
        return self.files[int(attachment["id"])].data

    def pings(self) -> list[Effect]:
        """The bot's messages (creates and edits) that pinged someone."""
        return [effect for effect in self.effects if effect.pings]

    def previews(self) -> list[str]:
        """Every link Discord would have previewed in the bot's messages."""
        return [link for effect in self.effects for link in effect.previews]

    # -- files -------------------------------------------------------------------------

    def store_file(
        self, data: bytes, *, filename: str, content_type: str | None, channel_id: int
    ) -> dict[str, Any]:
        """Keep a file on the fake CDN; returns its attachment payload."""
        attachment_id = self.ids.next()
        self.files[attachment_id] = StoredFile(data, filename, content_type)
        url = f"{self._cdn_base()}/attachments/{channel_id}/{attachment_id}/{filename}"
        size = self._declared_sizes.get(filename, len(data))
        return p.attachment(
            attachment_id, url=url, filename=filename, size=size, content_type=content_type
        )

    def declare_size(self, filename: str, size: int) -> None:
        """Files stored under this name from now on say they are `size` bytes, whatever they are."""
        self._declared_sizes[filename] = size

    def _attachments(
        self, body: dict[str, Any], files: list[UploadedFile], *, channel_id: int, keep: list[Any]
    ) -> list[dict[str, Any]]:
        existing = {attachment["id"]: attachment for attachment in keep}
        uploads = {upload.name: upload for upload in files}
        result = []
        listed = body.get("attachments")
        if listed is None:
            listed = [{"id": index} for index in range(len(files))]
        for entry in listed:
            upload = uploads.get(f"files[{entry['id']}]")
            if upload is not None:
                result.append(
                    self.store_file(
                        upload.data,
                        filename=entry.get("filename") or upload.filename,
                        content_type=_guess_type(upload.filename),
                        channel_id=channel_id,
                    )
                )
            elif str(entry["id"]) in existing:
                result.append(existing[str(entry["id"])])
        return result

    # -- messages ----------------------------------------------------------------------

    async def create_message(
        self,
        channel_id: int,
        *,
        author: dict[str, Any],
        body: dict[str, Any],
        files: list[UploadedFile] = (),  # type: ignore[assignment]
        flags: int = 0,
        uploaded: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store a message (Discord's limits apply) and announce it on the gateway."""
        files = list(files)
        check_message_body(body, files)
        channel = self.channel(channel_id)
        if channel["type"] == p.FORUM:
            raise DiscordHTTPError(400, 50008, "Cannot send messages in a non-text channel")
        attachments = uploaded or self._attachments(body, files, channel_id=channel_id, keep=[])
        if not (body.get("content") or attachments or body.get("components") or flags & p.LOADING):
            raise DiscordHTTPError(400, 50006, "Cannot send an empty message")
        reference = body.get("message_reference")
        referenced = self.message(int(reference["message_id"])) if reference else None
        message = p.message(
            self.ids.next(),
            channel_id=channel_id,
            author=author,
            content=body.get("content") or "",
            attachments=attachments,
            components=body.get("components") or [],
            flags=flags | int(body.get("flags") or 0),
            reference=referenced,
        )
        message.update(extra or {})
        self.messages[int(message["id"])] = message
        if author["id"] == self.bot["id"]:
            self._note_effect(message, body)
        await self._announce("MESSAGE_CREATE", message)
        return message

    async def edit_message(
        self, message: dict[str, Any], *, body: dict[str, Any], files: list[UploadedFile]
    ) -> dict[str, Any]:
        check_message_body(body, files)
        channel_id = int(message["channel_id"])
        if "content" in body:
            message["content"] = body["content"] or ""
        if "components" in body:
            message["components"] = body["components"] or []
        if "attachments" in body or files:
            message["attachments"] = self._attachments(
                body, files, channel_id=channel_id, keep=message["attachments"]
            )
        message["flags"] &= ~p.LOADING
        message["edited_timestamp"] = p.timestamp()
        self._note_effect(message, body)
        await self._announce("MESSAGE_UPDATE", message)
        return message

    async def delete_message(self, message: dict[str, Any]) -> None:
        message_id = int(message["id"])
        self.deleted[message_id] = self.messages.pop(message_id)
        if message["flags"] & p.EPHEMERAL:
            return
        event = {"id": message["id"], "channel_id": message["channel_id"]}
        guild_id = self.guild_of(int(message["channel_id"]))
        if guild_id is not None:
            event["guild_id"] = str(guild_id)
        await self._dispatch("MESSAGE_DELETE", event)

    async def create_thread(
        self, channel_id: int, message_id: int, *, name: str, owner_id: int
    ) -> dict[str, Any]:
        """A public thread from a message: its id is the message's id."""
        channel = self.channel(channel_id)
        message = self.message(message_id, channel_id=channel_id)
        if channel["type"] != p.TEXT:
            raise DiscordHTTPError(400, 50024, "Cannot execute action on this channel type")
        if channel_id in self.forbid_threads_in:
            raise DiscordHTTPError(403, 50013, "Missing Permissions")
        if not 1 <= len(name) <= 100:
            raise DiscordHTTPError(400, 50035, "Invalid Form Body: name must be 1-100 long")
        if message_id in self.guild.threads:
            raise DiscordHTTPError(
                400, 160004, "A thread has already been created for this message"
            )
        thread = p.thread(message_id, channel, name, owner_id=owner_id)
        self.guild.threads[message_id] = thread
        message["thread"] = thread
        await self._dispatch("THREAD_CREATE", thread | {"newly_created": True})
        return thread

    async def open_post(
        self, forum: dict[str, Any], name: str, *, owner: p.Member
    ) -> dict[str, Any]:
        """A user opens a thread that is not the bot's (a forum post)."""
        post = p.thread(self.ids.next(), forum, name, owner_id=owner.id)
        self.guild.threads[int(post["id"])] = post
        await self._dispatch("THREAD_CREATE", post | {"newly_created": True})
        return post

    def _note_effect(self, message: dict[str, Any], body: dict[str, Any]) -> None:
        referenced = message.get("referenced_message")
        replied = None if referenced is None else int(referenced["author"]["id"])
        flags = int(message["flags"]) | int(body.get("flags") or 0)
        self.effects.append(
            effect_of(int(message["id"]), body, flags=flags, replied_author=replied)
        )

    def guild_of(self, channel_id: int) -> int | None:
        return None if channel_id in self.dms else self.guild.id

    async def _announce(self, event: str, message: dict[str, Any]) -> None:
        if message["flags"] & p.EPHEMERAL:
            return
        payload = dict(message)
        guild_id = self.guild_of(int(message["channel_id"]))
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            member = self.guild.members.get(int(message["author"]["id"]))
            if member is not None:
                payload["member"] = self.guild.member_payload(member, with_user=False)
        await self._dispatch(event, payload)


def _guess_type(filename: str) -> str | None:
    extension = filename.rsplit(".", 1)[-1].lower()
    return {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "webp": "image/webp",
        "gif": "image/gif",
        "txt": "text/plain",
    }.get(extension)
