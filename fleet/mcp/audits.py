"""What the ledger keeps of each call through the MCP door (an audit listener,
:data:`~fleet.mcp.hooks.AuditListener`): a row of ``mcp_calls`` with the agent's open run and
that run's task, and — when the door billed the call (:attr:`McpAudit.cost_usd`: a priced
server's call handed to it, whatever its end) — that price as model spend is: a ``usage``
row of provider :data:`PROVIDER` and model ``mcp:<server>`` (which ``spend``, ``usage``, the
budgets' sums and a restarted run's cap read). The run's cap and its quote's hold were
charged by the door's billing (:class:`~fleet.mcp.hooks.Billing`) as the call ended."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Final

from fleet.ledger.stores.running.mcp_calls import MCP_PROVIDER, McpCallRecord, McpCallsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.spend.metering import MeteringStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.mcp.hooks import McpAudit
from fleet.metering.counting.events import Outcome as UsageOutcome
from fleet.metering.counting.events import Tokens, UsageEvent
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

PROVIDER: Final = MCP_PROVIDER
"""The provider a priced MCP call's ``usage`` row names."""


def model_of(server: str) -> str:
    """The model a priced call of ``server`` is counted under in ``usage``."""
    return f"mcp:{server}"


class McpLedgerAudit:
    """Writes each call to ``calls``, with the run ``runs`` has open for its agent and that
    run's task (``tasks``); a billed call's price to ``metering``."""

    def __init__(
        self,
        *,
        calls: McpCallsStore,
        runs: RunsStore,
        tasks: TasksStore,
        metering: MeteringStore,
        clock: Clock,
    ) -> None:
        self._calls = calls
        self._runs = runs
        self._tasks = tasks
        self._metering = metering
        self._clock = clock

    async def __call__(self, audit: McpAudit) -> None:
        at = self._clock.now()
        run = await self._runs.last_run(audit.agent)
        run_id = run.id if run is not None and run.ended_at is None else None
        task_id = None if run_id is None else await self._tasks.task_of_run(run_id)
        cost = audit.cost_usd
        if cost is not None:  # first: a call seen in mcp_calls has its price in usage too
            started = at - timedelta(seconds=audit.seconds)
            await self._metering.record_metering([_usage(audit, started, cost)], [])
        await self._calls.record_call(
            McpCallRecord(
                at=at,
                agent=audit.agent,
                run_id=run_id,
                task_id=task_id,
                server=audit.server,
                method=audit.method,
                name=audit.name,
                outcome=audit.outcome.value,
                seconds=audit.seconds,
                bytes_in=audit.bytes_in,
                bytes_out=audit.bytes_out,
                arguments=audit.arguments,
                result=audit.result,
                why=audit.why,
                cost_usd=cost,
            )
        )


def _usage(audit: McpAudit, at: datetime, cost: float) -> UsageEvent:
    """A billed call as the ``usage`` row a model request would be: no tokens, its price."""
    model = model_of(audit.server)
    return UsageEvent(
        at=at,
        agent=audit.agent,
        provider=PROVIDER,
        api="",
        requested_model=model,
        served_model=model,
        tokens=Tokens(),
        stream=False,
        status=200,
        outcome=UsageOutcome.OK,
        latency_ms=audit.seconds * 1000,
        ttfb_ms=None,
        request_id=None,
        reason=f"MCP {audit.method} of {audit.server}",
        cost_usd=cost,
        priced=True,
    )
