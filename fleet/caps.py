"""Concurrency caps, pure: how many agents may run at once — in all, on one account, under
one budget scope — and whether one more may start now.

The caps are the config's ``limits.max_running`` (global, :class:`LimitsSection`),
``max_running`` on an account, and ``max_running`` on a budget (counting the running agents
the budget's scope covers: its agent, its group and the groups below, the account or
provider they are on, or all).
:func:`blocked` answers with the first cap a launch would break, worded for the operator
("global max_running 4 reached (4 running)"), or ``None``; :func:`first_startable` picks,
from a queue in order, the oldest entry whose caps allow it and whose time has come. The
bot keeps the queue in the ledger and calls these; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

MAX_RUNNING_HELP = (
    "a launch beyond it waits in the queue (`queue`) and starts, oldest first, when a slot "
    "frees. A whole number, at least 1; default: no cap."
)


class LimitsSection(BaseModel):
    """The config file's ``limits`` section: limits on the whole fleet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_running: int | None = Field(
        default=None,
        gt=0,
        strict=True,
        description="How many agents may run at once, in all: " + MAX_RUNNING_HELP,
    )


@dataclass(frozen=True, slots=True)
class Caps:
    """Every concurrency cap: ``max_running`` over the whole fleet (``None``: none), per
    account name, and per budget scope key (``global``, ``group:backend``, ``agent:x``,
    ``account:claude-max``, ``provider:anthropic``)."""

    max_running: int | None = None
    accounts: Mapping[str, int] = field(default_factory=dict)
    scopes: Mapping[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.max_running is not None or bool(self.accounts) or bool(self.scopes)


@dataclass(frozen=True, slots=True)
class Occupant:
    """An agent as the caps see it: the scope keys over it, most specific first (its
    budget scope chain), and the accounts it is on. For a launch not yet made, each
    provider's account may still be a choice (a pool): ``account_choices`` holds, per
    provider, the accounts it could be on."""

    agent: str
    scopes: tuple[str, ...] = ()
    accounts: frozenset[str] = frozenset()
    account_choices: tuple[tuple[str, ...], ...] = ()


def blocked(candidate: Occupant, running: Iterable[Occupant], caps: Caps) -> str | None:
    """Why ``candidate`` may not start now — the first full cap: global, then its accounts,
    then its budget scopes from the most specific — or ``None`` when every cap has room.
    ``running`` are the agents that hold a slot (the candidate itself never counts)."""
    others = [r for r in running if r.agent != candidate.agent]
    if caps.max_running is not None and len(others) >= caps.max_running:
        return f"global max_running {caps.max_running} reached ({len(others)} running)"
    choices = [*((a,) for a in sorted(candidate.accounts)), *candidate.account_choices]
    for accounts in choices:
        full = [a for a in accounts if _full(caps.accounts.get(a), a, others, _on_account)]
        if full and len(full) == len(accounts):
            name = full[0]
            count = sum(1 for r in others if name in r.accounts)
            which = f"account {name}"
            if len(accounts) > 1:
                which = f"every account it may use ({', '.join(accounts)}) is full; {which}"
            return f"{which}: max_running {caps.accounts[name]} reached ({count} running)"
    for scope in candidate.scopes:
        limit = caps.scopes.get(scope)
        if limit is None:
            continue
        count = sum(1 for r in others if scope in r.scopes)
        if count >= limit:
            return f"budget {scope}: max_running {limit} reached ({count} running)"
    return None


def first_startable(
    queue: Sequence[T],
    now: datetime,
    *,
    due: Callable[[T, datetime], bool],
    occupant: Callable[[T], Occupant],
    running: Sequence[Occupant],
    caps: Caps,
) -> T | None:
    """The oldest entry of ``queue`` (in order) that is ``due`` and that :func:`blocked`
    lets start beside ``running``; ``None`` when no entry may start now. An older entry
    held by a full cap does not hold up a younger one its caps allow."""
    for entry in queue:
        if due(entry, now) and blocked(occupant(entry), running, caps) is None:
            return entry
    return None


def _on_account(occupant: Occupant, account: str) -> bool:
    return account in occupant.accounts


def _full(
    cap: int | None,
    key: str,
    others: Sequence[Occupant],
    counts: Callable[[Occupant, str], bool],
) -> bool:
    return cap is not None and sum(1 for r in others if counts(r, key)) >= cap
