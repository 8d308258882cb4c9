"""Result buttons and the refine modal, each checked against the message it was used on.

A custom_id is written by whoever sends the interaction: the turn it names is used only when
the message it arrived on shows a turn of that conversation, and only for a user the engine
would serve there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import discord

from adapters.common import Job
from adapters.discord.client import BUTTON_ID, RefineModal
from adapters.discord.context import (
    PLATFORM,
    Services,
    interaction_outlet,
    messageable,
    roles_of,
    run_job,
    source_key,
)
from adapters.discord.guard import MALFORMED, Opened, acknowledge, refusal_of, refuse
from bot.engine import (
    ELSEWHERE,
    GONE,
    Deliver,
    Engine,
    QueueCallback,
)
from bot.errors import AccessDenied, NothingToRefine
from bot.models import Reply, Request, Turn

logger = logging.getLogger(__name__)

NOT_YOURS = "Only the person who asked for this image, or a moderator, can delete it."


class Buttons:
    """Re-roll, Refine (a modal) and Delete on a result."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def click(self, interaction: discord.Interaction, action: str, turn_id: int) -> None:
        if action == "reroll":
            await self._reroll(interaction, turn_id)
        elif action == "upscale":
            await self._upscale(interaction, turn_id)
        elif action == "refine":
            await self._open_modal(interaction, turn_id)
        else:
            await self._delete(interaction, turn_id)

    async def malformed(self, interaction: discord.Interaction, custom_id: str) -> None:
        """A custom_id of no shape of ours, or of a button that is not on its message."""
        logger.info("refused interaction %s with custom_id %r", interaction.id, custom_id[:100])
        stray = BUTTON_ID.fullmatch(custom_id) is not None
        await refuse(interaction, ELSEWHERE if stray else MALFORMED)

    async def refine_submit(
        self, interaction: discord.Interaction, turn_id: int, carried: int | None, text: str
    ) -> None:
        """A refine modal sent back: the turn and the user are checked again before the job."""
        message_id = _submitted_on(carried, _message_id(interaction))
        request = self._refinement(interaction, turn_id, text)

        async def check() -> None:
            await self._shown(turn_id, message_id)
            await self._services.engine.precheck(request, refine=True)

        async def job(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await self._services.engine.refine(request, on_queued=on_queued, deliver=deliver)

        await self._checked_job(interaction, check(), job, what=f"refine of turn {turn_id}")

    async def _reroll(self, interaction: discord.Interaction, turn_id: int) -> None:
        engine = self._services.engine
        user, roles = str(interaction.user.id), roles_of(interaction.user)

        async def check() -> None:
            turn = await self._shown(turn_id, _message_id(interaction))
            again = Request(
                key=source_key(interaction), user=user, text=turn.prompt, ratio=turn.ratio,
                model=turn.model, size=turn.size, roles=roles,
            )  # fmt: skip
            await engine.precheck(again, attachments=len(turn.inputs))

        async def job(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await engine.reroll(
                turn_id, user=user, roles=roles, on_queued=on_queued, deliver=deliver
            )

        await self._checked_job(interaction, check(), job, what=f"re-roll of turn {turn_id}")

    async def _upscale(self, interaction: discord.Interaction, turn_id: int) -> None:
        """That image again at its model's largest size, posted where a re-roll goes."""
        engine = self._services.engine
        user, roles = str(interaction.user.id), roles_of(interaction.user)

        async def check() -> None:
            turn = await self._shown(turn_id, _message_id(interaction))
            asked = engine.upscale_request(
                turn, key=source_key(interaction), user=user, roles=roles
            )
            await engine.precheck(asked, refine=True)

        async def job(on_queued: QueueCallback, deliver: Deliver) -> Reply:
            return await engine.upscale(
                turn_id, user=user, roles=roles, on_queued=on_queued, deliver=deliver
            )

        await self._checked_job(interaction, check(), job, what=f"upscale of turn {turn_id}")

    async def _checked_job(
        self, interaction: discord.Interaction, check: Awaitable[None], job: Job, *, what: str
    ) -> None:
        """Acknowledge once the checks pass, then run the job where its result belongs."""
        services = self._services
        thread = _thread_started_from(interaction.message)
        opened = await acknowledge(
            interaction, check, private=thread is not None, budget=services.check_budget, what=what
        )
        if opened is None:
            return
        post_to = _post_to(interaction, thread, opened)
        outlet = interaction_outlet(services, interaction, post_to=post_to)
        await run_job(services, outlet, job, what=what, context=f"interaction {interaction.id}")

    async def _open_modal(self, interaction: discord.Interaction, turn_id: int) -> None:
        message_id = _message_id(interaction)

        async def check() -> None:
            turn = await self._shown(turn_id, message_id)
            asked = self._refinement(interaction, turn_id, turn.prompt)
            await self._services.engine.precheck(asked, refine=True)

        refusal = await refusal_of(check(), what=f"refine button on turn {turn_id}")
        if refusal is not None or message_id is None:
            await refuse(interaction, refusal or ELSEWHERE)
            return
        await interaction.response.send_modal(RefineModal(turn_id, message_id=message_id))

    async def _delete(self, interaction: discord.Interaction, turn_id: int) -> None:
        async def check() -> None:
            turn = await self._shown(turn_id, _message_id(interaction))
            moderator = interaction.permissions.manage_messages
            if str(interaction.user.id) != turn.user and not moderator:
                raise AccessDenied(NOT_YOURS)

        refusal = await refusal_of(check(), what=f"delete of turn {turn_id}")
        if refusal is not None:
            await refuse(interaction, refusal)
            return
        await interaction.response.defer()
        try:
            await interaction.delete_original_response()
        except discord.NotFound:
            logger.info("result of turn %s was already deleted", turn_id)

    async def _shown(self, turn_id: int, message_id: int | None) -> Turn:
        return await shown_turn(self._services.engine, turn_id, message_id)

    def _refinement(self, interaction: discord.Interaction, turn_id: int, text: str) -> Request:
        return Request(
            key=source_key(interaction),
            user=str(interaction.user.id),
            text=text,
            reply_to=turn_id,
            roles=roles_of(interaction.user),
        )


async def shown_turn(engine: Engine, turn_id: int, message_id: int | None) -> Turn:
    """The turn, when the message it was used on shows a turn of the same conversation."""
    if message_id is None:
        raise AccessDenied(ELSEWHERE)
    turn = await engine.turn_at(turn_id, platform=PLATFORM, message_id=str(message_id))
    if not turn.outputs:
        raise NothingToRefine(GONE)
    return turn


def _message_id(interaction: discord.Interaction) -> int | None:
    return None if interaction.message is None else interaction.message.id


def _submitted_on(carried: int | None, shown: int | None) -> int | None:
    """The message a modal was opened from; None when the modal and Discord disagree."""
    if carried is None:
        return shown  # a modal opened before its custom_id carried the message
    return carried if shown is None or shown == carried else None


def _thread_started_from(message: discord.Message | None) -> discord.Thread | None:
    """The thread opened from a result, where a new version of it belongs."""
    if message is None or message.guild is None:
        return None
    return message.guild.get_thread(message.id)


def _post_to(
    interaction: discord.Interaction, thread: discord.Thread | None, opened: Opened
) -> discord.abc.Messageable | None:
    """The thread opened from the result; else the channel, when the deferral was private."""
    if thread is not None:
        return thread
    return messageable(interaction.channel) if opened.private else None
