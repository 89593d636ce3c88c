"""The app's MCP door (:class:`~fleet.mcp.door.McpDoor`), made before the heartbeat endpoint
it is mounted on, when the config has ``mcp:`` servers. Its roster is the config's servers
and each agent's grants as the fleet holds them now (:class:`~fleet.mcp.roster.LiveRoster`
over the desk the fleet phase opens: a ``roster reload`` applies to the sessions opened
after it). Each tool call is decided by the agent's mode and ``mcp__server__tool`` rules,
or asked in chat, before it is relayed (:class:`~fleet.mcp.asking.McpAsks`); every call
it relays is told to the listeners :func:`mcp_hooks` lists: the ledger (with a priced call
billed), the agent's thread and ``/metrics``. The fleet phase ends an agent's sessions
when its run ends (:func:`ending_sessions`); the app's stops end them all."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.app.stops import Stop
from bot.chat.mcp_calls import McpCounted, McpThreadLines
from fleet.approvals.ask_door import ledger_terms
from fleet.clock import Clock
from fleet.events import EventKind, FleetEvent, Listener
from fleet.mcp.asking import McpAsks
from fleet.mcp.audits import Charge, McpLedgerAudit
from fleet.mcp.door import McpDoor
from fleet.mcp.hooks import Ask, AuditListener, McpHooks
from fleet.mcp.roster import LiveRoster

Count = Callable[[str, str], None]
"""Counts a call for ``/metrics`` by (server, outcome)."""


async def make_mcp_door(
    at: Grounds, ledgered: Ledgered, desks: Desks, count: Count
) -> McpDoor | None:
    """The door over the config's servers (``None``: the config has none), to be stopped
    with the app; ``count``: the metrics' count of calls. Each tool call is decided by the
    agent's mode and rules, or asked in chat, before it is relayed
    (:class:`~fleet.mcp.asking.McpAsks`, started here: before the door serves)."""
    servers = at.cfg.mcp
    if not servers:
        return None
    ledger = ledgered.ledger
    asks = McpAsks(ledgered.approvals, ledger_terms(ledger.agents, ledger.runs), at.clock)
    await asks.start()
    roster = LiveRoster(servers, desks.mcp_grants)
    door = McpDoor(
        roster,
        environ=at.environ,
        hooks=mcp_hooks(at, ledgered, desks, count, (asks,), roster.names()),
        redact=at.redactor.redact,
    )
    at.stops.add(Stop.MCP, door.stop)
    return door


def mcp_hooks(
    at: Grounds,
    ledgered: Ledgered,
    desks: Desks,
    count: Count,
    asks: Sequence[Ask] = (),
    servers: frozenset[str] = frozenset(),
) -> McpHooks:
    """What the door asks before a tool call (``asks``, in order) and tells of each call's
    end: the ledger's ``mcp_calls`` (a priced call billed to ``usage`` and charged to its
    run through ``desks``), the agent's thread, and ``count`` by the config's names."""
    ledger, cfg = ledgered.ledger, at.cfg
    audits: list[AuditListener] = [
        McpLedgerAudit(
            calls=ledger.mcp_calls,
            runs=ledger.runs,
            tasks=ledger.tasks,
            metering=ledger.metering,
            servers=cfg.mcp,
            clock=at.clock,
            charge=desks.mcp_charge,
        ),
        McpThreadLines(ledgered.notifier.post, cfg.mcp),
        McpCounted(count, servers or frozenset(cfg.mcp)),
    ]
    return McpHooks(asks=tuple(asks), audits=audits)


def ending_sessions(door: McpDoor) -> Listener:
    """A fleet listener: an agent's run ended, so do its sessions with the door (and their
    stdio servers' processes)."""

    async def on_fleet_event(event: FleetEvent) -> None:
        if event.kind is EventKind.ENDED:
            await door.end_agent(event.agent)

    return on_fleet_event


def run_charge(spend: Spend, clock: Clock) -> Charge:
    """What bills a priced MCP call to its agent's run: its cap (when metering caps runs)
    and what its run's quote holds against the budgets."""
    caps = spend.run_caps.caps if spend.run_caps is not None else None
    holds = spend.budgets.holds

    def charge(agent: str, usd: float) -> None:
        if caps is not None:
            caps.charge(agent, clock.now(), usd)
        holds.spend(agent, 0, usd)

    return charge
