"""The engine both platforms share: one turn at a time per thread, many threads at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Protocol

from bot import conversation
from bot.access import AccessPolicy
from bot.errors import BotError, EmptyPrompt, NothingToRefine, TooManyImages
from bot.images import normalise_all
from bot.inflight import InFlight
from bot.limits import JobGate, QueueCallback, UserLimits
from bot.models import Image, Reply, Request, Thread, ThreadKey, Turn, Usage
from bot.upstream import Api, GenerationRequest, ImageGenerator, capabilities, check_request
from bot.usage import UsageReport, usage_report
from storage.base import Store

logger = logging.getLogger(__name__)

INTERRUPTED = "The bot restarted while this image was being made. Please ask again."
_PRUNED = (
    "This conversation is older than the bot keeps images, so there is nothing left to "
    "refine. Start a new one with /imagine."
)
_GONE = "That image is no longer stored, so it cannot be refined or re-rolled."


class JobObserver(Protocol):
    """Told about every finished job (metrics)."""

    def on_job(self, *, platform: str, outcome: str, seconds: float, usage: Usage) -> None: ...


@dataclass(frozen=True)
class EngineOptions:
    """The engine's defaults, taken from the settings by the composition root."""

    model: str = "gemini-2.5-flash-image"
    api: Api = Api.GEMINI
    default_ratio: str | None = None
    history_turns: int = 6


@dataclass(frozen=True)
class _Job:
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


class Engine:
    """Generate, edit, refine, re-roll and branch images in durable threads."""

    def __init__(
        self,
        *,
        store: Store,
        generator: ImageGenerator,
        gate: JobGate,
        user_limits: UserLimits,
        access: AccessPolicy | None = None,
        options: EngineOptions | None = None,
        observer: JobObserver | None = None,
    ) -> None:
        self._store = store
        self._generator = generator
        self._gate = gate
        self._user_limits = user_limits
        self._access = access or AccessPolicy()
        self._options = options or EngineOptions()
        self._observer = observer
        self._locks: dict[int, asyncio.Lock] = {}
        self._lock_users: dict[int, int] = {}
        self._inflight = InFlight()

    @property
    def access(self) -> AccessPolicy:
        return self._access

    @property
    def gate(self) -> JobGate:
        return self._gate

    async def start(self) -> list[tuple[Turn, ThreadKey]]:
        """Fail the turns a crash left pending and hand them back for their users."""
        interrupted = await self._store.fail_pending(error=INTERRUPTED)
        if interrupted:
            logger.warning("marked %d interrupted turns failed", len(interrupted))
        return interrupted

    # -- the operations ------------------------------------------------------------

    async def imagine(self, request: Request, *, on_queued: QueueCallback | None = None) -> Reply:
        """A fresh picture in request.key: from text, or editing/composing the attachments."""
        self._inflight.enter()
        self._admissible(request)
        model = request.model or self._options.model
        images = await self._prepare(request, model=model)
        thread = await self._store.get_thread(request.key)
        if thread is None:
            thread = await self._store.create_thread(request.key)
        job = _Job(
            thread_id=thread.id,
            key=request.key,
            user=request.user,
            prompt=request.text.strip(),
            ratio=request.ratio or self._options.default_ratio,
            model=model,
            attachments=images,
            parent=None,
        )
        return await self._locked(job, on_queued)

    async def refine(self, request: Request, *, on_queued: QueueCallback | None = None) -> Reply:
        """Continue from the thread's head, or from request.reply_to; no image yet: imagine."""
        self._inflight.enter()
        self._admissible(request)
        thread = await self._store.get_thread(request.key)
        parent = await self._parent(request, thread)
        if parent is None:
            return await self.imagine(request, on_queued=on_queued)
        model = request.model or parent.model
        images = await self._prepare(request, model=model)
        job = _Job(
            thread_id=parent.thread_id,
            key=request.key,
            user=request.user,
            prompt=request.text.strip(),
            ratio=request.ratio or parent.ratio,
            model=model,
            attachments=images,
            parent=parent,
            follow_head=request.reply_to is None,
        )
        return await self._locked(job, on_queued)

    async def reroll(
        self, turn_id: int, *, user: str, on_queued: QueueCallback | None = None
    ) -> Reply:
        """The same inputs as that turn, a new result that becomes the head."""
        self._inflight.enter()
        turn = await self._store.get_turn(turn_id)
        if turn is None:
            raise NothingToRefine(_GONE)
        parent = await self._store.get_turn(turn.parent_id) if turn.parent_id else None
        images = tuple(await self._store.load_images(turn.inputs))
        if len(images) != len(turn.inputs) or (turn.parent_id and parent is None):
            raise NothingToRefine(_GONE)
        key = await self._key_of(turn)
        self._admissible(Request(key=key, user=user, text=turn.prompt))
        job = _Job(
            thread_id=turn.thread_id,
            key=key,
            user=user,
            prompt=turn.prompt,
            ratio=turn.ratio,
            model=turn.model,
            attachments=images,
            parent=parent,
        )
        return await self._locked(job, on_queued)

    # -- shutdown ---------------------------------------------------------------------

    def stop_accepting(self) -> None:
        """Refuse new jobs with ShuttingDown; the ones already accepted carry on."""
        self._inflight.close()
        self._gate.close()

    async def drain(self, *, grace: float) -> int:
        """Stop accepting, let accepted jobs end within grace seconds, cancel the rest (failed)."""
        self.stop_accepting()
        return await self._inflight.drain(grace=grace)

    # -- lookups for adapters ----------------------------------------------------------

    async def usage_report(
        self, *, platform: str, workspace: str, user: str, platform_admin: bool = False
    ) -> UsageReport:
        """The user's usage; with ADMIN_USER_IDS or the platform's admin flag, the workspace's."""
        admin = platform_admin or self._access.is_admin(user)
        return await usage_report(
            self._store, platform=platform, workspace=workspace, user=user, admin=admin
        )

    async def thread_for(self, key: ThreadKey) -> Thread | None:
        return await self._store.get_thread(key)

    async def link_thread(self, turn_id: int, *, key: ThreadKey) -> None:
        turn = await self._store.get_turn(turn_id)
        if turn is None:
            raise NothingToRefine(_GONE)
        await self._store.add_alias(turn.thread_id, key=key)

    async def link_message(self, turn_id: int, *, platform: str, message_id: str) -> None:
        await self._store.link_message(turn_id, platform=platform, message_id=message_id)

    async def turn_for_message(self, *, platform: str, message_id: str) -> Turn | None:
        return await self._store.turn_for_message(platform=platform, message_id=message_id)

    async def get_turn(self, turn_id: int) -> Turn | None:
        return await self._store.get_turn(turn_id)

    async def claim_event(self, *, platform: str, event_id: str) -> bool:
        return await self._store.claim_event(platform=platform, event_id=event_id)

    # -- inside -------------------------------------------------------------------------

    def _admissible(self, request: Request) -> None:
        self._access.check(request)
        if not request.text.strip():
            raise EmptyPrompt()

    async def _prepare(self, request: Request, *, model: str) -> tuple[Image, ...]:
        caps = capabilities(model)
        if len(request.attachments) > caps.max_images:
            raise TooManyImages(limit=caps.max_images, given=len(request.attachments))
        return await normalise_all(request.attachments, accepted=caps.mime_types)

    async def _parent(self, request: Request, thread: Thread | None) -> Turn | None:
        if request.reply_to is not None:
            parent = await self._store.get_turn(request.reply_to)
            if parent is None or not parent.outputs:
                raise NothingToRefine(_GONE)
            return parent
        if thread is None:
            return None
        if thread.pruned:
            raise NothingToRefine(_PRUNED)
        if thread.head_id is None:
            return None
        return await self._store.get_turn(thread.head_id)

    async def _key_of(self, turn: Turn) -> ThreadKey:
        key = await self._store.thread_key(turn.thread_id)
        if key is None:
            raise NothingToRefine(_GONE)
        return key

    @asynccontextmanager
    async def _thread_lock(self, thread_id: int) -> AsyncIterator[None]:
        """One turn at a time per thread; the lock is dropped when nobody holds or waits."""
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        self._lock_users[thread_id] = self._lock_users.get(thread_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[thread_id] -= 1
            if not self._lock_users[thread_id]:
                del self._lock_users[thread_id], self._locks[thread_id]

    async def _locked(self, job: _Job, on_queued: QueueCallback | None) -> Reply:
        started = time.monotonic()
        outcome = "error"
        usage = Usage()
        try:
            async with self._thread_lock(job.thread_id):
                job = await self._current(job)
                reply = await self._run(job, on_queued)
            outcome, usage = "ok", reply.usage
            return reply
        except BotError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            self._finished(job, outcome=outcome, seconds=time.monotonic() - started, usage=usage)

    async def _current(self, job: _Job) -> _Job:
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

    async def _request_for(self, job: _Job) -> GenerationRequest:
        if job.parent is None:
            return conversation.first_turn(
                model=job.model, prompt=job.prompt, images=job.attachments, ratio=job.ratio
            )
        current = await self._store.load_images(job.parent.outputs[:1])
        if not current:
            raise NothingToRefine(_GONE)
        caps = capabilities(job.model)
        given = 1 + len(job.attachments)
        if given > caps.max_images:
            raise TooManyImages(limit=caps.max_images, given=given, with_current=True)
        lineage = await self._store.lineage(
            job.parent.id, limit=max(1, self._options.history_turns)
        )
        return conversation.refinement(
            model=job.model,
            prompt=job.prompt,
            current=current[0],
            lineage=lineage,
            extra=job.attachments,
            ratio=job.ratio,
            replay=caps.needs_signatures and self._options.api is Api.GEMINI,
        )

    async def _run(self, job: _Job, on_queued: QueueCallback | None) -> Reply:
        upstream = await self._request_for(job)
        caps = check_request(upstream, api=self._options.api)
        await self._user_limits.admit(platform=job.key.platform, user=job.user)
        turn = await self._store.start_turn(
            job.thread_id,
            parent_id=job.parent.id if job.parent else None,
            user=job.user,
            prompt=job.prompt,
            ratio=job.ratio,
            model=job.model,
            inputs=job.attachments,
        )
        try:
            async with self._gate.slot(on_queued):
                generation = await self._generator.generate(upstream)
        except BotError as exc:
            await self._store.fail_turn(turn.id, error=exc.user_message)
            raise
        except BaseException:
            await asyncio.shield(self._store.fail_turn(turn.id, error=INTERRUPTED))
            raise
        parts_json = await _compact(generation.parts_json, generation.images)
        done = await self._store.finish_turn(
            turn.id,
            outputs=generation.images,
            text=generation.text,
            usage=generation.usage,
            parts_json=parts_json,
            cost_usd=caps.price_per_image_usd * len(generation.images),
        )
        return Reply(
            key=job.key, turn=done, images=generation.images, text=generation.text,
            usage=generation.usage,
        )  # fmt: skip

    def _finished(self, job: _Job, *, outcome: str, seconds: float, usage: Usage) -> None:
        logger.info(
            "job platform=%s thread=%s outcome=%s seconds=%.2f input_tokens=%d output_tokens=%d",
            job.key.platform, job.thread_id, outcome, seconds, usage.input_tokens,
            usage.output_tokens,
        )  # fmt: skip
        if self._observer is not None:
            self._observer.on_job(
                platform=job.key.platform, outcome=outcome, seconds=seconds, usage=usage
            )


async def _compact(parts_json: str, images: Sequence[Image]) -> str:
    """Store the model's parts without a second copy of the image bytes (off-loop when large)."""
    if len(parts_json) < 64_000:
        return conversation.compact_parts(parts_json, images)
    return await asyncio.to_thread(conversation.compact_parts, parts_json, images)
