"""Bolt listeners: each acks at once, claims its delivery, and runs the job in the background."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from adapters.common import APOLOGY, Job, route_message
from adapters.slack.files import SlackFiles
from adapters.slack.jobs import BackgroundTasks, JobRunner
from adapters.slack.parsing import (
    PLATFORM,
    Place,
    Prompt,
    is_direct_message,
    is_user_post,
    parse_prompt,
    place_of,
    site_of,
    team_of,
)
from adapters.slack.replies import (
    INSTRUCTION_BLOCK,
    INSTRUCTION_INPUT,
    REFINE,
    REFINE_VIEW,
    REROLL,
    SlackPoster,
    refine_view,
)
from bot.engine import Deliver, Engine, QueueCallback
from bot.models import Reply, Request, ThreadKey

logger = logging.getLogger(__name__)


EMPTY_COMMAND = "Tell me what to draw, e.g. `/imagine a red fox in the snow --ar 16:9`."


class SlackHandlers:
    """Turns events, the /imagine command, buttons and the Refine modal into engine jobs."""

    def __init__(
        self,
        *,
        engine: Engine,
        poster: SlackPoster,
        files: SlackFiles,
        tasks: BackgroundTasks,
        runner: JobRunner,
    ) -> None:
        self._engine = engine
        self._poster = poster
        self._files = files
        self._tasks = tasks
        self._runner = runner
        self.bot_user_id: str | None = None

    def register(self, app: AsyncApp) -> None:
        """Attach every listener to the bolt app."""
        app.event("app_mention")(self.on_event)
        app.event("message")(self.on_event)
        app.command("/imagine")(self.on_imagine)
        app.action(REROLL)(self.on_reroll)
        app.action(REFINE)(self.on_refine)
        app.view(REFINE_VIEW)(self.on_refine_submit)

    # -- events: mentions, thread replies, DMs ---------------------------------------------

    async def on_event(self, body: dict[str, Any]) -> None:
        """Events are acked by bolt before this runs; the work goes to the background."""
        self._tasks.spawn(self._event(body), name=f"slack event {body.get('event_id')}")

    async def _event(self, body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        if not is_user_post(event, bot_user_id=self.bot_user_id):
            return
        try:
            site = site_of(team_of(body), event, bot_user_id=self.bot_user_id)
            route = await route_message(site, threads=self._engine)
            if route is None or not await self._claim(body, event):
                return
        except Exception:
            logger.exception("could not take Slack event %s", body.get("event_id"))
            if event.get("type") == "app_mention" or is_direct_message(event):
                await self._poster.try_say(_reply_place(event), APOLOGY)
            return
        prompt = parse_prompt(str(event.get("text") or ""), bot_user_id=self.bot_user_id)
        files = list(event.get("files") or [])
        user = str(event["user"])

        async def operation(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            attachments = await self._files.fetch_all(files)
            request = Request(
                key=route.key,
                user=user,
                text=prompt.text,
                attachments=attachments,
                ratio=prompt.ratio,
                reply_to=route.reply_to,
            )
            call = self._engine.imagine if route.fresh else self._engine.refine
            return await call(request, on_queued=on_queued, deliver=deliver)

        place = place_of(route.key, anchor_ts=str(event["ts"]))
        context = f"event {body.get('event_id')} {route.key}"
        await self._runner.run(place, operation, context=context)

    async def _claim(self, body: dict[str, Any], event: dict[str, Any]) -> bool:
        """First delivery of this event id and of this message wins; retries are dropped."""
        event_id = body.get("event_id")
        if event_id and not await self._engine.claim_event(
            platform=PLATFORM, event_id=f"event:{event_id}"
        ):
            logger.info("dropping repeated delivery of %s", event_id)
            return False
        message = f"msg:{event['channel']}:{event['ts']}"
        if not await self._engine.claim_event(platform=PLATFORM, event_id=message):
            logger.info("dropping %s: message %s was already handled", event_id, message)
            return False
        return True

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
        prompt = parse_prompt(text, bot_user_id=self.bot_user_id)
        if not prompt.text:
            await ack(EMPTY_COMMAND)
            return
        await ack()
        name = f"slack /imagine {command.get('trigger_id')}"
        self._tasks.spawn(self._command(command, prompt, respond), name=name)

    async def _command(
        self, command: dict[str, Any], prompt: Prompt, respond: AsyncRespond
    ) -> None:
        trigger = command.get("trigger_id")
        if trigger and not await self._engine.claim_event(
            platform=PLATFORM, event_id=f"command:{trigger}"
        ):
            return
        channel, user = str(command["channel_id"]), str(command["user_id"])
        try:
            ts = await self._poster.say(Place(channel, None), f"<@{user}> asked: {prompt.text}")
        except SlackApiError as exc:
            logger.warning("cannot post in %s: %s", channel, exc.response.get("error"))
            await _tell(respond, "I cannot post in this channel. Invite me with `/invite @me`.")
            return
        key = ThreadKey(PLATFORM, team_of(command), channel, ts)
        request = Request(key=key, user=user, text=prompt.text, ratio=prompt.ratio)

        async def operation(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await self._engine.imagine(request, on_queued=on_queued, deliver=deliver)

        await self._runner.run(Place(channel, ts, ts), operation, context=f"/imagine {key}")

    # -- buttons and the Refine modal --------------------------------------------------------------

    async def on_reroll(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """Re-roll: the same inputs again, posted in the same thread."""
        await ack()
        turn_id = int(body["actions"][0]["value"])
        user = str(body["user"]["id"])

        async def operation(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await self._engine.reroll(
                turn_id, user=user, on_queued=on_queued, deliver=deliver
            )

        note = f"<@{user}> asked for a re-roll."
        work = self._anchored(_button_place(body), note, operation, f"re-roll of turn {turn_id}")
        self._tasks.spawn(work, name=f"slack re-roll {turn_id}")

    async def on_refine(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """Refine: ack, then open the modal at once (trigger ids expire after 3 s)."""
        await ack()
        self._tasks.spawn(self._open_refine(body), name=f"slack refine form {body['trigger_id']}")

    async def _open_refine(self, body: dict[str, Any]) -> None:
        turn_id = int(body["actions"][0]["value"])
        place = _button_place(body)
        try:
            await self._poster.client.views_open(
                trigger_id=body["trigger_id"], view=refine_view(turn_id, place)
            )
        except SlackApiError as exc:
            logger.warning("views.open failed: %s", exc.response.get("error"))
            await self._poster.try_say(
                place, "I could not open the Refine form: reply in this thread with your change."
            )

    async def on_refine_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        """The modal's instruction refines from the turn whose button was pressed."""
        values = view.get("state", {}).get("values", {})
        typed = values.get(INSTRUCTION_BLOCK, {}).get(INSTRUCTION_INPUT, {}).get("value") or ""
        prompt = parse_prompt(str(typed))
        if not prompt.text:
            await ack(response_action="errors", errors={INSTRUCTION_BLOCK: "Describe the change."})
            return
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        place = Place(str(meta["channel"]), meta.get("thread_ts"))
        key = ThreadKey(PLATFORM, team_of(body), place.channel, place.thread_ts or place.channel)
        user = str(body["user"]["id"])
        request = Request(
            key=key, user=user, text=prompt.text, ratio=prompt.ratio, reply_to=int(meta["turn"])
        )

        async def operation(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await self._engine.refine(request, on_queued=on_queued, deliver=deliver)

        note = f"<@{user}> asked: {prompt.text}"
        work = self._anchored(place, note, operation, f"refine of turn {meta['turn']}")
        self._tasks.spawn(work, name=f"slack refine {meta['turn']}")

    async def _anchored(self, place: Place, note: str, operation: Job, context: str) -> None:
        """Post who asked for what; that message carries the job's reactions."""
        anchor = await self._poster.try_say(place, note)
        await self._runner.run(replace(place, anchor_ts=anchor), operation, context=context)


def _reply_place(event: dict[str, Any]) -> Place:
    """Where an answer to a mention or DM goes, worked out without the store."""
    thread_ts = event.get("thread_ts") or (None if is_direct_message(event) else event["ts"])
    return Place(str(event["channel"]), thread_ts)


def _button_place(body: dict[str, Any]) -> Place:
    """The thread the clicked result message is in (or the DM's top level)."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = container.get("channel_id") or body.get("channel", {}).get("id")
    thread_ts = container.get("thread_ts") or message.get("thread_ts")
    return Place(str(channel), str(thread_ts) if thread_ts else None)


async def _tell(respond: AsyncRespond, text: str) -> None:
    try:
        await respond(text=text, response_type="ephemeral")
    except Exception:
        logger.exception("could not answer through the response_url")
