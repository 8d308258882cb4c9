"""A fake Discord (gateway + REST + CDN) on 127.0.0.1:0 for the real discord.py client.

async with FakeDiscord() as discord_fake:
    # DISCORD_API_BASE_URL=discord_fake.api_base, DISCORD_GATEWAY_URL=discord_fake.gateway_url
    await discord_fake.slash_command("imagine", {"prompt": "a fox"}, user=world.alice)
    [call] = await discord_fake.wait_for("followup_create")
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.discord import payloads as p
from tests.fakes.discord.gateway import FakeGateway
from tests.fakes.discord.http import Call, Recorder
from tests.fakes.discord.interactions import InteractionApi, InteractionRecord
from tests.fakes.discord.options import (
    ATTACHMENT_OPTION,
    SUBCOMMAND,
    OptionValue,
    RoleOption,
    command_option,
)
from tests.fakes.discord.rest import API, RestApi
from tests.fakes.discord.world import DiscordWorld
from tests.fakes.local_server import serve_locally

__all__ = ["FakeDiscord", "OptionValue", "RoleOption", "Upload"]

APPLICATION_COMMAND, COMPONENT, MODAL_SUBMIT = 2, 3, 5
Upload = tuple[bytes, str, str | None]  # data, filename, content type


class FakeDiscord:
    """Discord as the bot sees it: one guild with members, channels, DMs; records every call."""

    def __init__(self, *, token: str = "fake-discord-token") -> None:
        self.token = token
        self.recorder = Recorder(token=token)
        self.world = DiscordWorld(dispatch=self._dispatch, cdn_base=lambda: self.url)
        self.gateway = FakeGateway(
            token=token,
            ready=self._ready_payload,
            guild_create=self.world.guild.create_payload,
            url=lambda: self.gateway_url,
        )
        self.rest = RestApi(self.world, self.recorder)
        self.interactions = InteractionApi(self.world, self.recorder)
        self._runner: web.AppRunner | None = None
        self._port = 0

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        self.rest.install(app)
        self.interactions.install(app)
        self._runner, self._port = await serve_locally(app, shutdown_timeout=0.5)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        return self.url + API

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    # -- what the bot did --------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        return self.recorder.calls

    def of(self, route: str) -> list[Call]:
        return self.recorder.of(route)

    async def wait_for(
        self,
        route: str,
        where: Callable[[Call], bool] = lambda call: True,
        *,
        count: int = 1,
        within: float = 10.0,
    ) -> list[Call]:
        return await self.recorder.wait_for(route, where, count=count, within=within)

    def messages_in(
        self, channel_id: int | str, *, ephemeral: bool = False
    ) -> list[dict[str, Any]]:
        return self.world.in_channel(int(channel_id), ephemeral=ephemeral)

    # -- what users do -----------------------------------------------------------------------

    def upload(
        self, data: bytes, filename: str, content_type: str | None, *, channel_id: int
    ) -> dict[str, Any]:
        return self.world.store_file(
            data, filename=filename, content_type=content_type, channel_id=channel_id
        )

    async def slash_command(
        self,
        name: str,
        options: Mapping[str, OptionValue],
        *,
        user: p.Member,
        channel: dict[str, Any] | None = None,
        attachments: Mapping[str, Upload] | None = None,
        subcommand: str | None = None,
    ) -> InteractionRecord:
        """A user runs a chat command: options typed by their Python type, attachments, and
        optionally as one of the command's subcommands."""
        channel = channel or self.world.general
        resolved: dict[str, dict[str, Any]] = {}
        payload_options = [
            command_option(self.world, key, value, resolved) for key, value in options.items()
        ]
        for option, (content, filename, content_type) in (attachments or {}).items():
            attachment = self.upload(content, filename, content_type, channel_id=int(channel["id"]))
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            payload_options.append(
                {"name": option, "type": ATTACHMENT_OPTION, "value": attachment["id"]}
            )
        if subcommand is not None:
            payload_options = [{"name": subcommand, "type": SUBCOMMAND, "options": payload_options}]
        command = self._command_id(name)
        data: dict[str, Any] = {"id": command, "name": name, "type": 1, "options": payload_options}
        if resolved:
            data["resolved"] = resolved
        return await self._interact(APPLICATION_COMMAND, data, user=user, channel=channel)

    async def click(
        self, message: dict[str, Any], custom_id: str, *, user: p.Member
    ) -> InteractionRecord:
        """A user presses a button on a message."""
        channel = self.world.channel(int(message["channel_id"]))
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(COMPONENT, data, user=user, channel=channel, message=message)

    async def submit_modal(
        self,
        custom_id: str,
        values: dict[str, str],
        *,
        user: p.Member,
        message: dict[str, Any],
    ) -> InteractionRecord:
        """A user fills in the text inputs of a modal opened from a button on `message`."""
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
        data = {"custom_id": custom_id, "components": rows}
        channel = self.world.channel(int(message["channel_id"]))
        return await self._interact(MODAL_SUBMIT, data, user=user, channel=channel, message=message)

    async def send_message(
        self,
        channel: dict[str, Any],
        content: str,
        *,
        author: p.Member,
        attachments: Sequence[Upload] = (),
        reply_to: dict[str, Any] | None = None,
        mention_bot: bool = False,
    ) -> dict[str, Any]:
        """A user posts a message (MESSAGE_CREATE reaches the bot)."""
        channel_id = int(channel["id"])
        if mention_bot:
            content = f"<@{self.world.app_id}> {content}"
        body: dict[str, Any] = {"content": content}
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to["id"]}
        files = [
            self.upload(data, filename, content_type, channel_id=channel_id)
            for data, filename, content_type in attachments
        ]
        return await self.world.create_message(
            channel_id,
            author=author.user,
            body=body,
            uploaded=files,
            extra={"mentions": [self.world.bot] if mention_bot else []},
        )

    # -- inside ------------------------------------------------------------------------------

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        await self.gateway.dispatch(event, data)

    def _ready_payload(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": self.world.bot | {"verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(self.world.guild.id), "unavailable": True}],
            "session_id": secrets.token_hex(8),
            "application": {"id": str(self.world.app_id), "flags": 0},
        }

    def _command_id(self, name: str) -> str:
        for commands in self.rest.synced_commands.values():
            for command in commands:
                if command["name"] == name:
                    return str(command["id"])
        return str(self.world.ids.next())

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user: p.Member,
        channel: dict[str, Any],
        message: dict[str, Any] | None = None,
    ) -> InteractionRecord:
        record = InteractionRecord(
            id=self.world.ids.next(),
            token=secrets.token_urlsafe(24),
            type=kind,
            channel_id=int(channel["id"]),
            user=user.user,
            payload={},
            message_id=int(message["id"]) if message else None,
        )
        record.payload = self._interaction_payload(record, data, user=user, channel=channel)
        if message is not None:
            record.payload["message"] = message
        self.interactions.add(record)
        await self._dispatch("INTERACTION_CREATE", record.payload)
        return record

    def _interaction_payload(
        self,
        record: InteractionRecord,
        data: dict[str, Any],
        *,
        user: p.Member,
        channel: dict[str, Any],
    ) -> dict[str, Any]:
        world = self.world
        payload: dict[str, Any] = {
            "id": str(record.id),
            "application_id": str(world.app_id),
            "type": record.type,
            "data": data,
            "token": record.token,
            "version": 1,
            "channel_id": channel["id"],
            "channel": channel,
            "app_permissions": str(p.EVERYONE_PERMISSIONS),
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(world.guild.id)},
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if channel["type"] == p.DM:
            return payload | {"user": user.user, "context": 1}
        member = world.guild.member_payload(user)
        member["permissions"] = str(world.guild.permissions(user))
        return payload | {
            "guild_id": str(world.guild.id),
            "guild_locale": "en-US",
            "member": member,
            "context": 0,
        }
