"""A fake :class:`~fleet.budgets.model.BudgetBook` and a way to build statuses for it.

:func:`paced` fills in a :class:`BudgetStatus` from what was used by when, following the
pacing law of the Budgets issue (pace = used ÷ (limit × elapsed ÷ window); projection at
the current burn rate), so report tests state inputs rather than hand-computed outputs.
It is a stand-in for the real law in ``fleet.budgets.pacing.law`` where a test only needs
plausible, internally consistent numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fleet.budgets.model import BudgetError, BudgetStatus, PaceStatus, Source
from fleet.budgets.resets import reset_confidence
from fleet.ledger.records.budgets import Budget, Burst, Scope, WindowKind, WindowSpec


@dataclass
class StaticBook:
    """A read-only :class:`~fleet.budgets.model.BudgetBook`: its statuses, zone and
    time are whatever the test set; changing a budget raises ``BudgetError``."""

    items: list[BudgetStatus]
    zone: ZoneInfo
    at: datetime
    asked: int = field(default=0)

    @property
    def timezone(self) -> ZoneInfo:
        return self.zone

    def now(self) -> datetime:
        return self.at

    async def statuses(self) -> list[BudgetStatus]:
        self.asked += 1
        return list(self.items)

    def budgets(self) -> list[Budget]:
        return [status.budget for status in self.items]

    async def set_budget(self, budget: Budget, by: str) -> Budget:
        raise BudgetError("the static budget book is read-only")

    async def unset_budget(self, scope: Scope, by: str) -> tuple[Budget, Budget | None]:
        raise BudgetError("the static budget book is read-only")

    async def end_burst(self, scope: Scope, by: str) -> int:
        raise BudgetError("the static budget book is read-only")

    async def allow_burst(self, burst: Burst) -> Burst:
        raise BudgetError("the static budget book is read-only")

    def queued_until(self, agent: str) -> datetime | None:
        return None

    async def admit_spawn(self, agent: str, *, urgent: bool) -> tuple[bool, str]:
        return True, ""


def budget(scope: str, window: timedelta, limit: int, **changes: Any) -> Budget:
    """A token budget on ``scope`` with a rolling ``window``."""
    made = Budget(Scope.parse(scope), WindowSpec(WindowKind.ROLLING, window), limit_tokens=limit)
    return replace(made, **changes)


def paced(
    spec: Budget,
    start: datetime,
    now: datetime,
    used: float,
    *,
    series: Sequence[tuple[datetime, float]] = (),
    source: Source = Source.METERING,
    **changes: Any,
) -> BudgetStatus:
    """The status of ``spec`` at ``now`` for a window that began at ``start``, with ``used``
    so far (its reset the provider's word when ``source`` is); ``changes`` override any
    field (step, burst, …)."""
    length = spec.window.length or timedelta(days=1)
    end = start + length
    limit = float(spec.limit_tokens or 0)
    elapsed = (now - start) / length  # fraction of the window gone
    pace = used / (limit * elapsed) if limit > 0 and elapsed > 0 else float("nan")
    remaining_hours = (end - now).total_seconds() / 3600
    projected = used / elapsed if elapsed > 0 else used
    exhaustion: datetime | None = None
    if used >= limit:
        exhaustion = now
    elif projected > limit:
        exhaustion = start + (now - start) * (limit / used)
    if used >= limit:
        status = PaceStatus.EXHAUSTED
    elif pace > 1 + spec.tolerance:
        status = PaceStatus.OVER
    elif pace < 1 - spec.tolerance:
        status = PaceStatus.UNDER
    else:
        status = PaceStatus.ON
    made = BudgetStatus(
        budget=spec,
        start=start,
        end=end,
        now=now,
        unit="tokens",
        used=used,
        limit=limit,
        pace_ratio=pace,
        target_rate=(limit - used) / remaining_hours if remaining_hours > 0 else 0.0,
        projected_end_use=projected,
        projected_exhaustion=exhaustion,
        status=status,
        source=source,
        reset_confidence=reset_confidence(
            spec.window,
            end=end,
            now=now,
            provider_said=source is Source.PROVIDER,
            mirrors_provider=source is not Source.METERING
            or spec.account is not None
            or spec.scope.kind in ("account", "provider"),
        ),
        series=tuple(series),
    )
    return replace(made, **changes)
