"""The app's MCP door (:class:`~fleet.mcp.door.routes.McpDoor`), made before the heartbeat
endpoint it is mounted on, when the config has ``mcp:`` servers. Its roster is the config's
servers and each agent's grants as the fleet holds them now
(:class:`~fleet.mcp.roster.LiveRoster` over the desk the fleet phase opens: a ``roster
reload`` applies at once, to the open sessions too). Each tool call is decided by the
agent's mode and ``mcp__server__tool`` rules, or asked in chat, before it is relayed
(:class:`~fleet.mcp.asking.McpAsks`); a priced server's call is held against its run's cap
and the budgets as a model request is, before it is relayed, and billed once it was
(:class:`~fleet.mcp.billing.PolicyBilling`, read through the desk the fleet phase opens);
every call is told to the listeners :func:`mcp_hooks` lists: the ledger (a billed call as
``usage``), the agent's thread and ``/metrics``. The fleet phase ends an agent's sessions
when its run ends (:func:`ending_sessions`); the app's stops end them all. Its stdio servers
run in sandboxes of their own (:class:`~fleet.mcp.upstream.confined.StdioSandbox`), which
hide every agent's workdir."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.app.stops import Stop
from bot.chat.mcp_calls import McpCounted, McpThreadLines
from fleet.approvals.ask_door import ledger_terms
from fleet.events import EventKind, FleetEvent, Listener
from fleet.hosts.schema import LOCAL_HOST
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.mcp.asking import McpAsks
from fleet.mcp.audits import McpLedgerAudit
from fleet.mcp.billing import LateBilling, PolicyBilling
from fleet.mcp.hooks import Ask, AuditListener, Billing, McpHooks
from fleet.mcp.roster import LiveRoster
from fleet.mcp.upstream.confined import StdioSandbox, Workdirs
from fleet.metering.policy import Policy
from fleet.timing.clock import Clock

if TYPE_CHECKING:  # the door and the MCP SDK load only where the config has MCP servers
    from fleet.mcp.door.routes import McpDoor

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
    from fleet.mcp.door.routes import McpDoor

    ledger = ledgered.ledger
    asks = McpAsks(ledgered.approvals, ledger_terms(ledger.agents, ledger.runs), at.clock)
    await asks.start()
    roster = LiveRoster(servers, desks.mcp_grants)
    door = McpDoor(
        roster,
        environ=at.environ,
        hooks=mcp_hooks(at, ledgered, desks, count, (asks,), roster.names()),
        redactor=at.redactor,
    )
    at.stops.add(Stop.MCP, door.stop)
    return door


def every_workdir(at: Grounds, agents: AgentsStore) -> Workdirs:
    """Every agent's workdir on this machine, which a stdio server's sandbox hides: the
    ledger's (agents that ran, spawned ones) and the config's, whether or not they ran."""

    async def workdirs() -> list[Path]:
        found = [
            record.workdir
            for record in await agents.list_agents()
            if record.workdir is not None and record.host == LOCAL_HOST
        ]
        found += [agent.workdir for agent in at.cfg.agents if agent.workdir is not None]
        return list(dict.fromkeys(found))

    return workdirs


def mcp_hooks(
    at: Grounds,
    ledgered: Ledgered,
    desks: Desks,
    count: Count,
    asks: Sequence[Ask] = (),
    servers: frozenset[str] = frozenset(),
) -> McpHooks:
    """What the door asks before a call (``asks``, in order), what holds a priced call
    against its run's cap and budgets (the billing ``desks`` opens), and what it tells of
    each call's end: the ledger's ``mcp_calls`` (a billed call as ``usage``), the agent's
    thread, and ``count`` by the config's names; and the sandboxes its stdio servers run in,
    which hide every agent's workdir."""
    ledger, cfg = ledgered.ledger, at.cfg
    lines = McpThreadLines(ledgered.notifier.post)
    at.stops.add(Stop.MCP_LINES, lines.close)
    audits: list[AuditListener] = [
        McpLedgerAudit(
            calls=ledger.mcp_calls,
            runs=ledger.runs,
            tasks=ledger.tasks,
            metering=ledger.metering,
            clock=at.clock,
        ),
        lines,
        McpCounted(count, servers or frozenset(cfg.mcp)),
    ]
    sandbox = StdioSandbox(at.sandboxes, every_workdir(at, ledger.agents))
    billing = LateBilling(desks.mcp_billing)  # opened by the fleet phase, after the door
    return McpHooks(asks=tuple(asks), audits=audits, billing=billing, sandbox=sandbox)


def ending_sessions(door: McpDoor) -> Listener:
    """A fleet listener: an agent's run ended, so do its sessions with the door (and their
    stdio servers' processes)."""

    async def on_fleet_event(event: FleetEvent) -> None:
        if event.kind is EventKind.ENDED:
            await door.end_agent(event.agent)

    return on_fleet_event


def run_charge(spend: Spend, clock: Clock) -> Billing:
    """What holds and bills a priced MCP call: the metering proxy's policy (each run's cap,
    then the budgets; the quote's hold brought down as it settles), or — metering off — the
    budgets' policy, the quote's hold brought down here."""
    proxy = spend.proxy
    if proxy is not None:

        def proxy_policy() -> Policy:
            return proxy.policy

        return PolicyBilling(proxy_policy, clock)
    budgets = spend.budgets

    def budgets_policy() -> Policy:
        return budgets.policy

    return PolicyBilling(budgets_policy, clock, budgets.holds.spend)
