"""What tasks' runs really used: the usage metered for a run's agent while the run went
(from its start to its end, or to now while it runs), summed per task — exact to the token,
the dollars over the priced requests."""

from __future__ import annotations

from collections.abc import Sequence

from fleet.ledger.database.access import Store
from fleet.ledger.records.tasks import Actual

_TOKENS = "u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens"


class ActualsStore(Store):
    """Tasks' actual spend, read from their runs' metered usage."""

    async def actuals(self, task_ids: Sequence[int]) -> dict[int, Actual]:
        """The actual spend of each of ``task_ids`` (a task without runs: nothing spent)."""
        if not task_ids:
            return {}
        marks = ", ".join("?" for _ in task_ids)
        rows = await self._all(
            f"""SELECT t.task_id, COUNT(*),
                    COALESCE(SUM((SELECT COALESCE(SUM({_TOKENS}), 0) FROM usage u
                      WHERE u.agent = r.agent AND u.at >= r.started_at
                        AND (r.ended_at IS NULL OR u.at <= r.ended_at))), 0),
                    SUM((SELECT SUM(CASE WHEN u.priced = 1 THEN u.cost_usd END) FROM usage u
                      WHERE u.agent = r.agent AND u.at >= r.started_at
                        AND (r.ended_at IS NULL OR u.at <= r.ended_at)))
                FROM task_runs t JOIN runs r ON r.id = t.run_id
                WHERE t.task_id IN ({marks}) GROUP BY t.task_id""",
            tuple(task_ids),
        )
        found = {
            int(row[0]): Actual(
                tokens=int(row[2]),
                usd=None if row[3] is None else float(row[3]),
                runs=int(row[1]),
            )
            for row in rows
        }
        return {i: found.get(i, Actual(0, None, 0)) for i in task_ids}

    async def actual(self, task_id: int) -> Actual:
        """Task ``task_id``'s actual spend."""
        return (await self.actuals([task_id]))[task_id]
