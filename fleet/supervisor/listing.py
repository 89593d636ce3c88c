"""The fleet as ``ps`` lists it — every agent the ledger knows, with its last run, its
heartbeat, its tokens today and what they cost, its pause, its refused egress and its
host's state — and what is said of the agents that keep running when Fleetwarden stops."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from fleet.hosts.schema import LOCAL_HOST
from fleet.runs.keeper import RunKeeper
from fleet.supervisor.status import AgentStatus, agent_status
from fleet.supervisor.stores import FleetStores


async def listing(stores: FleetStores, runs: RunKeeper, today: datetime) -> list[AgentStatus]:
    """Every agent the ledger knows, by name, with its tokens since ``today`` (and their
    priced cost) and its refused egress (a few queries, whatever the fleet size)."""
    last = await stores.runs.last_runs()
    beats = await stores.heartbeats.last_heartbeats()
    spent = await stores.metering.spend_by_agent(today)
    frozen = {f.agent: f.reason for f in await stores.budgets.freezes()}
    refused = await stores.refusals.refusal_totals()
    return [
        agent_status(
            record,
            last.get(record.name),
            beats.get(record.name, (None, ""))[0],
            runs.log_path(record.name),
            tokens_today=spent.get(record.name, (0, None))[0],
            usd_today=spent.get(record.name, (0, None))[1],
            frozen=frozen.get(record.name),
            egress_refused=refused.get(record.name, 0),
            host_down=runs.host_down(record.host),
        )
        for record in await stores.agents.list_agents()
    ]


def left_running(statuses: Iterable[AgentStatus]) -> str | None:
    """What to say of the agents still running when Fleetwarden stops (``None``: none)."""
    live = [s for s in statuses if s.state.is_live]
    if not live:
        return None
    names = ", ".join(
        f"{s.name} ({s.backend}{'' if s.host == LOCAL_HOST else ' on ' + s.host})" for s in live
    )
    them = "it" if len(live) == 1 else "them"
    return (
        f"Fleetwarden stops; {'this agent keeps' if len(live) == 1 else 'these agents keep'} "
        f"running: {names}. Until the next start reattaches {them}, what Fleetwarden serves "
        "is down: a push through its git door, a model request through its proxy, an "
        "approval asked of chat fails meanwhile."
    )
