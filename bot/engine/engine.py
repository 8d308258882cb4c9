"""The engine both platforms share: one turn at a time per thread, many threads at once."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from bot.engine.access import AccessPolicy
from bot.engine.admission import JobGate, QueueCallback, UserLimits
from bot.engine.budgets import BudgetDefaults, Budgets
from bot.engine.inflight import InFlight
from bot.engine.intake import Intake
from bot.engine.leases import LEASE_SECONDS, Leases, instance_id
from bot.engine.options import UPSCALE_PROMPT, kept_size, upscale_size
from bot.engine.places import Places
from bot.engine.process import EngineProcess
from bot.engine.prompts import clean_prompt, visible
from bot.engine.recording import Job, job_for
from bot.engine.records import EngineRecords
from bot.engine.refusals import counting_refusals
from bot.engine.turns import GONE, Deliver, JobObserver, TurnRunner
from bot.errors import BotError, NothingToRefine
from bot.images import ImageWorkers
from bot.models import Reply, Request, ThreadKey, Turn
from bot.upstream import BUILTIN, Api, ImageGenerator, ModelCapabilities, ModelTable
from storage.base import Store

__all__ = ["Engine", "EngineOptions", "clean_prompt", "visible"]


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """The engine's defaults, taken from the settings by the composition root."""

    model: str = "gemini-2.5-flash-image"
    api: Api = Api.GEMINI
    default_ratio: str | None = None
    history_turns: int = 6
    instance: str = field(default_factory=instance_id)  # this process, as the store knows it
    lease_seconds: float = LEASE_SECONDS
    models: ModelTable = BUILTIN
    allowed_models: tuple[str, ...] = ()  # the models users may choose; empty: any
    budgets: BudgetDefaults = field(default_factory=BudgetDefaults)


class Engine(EngineRecords, EngineProcess):
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
        images: ImageWorkers | None = None,
    ) -> None:
        self._store = store
        self._gate = gate
        self._access = access or AccessPolicy()
        self._options = options or EngineOptions()
        self._inflight = InFlight()
        self._user_limits = user_limits
        self._observer = observer
        self._places = Places(store)
        self._intake = Intake(
            store=store,
            places=self._places,
            access=self._access,
            default_model=self._options.model,
            images=images,
            models=self._options.models,
            allowed_models=self._options.allowed_models,
        )
        models = self._options.models
        self._budgets = Budgets(
            store,
            price=lambda model, size: models.get(model).price(size),
            defaults=self._options.budgets,
        )
        self._leases = Leases(
            store, owner=self._options.instance, lease=self._options.lease_seconds
        )
        self._runner = TurnRunner(
            store=store,
            leases=self._leases,
            generator=generator,
            gate=gate,
            user_limits=user_limits,
            api=self._options.api,
            history_turns=self._options.history_turns,
            models=self._options.models,
            budgets=self._budgets,
            observer=observer,
            images=images,
        )

    @property
    def access(self) -> AccessPolicy:
        return self._access

    @property
    def gate(self) -> JobGate:
        return self._gate

    @property
    def lease_seconds(self) -> float:
        return self._options.lease_seconds

    @property
    def models(self) -> ModelTable:
        return self._options.models

    @property
    def default_model(self) -> str:
        return self._options.model

    def choosable_models(self) -> tuple[str, ...]:
        """The models users may pick: the allow-list, else the default and the current ones."""
        if self._options.allowed_models:
            return self._options.allowed_models
        return tuple(dict.fromkeys((self._options.model, *self._options.models.current())))

    def capabilities(self, model: str | None = None) -> ModelCapabilities:
        """What a model (the default one when None) can do."""
        return self._options.models.get(model or self._options.model)

    # -- the operations ------------------------------------------------------------

    async def imagine(
        self,
        request: Request,
        *,
        on_queued: QueueCallback | None = None,
        deliver: Deliver | None = None,
    ) -> Reply:
        """A fresh picture in request.key: from text, or editing/composing the attachments.

        With `deliver`, the result becomes the thread's head only once deliver has posted it.
        """
        with counting_refusals(self._observer):
            async with self._recording(request.key.platform, request.claims):
                return await self._imagine(request, on_queued, deliver)

    async def refine(
        self,
        request: Request,
        *,
        on_queued: QueueCallback | None = None,
        deliver: Deliver | None = None,
    ) -> Reply:
        """Continue from the thread's head, or from request.reply_to; no image yet: imagine."""
        with counting_refusals(self._observer):
            async with self._recording(request.key.platform, request.claims):
                return await self._refine(request, on_queued, deliver)

    async def _imagine(
        self, request: Request, on_queued: QueueCallback | None, deliver: Deliver | None
    ) -> Reply:
        self._inflight.enter()
        self._intake.admissible(request)
        model = request.model or self._options.model
        images = await self._intake.prepare(request, model=model)
        thread = await self._store.get_thread(request.key)
        if thread is None:
            thread = await self._store.create_thread(request.key)
        job = job_for(
            request,
            thread_id=thread.id,
            model=model,
            attachments=images,
            parent=None,
            ratio=request.ratio or self._options.default_ratio,
            size=request.size,
        )
        return await self._runner.run(job, on_queued, deliver)

    async def _refine(
        self, request: Request, on_queued: QueueCallback | None, deliver: Deliver | None
    ) -> Reply:
        self._inflight.enter()
        self._intake.admissible(request)
        thread = await self._store.get_thread(request.key)
        parent = await self._places.parent(request, thread)
        if parent is None:
            return await self._imagine(request, on_queued, deliver)
        model = request.model or parent.model
        images = await self._intake.prepare(request, model=model)
        job = job_for(
            request,
            thread_id=parent.thread_id,
            model=model,
            attachments=images,
            parent=parent,
            ratio=request.ratio or parent.ratio,
            size=request.size or kept_size(parent, self._options.models.get(model)),
        )
        return await self._runner.run(job, on_queued, deliver)

    async def reroll(
        self,
        turn_id: int,
        *,
        user: str,
        roles: tuple[str, ...] = (),
        claims: tuple[str, ...] = (),
        on_queued: QueueCallback | None = None,
        deliver: Deliver | None = None,
    ) -> Reply:
        """The same inputs as that turn, a new result that becomes the head; `claims` are
        the click's ids, settled as the new turn is recorded."""
        with counting_refusals(self._observer):
            self._inflight.enter()
            again = await self._places.again(turn_id)
            asked = Request(key=again.key, user=user, text=again.turn.prompt, roles=roles)
            self._intake.admissible(asked)
            job = Job(
                thread_id=again.turn.thread_id,
                key=again.key,
                user=user,
                prompt=again.turn.prompt,
                ratio=again.turn.ratio,
                model=again.turn.model,
                attachments=again.inputs,
                parent=again.parent,
                claims=claims,
                size=again.turn.size,
                roles=roles,
            )
            async with self._recording(again.key.platform, claims):
                return await self._runner.run(job, on_queued, deliver)

    async def upscale(
        self,
        turn_id: int,
        *,
        user: str,
        roles: tuple[str, ...] = (),
        claims: tuple[str, ...] = (),
        on_queued: QueueCallback | None = None,
        deliver: Deliver | None = None,
    ) -> Reply:
        """Re-render that turn's result at its model's largest size, the result as reference;
        a new branch from it that becomes the head."""
        turn = await self._store.get_turn(turn_id)
        if turn is None or not turn.outputs:
            raise NothingToRefine(GONE)
        key = await self._places.key_of(turn)
        request = self.upscale_request(turn, key=key, user=user, roles=roles)
        return await self.refine(
            replace(request, claims=claims), on_queued=on_queued, deliver=deliver
        )

    def upscale_request(
        self, turn: Turn, *, key: ThreadKey, user: str, roles: tuple[str, ...] = ()
    ) -> Request:
        """The refinement an upscale of the turn is (precheck it with refine=True);
        UnsupportedOption when its model makes nothing larger."""
        target = upscale_size(self._options.models.get(turn.model), turn.size)
        return Request(
            key=key, user=user, text=UPSCALE_PROMPT, reply_to=turn.id, size=target, roles=roles
        )

    async def precheck(
        self, request: Request, *, refine: bool = False, attachments: int | None = None
    ) -> None:
        """Refuse now what the job would refuse later, so nothing is posted for it first.

        Access, the prompt, the model and its options, the number of images (attachments
        may be counted before they are downloaded), the queue, the user's limits and the
        budgets; the limits are read, not counted.
        """
        with counting_refusals(self._observer):
            self._inflight.check()
            self._intake.admissible(request)
            caps = await self._intake.check_images(request, refine=refine, attachments=attachments)
            self._gate.check_room()
            await self._user_limits.check(
                platform=request.key.platform, user=request.user, jobs=request.count
            )
            await self._budgets.check(
                platform=request.key.platform,
                workspace=request.key.workspace,
                user=request.user,
                roles=request.roles,
                cost_usd=caps.price(request.size) * request.count,
            )

    async def turn_at(self, turn_id: int, *, platform: str, message_id: str) -> Turn:
        """The turn, if it belongs to the conversation of the message it was clicked on."""
        return await self._places.turn_at(turn_id, platform=platform, message_id=message_id)

    # -- inside -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _recording(self, platform: str, claims: tuple[str, ...]) -> AsyncIterator[None]:
        """Give the claims back when the job fails before it is recorded (a settled claim,
        the turn's own, stays): the platform's next delivery of the event is then answered."""
        try:
            yield
        except BotError:
            raise
        except BaseException:
            if claims:
                await self._leases.release(platform=platform, event_ids=claims)
            raise
