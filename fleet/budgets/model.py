"""Budgets: how much a scope may spend in a window, and who a scope covers.

A **scope** is ``global``, ``group:NAME``, ``agent:NAME``, ``account:NAME`` or
``provider:NAME``. Groups nest (a group may have a parent group). The **most specific**
scope that has a budget governs an agent: its own budget, else its group's, else the
nearest ancestor group's, else the account its requests go to now, else that account's
provider, else the global one. An account or provider budget counts the usage that
account or provider served, whichever agent sent it.
Only that one budget paces and limits the agent — not every budget above it (conjunctive
checking would let a generous agent budget be silently overruled by a tight global one,
and would make "why was I throttled?" ambiguous). A broader budget still counts every
agent under it for its own report and status.

A **window** is rolling (``5h``, ``7d``, any duration: the last N hours, re-anchored at
each reset), calendar (``daily``, ``weekly``, ``monthly`` in the configured timezone), or
fixed by an explicit ``reset_at`` (with how sure we are of it).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from fleet.errors import FleetError
from fleet.ledger.records.budgets import (
    GLOBAL,
    Budget,
    Burst,
    Confidence,
    Cutoff,
    Scope,
    Step,
    WindowKind,
    WindowSpec,
)
from fleet.notices import Notice, Tone

_DURATION = re.compile(r"(\d+)\s*(m|h|d|w)")
_UNITS: Final = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class Groups:
    """Group membership: each group's parent and each agent's group."""

    parents: Mapping[str, str | None] = field(default_factory=dict)
    members: Mapping[str, str] = field(default_factory=dict)  # agent -> group

    def chain(self, agent: str, via: Sequence[Scope] = ()) -> list[Scope]:
        """The scopes over ``agent``, most specific first, ending with global: the agent,
        its groups, then ``via`` — the account and provider its requests go to now."""
        scopes = [Scope("agent", agent)]
        group = self.members.get(agent)
        seen: set[str] = set()
        while group is not None and group not in seen:
            seen.add(group)
            scopes.append(Scope("group", group))
            group = self.parents.get(group)
        scopes.extend(via)
        scopes.append(Scope(GLOBAL))
        return scopes

    def covers(self, scope: Scope, agent: str, via: Sequence[Scope] = ()) -> bool:
        """Whether ``scope`` includes ``agent`` (directly or through nested groups)."""
        return scope in self.chain(agent, via)


def governing(
    agent: str, budgets: Mapping[str, Budget], groups: Groups, via: Sequence[Scope] = ()
) -> Budget | None:
    """The most specific budget over ``agent``, or ``None`` when no scope over it has one."""
    for scope in groups.chain(agent, via):
        budget = budgets.get(str(scope))
        if budget is not None:
            return budget
    return None


def covers(budget: Scope, scope: Scope, groups: Groups) -> bool:
    """Whether a budget on ``budget`` is over ``scope`` (a burst's): that scope, an
    ancestor group, or global (a global burst is over every budget)."""
    if scope == budget or GLOBAL in (scope.kind, budget.kind):
        return True
    if scope.kind == "agent" and scope.name is not None:
        return groups.covers(budget, scope.name)
    if scope.kind != "group":
        return False
    group, seen = scope.name, set[str]()
    while group is not None and group not in seen:
        if budget == Scope("group", group):
            return True
        seen.add(group)
        group = groups.parents.get(group)
    return False


def parse_duration(text: str) -> timedelta:
    """``90m``, ``5h``, ``7d``, ``2w``, or combinations like ``1d12h``; never zero."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration: write e.g. 90m, 5h, 7d or 1d12h")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} is a window of zero: a window must last at least a minute")
    return timedelta(seconds=seconds)


class PaceStatus(enum.StrEnum):
    UNDER = "under"  # spending slower than the even spread
    ON = "on"  # within the tolerance of it
    OVER = "over"  # over pace beyond the tolerance
    EXHAUSTED = "exhausted"  # the limit is reached


_LADDER: Final = (Step.NONE, Step.DOWNGRADE, Step.QUEUE, Step.REFUSE)
"""The breach ladder in order; refusal is the last resort."""


class Source(enum.StrEnum):
    """Where a budget's numbers come from."""

    PROVIDER = "provider"  # the provider's own quota headers
    METERING = "metering"  # our proxy's ledger
    ESTIMATED = "estimated"  # an account budget without fresh quota signals: our metering


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget right now: the pacing law's numbers plus where they came from.

    ``used`` and ``limit`` are in the budget's unit (``tokens``, or ``usd`` for a cost-only
    budget); for a provider-sourced account, ``used`` is utilization × ``limit``.
    ``series`` is cumulative use over the window so far, oldest first, for the chart.
    A budget with both limits is paced in tokens; its ``limit_usd`` is a hard limit too,
    against ``usd_used``.
    """

    budget: Budget
    start: datetime
    end: datetime
    now: datetime
    unit: str  # "tokens" | "usd"
    used: float
    limit: float
    pace_ratio: float
    target_rate: float  # units per hour from now to the end that would land on the limit
    projected_end_use: float
    projected_exhaustion: datetime | None
    status: PaceStatus
    source: Source
    reset_confidence: Confidence = Confidence.UNKNOWN  # how sure ``end`` is: fleet.budgets.resets
    step: Step = Step.NONE
    level: int = 0  # downgrade rungs, when ``step`` is DOWNGRADE
    queued_until: datetime | None = None
    burst: Burst | None = None
    series: tuple[tuple[datetime, float], ...] = ()
    usd_used: float | None = None  # dollars spent, when ``limit_usd`` binds beside tokens
    held: float = 0.0  # what live runs' quotes hold against it beyond what they spent
    holding: int = 0  # how many live runs hold it


@dataclass(frozen=True, slots=True)
class Transition:
    """A budget moved to another step: posted once to the room and to the threads of the
    agents it governs."""

    budget: str  # the budget's key
    agents: tuple[str, ...]
    before: Step
    after: Step
    message: str

    @property
    def tone(self) -> Tone:
        """A step up the ladder warns (an error at the hard limit); a step down is good
        news."""
        if self.after is Step.REFUSE:
            return "error"
        if _LADDER.index(self.after) > _LADDER.index(self.before):
            return "warning"
        return "ok"

    def notice(self) -> Notice:
        """The change as operators read it: in the room and the governed agents' threads. A
        step up to ``queue`` or ``refuse`` (a limit reached) is an alert."""
        limit = self.after in (Step.QUEUE, Step.REFUSE)
        up = _LADDER.index(self.after) > _LADDER.index(self.before)
        return Notice(self.message, tone=self.tone, agents=self.agents, alert=limit and up)


class Cutoffs(Protocol):
    """Who carries out a budget's :class:`Cutoff` as it moves in and out of ``refuse``."""

    async def apply(self, transition: Transition, cutoff: Cutoff) -> None: ...

    async def release(self, budget: str) -> list[str]:
        """Continue the agents budget ``budget`` froze (a burst was granted over it)."""
        ...


@runtime_checkable
class BudgetBook(Protocol):
    """Where the commands and the report read budgets from: every budget's status now,
    the configured time zone, and the injected clock's time."""

    @property
    def timezone(self) -> ZoneInfo:
        """The configured time zone (calendar windows, times shown in chat)."""
        ...

    def now(self) -> datetime:
        """The current time from the injected clock, timezone-aware."""
        ...

    async def statuses(self) -> list[BudgetStatus]:
        """Every budget's status at :meth:`now`, in a stable order."""
        ...

    def budgets(self) -> list[Budget]:
        """Every budget in force: the config's, with those set by command in their place."""
        ...

    async def set_budget(self, budget: Budget, by: str) -> Budget:
        """Set ``budget`` (replacing any of its scope) as asked by ``by``; the budget as
        applied. Raises :class:`BudgetError` when it contradicts what is there."""
        ...

    async def unset_budget(self, scope: Scope, by: str) -> tuple[Budget, Budget | None]:
        """Remove the budget ``budget set`` gave ``scope``, as asked by ``by``: the budget
        removed, and the config's now back in force (``None``: the scope has none). Raises
        :class:`BudgetError` when no budget set by command is there to remove."""
        ...

    async def end_burst(self, scope: Scope, by: str) -> int:
        """End now the bursts granted on ``scope``, as asked by ``by``; how many ran."""
        ...

    async def allow_burst(self, burst: Burst) -> Burst:
        """Grant ``burst``; the grant as recorded. Raises :class:`BudgetError` when it
        cannot be granted (no budget over the scope, an end in the past)."""
        ...

    def queued_until(self, agent: str) -> datetime | None:
        """When ``agent``'s queued requests are expected through, if its budget queues."""
        ...

    async def admit_spawn(self, agent: str, *, urgent: bool) -> tuple[bool, str]:
        """Whether ``agent`` may be launched now, and why not (or how it got through)."""
        ...


# --- Checks shared by the config loader and the ``budget set`` command --------------------

_CALENDAR: Final = {
    "daily": WindowKind.DAILY,
    "weekly": WindowKind.WEEKLY,
    "monthly": WindowKind.MONTHLY,
}


class BudgetError(FleetError, ValueError):
    """A budget or burst that cannot be applied; ``str()`` is shown to the operator. Also a
    ``ValueError``: it is what the checks shared with config validation raise."""


def parse_window(
    text: str, *, reset_at: datetime | None = None, confidence: Confidence = Confidence.USER
) -> WindowSpec:
    """A window as written (``5h``, ``1d12h``, ``daily``, ``weekly``, ``monthly``, ``fixed``)
    with its ``reset_at`` (aware; required for ``fixed``, refused for calendar windows).
    Raises :class:`ValueError` saying what is allowed."""
    word = text.strip().lower()
    if word in _CALENDAR:
        if reset_at is not None:
            raise ValueError(
                f"a {word} window resets at midnight in the configured timezone, so it takes "
                "no reset_at: leave reset_at out, or use window fixed"
            )
        return WindowSpec(_CALENDAR[word], confidence=confidence)
    if word == WindowKind.FIXED:
        if reset_at is None:
            raise ValueError("a fixed window needs reset_at: when it ends, e.g. 2025-04-01T00:00")
        return WindowSpec(WindowKind.FIXED, reset_at=reset_at, confidence=confidence)
    parts = _DURATION.findall(word.replace(" ", ""))
    if not parts or "".join(n + u for n, u in parts) != word.replace(" ", ""):
        raise ValueError(
            f"{text!r} is not a window: write a duration (90m, 5h, 7d, 1d12h), daily, weekly, "
            "monthly or fixed"
        )
    return WindowSpec(
        WindowKind.ROLLING, length=parse_duration(word), reset_at=reset_at, confidence=confidence
    )


def ladder_problem(models: Sequence[str]) -> str | None:
    """What is wrong with a downgrade ladder (most capable model first), or ``None``."""
    if not models:
        return "a ladder needs at least one model"
    seen: set[str] = set()
    for model in models:
        if model in seen:
            return f"model {model!r} is named twice; list each model once, most capable first"
        seen.add(model)
    return None


def contradictions(budget: Budget, groups: Groups, now: datetime) -> list[tuple[str, str]]:
    """Why ``budget`` cannot be applied, as ``(field, message)`` pairs; empty when it can.

    ``field`` is the budget's field at fault (``scope``, ``reset_at``, ``limit_tokens``,
    ``ladder.RUNTIME``, …), so a config file can point at its line and a command can say
    it. The one-budget-per-scope rule needs every budget, and is the caller's.
    """
    found: list[tuple[str, str]] = []
    scope = budget.scope
    if scope.kind == "group" and scope.name not in groups.parents:
        known = ", ".join(sorted(groups.parents)) or "none (define them under groups)"
        found.append(("scope", f"unknown group {scope.name!r}; known groups: {known}"))
    if budget.limit_tokens is None and budget.limit_usd is None:
        found.append(("limit_tokens", "give limit_tokens, limit_usd or both"))
    if budget.limit_tokens is not None and budget.limit_tokens <= 0:
        found.append(("limit_tokens", f"must be more than 0, found {budget.limit_tokens}"))
    if budget.limit_usd is not None and not budget.limit_usd > 0:
        found.append(("limit_usd", f"must be more than 0, found {budget.limit_usd}"))
    if not 0 <= budget.tolerance <= 1:
        found.append(("tolerance", f"must be between 0 and 1, found {budget.tolerance}"))
    # A fixed window's reset_at is its end: in the past, the budget would never apply.
    # A rolling window's reset_at only anchors its repetition, so a past one is fine (a
    # config must not stop loading because time went by).
    reset_at = budget.window.reset_at
    if budget.window.kind is WindowKind.FIXED and reset_at is not None and reset_at <= now:
        found.append(
            (
                "reset_at",
                f"{reset_at:%Y-%m-%d %H:%M %Z} is in the past (it is now "
                f"{now.astimezone(reset_at.tzinfo):%Y-%m-%d %H:%M %Z}); give a time still ahead",
            )
        )
    for runtime, models in budget.ladder.items():
        problem = ladder_problem(models)
        if problem is not None:
            found.append((f"ladder.{runtime}", problem))
    return found
