"""Running one turn: the thread's lock, the upstream request, limits, the store, the call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Protocol

from bot.engine import conversation
from bot.engine.admission import JobGate, QueueCallback, UserLimits
from bot.engine.budgets import Budgets
from bot.engine.leases import Leases
from bot.engine.recording import Job, TurnRecorder
from bot.engine.variations import Maker
from bot.errors import BotError, InputError, NothingToRefine, TooManyImages
from bot.images import ImageWorkers, normalise, verify_output
from bot.models import Attachment, Image, Reply, Usage
from bot.upstream import (
    Api,
    GenerationRequest,
    ImageGenerator,
    ModelCapabilities,
    ModelTable,
    check_request,
)
from storage.base import Store

logger = logging.getLogger(__name__)

INTERRUPTED = "The bot restarted while this image was being made. Please ask again."
GONE = "That image is no longer stored, so it cannot be refined or re-rolled."
UNSENDABLE = (
    "The current image cannot be sent back to the model (it is damaged or in a form the model "
    "does not take). Start a new one with /imagine."
)


Deliver = Callable[[Reply], Awaitable[None]]
"""Posts a result where its user sees it; raises when it could not."""


class JobObserver(Protocol):
    """Told about every finished job and every refusal (metrics)."""

    def on_job(self, *, platform: str, outcome: str, seconds: float, usage: Usage) -> None: ...

    def on_refused(self, *, reason: str) -> None: ...


async def _sendable(
    image: Image, accepted: frozenset[str], workers: ImageWorkers | None = None
) -> Image:
    """A stored result as the model takes it back: normalised exactly like an attachment."""
    try:
        return await normalise(
            Attachment(image.data, name="the current image"), accepted=accepted, workers=workers
        )
    except InputError as exc:
        raise NothingToRefine(UNSENDABLE) from exc


class TurnRunner:
    """Runs jobs: one at a time per thread, many threads at once, each stored as it goes."""

    def __init__(
        self,
        *,
        store: Store,
        leases: Leases,
        generator: ImageGenerator,
        gate: JobGate,
        user_limits: UserLimits,
        api: Api,
        history_turns: int,
        models: ModelTable,
        budgets: Budgets,
        observer: JobObserver | None = None,
        images: ImageWorkers | None = None,
    ) -> None:
        self._store = store
        self._leases = leases
        self._recorder = TurnRecorder(store, leases)
        self._maker = Maker(
            generator=generator,
            gate=gate,
            verify=lambda image: verify_output(image, workers=images),
        )
        self._user_limits = user_limits
        self._models = models
        self._budgets = budgets
        self._api = api
        self._history_turns = history_turns
        self._observer = observer
        self._images = images
        self._locks: dict[int, asyncio.Lock] = {}
        self._lock_users: dict[int, int] = {}

    @asynccontextmanager
    async def _thread_lock(self, thread_id: int, *, shared: bool) -> AsyncIterator[None]:
        """One turn at a time per thread, in this process (in order of arrival) and, when
        shared, among all that share the store; the local lock is dropped when unused."""
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        self._lock_users[thread_id] = self._lock_users.get(thread_id, 0) + 1
        try:
            async with lock, self._across_processes(thread_id, shared=shared):
                yield
        finally:
            self._lock_users[thread_id] -= 1
            if not self._lock_users[thread_id]:
                del self._lock_users[thread_id], self._locks[thread_id]

    def _across_processes(
        self, thread_id: int, *, shared: bool
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return self._leases.exclusive(f"thread:{thread_id}") if shared else contextlib.nullcontext()

    async def run(
        self, job: Job, on_queued: QueueCallback | None, deliver: Deliver | None = None
    ) -> Reply:
        """Run the job under its thread's lock; log and observe how it ended.

        With `deliver`, the result is handed to it while the lock is held and becomes the
        thread's head only once it returns: the next turn never continues from a result
        that did not reach the user.
        """
        started = time.monotonic()
        outcome = "error"
        usage = Usage()
        try:
            # A first turn continues nothing: it needs no other process to wait for, and its
            # thread is nearly always one this very request created.
            shared = job.parent is not None
            async with self._leases.holding(), self._thread_lock(job.thread_id, shared=shared):
                job = await self._current(job)
                reply = await self._run(job, on_queued, head=deliver is None)
                if deliver is not None:
                    await deliver(reply)
                    await self._store.move_head(reply.turn.id)
            outcome, usage = "ok", reply.usage
            return reply
        except BotError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            self._finished(job, outcome=outcome, seconds=time.monotonic() - started, usage=usage)

    async def _current(self, job: Job) -> Job:
        """A refinement of the head that waited for the lock continues from the new head."""
        if job.parent is None or not job.follow_head:
            return job
        thread = await self._store.get_thread(job.key)
        if thread is None or thread.head_id in (None, job.parent.id):
            return job
        if thread.id != job.thread_id:
            return job
        head = await self._store.get_turn(thread.head_id)
        return job if head is None else replace(job, parent=head)

    async def _request_for(self, job: Job, caps: ModelCapabilities) -> GenerationRequest:
        if job.parent is None:
            upstream = conversation.first_turn(
                model=job.model, prompt=job.prompt, images=job.attachments, ratio=job.ratio
            )
        else:
            upstream = await self._refinement(job, caps)
        # A model with one size takes no imageSize at all, even when asked for that size.
        size = job.size if job.size in caps.image_sizes else None
        return replace(upstream, image_size=size, search=job.search)

    async def _refinement(self, job: Job, caps: ModelCapabilities) -> GenerationRequest:
        assert job.parent is not None
        current = await self._store.load_images(job.parent.outputs[:1])
        if not current:
            raise NothingToRefine(GONE)
        given = 1 + len(job.attachments)
        if given > caps.max_images:
            raise TooManyImages(limit=caps.max_images, given=given, with_current=True)
        lineage = await self._store.lineage(job.parent.id, limit=max(1, self._history_turns))
        return conversation.refinement(
            model=job.model,
            prompt=job.prompt,
            current=await _sendable(current[0], caps.mime_types, self._images),
            lineage=lineage,
            extra=job.attachments,
            ratio=job.ratio,
            replay=caps.needs_signatures and self._api is Api.GEMINI,
            stored_as=current[0].sha256,
        )

    async def _run(self, job: Job, on_queued: QueueCallback | None, *, head: bool) -> Reply:
        caps = self._models.get(job.model)
        upstream = await self._request_for(job, caps)
        check_request(upstream, api=self._api, models=self._models)
        # The budgets for the whole job, then each image counted as a job by the limits; its
        # pending turns are recorded before another job of this process is checked.
        async with self._budgets.admitting(
            platform=job.key.platform,
            workspace=job.key.workspace,
            user=job.user,
            roles=job.roles,
            cost_usd=caps.price(job.size) * job.count,
        ):
            await self._user_limits.admit(platform=job.key.platform, user=job.user, jobs=job.count)
            turns = await self._recorder.start(job)
        try:
            batch = await self._maker.make(
                upstream, count=job.count, per_call=caps.max_candidates, on_queued=on_queued
            )
        except BotError as exc:
            await self._recorder.fail_all(job, turns, exc)
            raise
        except BaseException:
            await asyncio.shield(self._recorder.fail_turns(turns, INTERRUPTED))
            raise
        return await self._recorder.finish(job, caps, turns, batch, head=head)

    def _finished(self, job: Job, *, outcome: str, seconds: float, usage: Usage) -> None:
        logger.info(
            "job platform=%s thread=%s outcome=%s seconds=%.2f input_tokens=%d output_tokens=%d",
            job.key.platform, job.thread_id, outcome, seconds, usage.input_tokens,
            usage.output_tokens,
        )  # fmt: skip
        if self._observer is not None:
            self._observer.on_job(
                platform=job.key.platform, outcome=outcome, seconds=seconds, usage=usage
            )
