"""What a request must be before it becomes a job: its text, its images, the model's limits."""

from __future__ import annotations

import unicodedata

from bot.engine.access import AccessPolicy
from bot.engine.places import Places
from bot.errors import EmptyPrompt, TooManyImages
from bot.images import ImageWorkers, normalise_all
from bot.models import Image, Request
from bot.upstream import Api, GenerationRequest, capabilities, check_request
from storage.base import Store


def clean_prompt(text: str) -> str:
    """The prompt as it is sent: no control characters, no unpaired surrogates, trimmed."""
    # Terminal escapes and NULs mean nothing to the model; a lone surrogate (from a broken
    # client or argv) cannot even be encoded as UTF-8 for the request.
    text = text.encode("utf-8", "replace").decode("utf-8")
    kept = (c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs"))
    return "".join(kept).strip()


def visible(text: str) -> bool:
    """True when the text has a character a person can see (not only spaces or controls)."""
    return any(unicodedata.category(char)[0] not in "CZ" for char in text)


class Intake:
    """Checks a request against access, its prompt and the model, and prepares its images."""

    def __init__(
        self,
        *,
        store: Store,
        places: Places,
        access: AccessPolicy,
        api: Api,
        default_model: str,
        images: ImageWorkers | None,
    ) -> None:
        self._store = store
        self._places = places
        self._access = access
        self._api = api
        self._default_model = default_model
        self._images = images

    def admissible(self, request: Request) -> None:
        """Who may ask here, and that there is something to draw."""
        self._access.check(request)
        if not visible(request.text):
            raise EmptyPrompt()

    async def check_images(
        self, request: Request, *, refine: bool, attachments: int | None
    ) -> None:
        """The model and its options; the attachments, plus the current image on a refinement."""
        model = request.model or self._default_model
        given = len(request.attachments) if attachments is None else attachments
        with_current = False
        if refine:
            thread = await self._store.get_thread(request.key)
            parent = await self._places.parent(request, thread)
            if parent is not None:
                model, with_current = request.model or parent.model, True
        ask = GenerationRequest(model=model, contents=(), ratio=request.ratio)
        caps = check_request(ask, api=self._api)
        total = given + (1 if with_current else 0)
        if total > caps.max_images:
            raise TooManyImages(limit=caps.max_images, given=total, with_current=with_current)

    async def prepare(self, request: Request, *, model: str) -> tuple[Image, ...]:
        """The attachments checked and converted to what the model takes."""
        caps = capabilities(model)
        if len(request.attachments) > caps.max_images:
            raise TooManyImages(limit=caps.max_images, given=len(request.attachments))
        return await normalise_all(
            request.attachments, accepted=caps.mime_types, workers=self._images
        )
