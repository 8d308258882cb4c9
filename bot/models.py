"""Frozen value types that cross the core's boundary; no platform object ever does."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property

EXTENSIONS: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/avif": "avif",
}
"""The file extension of each image type the bot keeps."""


@dataclass(frozen=True)
class ThreadKey:
    """Where a conversation lives: platform, workspace/guild, channel, thread."""

    platform: str
    workspace: str
    channel: str
    thread: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.workspace}/{self.channel}/{self.thread}"


@dataclass(frozen=True)
class Image:
    """Image bytes with their real mime type (decided from the bytes, not a name)."""

    data: bytes = field(repr=False)
    mime_type: str

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def extension(self) -> str:
        return EXTENSIONS.get(self.mime_type, "bin")


@dataclass(frozen=True)
class Attachment:
    """A file as a user attached it, before it is checked and normalised."""

    data: bytes = field(repr=False)
    name: str = ""


@dataclass(frozen=True)
class Source:
    """A web page a grounded answer drew on (Google Search grounding)."""

    title: str
    uri: str


@dataclass(frozen=True)
class Usage:
    """Tokens and images one upstream call used."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    images: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            images=self.images + other.images,
        )


@dataclass(frozen=True)
class Request:
    """What a user asked for, as an adapter understood it."""

    key: ThreadKey
    user: str
    text: str
    attachments: tuple[Attachment, ...] = ()
    ratio: str | None = None
    model: str | None = None
    size: str | None = None  # the output size ("512", "1K", "2K", "4K"); None: the model's
    count: int = 1  # how many images (variations), 1-4: each its own branch of the thread
    search: bool = False  # ground the answer on Google Search, where the model can
    reply_to: int | None = None  # a turn id: branch from that turn instead of the head
    roles: tuple[str, ...] = ()  # the user's role ids, where the platform has roles
    # The event ids this request answers (claimed by the adapter): settled with its turn.
    claims: tuple[str, ...] = ()


class TurnStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Turn:
    """One request and its answer inside a thread; turns form a tree through parent_id."""

    id: int
    thread_id: int
    number: int
    parent_id: int | None
    user: str
    prompt: str
    ratio: str | None
    model: str
    inputs: tuple[str, ...]  # sha256 of the images sent (attachments, not the parent's output)
    outputs: tuple[str, ...]  # sha256 of the images produced
    status: TurnStatus
    text: str = ""
    usage: Usage = Usage()
    error: str | None = None
    parts_json: str | None = None  # the model's parts for replay, images by hash (see upstream)
    created_at: datetime | None = None
    size: str | None = None  # the output size asked for; None: the model's only or default one


@dataclass(frozen=True)
class Thread:
    """A conversation: its key, and the turn refinements continue from."""

    id: int
    key: ThreadKey
    head_id: int | None
    turn_count: int = 0
    pruned: bool = False  # its turns were removed by retention
    created_at: datetime | None = None


@dataclass(frozen=True)
class Reply:
    """What the core hands back to an adapter to post.

    With variations (count > 1) every image is its own turn, a sibling branch: images[i]
    belongs to turns[i], and `turn` is the first of them.
    """

    key: ThreadKey
    turn: Turn
    images: tuple[Image, ...]
    text: str
    usage: Usage
    turns: tuple[Turn, ...] = ()  # one per image when there are several; empty: (turn,)
    sources: tuple[Source, ...] = ()  # the pages a grounded answer drew on
    possibly_billed: int = 0  # calls retried after the upstream may already have billed one

    @property
    def branches(self) -> tuple[tuple[Turn, Image], ...]:
        """Each image with the turn it is the result of."""
        turns = self.turns or (self.turn,) * len(self.images)
        return tuple(zip(turns, self.images, strict=False))

    @property
    def turn_id(self) -> int:
        return self.turn.id

    @property
    def turn_number(self) -> int:
        return self.turn.number


@dataclass(frozen=True)
class SizeCost:
    """Images of one model at one output size, and what they cost."""

    model: str
    size: str  # "1K" where the model has one size
    images: int
    cost_usd: float


@dataclass(frozen=True)
class PendingImages:
    """Images of one model and size being made now (pending turns): spent, not yet counted."""

    model: str
    size: str | None  # as the turns asked; None: the model's one or default size
    images: int


@dataclass(frozen=True)
class UsageTotals:
    """Sums from the usage ledger."""

    jobs: int = 0
    images: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    by_size: tuple[SizeCost, ...] = ()  # cost_usd split by model and size, largest first
    possibly_billed: int = 0  # upstream calls that may have been billed without a result


class BudgetScope(StrEnum):
    """Whom a monthly cost budget limits."""

    USER = "user"  # one user
    ROLE = "role"  # each member of a role, alone (the largest of a user's roles applies)
    WORKSPACE = "workspace"  # everyone in the server or workspace together


@dataclass(frozen=True)
class Budget:
    """A monthly cost limit in USD for a user, each member of a role, or a workspace."""

    platform: str
    workspace: str
    scope: BudgetScope
    subject: str  # the user or role id; the workspace id for WORKSPACE
    monthly_usd: float
