"""Reading an operator's model rows (MODELS_FILE): each field checked, every mistake named."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.upstream.catalog import ModelCapabilities, ModelTable, Retirement

_SIZES = ("512", "1K", "2K", "4K")


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


def _sizes(value: Any) -> tuple[str, ...]:
    sizes = _strings(value)
    wrong = [size for size in sizes if size not in _SIZES]
    if wrong:
        raise ValueError(f"unknown sizes {wrong}; sizes are {', '.join(_SIZES)}")
    return sizes


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise ValueError("expected a whole number from 1 to 64")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _prices(value: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, Mapping):
        raise ValueError('expected a table of size = USD, e.g. {"1K" = 0.067}')
    prices = []
    for size, usd in value.items():
        if size not in _SIZES or isinstance(usd, bool) or not isinstance(usd, int | float):
            raise ValueError(f"bad price {size!r} = {usd!r}")
        if usd < 0:
            raise ValueError("prices cannot be negative")
        prices.append((size, float(usd)))
    return tuple(prices)


def _day(value: Any) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "max_images": ("max_images", _count),
    "ratios": ("ratios", _strings),
    "sizes": ("image_sizes", _sizes),
    "mime_types": ("mime_types", lambda value: frozenset(_strings(value))),
    "thinks": ("needs_signatures", _flag),
    "grounding": ("grounding", _flag),
    "max_candidates": ("max_candidates", _count),
    "prices": ("prices", _prices),
    "output_tokens_per_image": ("output_tokens_per_image", _count),
    "retired_on": ("retired_on", _day),
    "successor": ("successor", str),
}


def _row(table: ModelTable, model: str, spec: Any, origin: str) -> ModelCapabilities:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{origin}: model {model!r} must be a table of fields")
    base_name = spec.get("based_on")
    base = table.get(str(base_name)) if base_name else table.get(model)
    changes: dict[str, Any] = {"name": model}
    for key, value in spec.items():
        if key == "based_on":
            continue
        if key not in _FIELDS:
            raise ConfigError(
                f"{origin}: model {model!r} has an unknown field {key!r}; fields are "
                f"based_on, {', '.join(_FIELDS)}"
            )
        attribute, parse = _FIELDS[key]
        try:
            changes[attribute] = parse(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{origin}: model {model!r}, {key}: {exc}") from None
    if "prices" in changes:
        # A file naming one size's price keeps the others' (a 4K price alone changes only 4K).
        changes["prices"] = tuple((dict(base.prices) | dict(changes["prices"])).items())
    return replace(base, **changes)


def read_rows(
    table: ModelTable, document: Mapping[str, Any], *, origin: str
) -> tuple[dict[str, ModelCapabilities], dict[str, Retirement]]:
    """The rows and retirements a document adds, built on the table's rows (or families)."""
    from bot.upstream.catalog import Retirement

    unknown = set(document) - {"models", "retired"}
    if unknown:
        raise ConfigError(f"{origin}: unknown sections {sorted(unknown)}; use models, retired")
    models = {
        str(model): _row(table, str(model), spec, origin)
        for model, spec in dict(document.get("models", {})).items()
    }
    retired = {}
    for model, successor in dict(document.get("retired", {})).items():
        if not isinstance(successor, str):
            raise ConfigError(f"{origin}: retired {model!r} must name its successor")
        retired[str(model)] = Retirement(str(model), successor, None)
    return models, retired
