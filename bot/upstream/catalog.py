"""The model table: what each image model accepts and costs, retired ids, family defaults.

docs/models.md says where each figure comes from. Operators add or override rows in a file
(MODELS_FILE, read by `ModelTable.with_file`) without a release; an id nobody listed gets
the limits of its family, so a new `gemini-3*` image model is not treated as 2.5.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, UnknownModel
from bot.upstream.catalog_file import read_rows

RATIOS: tuple[str, ...] = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
)  # fmt: skip
WIDE_RATIOS: tuple[str, ...] = (*RATIOS, "1:4", "4:1", "1:8", "8:1")
SIZES: tuple[str, ...] = ("512", "1K", "2K", "4K")  # smallest first
ONE_SIZE = "1K"  # how the ledger names the output of a model that has a single size

# Output sizes of gemini-2.5-flash-image per aspect ratio.
RATIO_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}

_BASE_MIME = frozenset({"image/png", "image/jpeg", "image/webp"})
_HEIF_MIME = _BASE_MIME | {"image/heic", "image/heif"}


@dataclass(frozen=True)
class ModelCapabilities:
    """What one model accepts; a request is checked against it before it is sent."""

    name: str
    max_images: int
    mime_types: frozenset[str]
    ratios: tuple[str, ...]
    image_sizes: tuple[str, ...] = ()  # empty: imageSize is not accepted (one size)
    needs_signatures: bool = False  # it thinks: its parts' signatures must be replayed
    grounding: bool = False  # it can ground on Google Search
    max_candidates: int = 1  # images one request can return (`n`); 1: N images take N calls
    prices: tuple[tuple[str, float], ...] = ((ONE_SIZE, 0.039),)  # USD per image, by size
    output_tokens_per_image: int = 1290
    family: str = "gemini-2.5-flash-image"
    retired_on: date | None = None  # Google shut it down; it is still sent (a gateway may route it)
    successor: str | None = None

    @property
    def default_size(self) -> str:
        """The size made when none is asked for."""
        if not self.image_sizes or ONE_SIZE in self.image_sizes:
            return ONE_SIZE
        return self.image_sizes[0]

    @property
    def largest_size(self) -> str:
        """The size an upscale renders at."""
        return max(self.image_sizes, key=SIZES.index) if self.image_sizes else ONE_SIZE

    def price(self, size: str | None = None) -> float:
        """USD per image at this size (the default size's price when the size is unpriced)."""
        prices = dict(self.prices)
        wanted = size or self.default_size
        if wanted in prices:
            return prices[wanted]
        return prices.get(self.default_size, next(iter(prices.values()), 0.0))

    @property
    def price_per_image_usd(self) -> float:
        """The price at the default size."""
        return self.price(None)


@dataclass(frozen=True)
class Retirement:
    """An id that no longer answers anywhere: refused before sending, naming its successor."""

    model: str
    successor: str
    on: date | None = None


_FLASH_25 = ModelCapabilities(
    name="gemini-2.5-flash-image",
    max_images=3,
    mime_types=_BASE_MIME,
    ratios=RATIOS,
    max_candidates=4,
    retired_on=date(2026, 10, 2),
    successor="gemini-3.1-flash-image",
)
_FLASH_31 = ModelCapabilities(
    name="gemini-3.1-flash-image",
    max_images=14,
    mime_types=_HEIF_MIME,
    ratios=WIDE_RATIOS,
    image_sizes=("512", "1K", "2K", "4K"),
    needs_signatures=True,
    grounding=True,
    prices=(("512", 0.045), ("1K", 0.067), ("2K", 0.101), ("4K", 0.151)),
    family="gemini-3.1-flash-image",
)
_PRO_3 = ModelCapabilities(
    name="gemini-3-pro-image",
    max_images=14,
    mime_types=_HEIF_MIME,
    ratios=RATIOS,
    image_sizes=("1K", "2K", "4K"),
    needs_signatures=True,
    grounding=True,
    prices=(("1K", 0.134), ("2K", 0.134), ("4K", 0.24)),
    output_tokens_per_image=1120,
    family="gemini-3-pro-image",
)
_LITE_31 = ModelCapabilities(
    name="gemini-3.1-flash-lite-image",
    max_images=14,
    mime_types=_HEIF_MIME,
    ratios=WIDE_RATIOS,
    needs_signatures=True,
    prices=((ONE_SIZE, 0.039),),
    family="gemini-3.1-flash-lite-image",
)

MODELS: dict[str, ModelCapabilities] = {
    caps.name: caps
    for caps in (
        _FLASH_31,
        _PRO_3,
        _LITE_31,
        _FLASH_25,
        replace(
            _PRO_3,
            name="gemini-3-pro-image-preview",
            retired_on=date(2026, 6, 25),
            successor="gemini-3-pro-image",
        ),
        replace(
            _FLASH_31,
            name="gemini-3.1-flash-image-preview",
            retired_on=date(2026, 6, 25),
            successor="gemini-3.1-flash-image",
        ),
    )
}

RETIRED_MODELS: dict[str, Retirement] = {
    retired.model: retired
    for retired in (
        Retirement("gemini-2.5-flash-image-preview", "gemini-3.1-flash-image", date(2025, 10, 31)),
        Retirement(
            "gemini-2.0-flash-preview-image-generation",
            "gemini-3.1-flash-image",
            date(2025, 10, 31),
        ),
    )
}

# An id the table does not list takes its limits from the first family its name starts with.
FAMILIES: tuple[tuple[str, ModelCapabilities], ...] = (
    ("gemini-3.1-flash-lite-image", _LITE_31),
    ("gemini-3.1-flash-image", _FLASH_31),
    ("gemini-3-pro-image", _PRO_3),
    (
        "gemini-3",
        replace(
            _FLASH_31,
            ratios=RATIOS,
            image_sizes=("1K", "2K", "4K"),
            grounding=False,
            family="gemini-3",
        ),
    ),
    ("gemini-2.5-flash-image", _FLASH_25),
)


@dataclass(frozen=True)
class ModelTable:
    """The known models and retired ids; every lookup of a model's limits goes through one."""

    models: Mapping[str, ModelCapabilities] = field(default_factory=lambda: dict(MODELS))
    retired: Mapping[str, Retirement] = field(default_factory=lambda: dict(RETIRED_MODELS))

    def get(self, model: str) -> ModelCapabilities:
        """The model's row; a retired id raises UnknownModel, an unlisted one gets its family's."""
        if model in self.retired:
            retired = self.retired[model]
            raise UnknownModel(model, retired.successor, retired_on=retired.on)
        known = self.models.get(model)
        if known is not None:
            return known
        return replace(self.family(model), name=model, retired_on=None, successor=None)

    def family(self, model: str) -> ModelCapabilities:
        """The row an unlisted id borrows its limits from (2.5's when nothing matches)."""
        for prefix, caps in FAMILIES:
            if model.startswith(prefix):
                return caps
        return _FLASH_25

    def knows(self, model: str) -> bool:
        return model in self.models

    def successor(self, model: str) -> str | None:
        """The id to use instead of a retired or shut-down one."""
        if model in self.retired:
            return self.retired[model].successor
        known = self.models.get(model)
        return known.successor if known is not None else None

    def current(self) -> tuple[str, ...]:
        """The listed models that are not shut down, in table order."""
        return tuple(name for name, caps in self.models.items() if caps.retired_on is None)

    def with_prices(self, prices: Mapping[tuple[str, str | None], float]) -> ModelTable:
        """The table with some prices replaced: (model, size or None for every size) -> USD."""
        models = dict(self.models)
        for (model, size), usd in prices.items():
            caps = models.get(model) or self.get(model)
            sizes = [size] if size else [s for s, _ in caps.prices] or [caps.default_size]
            table = dict(caps.prices) | {s: usd for s in sizes}
            models[model] = replace(caps, prices=tuple(table.items()))
        return replace(self, models=models)

    def with_file(self, path: Path) -> ModelTable:
        """The table with the rows of an operator's TOML or JSON file added or overriding."""
        try:
            raw = path.read_text(encoding="utf-8")
            document = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"MODELS_FILE {path} cannot be read: {exc}") from None
        return self.with_rows(document, origin=str(path))

    def with_rows(self, document: Mapping[str, Any], *, origin: str = "models") -> ModelTable:
        """The table with rows given as `{"models": {id: {...}}, "retired": {id: successor}}`."""
        models, retired = read_rows(self, document, origin=origin)
        return replace(self, models={**self.models, **models}, retired={**self.retired, **retired})
