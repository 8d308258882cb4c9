"""The fake's interaction endpoints: the initial response (3 s, once) and the webhook follow-ups."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.discord import payloads as p
from tests.fakes.discord.http import Call, DiscordHTTPError, Recorder
from tests.fakes.discord.rest import API
from tests.fakes.discord.world import DiscordWorld

INITIAL_RESPONSE_SECONDS = 3.0
FOLLOWUP_SECONDS = 15 * 60
CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, MODAL = 4, 5, 6, 7, 9


@dataclass
class InteractionRecord:
    """One interaction the fake sent, and what the bot answered to it."""

    id: int
    token: str
    type: int
    channel_id: int
    user: dict[str, Any]
    payload: dict[str, Any] = field(repr=False)
    created: float = field(default_factory=time.monotonic)
    message_id: int | None = None  # the message a component or modal came from
    response_type: int | None = None
    responded_at: float | None = None
    original_id: int | None = None
    original_loading: bool = False
    modal: dict[str, Any] | None = None
    followup_ids: list[int] = field(default_factory=list)


class InteractionApi:
    """`/interactions/{id}/{token}/callback` and `/webhooks/{app}/{token}...`, no bot token."""

    def __init__(self, world: DiscordWorld, recorder: Recorder) -> None:
        self._world = world
        self._recorder = recorder
        self.interactions: dict[int, InteractionRecord] = {}
        self.response_deadline = INITIAL_RESPONSE_SECONDS

    def install(self, app: web.Application) -> None:
        wrap = self._recorder.wrap
        hook = API + "/webhooks/{app}/{token}"
        app.router.add_post(
            API + "/interactions/{id}/{token}/callback",
            wrap("interaction_callback", self._callback, auth=False),
        )
        app.router.add_post(hook, wrap("followup_create", self._followup, auth=False))
        for method, name, handler in (
            ("GET", "webhook_message_get", self._get),
            ("PATCH", "webhook_message_edit", self._edit),
            ("DELETE", "webhook_message_delete", self._delete),
        ):
            app.router.add_route(
                method, hook + "/messages/{message}", wrap(name, handler, auth=False)
            )

    def add(self, record: InteractionRecord) -> InteractionRecord:
        self.interactions[record.id] = record
        return record

    # -- initial response ----------------------------------------------------------------

    async def _callback(self, request: web.Request, call: Call) -> tuple[int, Any]:
        record = self.interactions.get(int(call.params["id"]))
        if record is None or record.token != call.params["token"]:
            raise DiscordHTTPError(404, 10062, "Unknown interaction")
        if time.monotonic() - record.created > self.response_deadline:
            raise DiscordHTTPError(404, 10062, "Unknown interaction")
        if record.response_type is not None:
            raise DiscordHTTPError(400, 40060, "Interaction has already been acknowledged.")
        kind = int(call.json["type"])
        data = call.json.get("data") or {}
        record.response_type, record.responded_at = kind, call.at
        message = await self._respond(record, kind, data, call)
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(record.id),
                "type": record.type,
                "response_message_loading": kind == DEFERRED_MESSAGE,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & p.EPHEMERAL),
            }
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = message["id"]
            answer["resource"] = {"type": kind, "message": message}
        return 200, answer

    async def _respond(
        self, record: InteractionRecord, kind: int, data: dict[str, Any], call: Call
    ) -> dict[str, Any] | None:
        flags = int(data.get("flags") or 0)
        if kind in (CHANNEL_MESSAGE, DEFERRED_MESSAGE):
            loading = p.LOADING if kind == DEFERRED_MESSAGE else 0
            message = await self._world.create_message(
                record.channel_id,
                author=self._world.bot,
                body=data,
                files=call.files,
                flags=flags | loading,
                extra=self._metadata(record),
            )
            record.original_id, record.original_loading = int(message["id"]), bool(loading)
            return message
        if kind == UPDATE_MESSAGE and record.message_id is not None:
            message = self._world.message(record.message_id)
            return await self._world.edit_message(message, body=data, files=call.files)
        if kind == MODAL:
            record.modal = data
        elif kind != DEFERRED_UPDATE:
            raise DiscordHTTPError(400, 50035, f"Invalid Form Body: response type {kind}")
        return None

    # -- follow-ups ------------------------------------------------------------------------

    def _record_for(self, call: Call) -> InteractionRecord:
        for record in self.interactions.values():
            if record.token == call.params["token"]:
                break
        else:
            raise DiscordHTTPError(404, 10015, "Unknown Webhook")
        if int(call.params["app"]) != self._world.app_id or record.response_type is None:
            raise DiscordHTTPError(404, 10015, "Unknown Webhook")
        if time.monotonic() - record.created > FOLLOWUP_SECONDS:
            raise DiscordHTTPError(401, 50027, "Invalid Webhook Token")
        return record

    def _target(self, record: InteractionRecord, message_id: str) -> dict[str, Any]:
        if message_id == "@original":
            original = record.original_id
            if original is None and record.response_type in (DEFERRED_UPDATE, UPDATE_MESSAGE):
                original = record.message_id
            if original is None:
                raise DiscordHTTPError(404, 10008, "Unknown Message")
            return self._world.message(original)
        if int(message_id) not in (*record.followup_ids, record.original_id):
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        return self._world.message(int(message_id))

    async def _followup(self, request: web.Request, call: Call) -> tuple[int, Any]:
        record = self._record_for(call)
        if record.original_loading and record.original_id is not None:
            # Discord: the first follow-up after a "thinking" defer replaces the loading message,
            # keeping the defer's visibility whatever flags the follow-up asks for.
            record.original_loading = False
            original = self._world.message(record.original_id)
            message = await self._world.edit_message(original, body=call.json, files=call.files)
        else:
            message = await self._world.create_message(
                record.channel_id,
                author=self._world.bot,
                body=call.json,
                files=call.files,
                extra=self._metadata(record),
            )
            record.followup_ids.append(int(message["id"]))
        return (200, message) if call.query.get("wait") in ("1", "true") else (204, None)

    async def _get(self, request: web.Request, call: Call) -> tuple[int, Any]:
        return 200, self._target(self._record_for(call), call.params["message"])

    async def _edit(self, request: web.Request, call: Call) -> tuple[int, Any]:
        record = self._record_for(call)
        message = self._target(record, call.params["message"])
        if int(message["id"]) == record.original_id:
            record.original_loading = False
        return 200, await self._world.edit_message(message, body=call.json, files=call.files)

    async def _delete(self, request: web.Request, call: Call) -> tuple[int, Any]:
        record = self._record_for(call)
        message = self._target(record, call.params["message"])
        if int(message["id"]) == record.original_id:
            record.original_loading = False
        await self._world.delete_message(message)
        return 204, None

    def _metadata(self, record: InteractionRecord) -> dict[str, Any]:
        return {
            "webhook_id": str(self._world.app_id),
            "application_id": str(self._world.app_id),
            "interaction_metadata": {
                "id": str(record.id),
                "type": record.type,
                "user": record.user,
                "authorizing_integration_owners": {},
            },
        }
