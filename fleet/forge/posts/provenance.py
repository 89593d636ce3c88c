"""What a forge run's footer and status comment say, read from the ledger: the agent and its
runtime, the models actually served (downgrades too), the run, who asked, when it started
and how long it took, how it ended, whether the agent or the watchdog said done, the
approvals granted and by whom, tokens and cost against the run's cap (and what such a run
costs, as its quote said when it was admitted), the task it is done for (its projection
beside its actual), the secret scan of
its change, its egress (deny-by-default, the routes allowed, what was refused), the forge
operations from the audit, and Fleetwarden's version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet.budgets.quoting.quote import estimate_of
from fleet.budgets.runs.budget import cap_text
from fleet.budgets.runs.estimate import RunEstimate, estimate_runs
from fleet.forge.posts.footer import Provenance
from fleet.forge.posts.unpublished import public_part
from fleet.forge.tasks import ForgeTasks
from fleet.ledger import UsageTotal
from fleet.ledger.records.approvals import ApprovalState
from fleet.ledger.records.forge import ForgeRunRecord
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.operators.approvals import ApprovalsStore
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.refusals import RefusalsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.spend.metering import MeteringStore
from fleet.ledger.stores.spend.quotes import QuotesStore
from fleet.model import AgentSpec
from fleet.repos.facts import change_from_json
from fleet.timing.clock import Clock

OPERATIONS_SHOWN = 30


@dataclass(frozen=True, slots=True)
class Spend:
    """What a forge run has spent since it started, and what such runs usually cost."""

    tokens: int
    cost_usd: float | None
    cap: str | None
    estimate: RunEstimate | None
    usage: tuple[UsageTotal, ...] = ()  # by served model, as metered
    spec: AgentSpec | None = None  # the agent's, as read with it


@dataclass(frozen=True, slots=True)
class Expected:
    """What a forge run's work was expected to cost, told beside what it cost: ``quotes``,
    the runs' quotes, which a run's estimate is told from (``None``, or a run given none:
    reckoned again from the runs before it); ``tasks``, the forge runs' tasks, whose stored
    projections the posts show (``None``: no register)."""

    quotes: QuotesStore | None = None
    tasks: ForgeTasks | None = None


@dataclass(frozen=True, slots=True)
class RunRecords:
    """What the ledger keeps of a forge run's work, which its provenance is read from: its
    agent, its runs, what was metered and refused for them, the approvals they asked, their
    line's change, and the forge run itself with its audit."""

    agents: AgentsStore
    runs: RunsStore
    metering: MeteringStore
    approvals: ApprovalsStore
    lines: LinesStore
    refusals: RefusalsStore
    forge: ForgeStore


class ProvenanceSource:
    """Reads a forge run's provenance and spend from the ledger."""

    def __init__(
        self, records: RunRecords, *, clock: Clock, version: str, expected: Expected | None = None
    ) -> None:
        """``expected``: what the runs were expected to cost (none: each run's estimate
        reckoned from the runs before it, and no task's projection)."""
        expected = expected or Expected()
        self.tasks = expected.tasks
        self._quotes = expected.quotes
        self.records = records
        self.clock = clock
        self._version = version

    @property
    def version(self) -> str:
        """Fleetwarden's version, as every footer names it."""
        return self._version

    async def spend(self, record: ForgeRunRecord) -> Spend:
        """Tokens and dollars metered for the agent since the forge run started."""
        until = record.ended_at or self.clock.now()
        usage = await self.records.metering.usage_between(record.agent, record.started_at, until)
        costs = [u.cost_usd for u in usage if u.cost_usd is not None]
        agent = await self.records.agents.get_agent(record.agent)
        spec = agent.spec if agent is not None else None
        estimate = None
        quote = None
        if record.run_id is not None and self._quotes is not None:
            quote = await self._quotes.quote_of(record.run_id)
        if quote is not None:  # as the run was quoted at its admission: unchanged by it
            estimate = estimate_of(quote)
        elif spec is not None:  # from the runs before this one: never its own
            estimate = estimate_runs(
                await self.records.runs.run_costs(
                    record.agent, spec.runtime, spec.model, before=record.started_at
                )
            )
        cap = cap_text(spec.run_budget) if spec is not None and spec.run_budget else None
        return Spend(
            usage=tuple(usage),
            tokens=sum(u.tokens.total for u in usage),
            cost_usd=sum(costs) if costs else None,
            cap=cap,
            estimate=estimate,
            spec=spec,
        )

    async def work_end(self, record: ForgeRunRecord) -> datetime | None:
        """When the agent's work on ``record`` last stopped: its latest run's end, or (a run
        paused, not ended) its last sign of life."""
        run = await self.records.runs.run_report(record.run_id) if record.run_id else None
        if run is not None and run.run.ended_at is not None:
            return run.run.ended_at
        return record.activity_at

    async def provenance(self, record: ForgeRunRecord, spend: Spend | None = None) -> Provenance:
        """Everything the footer says of ``record``, as of now (``spend``: as just read)."""
        until, kept = record.ended_at or self.clock.now(), self.records
        spend = spend or await self.spend(record)
        spec = spend.spec
        usage = spend.usage
        downgrades = await kept.metering.downgrades_between(record.agent, record.started_at, until)
        models = [f"{u.model} ({u.requests} requests)" for u in usage if u.requests]
        models += [f"{asked} served as {served} ({n})" for asked, served, n in downgrades]
        run = await self.records.runs.run_report(record.run_id) if record.run_id else None
        exit_text = None
        if run is not None and run.end is not None:
            exit_text = run.end.outcome
        approvals: list[tuple[str, str]] = []
        if record.run_id is not None:
            for ask in await self.records.approvals.approvals_of_run(record.run_id):
                if ask.state is ApprovalState.ALLOWED and ask.answered_by:
                    approvals.append((f"{ask.tool}: {ask.subject}", ask.answered_by))
        change_json = await self.records.lines.run_change(record.run_id) if record.run_id else None
        secret_scan = _secret_scan(change_json)
        # This forge run's span only: the agent's earlier runs' refusals are not this run's.
        refused = await kept.refusals.refused_between(record.agent, record.started_at, until)
        egress = "no sandbox"
        if spec is not None:
            if spec.egress == "locked":
                routes = ", ".join(spec.egress_allow) or "none"
                egress = f"deny by default; allowed: {routes}; refused: {refused}"
            else:
                egress = f"open network; refused: {refused}"
        audit = await self.records.forge.forge_audit(record.id, limit=OPERATIONS_SHOWN + 1)
        operations = [("" if line.allowed else "refused: ") + _shown(line.detail) for line in audit]
        return Provenance(
            agent=record.agent,
            runtime=spec.runtime if spec is not None else "?",
            models=tuple(models),
            run_id=record.run_id,
            requester=record.requester,
            started_at=record.started_at,
            duration=_seconds(record.started_at, until),
            exit=exit_text,
            done_signal=record.done_signal,
            approvals=tuple(approvals),
            tokens=spend.tokens,
            cost_usd=spend.cost_usd,
            cap=spend.cap,
            secret_scan=secret_scan,
            egress=egress,
            operations=tuple(operations),
            version=self._version,
            task=await self.tasks.line(record.id) if self.tasks is not None else None,
        )


def _shown(detail: str) -> str:
    """An audit line as a post on the forge shows it: its public words only (an operator's
    detail, kept after them, names variables, config keys and the upstream)."""
    return public_part(detail.removeprefix("refused: "))


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def _secret_scan(change_json: str | None) -> str:
    change = change_from_json(change_json)
    if change is None:
        return "no change yet"
    if change.refused:
        return f"{change.secrets}; the git door refused: {change.refused[0]}"
    return change.secrets
