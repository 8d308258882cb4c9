"""What every store's usage ledger and budgets agree on: how a line is named and ordered."""

from __future__ import annotations

from collections.abc import Iterable

from bot.models import BudgetScope, SizeCost

ONE_SIZE = "1K"
"""The ledger's size of a turn that asked for none: bot.upstream.ONE_SIZE, repeated here
because storage may not import the upstream (it brings the HTTP client with it)."""

UNATTRIBUTED = ""
"""Model and size of a line that counts only possibly billed calls of a job that failed:
no image was made, so no model's cost is split by it."""

SCOPES: tuple[BudgetScope, ...] = tuple(BudgetScope)
"""Budgets are listed in this order of scope (user, role, workspace), then by subject."""


def ledger_size(size: str | None) -> str:
    return ONE_SIZE if size is None else size


def scope_rank(column: str) -> str:
    """SQL ranking a scope column in the order of SCOPES."""
    ranks = " ".join(f"WHEN '{scope.value}' THEN {rank}" for rank, scope in enumerate(SCOPES))
    return f"CASE {column} {ranks} END"


def ordered(lines: Iterable[SizeCost]) -> tuple[SizeCost, ...]:
    """Largest cost first, then most images; model and size break ties, so every store agrees.

    Lines with no image and no cost are left out: possibly billed calls alone name no model.
    """
    kept = [line for line in lines if line.images or line.cost_usd]
    kept.sort(key=lambda line: (-line.cost_usd, -line.images, line.model, line.size))
    return tuple(kept)
