"""The discord.py client: intents, events, and the result buttons that survive restarts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol, cast

import discord

ACTIONS = ("reroll", "refine", "upscale", "delete")
# Ids are bounded to 18 digits so that every id that matches fits the store's 64-bit integers.
BUTTON_TEMPLATE = r"banana:(?P<action>reroll|refine|upscale|delete):(?P<turn>[0-9]{1,18})"
# "Original" on a preview: which of the turn's images, and its file type (the link's extension).
ORIGINAL_TEMPLATE = (
    r"banana:original:(?P<turn>[0-9]{1,18}):(?P<index>[0-9]{1,2})"
    r":(?P<ext>png|jpg|webp|gif|heic|heif|avif|bin)"
)
# The modal carries the message its button was on, to check the turn against it again.
MODAL_ID = re.compile(r"banana:refine-modal:(?P<turn>[0-9]{1,18})(?::(?P<message>[0-9]{1,20}))?")
BUTTON_ID = re.compile(BUTTON_TEMPLATE)
ORIGINAL_ID = re.compile(ORIGINAL_TEMPLATE)
INSTRUCTION_ID = "instruction"


class Handlers(Protocol):
    """What the adapter does with the events the client receives."""

    async def on_message(self, message: discord.Message) -> None: ...

    async def on_button(
        self, interaction: discord.Interaction, action: str, turn_id: int
    ) -> None: ...

    async def on_refine_submit(
        self, interaction: discord.Interaction, turn_id: int, message_id: int | None, text: str
    ) -> None: ...

    async def on_original(
        self, interaction: discord.Interaction, turn_id: int, index: int, extension: str
    ) -> None: ...

    async def on_malformed(self, interaction: discord.Interaction, custom_id: str) -> None: ...


def intents() -> discord.Intents:
    """Only what the bot reads: guilds, guild messages, DMs, and message content (privileged)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = True
    return wanted


class BananaClient(discord.Client):
    """Hands messages, buttons and modal submissions to the adapter's handlers."""

    def __init__(self, *, handlers: Handlers, **options: Any) -> None:
        # Nothing a prompt or the model writes may ping anyone; a notice names its user itself.
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(intents=intents(), **options)
        self.handlers = handlers

    async def on_message(self, message: discord.Message) -> None:
        await self.handlers.on_message(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        # Refine modals are matched by custom_id here, not through discord.py's modal store,
        # so a modal opened before a restart still works when it is submitted after it.
        # Result buttons reach ResultButton; a custom_id that matches nothing of the bot's is
        # answered here, or the user would see only "This interaction failed".
        data = cast(dict[str, Any], interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if interaction.type is discord.InteractionType.component:
            if not _reaches_result_button(interaction, data, custom_id):
                await self.handlers.on_malformed(interaction, custom_id)
            return
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        match = MODAL_ID.fullmatch(custom_id)
        if match is None:
            await self.handlers.on_malformed(interaction, custom_id)
            return
        text = _submitted_value(list(data.get("components", [])), INSTRUCTION_ID) or ""
        message = int(match["message"]) if match["message"] else None
        await self.handlers.on_refine_submit(interaction, int(match["turn"]), message, text)


def _reaches_result_button(
    interaction: discord.Interaction, data: dict[str, Any], custom_id: str
) -> bool:
    """Whether discord.py hands the click to ResultButton: a button of ours, on its message.

    discord.py drops, without an answer, a click whose custom_id is not on the message.
    """
    message = interaction.message
    ours = BUTTON_ID.fullmatch(custom_id) or ORIGINAL_ID.fullmatch(custom_id)
    if ours is None or message is None:
        return False
    button = discord.ComponentType.button.value
    return data.get("component_type") == button and custom_id in _custom_ids(message.components)


def _custom_ids(components: Sequence[Any]) -> set[str]:
    """Every custom_id in a message's components, rows and containers included."""
    found: set[str] = set()
    for component in components:
        custom_id = getattr(component, "custom_id", None)
        if custom_id:
            found.add(str(custom_id))
        found |= _custom_ids(list(getattr(component, "children", None) or ()))
    return found


def _submitted_value(components: list[Any], custom_id: str) -> str | None:
    """A text input's value in a modal submission (inside action rows or labels)."""
    for component in components:
        if component.get("custom_id") == custom_id and "value" in component:
            return str(component["value"])
        nested = list(component.get("components") or [])
        if "component" in component:
            nested.append(component["component"])
        found = _submitted_value(nested, custom_id)
        if found is not None:
            return found
    return None


_LOOK: dict[str, tuple[str, discord.ButtonStyle, str]] = {
    "reroll": ("Re-roll", discord.ButtonStyle.secondary, "🎲"),
    "refine": ("Refine", discord.ButtonStyle.primary, "✏️"),
    "upscale": ("Upscale", discord.ButtonStyle.secondary, "🔍"),
    "delete": ("Delete", discord.ButtonStyle.danger, "🗑️"),
    "original": ("Original", discord.ButtonStyle.secondary, "📎"),
}


def _button(action: str, custom_id: str, *, suffix: str, row: int | None) -> discord.ui.Button[Any]:
    label, style, emoji = _LOOK[action]
    return discord.ui.Button(
        label=f"{label} {suffix}".strip(), style=style, emoji=emoji, custom_id=custom_id, row=row
    )


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=BUTTON_TEMPLATE,
):
    """Re-roll / Refine / Upscale / Delete on a result; the custom_id carries the action and
    the turn id. `suffix` numbers the image the button is for when a message shows several."""

    def __init__(
        self, action: str, turn_id: int, *, suffix: str = "", row: int | None = None
    ) -> None:
        custom_id = f"banana:{action}:{turn_id}"
        super().__init__(_button(action, custom_id, suffix=suffix, row=row))
        self.action = action
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ResultButton:
        return cls(match["action"], int(match["turn"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, BananaClient):
            await client.handlers.on_button(interaction, self.action, self.turn_id)


class OriginalButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=ORIGINAL_TEMPLATE,
):
    """On a result shown as a preview: the exact bytes of one of the turn's images."""

    def __init__(
        self, turn_id: int, index: int, extension: str, *, suffix: str = "", row: int | None = None
    ) -> None:
        custom_id = f"banana:original:{turn_id}:{index}:{extension}"
        super().__init__(_button("original", custom_id, suffix=suffix, row=row))
        self.turn_id, self.index, self.extension = turn_id, index, extension

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> OriginalButton:
        return cls(int(match["turn"]), int(match["index"]), match["ext"])

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, BananaClient):
            await client.handlers.on_original(interaction, self.turn_id, self.index, self.extension)


class RefineModal(discord.ui.Modal):
    """Asks for the change to make to one result."""

    instruction: discord.ui.TextInput[RefineModal] = discord.ui.TextInput(
        label="What should change?",
        style=discord.TextStyle.paragraph,
        placeholder="e.g. make the sky stormy, add a red scarf",
        custom_id=INSTRUCTION_ID,
        max_length=2000,
    )

    def __init__(self, turn_id: int, *, message_id: int) -> None:
        super().__init__(
            title="Refine this image", custom_id=f"banana:refine-modal:{turn_id}:{message_id}"
        )
