"""A run's story for its summary and ``runs NAME``: the ledger's report of the run (why it
started, where it worked, how it went) with what Fleetwarden itself metered while it ran —
requests, tokens, cost and the models actually served, downgrades included — and, for an
agent on a repository, the change it left on its branch."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.ledger import UsageTotal
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.runs import RunReport, RunsStore
from fleet.ledger.stores.spend.metering import MeteringStore
from fleet.names import agent_name
from fleet.repos.facts import Change, change_from_json
from fleet.timing.clock import Clock


@dataclass(frozen=True, slots=True)
class RunStory:
    """One run: its report, the usage metered in its span per served model, and the
    requests moved to a cheaper model (asked for, served, how many)."""

    report: RunReport
    runtime: str
    usage: tuple[UsageTotal, ...]
    downgrades: tuple[tuple[str, str, int], ...]
    change: Change | None = None  # what it left on its branch, for an agent on a repository

    @property
    def requests(self) -> int:
        return sum(u.requests for u in self.usage)

    @property
    def tokens(self) -> int:
        return sum(u.tokens.total for u in self.usage)

    @property
    def cost_usd(self) -> float | None:
        costs = [u.cost_usd for u in self.usage if u.cost_usd is not None]
        return sum(costs) if costs else None


class RunStories:
    """Reads runs' stories from the ledger."""

    def __init__(
        self,
        *,
        agents: AgentsStore,
        runs: RunsStore,
        lines: LinesStore,
        metering: MeteringStore,
        clock: Clock,
    ) -> None:
        self._agents = agents
        self._lines = lines
        self._metering = metering
        self._runs = runs
        self._clock = clock

    async def story(self, run_id: int) -> RunStory | None:
        report = await self._runs.run_report(run_id)
        return None if report is None else await self._tell(report)

    async def recent(self, name: str, limit: int = 5) -> list[RunStory]:
        """``name``'s latest ``limit`` runs, newest first."""
        reports = await self._runs.run_reports(agent_name(name), limit)
        return [await self._tell(report) for report in reports]

    async def _tell(self, report: RunReport) -> RunStory:
        run = report.run
        record = await self._agents.get_agent(run.agent)
        runtime = record.spec.runtime if record is not None else "?"
        until = run.ended_at or self._clock.now()
        usage = await self._metering.usage_between(run.agent, run.started_at, until)
        downgrades = await self._metering.downgrades_between(run.agent, run.started_at, until)
        change = change_from_json(await self._lines.run_change(run.id))
        return RunStory(report, runtime, tuple(usage), tuple(downgrades), change)
