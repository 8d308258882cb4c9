"""Recording a job in the store: a pending turn per image, then each one finished or failed."""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine.leases import Leases
from bot.engine.prompts import clean_prompt
from bot.engine.variations import Batch, Made
from bot.errors import BotError
from bot.models import Image, Reply, Request, ThreadKey, Turn, Usage
from bot.upstream import ModelCapabilities
from storage.base import Store


@dataclass(frozen=True)
class Job:
    """One turn about to run: where it goes, what it continues, what it sends."""

    thread_id: int
    key: ThreadKey
    user: str
    prompt: str
    ratio: str | None
    model: str
    attachments: tuple[Image, ...]
    parent: Turn | None
    follow_head: bool = False  # refining "the current image": whatever the head is once it runs
    claims: tuple[str, ...] = ()  # the event ids it answers, settled as it is recorded
    size: str | None = None  # the output size; None: the model's default
    count: int = 1  # images (variations), each its own turn
    search: bool = False
    roles: tuple[str, ...] = ()  # the asker's roles, for role budgets


def job_for(
    request: Request,
    *,
    thread_id: int,
    model: str,
    attachments: tuple[Image, ...],
    parent: Turn | None,
    ratio: str | None,
    size: str | None,
) -> Job:
    """The job a user's request becomes, once where it continues from is known."""
    return Job(
        thread_id=thread_id,
        key=request.key,
        user=request.user,
        prompt=clean_prompt(request.text),
        ratio=ratio,
        model=model,
        attachments=attachments,
        parent=parent,
        follow_head=parent is not None and request.reply_to is None,
        claims=request.claims,
        size=size,
        count=request.count,
        search=request.search,
        roles=request.roles,
    )


class TurnRecorder:
    """Writes a job's turns: started before the upstream call, finished after it."""

    def __init__(self, store: Store, leases: Leases) -> None:
        self._store = store
        self._leases = leases

    async def start(self, job: Job) -> list[Turn]:
        """A pending turn per image; the first settles the job's claims."""
        turns = []
        for index in range(job.count):
            turns.append(
                await self._store.start_turn(
                    job.thread_id,
                    parent_id=job.parent.id if job.parent else None,
                    user=job.user,
                    prompt=job.prompt,
                    ratio=job.ratio,
                    model=job.model,
                    inputs=job.attachments,
                    owner=self._leases.owner,
                    lease=self._leases.lease,
                    claims=job.claims if index == 0 else (),
                    size=job.size,
                )
            )
            if index == 0 and job.claims:
                self._leases.recorded(platform=job.key.platform, event_ids=job.claims)
        return turns

    async def finish(
        self, job: Job, caps: ModelCapabilities, turns: list[Turn], batch: Batch, *, head: bool
    ) -> Reply:
        """Store each image on its turn and fail the turns that got none; all failed: raise."""
        error = batch.first_error()
        if not batch.made and error is not None:
            await self.fail_all(job, turns, error, billed=batch.possibly_billed)
            raise error
        done: list[Turn] = []
        usage = Usage()
        billed = batch.possibly_billed
        for turn, result in zip(turns, batch.results, strict=True):
            if isinstance(result, BotError):
                await self._store.fail_turn(turn.id, error=result.user_message)
                continue
            done.append(
                await self._finish_one(
                    turn, result, caps, job, head=head and not done, billed=billed
                )
            )
            billed, usage = 0, usage + result.usage
        made = batch.made
        return Reply(
            key=job.key, turn=done[0], images=tuple(m.image for m in made), text=made[0].text,
            usage=usage, turns=tuple(done) if len(done) > 1 else (), sources=batch.sources,
            possibly_billed=batch.possibly_billed,
        )  # fmt: skip

    async def _finish_one(
        self, turn: Turn, made: Made, caps: ModelCapabilities, job: Job, *, head: bool, billed: int
    ) -> Turn:
        return await self._store.finish_turn(
            turn.id,
            owner=self._leases.owner,
            outputs=(made.image,),
            text=made.text,
            usage=made.usage,
            parts_json=made.parts_json,
            cost_usd=caps.price(job.size),
            head=head,
            possibly_billed=billed,
        )

    async def fail_all(
        self, job: Job, turns: list[Turn], error: BotError, *, billed: int | None = None
    ) -> None:
        await self.fail_turns(turns, error.user_message)
        calls = error.possibly_billed if billed is None else billed
        if calls:
            await self._store.record_possibly_billed(
                platform=job.key.platform, workspace=job.key.workspace, user=job.user, calls=calls
            )

    async def fail_turns(self, turns: list[Turn], error: str) -> None:
        for turn in turns:
            await self._store.fail_turn(turn.id, error=error)
