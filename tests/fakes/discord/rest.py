"""The fake Discord REST API outside interactions: login, command sync, channels, messages, CDN."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from tests.fakes.discord.http import Call, DiscordHTTPError, RawBody, Recorder
from tests.fakes.discord.world import DiscordWorld

API = "/api/v10"
MAX_OPTIONS = MAX_CHOICES = 25
_NAME = re.compile(r"[-_\w]{1,32}")


def check_command(command: dict[str, Any]) -> None:
    """Discord's rules for a command's shape: 25 options and 25 choices each at most, names
    lowercase and short, descriptions within 100 characters, required options first."""
    options = command.get("options") or []
    problems = []
    if not _NAME.fullmatch(command["name"]) or command["name"] != command["name"].lower():
        problems.append(f"name {command['name']!r}")
    if not 1 <= len(command.get("description") or "") <= 100:
        problems.append(f"description of {command['name']!r}")
    if len(options) > MAX_OPTIONS:
        problems.append(f"{len(options)} options in {command['name']!r}")
    required = [bool(option.get("required")) for option in options]
    if required != sorted(required, reverse=True):
        problems.append(f"optional options before required ones in {command['name']!r}")
    for option in options:
        if len(option.get("choices") or []) > MAX_CHOICES:
            problems.append(f"{len(option['choices'])} choices in {option['name']!r}")
        if option.get("type") in (1, 2):
            check_command(option)
    if problems:
        raise DiscordHTTPError(400, 50035, "Invalid Form Body: " + "; ".join(problems))


class RestApi:
    """Bot-token routes; each is recorded and checked for `Authorization: Bot <token>`."""

    def __init__(self, world: DiscordWorld, recorder: Recorder) -> None:
        self._world = world
        self._recorder = recorder
        self.synced_commands: dict[str, list[dict[str, Any]]] = {}

    def install(self, app: web.Application) -> None:
        wrap = self._recorder.wrap
        routes = [
            ("GET", "/users/@me", "users_me", self._users_me),
            ("GET", "/oauth2/applications/@me", "application_info", self._application),
            ("PUT", "/applications/{app}/commands", "command_sync", self._sync),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", "command_sync", self._sync),
            ("GET", "/channels/{channel}", "channel_get", self._channel),
            ("POST", "/channels/{channel}/messages", "message_create", self._message_create),
            ("PATCH", "/channels/{channel}/messages/{message}", "message_edit", self._edit),
            ("DELETE", "/channels/{channel}/messages/{message}", "message_delete", self._delete),
            (
                "POST",
                "/channels/{channel}/messages/{message}/threads",
                "thread_create",
                self._thread,
            ),
            ("POST", "/channels/{channel}/typing", "typing", self._typing),
        ]
        for method, path, name, handler in routes:
            app.router.add_route(method, API + path, wrap(name, handler))
        app.router.add_get(
            "/attachments/{channel}/{attachment}/{filename}",
            wrap("cdn", self._cdn_file, auth=False),
        )

    async def _users_me(self, request: web.Request, call: Call) -> tuple[int, Any]:
        return 200, self._world.bot | {"verified": True, "mfa_enabled": False, "flags": 0}

    async def _application(self, request: web.Request, call: Call) -> tuple[int, Any]:
        world = self._world
        return 200, {
            "id": str(world.app_id),
            "name": world.bot["username"],
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": world.alice.user,
            "verify_key": "0" * 64,
            "flags": 0,
            "interactions_endpoint_url": None,
        }

    async def _sync(self, request: web.Request, call: Call) -> tuple[int, Any]:
        if int(call.params["app"]) != self._world.app_id:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        scope = call.params.get("guild", "global")
        if scope != "global" and int(scope) != self._world.guild.id:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        for command in call.json:
            check_command(command)
        commands = [
            command | {"id": str(self._world.ids.next()), "application_id": str(self._world.app_id)}
            for command in call.json
        ]
        self.synced_commands[scope] = commands
        return 200, commands

    async def _channel(self, request: web.Request, call: Call) -> tuple[int, Any]:
        return 200, self._world.channel(int(call.params["channel"]))

    async def _message_create(self, request: web.Request, call: Call) -> tuple[int, Any]:
        message = await self._world.create_message(
            int(call.params["channel"]), author=self._world.bot, body=call.json, files=call.files
        )
        return 200, message

    async def _edit(self, request: web.Request, call: Call) -> tuple[int, Any]:
        message = self._world.message(
            int(call.params["message"]), channel_id=int(call.params["channel"])
        )
        if message["author"]["id"] != self._world.bot["id"]:
            raise DiscordHTTPError(403, 50005, "Cannot edit a message authored by another user")
        return 200, await self._world.edit_message(message, body=call.json, files=call.files)

    async def _delete(self, request: web.Request, call: Call) -> tuple[int, Any]:
        message = self._world.message(
            int(call.params["message"]), channel_id=int(call.params["channel"])
        )
        await self._world.delete_message(message)
        return 204, None

    async def _thread(self, request: web.Request, call: Call) -> tuple[int, Any]:
        thread = await self._world.create_thread(
            int(call.params["channel"]),
            int(call.params["message"]),
            name=call.json.get("name", ""),
            owner_id=self._world.app_id,
        )
        return 201, thread

    async def _typing(self, request: web.Request, call: Call) -> tuple[int, Any]:
        self._world.channel(int(call.params["channel"]))
        return 204, None

    async def _cdn_file(self, request: web.Request, call: Call) -> tuple[int, Any]:
        stored = self._world.files.get(int(call.params["attachment"]))
        if stored is None:
            raise DiscordHTTPError(404, 0, "Not Found")
        return 200, RawBody(stored.data, stored.content_type or "application/octet-stream")
