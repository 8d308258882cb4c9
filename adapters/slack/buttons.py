"""The Re-roll, Refine and Upscale buttons and the Refine modal: acked, deferred, checked, run.

A click on Re-roll or Upscale and a submitted Refine form become jobs on the job queue, as
events do, so any process may run them; opening the Refine form stays here (its trigger id
expires in 3 s). A button's value and a modal's metadata come back from Slack as we wrote
them, yet they are read as untrusted: the turn they name is used only on a message of its own
conversation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError

from adapters.slack.deferral import (
    CLICK,
    FORM,
    click_deferral,
    interaction_claim,
    refine_deferral,
)
from adapters.slack.jobs import Wiring
from adapters.slack.parsing import (
    PLATFORM,
    Click,
    Origin,
    Prompt,
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
        self._deferrer = wiring.deferrer
        self._deferrer.handle(CLICK, self._click_job)
        self._deferrer.handle(FORM, self._refine_job)

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
            await self._deferrer.defer(click_deferral(body, click, upscale=upscale))

    async def _click_job(self, payload: dict[str, Any]) -> None:
        """A re-roll's or an upscale's job, from the click's payload (read as untrusted again)."""
        body = payload.get("body")
        click = _clicker(body if isinstance(body, dict) else {})
        if click is None:
            return
        upscale = payload.get("upscale") is True
        async with self._answering(click.trigger_id, what="click") as claims:
            if claims is not None:
                await self._again(click, upscale=upscale, claims=claims)

    @contextlib.asynccontextmanager
    async def _answering(
        self, trigger_id: str | None, *, what: str
    ) -> AsyncIterator[tuple[str, ...] | None]:
        """The interaction's claims while its job runs; None: it was answered already (the
        queue ran it again after its worker died)."""
        claim = interaction_claim(trigger_id)
        claims = (claim,) if claim else ()
        async with self._engine.answering(platform=PLATFORM, event_ids=claims) as first:
            if not first:
                logger.info("dropping the %s %s: already handled", what, claim)
            yield claims if first else None

    async def _again(self, click: Click, *, upscale: bool, claims: tuple[str, ...]) -> None:
        """A re-roll or an upscale of the clicked turn, once the click is found genuine."""
        found = await self._guard.click(click, upscale=upscale)
        if found is None:
            return
        turn, origin = found
        user = click.user
        again = self._engine.upscale if upscale else self._engine.reroll

        async def operation(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await again(
                turn.id, user=user, claims=claims, on_queued=on_queued, deliver=deliver
            )

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

    async def on_refine_submit(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """The modal's instruction refines from the turn whose button was pressed."""
        try:
            form = _form(body)
        except BotError as exc:
            await ack(response_action="errors", errors={INSTRUCTION_BLOCK: exc.user_message})
            return
        if not form.prompt.text:
            await ack(response_action="errors", errors={INSTRUCTION_BLOCK: "Describe the change."})
            return
        if form.origin is None or form.user is None:
            # Nowhere else to answer: a modal's payload names no channel.
            await ack(response_action="errors", errors={INSTRUCTION_BLOCK: ELSEWHERE})
            return
        await ack()
        job = refine_deferral(body, form.origin, team=team_of(body), trigger_id=form.trigger_id)
        await self._deferrer.defer(job)

    async def _refine_job(self, body: dict[str, Any]) -> None:
        """A submitted form's job, from its payload (read as untrusted again)."""
        try:
            form = _form(body)
        except BotError:  # checked before the ack: only a changed parser gets here
            logger.warning("dropping a Refine form its job cannot read")
            return
        if form.origin is None or form.user is None or not form.prompt.text:
            return
        async with self._answering(form.trigger_id, what="Refine form") as claims:
            if claims is None:
                return
            request = prompt_request(
                form.prompt,
                key=form.origin.key(team_of(body)),
                user=form.user,
                reply_to=form.origin.turn_id,
                claims=claims,
            )
            await self._refine(form.origin, request)

    async def _refine(self, origin: Origin, request: Request) -> None:
        if not await self._guard.submission(origin, request):
            return

        async def operation(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await self._engine.refine(request, on_queued=on_queued, deliver=deliver)

        note = f"<@{request.user}> asked: {quoted(request.text)}"
        context = f"refine of turn {origin.turn_id}"
        await self._runner.run_anchored(origin.place, note, operation, context=context)


@dataclass(frozen=True)
class Form:
    """A submitted Refine form: what was typed, by whom, from which result."""

    prompt: Prompt
    origin: Origin | None
    user: str | None
    trigger_id: str | None


def _form(body: dict[str, Any]) -> Form:
    """The form as submitted; BotError for an instruction the parser refuses."""
    view = body.get("view")
    view = view if isinstance(view, dict) else {}
    values = view.get("state", {}).get("values", {})
    typed = values.get(INSTRUCTION_BLOCK, {}).get(INSTRUCTION_INPUT, {}).get("value") or ""
    trigger = body.get("trigger_id")
    return Form(
        prompt=parse_prompt(str(typed)),
        origin=view_origin(view),
        user=user_of(body),
        trigger_id=trigger if isinstance(trigger, str) else None,
    )


def _clicker(body: dict[str, Any]) -> Click | None:
    click = click_of(body)
    if click is None:
        logger.info("ignoring a click that names no user")
    return click
