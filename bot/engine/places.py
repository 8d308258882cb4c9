"""Where a request continues from: the thread's head, a replied-to turn, or a clicked one.

A turn id that arrives from outside (a button's custom id, a modal's metadata) is only used
on a message of the conversation it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine.turns import GONE
from bot.errors import AccessDenied, NothingToRefine
from bot.models import Image, Request, Thread, ThreadKey, Turn
from storage.base import Store

ELSEWHERE = "That button belongs to another conversation, so it does nothing here."
PRUNED = (
    "This conversation is older than the bot keeps images, so there is nothing left to "
    "refine. Start a new one with /imagine."
)


@dataclass(frozen=True)
class Again:
    """What a re-roll repeats: the turn, the parent it continued, its inputs, its thread's key."""

    turn: Turn
    parent: Turn | None
    inputs: tuple[Image, ...]
    key: ThreadKey


class Places:
    """Reads the store to find the turn a request continues from."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def turn_at(self, turn_id: int, *, platform: str, message_id: str) -> Turn:
        """The turn, if it belongs to the conversation of the message it was clicked on."""
        turn = await self._store.get_turn(turn_id)
        if turn is None:
            raise NothingToRefine(GONE)
        shown = await self._store.turn_for_message(platform=platform, message_id=message_id)
        if shown is None or shown.thread_id != turn.thread_id:
            raise AccessDenied(ELSEWHERE)
        return turn

    async def parent(self, request: Request, thread: Thread | None) -> Turn | None:
        """The reply_to turn, else the head; None for a new thread."""
        if request.reply_to is not None:
            parent = await self._store.get_turn(request.reply_to)
            if parent is None or not parent.outputs:
                raise NothingToRefine(GONE)
            return parent
        if thread is None:
            return None
        if thread.pruned:
            raise NothingToRefine(PRUNED)
        if thread.head_id is None:
            return None
        return await self._store.get_turn(thread.head_id)

    async def key_of(self, turn: Turn) -> ThreadKey:
        key = await self._store.thread_key(turn.thread_id)
        if key is None:
            raise NothingToRefine(GONE)
        return key

    async def again(self, turn_id: int) -> Again:
        """The turn to re-roll with everything it needs, or NothingToRefine when any is gone."""
        turn = await self._store.get_turn(turn_id)
        if turn is None:
            raise NothingToRefine(GONE)
        parent = await self._store.get_turn(turn.parent_id) if turn.parent_id else None
        inputs = tuple(await self._store.load_images(turn.inputs))
        if len(inputs) != len(turn.inputs) or (turn.parent_id and parent is None):
            raise NothingToRefine(GONE)
        return Again(turn=turn, parent=parent, inputs=inputs, key=await self.key_of(turn))
