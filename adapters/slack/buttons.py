"""The Re-roll, Refine and Upscale buttons and the Refine modal: acked, checked, then run.

A button's value and a modal's metadata come back from Slack as we wrote them, yet they are
read as untrusted: the turn they name is used only on a message of its own conversation.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError

from adapters.slack.jobs import Wiring
from adapters.slack.parsing import (
    Click,
    Origin,
    click_of,
    parse_prompt,
    prompt_request,
    team_of,
    user_of,
    view_origin,
)
from adapters.slack.replies import INSTRUCTION_BLOCK, INSTRUCTION_INPUT, REFINE_VIEW, refine_view
from adapters.slack.results import REFINE, REROLL, UPSCALE
from adapters.slack.text import quoted
from bot.engine import ELSEWHERE, Deliver, QueueCallback
from bot.errors import BotError
from bot.models import Reply, Request

logger = logging.getLogger(__name__)

NO_FORM = "I could not open the Refine form: reply in this thread with your change."


class SlackButtons:
    """Turns clicks on a result and the Refine modal's submission into engine jobs."""

    def __init__(self, wiring: Wiring) -> None:
        self._engine = wiring.engine
        self._poster = wiring.poster
        self._guard = wiring.guard
        self._tasks = wiring.tasks
        self._runner = wiring.runner

    def register(self, app: AsyncApp) -> None:
        """Attach the listeners to the bolt app."""
        app.action(REROLL)(self.on_reroll)
        app.action(REFINE)(self.on_refine)
        app.action(UPSCALE)(self.on_upscale)
        app.view(REFINE_VIEW)(self.on_refine_submit)

    async def on_reroll(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """Re-roll: the same inputs again, posted in the same thread."""
        await self._on_again(ack, body, upscale=False)

    async def on_upscale(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """Upscale: that image again at its model's largest size, posted in the same thread."""
        await self._on_again(ack, body, upscale=True)

    async def _on_again(self, ack: AsyncAck, body: dict[str, Any], *, upscale: bool) -> None:
        await ack()
        click = _clicker(body)
        if click is not None:
            what = "upscale" if upscale else "re-roll"
            self._tasks.spawn(
                self._again(click, upscale=upscale), name=f"slack {what} {click.origin}"
            )

    async def _again(self, click: Click, *, upscale: bool) -> None:
        """A re-roll or an upscale of the clicked turn, once the click is found genuine."""
        found = await self._guard.click(click, upscale=upscale)
        if found is None:
            return
        turn, origin = found
        user = click.user
        again = self._engine.upscale if upscale else self._engine.reroll

        async def operation(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await again(turn.id, user=user, on_queued=on_queued, deliver=deliver)

        if upscale:
            note = f"<@{user}> asked for image #{turn.number} in a larger size."
            context = f"upscale of turn {turn.id}"
        else:
            note, context = f"<@{user}> asked for a re-roll.", f"re-roll of turn {turn.id}"
        await self._runner.run_anchored(origin.place, note, operation, context=context)

    async def on_refine(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """Refine: ack, then open the modal at once (trigger ids expire after 3 s)."""
        await ack()
        click = _clicker(body)
        if click is not None:
            self._tasks.spawn(self._open_refine(click), name=f"slack refine form {click.origin}")

    async def _open_refine(self, click: Click) -> None:
        found = await self._guard.click(click)
        if found is None:
            return
        _, origin = found
        try:
            await self._poster.client.views_open(
                trigger_id=click.trigger_id or "", view=refine_view(origin)
            )
        except SlackApiError as exc:
            logger.warning("views.open failed: %s", exc.response.get("error"))
            await self._poster.try_say(origin.place, NO_FORM)

    async def on_refine_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        """The modal's instruction refines from the turn whose button was pressed."""
        values = view.get("state", {}).get("values", {})
        typed = values.get(INSTRUCTION_BLOCK, {}).get(INSTRUCTION_INPUT, {}).get("value") or ""
        try:
            prompt = parse_prompt(str(typed))
        except BotError as exc:
            await ack(response_action="errors", errors={INSTRUCTION_BLOCK: exc.user_message})
            return
        if not prompt.text:
            await ack(response_action="errors", errors={INSTRUCTION_BLOCK: "Describe the change."})
            return
        origin, user = view_origin(view), user_of(body)
        if origin is None or user is None:
            # Nowhere else to answer: a modal's payload names no channel.
            await ack(response_action="errors", errors={INSTRUCTION_BLOCK: ELSEWHERE})
            return
        await ack()
        request = prompt_request(
            prompt, key=origin.key(team_of(body)), user=user, reply_to=origin.turn_id
        )
        self._tasks.spawn(self._refine(origin, request), name=f"slack refine {origin}")

    async def _refine(self, origin: Origin, request: Request) -> None:
        if not await self._guard.submission(origin, request):
            return

        async def operation(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await self._engine.refine(request, on_queued=on_queued, deliver=deliver)

        note = f"<@{request.user}> asked: {quoted(request.text)}"
        context = f"refine of turn {origin.turn_id}"
        await self._runner.run_anchored(origin.place, note, operation, context=context)


def _clicker(body: dict[str, Any]) -> Click | None:
    click = click_of(body)
    if click is None:
        logger.info("ignoring a click that names no user")
    return click
