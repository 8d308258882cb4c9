"""What an acknowledged Slack delivery's job carries through the job queue, and the hand-off.

The payload is the delivery itself (an Events API body, a slash command's form, a click's or
a Refine form's interaction payload), so the process that runs the job rebuilds it exactly as
the one that received it would have. Only what no handler reads is left out: Slack's
verification token, the authorizations list, the clicked message's blocks and, on an event
too large for a queue row, the message's rich-text blocks (its text is kept).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from adapters.slack.parsing import Click, Origin
from bot.engine import JobHandler, JobQueue, Spawn

logger = logging.getLogger(__name__)

EVENT = "slack.event"
COMMAND = "slack.command"
CLICK = "slack.click"  # Re-roll and Upscale
FORM = "slack.form"  # a submitted Refine form
MAX_PAYLOAD_BYTES = 256 * 1024
"""A queued job's payload at most: Slack's 40,000-character text and a few files' metadata fit."""

_UNREAD = ("token", "authorizations")


@dataclass(frozen=True)
class Deferral:
    """One job for the queue: which handler, its payload, its lock and its dedupe key."""

    kind: str
    payload: dict[str, Any]
    lock: str | None
    dedupe: str | None
    what: str  # for log lines


def event_deferral(
    body: dict[str, Any], *, thread: str | None, claims: tuple[str, ...]
) -> Deferral:
    """A message event's job: in line behind its thread's others, one per event id."""
    return Deferral(
        kind=EVENT,
        payload=body,
        lock=f"thread:{thread}" if thread else None,
        dedupe=claims[0] if claims else None,
        what=f"slack event {body.get('event_id')}",
    )


def command_deferral(command: dict[str, Any]) -> Deferral:
    """/imagine's job: a thread of its own (none yet), one per trigger id."""
    trigger = command.get("trigger_id")
    return Deferral(
        kind=COMMAND,
        payload=command,
        lock=None,
        dedupe=f"command:{trigger}" if trigger else None,
        what=f"slack /imagine {trigger}",
    )


def click_deferral(body: dict[str, Any], click: Click, *, upscale: bool) -> Deferral:
    """A Re-roll's or an Upscale's job: in line behind its thread's turns, one per click."""
    message = body.get("message")
    kept = {key: body[key] for key in _CLICK_READ if key in body}
    if isinstance(message, dict):
        kept["message"] = {key: message[key] for key in ("ts", "thread_ts") if key in message}
    return Deferral(
        kind=CLICK,
        payload={"upscale": upscale, "body": kept},
        lock=_thread_lock(click.origin, click.team),
        dedupe=interaction_claim(click.trigger_id),
        what=f"slack {'upscale' if upscale else 're-roll'} {click.origin}",
    )


def refine_deferral(
    body: dict[str, Any], origin: Origin, *, team: str, trigger_id: str | None
) -> Deferral:
    """A submitted Refine form's job: in line behind its thread's turns, one per submission."""
    view = body.get("view")
    kept: dict[str, Any] = {k: body[k] for k in ("user", "team", "trigger_id") if k in body}
    if isinstance(view, dict):
        kept["view"] = {key: view[key] for key in ("private_metadata", "state") if key in view}
    return Deferral(
        kind=FORM,
        payload=kept,
        lock=_thread_lock(origin, team),
        dedupe=interaction_claim(trigger_id),
        what=f"slack refine {origin}",
    )


def interaction_claim(trigger_id: str | None) -> str | None:
    """The claim (and dedupe key) of one click or submission: Slack's trigger id is its own."""
    return f"interaction:{trigger_id}" if trigger_id else None


_CLICK_READ = ("type", "user", "team", "container", "channel", "actions", "trigger_id")


def _thread_lock(origin: Origin | None, team: str) -> str | None:
    return f"thread:{origin.key(team)}" if origin is not None else None


class Deferrer:
    """Hands acknowledged deliveries to the job queue; runs one here when the queue cannot."""

    def __init__(self, jobs: JobQueue, spawn: Spawn) -> None:
        self._jobs = jobs
        self._spawn = spawn
        # One handler per kind, whichever route a job takes to it.
        self._kinds: dict[str, JobHandler] = {}

    @property
    def shared(self) -> bool:
        """Whether another process may run the job (its payload crosses processes)."""
        return self._jobs.shared

    def handle(self, kind: str, handler: JobHandler) -> None:
        """Name the handler of a kind of job, for the queue and for running here."""
        self._kinds[kind] = handler
        self._jobs.handle(kind, handler)

    async def defer(self, job: Deferral) -> None:
        """Hand the job to the queue; run it here when the queue cannot take it."""
        payload = bounded(job.payload) if self._jobs.shared else job.payload
        try:
            if payload is not None:
                queued = await self._jobs.defer(
                    kind=job.kind, payload=payload, lock=job.lock, dedupe=job.dedupe
                )
                if not queued:
                    logger.info("dropping %s: already handled (it waits in the queue)", job.what)
                return
            logger.warning("%s is too large to queue: answering it here", job.what)
        except Exception:
            logger.exception("could not queue %s: answering it here", job.what)
        self._spawn(self._kinds[job.kind](job.payload), name=job.what)


def bounded(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The payload as a queue row holds it; None when even its essentials are too large."""
    kept = {key: value for key, value in payload.items() if key not in _UNREAD}
    if _size(kept) <= MAX_PAYLOAD_BYTES:
        return kept
    event = kept.get("event")
    if isinstance(event, dict):
        kept["event"] = {key: value for key, value in event.items() if key != "blocks"}
    return kept if _size(kept) <= MAX_PAYLOAD_BYTES else None


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, separators=(",", ":")).encode())
