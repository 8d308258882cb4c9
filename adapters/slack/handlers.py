"""Bolt listeners for messages and /imagine: each acks at once and defers the delivery's job;
the job (in this process, or in any process's worker on a shared queue) claims the delivery,
checks the request and runs it."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from adapters.common import APOLOGY, Route, route_message
from adapters.slack.budgets import SlackBudgets, is_budget_command
from adapters.slack.deferral import COMMAND, EVENT, command_deferral, event_deferral
from adapters.slack.files import SlackFiles
from adapters.slack.jobs import Wiring
from adapters.slack.parsing import (
    PLATFORM,
    Place,
    Prompt,
    is_direct_message,
    is_user_post,
    parse_prompt,
    place_of,
    prompt_request,
    site_of,
    team_of,
)
from adapters.slack.replies import tell
from adapters.slack.text import literal, quoted
from bot.engine import Deliver, QueueCallback
from bot.errors import BotError
from bot.models import Reply, ThreadKey

logger = logging.getLogger(__name__)


EMPTY_COMMAND = "Tell me what to draw, e.g. `/imagine a red fox in the snow --ar 16:9`."


class SlackHandlers:
    """Turns mentions, thread replies, DMs and the /imagine command into engine jobs."""

    def __init__(self, wiring: Wiring, *, files: SlackFiles) -> None:
        self._engine = wiring.engine
        self._poster = wiring.poster
        self._guard = wiring.guard
        self._runner = wiring.runner
        self._files = files
        self._budgets = SlackBudgets(wiring.engine)
        self._deferrer = wiring.deferrer
        self._deferrer.handle(EVENT, self._event)
        self._deferrer.handle(COMMAND, self._command_job)
        self.bot_user_id: str | None = None

    def register(self, app: AsyncApp) -> None:
        """Attach the listeners to the bolt app."""
        app.event("app_mention")(self.on_event)
        app.event("message")(self.on_event)
        app.command("/imagine")(self.on_imagine)

    # -- events: mentions, thread replies, DMs ---------------------------------------------

    async def on_event(self, body: dict[str, Any]) -> None:
        """Bolt acks an event once this returns: its job is deferred by then."""
        event = body.get("event") or {}
        thread = None
        if self._deferrer.shared:
            # Routed here first so that a message no job is for never makes a queue row, and
            # the job waits behind the other turns of its thread, whichever process runs them.
            if not is_user_post(event, bot_user_id=self.bot_user_id):
                return
            route = await self._route(body, event)
            if route is None:
                return
            thread = str(route.key)
        claims = _claim_ids(body, event) if event.get("channel") and event.get("ts") else ()
        await self._deferrer.defer(event_deferral(body, thread=thread, claims=claims))

    async def _event(self, body: dict[str, Any]) -> None:
        """An event's job, from its Events API body."""
        event = body.get("event") or {}
        if not is_user_post(event, bot_user_id=self.bot_user_id):
            return
        route = await self._route(body, event)
        if route is None:
            return
        ids = _claim_ids(body, event)
        try:
            async with self._engine.answering(platform=PLATFORM, event_ids=ids) as first:
                if not first:
                    logger.info("dropping %s: already handled (%s)", body.get("event_id"), ids)
                    return
                await self._answer(body, event, route, claims=ids)
        except Exception:
            logger.exception("could not take Slack event %s", body.get("event_id"))
            await self._poster.try_say(_reply_place(event), APOLOGY)

    async def _answer(
        self, body: dict[str, Any], event: dict[str, Any], route: Route, *, claims: tuple[str, ...]
    ) -> None:
        place, user = place_of(route.key, anchor_ts=str(event["ts"])), str(event["user"])
        text = str(event.get("text") or "")
        prompt = await self._guard.prompt(text, place, user, bot_user_id=self.bot_user_id)
        if prompt is None:
            return
        files = [file for file in event.get("files") or [] if isinstance(file, dict)]
        asked = prompt_request(
            prompt, key=route.key, user=user, reply_to=route.reply_to, claims=claims
        )
        if not await self._guard.message(asked, place, files=files, refine=not route.fresh):
            return

        async def operation(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            request = replace(asked, attachments=await self._files.fetch_all(files))
            call = self._engine.imagine if route.fresh else self._engine.refine
            return await call(request, on_queued=on_queued, deliver=deliver)

        context = f"event {body.get('event_id')} {route.key}"
        await self._runner.run(place, operation, context=context)

    async def _route(self, body: dict[str, Any], event: dict[str, Any]) -> Route | None:
        """Where the message's job goes; None: not ours to do."""
        try:
            site = site_of(team_of(body), event, bot_user_id=self.bot_user_id)
            return await route_message(site, threads=self._engine)
        except Exception:
            logger.exception("could not route Slack event %s", body.get("event_id"))
            if event.get("type") == "app_mention" or is_direct_message(event):
                await self._poster.try_say(_reply_place(event), APOLOGY)
            return None

    # -- /imagine ------------------------------------------------------------------------------

    async def on_imagine(
        self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """Ack within Slack's 3 s; the prompt is posted and the image made in its thread."""
        text = str(command.get("text") or "").strip()
        if text.lower() == "usage":
            report = await self._engine.usage_report(
                platform=PLATFORM,
                workspace=str(command.get("team_id") or ""),
                user=str(command.get("user_id") or ""),
            )
            await ack(report.render())
            return
        if is_budget_command(text):
            await ack(await self._budgets.answer(command))
            return
        try:
            prompt = parse_prompt(text, bot_user_id=self.bot_user_id)
        except BotError as exc:
            await ack(literal(exc.user_message))
            return
        if not prompt.text:
            await ack(EMPTY_COMMAND)
            return
        await ack()
        await self._deferrer.defer(command_deferral(command))

    async def _command_job(self, command: dict[str, Any]) -> None:
        """/imagine's job, from the command's form: its reply URL outlives the request."""
        respond = AsyncRespond(response_url=command.get("response_url"))
        text = str(command.get("text") or "").strip()
        try:
            prompt = parse_prompt(text, bot_user_id=self.bot_user_id)
        except BotError as exc:  # checked before the ack: only a changed parser gets here
            await tell(respond, literal(exc.user_message))
            return
        await self._command(command, prompt, respond)

    async def _command(
        self, command: dict[str, Any], prompt: Prompt, respond: AsyncRespond
    ) -> None:
        trigger = command.get("trigger_id")
        ids = (f"command:{trigger}",) if trigger else ()
        async with self._engine.answering(platform=PLATFORM, event_ids=ids) as first:
            if first:
                await self._run_command(command, prompt, respond, claims=ids)

    async def _run_command(
        self,
        command: dict[str, Any],
        prompt: Prompt,
        respond: AsyncRespond,
        *,
        claims: tuple[str, ...],
    ) -> None:
        channel, user = str(command["channel_id"]), str(command["user_id"])
        team, top = team_of(command), Place(channel, None)
        # The thread starts with the message posted below; the check needs only the channel.
        probe = prompt_request(
            prompt, key=ThreadKey(PLATFORM, team, channel, channel), user=user, claims=claims
        )
        if not await self._guard.command(probe, top, respond):
            return
        try:
            ts = await self._poster.say(top, f"<@{user}> asked: {quoted(prompt.text)}")
        except SlackApiError as exc:
            logger.warning("cannot post in %s: %s", channel, exc.response.get("error"))
            await tell(respond, "I cannot post in this channel. Invite me with `/invite @me`.")
            return
        key = ThreadKey(PLATFORM, team, channel, ts)
        request = replace(probe, key=key)

        async def operation(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await self._engine.imagine(request, on_queued=on_queued, deliver=deliver)

        await self._runner.run(Place(channel, ts, ts), operation, context=f"/imagine {key}")


def _claim_ids(body: dict[str, Any], event: dict[str, Any]) -> tuple[str, ...]:
    """The delivery's event id and the message's own: Slack may send one message twice, as
    a mention and as a message event, under two event ids."""
    message = f"msg:{event['channel']}:{event['ts']}"
    event_id = body.get("event_id")
    return (f"event:{event_id}", message) if event_id else (message,)


def _reply_place(event: dict[str, Any]) -> Place:
    """Where an answer to a mention or DM goes, worked out without the store."""
    thread_ts = event.get("thread_ts") or (None if is_direct_message(event) else event["ts"])
    return Place(str(event["channel"]), thread_ts)
