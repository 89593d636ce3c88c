"""The ledger's budget tables (migration 5): ``budgets`` set by command, ``bursts`` granted
by admins, ``pacing_steps``, where each budget stands on the enforcement ladder, and
``freezes`` (migrations 8 and 14), the agents whose processes are paused by a budget's
``freeze`` cutoff or by a person's ``freeze``.

A budget set by command replaces the config's budget of the same scope (the config's comes
back when the command's is removed: ``budget unset``); there is one row per scope, the
latest ``budget set`` wins. Bursts are kept after they end (``budget end-burst`` ends one
early), for reports and the audit of who granted what.
Steps are saved as they change, so a restart resumes the ladder instead of starting every
budget at ``none``.

A freeze says why, by whom and since when, so ``ps`` says so, the watchdog leaves the agent
be, and a restart of Fleetwarden still knows to continue it at the reset (a budget's) or to
keep it paused until ``resume`` (a person's). The records are in
:mod:`fleet.ledger.records.budgets`.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row, insert_id, replace_into
from fleet.ledger.records.budgets import (
    Budget,
    Burst,
    Confidence,
    Cutoff,
    Freeze,
    Scope,
    Step,
    WindowKind,
    WindowSpec,
)
from fleet.ledger.records.epoch import from_epoch, to_epoch

_BUDGET_COLUMNS = (
    "scope, window_kind, window_seconds, reset_at, confidence, limit_tokens, limit_usd, "
    "account, ladder_json, tolerance, set_by, set_at, cutoff"
)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """Where one budget stands on the ladder, and since when."""

    budget: str  # the budget's key: its scope
    step: Step
    level: int = 0  # downgrade rungs, when ``step`` is DOWNGRADE
    changed_at: datetime | None = None  # None: now, when saved


class BudgetsStore(Store):
    """Budgets set by command, bursts, pacing steps and freezes."""

    async def set_budget(self, budget: Budget, by: str) -> None:
        """Save ``budget`` as set by ``by`` now, replacing any budget set for its scope."""
        window = budget.window
        params = (
            str(budget.scope),
            window.kind.value,
            None if window.length is None else window.length.total_seconds(),
            None if window.reset_at is None else to_epoch(window.reset_at),
            window.confidence.value,
            budget.limit_tokens,
            budget.limit_usd,
            budget.account,
            json.dumps({k: list(v) for k, v in budget.ladder.items()}, sort_keys=True),
            budget.tolerance,
            by,
            to_epoch(self._clock.now()),
            budget.cutoff.value,
        )
        async with self._transaction(f"set the budget of {budget.scope}") as conn:
            await conn.execute(
                replace_into("budgets", ("scope",), _BUDGET_COLUMNS.split(", ")),
                params,
            )

    async def remove_budget(self, scope: Scope) -> bool:
        """Forget the budget set by command for ``scope`` (the config's, if any, is back in
        force); whether there was one."""
        async with self._transaction(f"remove the budget set for {scope}") as conn:
            cursor = await conn.execute("DELETE FROM budgets WHERE scope = ?", (str(scope),))
            return cursor.rowcount > 0

    async def command_budgets(self) -> list[Budget]:
        """Every budget set by command (``source="command"``), by scope."""
        rows = await self._all(f"SELECT {_BUDGET_COLUMNS} FROM budgets ORDER BY scope", ())
        return [_budget(row) for row in rows]

    async def add_burst(self, burst: Burst) -> int:
        """Record a burst grant; its id. ``granted_at`` defaults to now."""
        granted_at = burst.granted_at if burst.granted_at is not None else self._clock.now()
        params = (
            str(burst.scope),
            to_epoch(burst.until),
            burst.granted_by,
            burst.reason,
            to_epoch(granted_at),
        )
        async with self._transaction(f"grant a burst to {burst.scope}") as conn:
            return await insert_id(
                conn,
                "INSERT INTO bursts (scope, until, granted_by, reason, granted_at)"
                " VALUES (?, ?, ?, ?, ?)",
                params,
            )

    async def end_bursts(self, scope: Scope, now: datetime) -> int:
        """End now every burst on ``scope`` still running (kept, for reports and the audit,
        with ``now`` as their end); how many there were."""
        at = to_epoch(now)
        async with self._transaction(f"end the bursts on {scope}") as conn:
            cursor = await conn.execute(
                "UPDATE bursts SET until = ? WHERE scope = ? AND until > ?", (at, str(scope), at)
            )
            return cursor.rowcount

    async def active_bursts(self, now: datetime) -> list[Burst]:
        """The bursts granted by ``now`` that have not ended, oldest grant first."""
        at = to_epoch(now)
        rows = await self._all(
            "SELECT scope, until, granted_by, reason, granted_at FROM bursts"
            " WHERE until > ? AND granted_at <= ? ORDER BY granted_at, id",
            (at, at),
        )
        return [
            Burst(
                scope=Scope.parse(row["scope"]),
                until=from_epoch(row["until"]),
                granted_by=row["granted_by"],
                reason=row["reason"],
                granted_at=from_epoch(row["granted_at"]),
            )
            for row in rows
        ]

    async def save_steps(self, steps: Sequence[StepRecord]) -> None:
        """Save where these budgets stand (others keep their rows), in one transaction."""
        if not steps:
            return
        now = self._clock.now()
        params = [(s.budget, s.step.value, s.level, to_epoch(s.changed_at or now)) for s in steps]
        async with self._transaction(f"save the pacing steps of {len(params)} budgets") as conn:
            await conn.executemany(
                replace_into(
                    "pacing_steps", ("budget",), ("budget", "step", "level", "changed_at")
                ),
                params,
            )

    async def load_steps(self) -> dict[str, StepRecord]:
        """Every saved step, by budget key."""
        rows = await self._all(
            "SELECT budget, step, level, changed_at FROM pacing_steps ORDER BY budget", ()
        )
        return {
            row["budget"]: StepRecord(
                budget=row["budget"],
                step=Step(row["step"]),
                level=row["level"],
                changed_at=from_epoch(row["changed_at"]),
            )
            for row in rows
        }

    # -- freezes ----------------------------------------------------------------------------

    async def add_freeze(
        self, agent: str, budget: str, reason: str, *, by: str | None = None
    ) -> Freeze:
        """Record ``agent`` as frozen. A person's freeze replaces a budget's; a budget's
        never replaces a person's (that one stays, and is returned)."""
        freeze = Freeze(agent, budget, reason, self._clock.now(), socket.gethostname(), by)
        async with self._transaction(f"record that {agent} is frozen") as conn:
            await conn.execute(
                "INSERT INTO freezes (agent, budget, reason, frozen_at, host, frozen_by)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (agent) DO UPDATE SET"
                " budget = excluded.budget, reason = excluded.reason,"
                " frozen_at = excluded.frozen_at, host = excluded.host,"
                " frozen_by = excluded.frozen_by"
                " WHERE excluded.frozen_by IS NOT NULL OR freezes.frozen_by IS NULL",
                (agent, budget, reason, to_epoch(freeze.frozen_at), freeze.host, by),
            )
        kept = await self._one("SELECT * FROM freezes WHERE agent = ?", (agent,))
        return freeze if kept is None else _freeze(kept)

    async def remove_freeze(self, agent: str) -> bool:
        """Forget ``agent``'s freeze; whether it had one."""
        async with self._transaction(f"record that {agent} is no longer frozen") as conn:
            cursor = await conn.execute("DELETE FROM freezes WHERE agent = ?", (agent,))
            return cursor.rowcount > 0

    async def freezes(self) -> list[Freeze]:
        rows = await self._all("SELECT * FROM freezes ORDER BY frozen_at, agent", ())
        return [_freeze(row) for row in rows]


def _budget(row: Row) -> Budget:
    seconds, reset_at = row["window_seconds"], row["reset_at"]
    ladder = json.loads(row["ladder_json"])
    return Budget(
        scope=Scope.parse(row["scope"]),
        window=WindowSpec(
            kind=WindowKind(row["window_kind"]),
            length=None if seconds is None else timedelta(seconds=seconds),
            reset_at=None if reset_at is None else from_epoch(reset_at),
            confidence=Confidence(row["confidence"]),
        ),
        limit_tokens=row["limit_tokens"],
        limit_usd=row["limit_usd"],
        account=row["account"],
        ladder={str(k): tuple(str(m) for m in v) for k, v in ladder.items()},
        tolerance=row["tolerance"],
        cutoff=Cutoff(row["cutoff"]),
        source="command",
    )


def _freeze(row: Row) -> Freeze:
    return Freeze(
        row["agent"],
        row["budget"],
        row["reason"],
        from_epoch(row["frozen_at"]),
        row["host"],
        row["frozen_by"],
    )
