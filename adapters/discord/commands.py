"""The slash commands' registration: /imagine (shaped by the models users may choose), /usage
and /budget. Their answers live in interactions.py and budgets.py.

Discord allows 25 options per command and 25 choices per option: /imagine offers the union of
the choosable models' ratios and as many image slots as the most generous of them takes, the
model's own limits being checked by the engine when the command arrives.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

from bot.engine import MAX_COUNT, Engine
from bot.errors import BotError
from bot.upstream import SIZES, ModelCapabilities

MAX_OPTIONS = 25
MAX_CHOICES = 25
Tree = app_commands.CommandTree[discord.Client]
_P = inspect.Parameter.POSITIONAL_OR_KEYWORD


@dataclass(frozen=True)
class ImagineOptions:
    """What /imagine was given."""

    prompt: str
    ratio: str | None = None
    images: tuple[discord.Attachment, ...] = ()
    model: str | None = None
    size: str | None = None
    count: int = 1
    search: bool = False


@dataclass(frozen=True)
class CommandShape:
    """The options /imagine offers, from the models users may choose."""

    models: tuple[str, ...]
    ratios: tuple[str, ...]
    sizes: tuple[str, ...]
    search: bool
    image_slots: int


def command_shape(engine: Engine) -> CommandShape:
    """The choosable models' union of ratios and sizes, and the most images any one takes."""
    models: list[str] = []
    rows: list[ModelCapabilities] = []
    for model in engine.choosable_models()[:MAX_CHOICES]:
        try:
            rows.append(engine.capabilities(model))
        except BotError:
            continue  # a retired id left in IMAGE_MODELS: offering it would only fail
        models.append(model)
    ratios = tuple(dict.fromkeys(ratio for row in rows for ratio in row.ratios))[:MAX_CHOICES]
    sizes = tuple(size for size in SIZES if any(size in row.image_sizes for row in rows))
    search = any(row.grounding for row in rows)
    fixed = 4 + bool(sizes) + search  # prompt, aspect_ratio, model, count (+ size, search)
    most = max((row.max_images for row in rows), default=3)
    return CommandShape(tuple(models), ratios, sizes, search, min(most, MAX_OPTIONS - fixed))


ImagineHandler = Callable[[discord.Interaction, ImagineOptions], Awaitable[None]]


def add_imagine_command(tree: Tree, handler: ImagineHandler, shape: CommandShape) -> None:
    """Register /imagine on the tree with the options `shape` says; it hands them to handler."""
    slots = [f"image{n}" for n in range(1, shape.image_slots + 1)]

    async def imagine(interaction: discord.Interaction, /, **values: Any) -> None:
        images = tuple(values[slot] for slot in slots if values.get(slot) is not None)
        options = ImagineOptions(
            prompt=values["prompt"],
            ratio=values.get("aspect_ratio"),
            images=images,
            model=values.get("model"),
            size=values.get("size"),
            count=int(values.get("count") or 1),
            search=bool(values.get("search")),
        )
        await handler(interaction, options)

    # discord.py reads a command's options from its callback's signature: this one is built
    # here, since how many image slots there are depends on the models.
    setattr(imagine, "__signature__", _signature(shape, slots))  # noqa: B010
    described = app_commands.describe(**_descriptions(shape, slots))(imagine)
    chosen = app_commands.choices(**_choices(shape))(described)
    tree.command(name="imagine", description="Make an image from a prompt, or edit/combine images")(
        chosen
    )


def _signature(shape: CommandShape, slots: Sequence[str]) -> inspect.Signature:
    params = [
        inspect.Parameter("interaction", _P, annotation=discord.Interaction),
        inspect.Parameter("prompt", _P, annotation=str),
        inspect.Parameter("aspect_ratio", _P, annotation=str | None, default=None),
        inspect.Parameter("model", _P, annotation=str | None, default=None),
    ]
    if shape.sizes:
        params.append(inspect.Parameter("size", _P, annotation=str | None, default=None))
    count = app_commands.Range[int, 1, MAX_COUNT]
    params.append(inspect.Parameter("count", _P, annotation=count, default=1))
    if shape.search:
        params.append(inspect.Parameter("search", _P, annotation=bool, default=False))
    params += [
        inspect.Parameter(slot, _P, annotation=discord.Attachment | None, default=None)
        for slot in slots
    ]
    return inspect.Signature(params)


def _descriptions(shape: CommandShape, slots: Sequence[str]) -> dict[str, str]:
    described = {
        "prompt": "What to draw, or how to change the attached images",
        "aspect_ratio": "Shape of the result (default: like the input image, else square)",
        "model": "The model that makes it (each has its own limits)",
        "count": f"How many images to make at once (1-{MAX_COUNT}), each with its own buttons",
    }
    if shape.sizes:
        described["size"] = "Output size (default: the model's own; not every model offers each)"
    if shape.search:
        described["search"] = "Ground the image on Google Search (models that can)"
    for number, slot in enumerate(slots, start=1):
        described[slot] = (
            "An image to edit or use as a reference" if number == 1 else "Another image to combine"
        )
    return described


def _choices(shape: CommandShape) -> dict[str, list[app_commands.Choice[str]]]:
    def listed(values: Sequence[str]) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=value, value=value) for value in values[:MAX_CHOICES]]

    choices = {"aspect_ratio": listed(shape.ratios), "model": listed(shape.models)}
    if shape.sizes:
        choices["size"] = listed(shape.sizes)
    return choices


UsageHandler = Callable[[discord.Interaction], Awaitable[None]]


def add_usage_command(tree: Tree, handler: UsageHandler) -> None:
    """Register /usage: the caller's images and tokens (and the server's, for admins)."""

    @tree.command(name="usage", description="Your images and tokens today and over 30 days")
    async def usage(interaction: discord.Interaction) -> None:
        await handler(interaction)
