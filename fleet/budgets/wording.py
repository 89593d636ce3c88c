"""What the pacing policy remembers of each budget between ticks, the words it posts
when a budget moves along its ladder (once per change, never per request), and what live
runs' quotes hold beside what a budget has spent, as ``budget`` and the pacing report say it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from fleet.budgets.model import BudgetStatus, PaceStatus, Transition
from fleet.ledger.records.budgets import Budget, Cutoff, Step, WindowKind
from fleet.metering import units


def held_beside(status: BudgetStatus, amount: Callable[[float, str], str]) -> str:
    """`` + $2.70 held by 3 runs``: what live runs' quotes still hold against the budget,
    beside what it has spent (``amount`` writes a number in its unit); empty when none."""
    if status.holding <= 0:
        return ""
    runs = f"{status.holding} run{'s' if status.holding != 1 else ''}"
    return f" + {amount(status.held, status.unit)} held by {runs}"


@dataclass(slots=True)
class BudgetState:
    """What the policy remembers of one budget between ticks."""

    status: BudgetStatus
    floor: int  # downgrade rungs before the queue: the longest ladder's length - 1
    rungs: dict[str, tuple[tuple[str, ...], int]]  # model -> (its ladder, its index)
    place: int = 0  # 0 = none, 1..floor = downgrade, floor + 1 = queue
    since: datetime | None = None  # when it moved to this place
    refusing: bool = False
    queued_until: datetime | None = None

    @property
    def step(self) -> Step:
        if self.refusing:
            return Step.REFUSE
        if self.place == 0:
            return Step.NONE
        return Step.QUEUE if self.place > self.floor else Step.DOWNGRADE

    @property
    def level(self) -> int:
        """Rungs down for the requests that go through (the floor while queued)."""
        return 0 if self.refusing else min(self.place, self.floor)


def limit_words(limit: float, unit: str) -> str:
    """A budget's limit as its messages say it: ``$0.50`` or ``50,000 tokens``."""
    return units.usd(limit) if unit == "usd" else units.tokens_words(limit)


def doubled(budget: Budget) -> str:
    """The ``budget set`` that doubles ``budget``'s limit in its own window and measure, as
    typed: ``budget set global 2000000 --window 1d``, ``budget set global 1.00 --usd
    --window daily``."""
    window = budget.window
    if window.kind is WindowKind.FIXED and window.reset_at is not None:
        written = f"fixed --reset-at {window.reset_at.astimezone(UTC):%Y-%m-%dT%H:%M}+00:00"
    else:
        written = window.label
    if budget.limit_tokens is not None:
        limit = str(2 * budget.limit_tokens)
    else:
        limit = f"{2 * (budget.limit_usd or 0.0):.2f} --usd"
    return f"budget set {budget.key} {limit} --window {written}"


def _why_through(status: BudgetStatus, old: BudgetStatus | None) -> str:
    """Why a budget at its limit lets requests through again: its limit was raised (or
    its budget changed), or its window reset — said only when it did."""
    key = status.budget.key
    if old is not None and old.budget != status.budget:
        if status.limit > old.limit and status.unit == old.unit:
            return f"{key}'s limit was raised to {limit_words(status.limit, status.unit)}"
        return f"{key}'s budget changed ({limit_words(status.limit, status.unit)})"
    if old is None or status.end != old.end:
        return f"{key}'s window has reset"
    return f"{key} is under its limit again"


class Wording:
    """The policy's messages; :class:`~fleet.budgets.pacing.policy.PacingPolicy` mixes it in."""

    _tz: tzinfo

    def _agents(self, key: str) -> tuple[str, ...]:
        raise NotImplementedError

    def _transition(
        self,
        state: BudgetState,
        before: Step,
        before_level: int,
        before_place: int,
        old: BudgetStatus | None = None,
    ) -> Transition:
        """The change of ``state`` from where it stood (``old``: its status at the tick
        before, when the tick is what moved it)."""
        status = state.status
        key = status.budget.key
        cutoff = status.budget.cutoff
        agents = ", ".join(self._agents(key)) or "none running"
        if state.step is Step.REFUSE:
            reset = self._at(status.end, status.now)
            limit = f"{key} reached its limit ({limit_words(status.limit, status.unit)})"
            if cutoff is Cutoff.FREEZE:
                message = (
                    f"{limit}: refusing requests and freezing its agents ({agents}) until "
                    f"{reset} (reset), or `resume NAME`"
                )
            elif cutoff is Cutoff.STOP:
                message = f"{limit}: refusing requests until {reset} (reset); stopping {agents}"
            elif cutoff is Cutoff.ASK:
                message = (
                    f"{limit}: holding requests and freezing its agents ({agents}); its "
                    f"operators are asked to raise it (`raise budget {key}`) or stop them "
                    f"(else until {reset}, reset)"
                )
            else:
                message = f"{limit}: refusing requests until {reset} (reset)"
        elif before is Step.REFUSE:
            message = f"{_why_through(status, old)}: requests go through again"
            if cutoff in (Cutoff.FREEZE, Cutoff.ASK):
                message += "; its frozen agents continue"
        elif state.place > before_place:
            message = self._escalation(state, before_level)
        else:
            message = self._release(state, before_level)
        return Transition(key, self._agents(key), before, state.step, message)

    def _escalation(self, state: BudgetState, before_level: int) -> str:
        status = state.status
        over = (status.pace_ratio - 1.0) * 100
        why = (
            f"{status.budget.key} is {over:.0f} % over pace"
            if over >= 10
            else (f"{status.budget.key} is {max(over, 0.0):.1f} % over pace")
        )
        if status.status is not PaceStatus.OVER and status.projected_exhaustion is not None:
            out = self._at(status.projected_exhaustion, status.now)
            why += f" and on course to run out at {out}"
        if state.step is Step.QUEUE:
            until = self._at(state.queued_until or status.now, status.now)
            cheapest = "at the cheapest models" if state.floor else "with no cheaper model"
            return (
                f"{why} {cheapest}: holding requests until {until}; new launches wait in the "
                "queue until then (`queue` lists them)"
            )
        further = "further " if before_level else ""
        return f"{why}: downgrading {further}{self._swaps(state, before_level, state.level)}"

    def _release(self, state: BudgetState, before_level: int) -> str:
        key = state.status.budget.key
        if state.step is Step.NONE:
            return f"{key} is back on pace: models as requested"
        swaps = self._swaps(state, before_level, state.level)
        if before_level == state.level:  # leaving the queue, at the floor
            return f"{key} is back on pace: resuming requests, at {swaps}"
        return f"{key} is back on pace: upgrading {swaps}"

    def _swaps(self, state: BudgetState, before: int, after: int) -> str:
        """``a → b`` for each ladder whose served top model changes between two levels
        (or, when none does, the models served at ``after``)."""
        ladders = state.status.budget.ladder.values()
        swaps = [
            f"{m[min(before, len(m) - 1)]} → {m[min(after, len(m) - 1)]}"
            for m in ladders
            if min(before, len(m) - 1) != min(after, len(m) - 1)
        ]
        if swaps:
            return ", ".join(swaps)
        return ", ".join(m[min(after, len(m) - 1)] for m in ladders) or "the requested models"

    def _at(self, when: datetime, now: datetime) -> str:
        local, today = when.astimezone(self._tz), now.astimezone(self._tz)
        return f"{local:%H:%M}" if local.date() == today.date() else f"{local:%a %H:%M}"
