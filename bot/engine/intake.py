"""What a request must be before it becomes a job: its text, its images, the model's limits."""

from __future__ import annotations

from bot.engine.access import AccessPolicy
from bot.engine.options import MAX_COUNT
from bot.engine.places import Places
from bot.engine.prompts import visible
from bot.errors import EmptyPrompt, TooManyImages, UnsupportedOption
from bot.images import ImageWorkers, normalise_all
from bot.models import Image, Request
from bot.upstream import ModelCapabilities, ModelTable, check_options
from storage.base import Store


class Intake:
    """Checks a request against access, its prompt and the model, and prepares its images."""

    def __init__(
        self,
        *,
        store: Store,
        places: Places,
        access: AccessPolicy,
        default_model: str,
        images: ImageWorkers | None,
        models: ModelTable,
        allowed_models: tuple[str, ...] = (),
    ) -> None:
        self._store = store
        self._places = places
        self._access = access
        self._default_model = default_model
        self._images = images
        self._models = models
        self._allowed = allowed_models

    def admissible(self, request: Request) -> None:
        """Who may ask here, and that there is something to draw."""
        self._access.check(request)
        if not visible(request.text):
            raise EmptyPrompt()
        if not 1 <= request.count <= MAX_COUNT:
            raise UnsupportedOption(f"Ask for 1 to {MAX_COUNT} images at a time.")
        if request.model and self._allowed and request.model not in self._allowed:
            raise UnsupportedOption(
                f"The model '{request.model}' is not offered here. Choose one of: "
                f"{', '.join(self._allowed)}."
            )

    async def check_images(
        self, request: Request, *, refine: bool, attachments: int | None
    ) -> ModelCapabilities:
        """The model and its options; the attachments, plus the current image on a refinement.

        Returns what the model the request would use can do.
        """
        model = request.model or self._default_model
        given = len(request.attachments) if attachments is None else attachments
        with_current = False
        if refine:
            thread = await self._store.get_thread(request.key)
            parent = await self._places.parent(request, thread)
            if parent is not None:
                model, with_current = request.model or parent.model, True
        caps = self._capable(request, model)
        total = given + (1 if with_current else 0)
        if total > caps.max_images:
            raise TooManyImages(limit=caps.max_images, given=total, with_current=with_current)
        return caps

    async def prepare(self, request: Request, *, model: str) -> tuple[Image, ...]:
        """The attachments checked and converted to what the model takes."""
        caps = self._capable(request, model)
        if len(request.attachments) > caps.max_images:
            raise TooManyImages(limit=caps.max_images, given=len(request.attachments))
        return await normalise_all(
            request.attachments, accepted=caps.mime_types, workers=self._images
        )

    def _capable(self, request: Request, model: str) -> ModelCapabilities:
        """The model's row, once it is known to offer the request's ratio, size and search."""
        caps = self._models.get(model)
        check_options(caps, ratio=request.ratio, size=request.size, search=request.search)
        return caps
