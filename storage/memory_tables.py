"""The in-memory store's rows, and its threads, turns and images as plain synchronous steps.

Each function runs whole between two awaits of the caller, so it is atomic on the event loop.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot.models import BudgetScope, Image, Thread, ThreadKey, Turn, TurnStatus, Usage, UsageTotals
from storage.ledger import ledger_size
from storage.times import utc_day


@dataclass
class ThreadRow:
    id: int
    platform: str
    workspace: str
    created_at: datetime
    keys: list[ThreadKey]  # the key it was created under, then its aliases as they came
    head_id: int | None = None
    turn_count: int = 0
    pruned: bool = False

    def named(self, key: ThreadKey) -> Thread:
        """The thread as the value handed out, named by the key it was asked for under."""
        return Thread(
            id=self.id,
            key=key,
            head_id=self.head_id,
            turn_count=self.turn_count,
            pruned=self.pruned,
            created_at=self.created_at,
        )


@dataclass
class TurnRow:
    turn: Turn
    platform: str  # the thread's, as usage is counted per platform
    created_at: datetime  # the turn's, never None here
    owner: str = ""
    lease_until: datetime | None = None


@dataclass
class EventRow:
    claimed_at: datetime
    owner: str
    lease_until: datetime | None  # None once settled
    settled: bool


@dataclass(frozen=True)
class LedgerKey:
    platform: str
    user: str
    day: str  # ISO date, compared as text like SQLite's column
    workspace: str
    model: str
    size: str  # the turn's output size, ONE_SIZE when it asked for none


@dataclass(frozen=True)
class BudgetKey:
    platform: str
    workspace: str
    scope: BudgetScope
    subject: str


@dataclass
class Tables:
    """Everything the in-memory store holds; turns are kept in id order."""

    threads: dict[int, ThreadRow] = field(default_factory=dict)
    keys: dict[ThreadKey, int] = field(default_factory=dict)
    turns: dict[int, TurnRow] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    image_uses: Counter[str] = field(default_factory=Counter)
    messages: dict[tuple[str, str], int] = field(default_factory=dict)
    events: dict[tuple[str, str], EventRow] = field(default_factory=dict)
    leases: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # name: owner, until
    ledger: dict[LedgerKey, UsageTotals] = field(default_factory=dict)
    budgets: dict[BudgetKey, float] = field(default_factory=dict)  # monthly USD
    # Ids are never reused, even once the newest turns are pruned.
    thread_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    turn_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


# -- threads -----------------------------------------------------------------------


def thread_by_key(tables: Tables, key: ThreadKey) -> Thread | None:
    thread_id = tables.keys.get(key)
    return None if thread_id is None else tables.threads[thread_id].named(key)


def create_thread(tables: Tables, key: ThreadKey, *, now: datetime) -> Thread:
    existing = thread_by_key(tables, key)
    if existing is not None:
        return existing
    row = ThreadRow(next(tables.thread_ids), key.platform, key.workspace, now, keys=[key])
    tables.threads[row.id] = row
    tables.keys[key] = row.id
    return row.named(key)


def first_key(tables: Tables, thread_id: int) -> ThreadKey | None:
    row = tables.threads.get(thread_id)
    return None if row is None else row.keys[0]


def add_alias(tables: Tables, thread_id: int, *, key: ThreadKey) -> None:
    owner = tables.keys.get(key)
    if owner == thread_id:
        return
    if owner is not None:
        raise ValueError(f"{key} already names thread {owner}")
    row = tables.threads.get(thread_id)
    if row is None:
        raise LookupError(f"no thread {thread_id}")
    tables.keys[key] = thread_id
    row.keys.append(key)


# -- turns -------------------------------------------------------------------------


def start_turn(
    tables: Tables,
    thread_id: int,
    *,
    parent_id: int | None,
    user: str,
    prompt: str,
    ratio: str | None,
    model: str,
    inputs: Sequence[Image],
    owner: str,
    lease_until: datetime,
    now: datetime,
    size: str | None,
) -> Turn:
    # Every check comes before the first change: a refused turn leaves nothing behind.
    thread = tables.threads.get(thread_id)
    if thread is None:
        raise LookupError(f"no thread {thread_id}")
    if parent_id is not None and parent_id not in tables.turns:
        raise LookupError(f"no parent turn {parent_id}")
    thread.turn_count += 1
    thread.pruned = False
    turn = Turn(
        id=next(tables.turn_ids), thread_id=thread_id, number=thread.turn_count,
        parent_id=parent_id, user=user, prompt=prompt, ratio=ratio, model=model,
        inputs=_keep_images(tables, inputs), outputs=(), status=TurnStatus.PENDING,
        created_at=now, size=size,
    )  # fmt: skip
    tables.turns[turn.id] = TurnRow(
        turn, platform=thread.platform, created_at=now, owner=owner, lease_until=lease_until
    )
    return turn


def _keep_images(tables: Tables, images: Sequence[Image]) -> tuple[str, ...]:
    """Store images once per content hash (the first copy wins) and count each use."""
    hashes = tuple(image.sha256 for image in images)
    for sha256, image in zip(hashes, images, strict=True):
        tables.images.setdefault(sha256, image)
    tables.image_uses.update(hashes)
    return hashes


def finish_turn(
    tables: Tables,
    turn_id: int,
    *,
    outputs: Sequence[Image],
    text: str,
    usage: Usage,
    parts_json: str,
    cost_usd: float,
    now: datetime,
    head: bool,
    possibly_billed: int,
) -> Turn:
    """Mark a turn done whatever its state; the caller has checked that it may."""
    row = tables.turns[turn_id]
    row.lease_until = None
    row.turn = replace(
        row.turn, status=TurnStatus.DONE, text=text, parts_json=parts_json, usage=usage,
        outputs=_keep_images(tables, outputs), error=None,
    )  # fmt: skip
    thread = tables.threads[row.turn.thread_id]
    if head:
        thread.head_id = turn_id
    spent = UsageTotals(
        1, len(outputs), usage.input_tokens, usage.output_tokens, cost_usd,
        possibly_billed=possibly_billed,
    )  # fmt: skip
    line = LedgerKey(
        thread.platform, row.turn.user, utc_day(now), thread.workspace, row.turn.model,
        ledger_size(row.turn.size),
    )  # fmt: skip
    count(tables, line, spent)
    return row.turn


def move_head(tables: Tables, turn_id: int) -> None:
    """Point the turn's thread at it; a turn that is not done is refused."""
    row = tables.turns.get(turn_id)
    if row is None or row.turn.status is not TurnStatus.DONE:
        raise LookupError(f"turn {turn_id} is not done")
    tables.threads[row.turn.thread_id].head_id = turn_id


def count(tables: Tables, line: LedgerKey, spent: UsageTotals) -> None:
    """Add to one line of the ledger (by_size is left empty: it is made when read)."""
    tables.ledger[line] = add_totals(tables.ledger.get(line, UsageTotals()), spent)


def add_totals(one: UsageTotals, other: UsageTotals) -> UsageTotals:
    return UsageTotals(
        jobs=one.jobs + other.jobs,
        images=one.images + other.images,
        input_tokens=one.input_tokens + other.input_tokens,
        output_tokens=one.output_tokens + other.output_tokens,
        cost_usd=one.cost_usd + other.cost_usd,
        possibly_billed=one.possibly_billed + other.possibly_billed,
    )


def fail_turn(tables: Tables, turn_id: int, *, error: str) -> Turn:
    row = tables.turns.get(turn_id)
    if row is None:
        raise LookupError(f"no turn {turn_id}")
    if row.turn.status is TurnStatus.PENDING:
        row.turn = replace(row.turn, status=TurnStatus.FAILED, error=error)
    return row.turn


def ancestry(tables: Tables, turn_id: int, *, limit: int) -> list[Turn]:
    """The turn and up to limit-1 done ancestors, oldest first."""
    row = tables.turns.get(turn_id)
    if row is None or limit < 1:
        return []
    chain = [row.turn]
    parent_id = row.turn.parent_id
    while len(chain) < limit and parent_id is not None:
        parent = tables.turns[parent_id].turn  # a pruned parent's children lose their link
        if parent.status is TurnStatus.DONE:
            chain.append(parent)
        parent_id = parent.parent_id
    return chain[::-1]


def load_images(tables: Tables, hashes: Sequence[str]) -> list[Image]:
    # Stored hashes are lowercase hex digests; anything else is simply not found.
    found = (tables.images.get(sha256.lower()) for sha256 in hashes)
    return [image for image in found if image is not None]
