"""The ``hosts`` command: every machine of the fleet — this one and each ``hosts:`` entry —
whether it is reachable and since when, its agents, its load and free disk, and which
agent CLIs it has. Read-only: a viewer may ask."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.places.specs import HOSTS
from bot.commands.routing.request import Request
from bot.render.fleet import ago, table
from bot.text.agent_text import quotes_escaped, said
from fleet.hosts.link.connection import LinkState
from fleet.hosts.probe import HostFacts
from fleet.hosts.schema import ANY_HOST, LOCAL_HOST, is_host_name
from fleet.hosts.service import Hosts, HostView
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.model import AgentState


def host_flag(value: object) -> str | None:
    """``--host``: ``local``, ``any`` or a host's name (else a :class:`CommandError`)."""
    if value is None:
        return None
    text = str(value)
    if text not in (LOCAL_HOST, ANY_HOST) and not is_host_name(text):
        raise CommandError(f"--host {text!r} is no host name: `hosts` lists them")
    return text


_AGENT_CLIS = ("claude", "codex", "pi", "opencode")
_LIVE = frozenset({AgentState.STARTING, AgentState.RUNNING, AgentState.IDLE, AgentState.STALLED})
_STATE = {
    LinkState.NEW: "not started",
    LinkState.CONNECTING: "connecting",
    LinkState.CONNECTED: "up",
    LinkState.DOWN: "down",
    LinkState.REFUSED: "refused",
    LinkState.STOPPED: "stopped",
}


class HostCommands(Family):
    """The ``hosts`` handler, over the running hosts and the ledger's agents."""

    def __init__(self, hosts: Hosts, agents: AgentsStore, now: Callable[[], datetime]) -> None:
        self._hosts = hosts
        self._agents = agents
        self._now = now

    @command(HOSTS)
    async def hosts(self, req: Request) -> str:
        live = Counter(
            record.host for record in await self._agents.list_agents() if record.state in _LIVE
        )
        return render_hosts(self._hosts.views(), live, self._now())


def render_hosts(views: list[HostView], live: Mapping[str, int], now: datetime) -> str:
    """The ``hosts`` reply: a table, problems first, then why each troubled host is so."""
    rows: list[tuple[bool, list[str]]] = [
        (False, [LOCAL_HOST, "up", "—", str(live.get(LOCAL_HOST, 0)), "—", "—", "—"])
    ]
    notes = []
    for view in views:
        status, facts = view.status, view.facts
        troubled = status.state is not LinkState.CONNECTED
        state = f"{_STATE[status.state]} {ago(status.since, now)}"
        rows.append(
            (
                troubled,
                [
                    view.entry.name,
                    state,
                    str(view.entry.target),
                    f"{live.get(view.entry.name, 0)}/{view.entry.max_agents}",
                    _load(facts),
                    _disk(facts),
                    _clis(facts),
                ],
            )
        )
        if troubled and status.error:
            tried = f" ({status.attempts} connection attempts so far)" if status.attempts else ""
            notes.append(f"- **{view.entry.name}**: {quotes_escaped(status.error)}{tried}")
        elif view.probe_error:
            notes.append(f"- **{view.entry.name}**: {quotes_escaped(view.probe_error)}")
    ordered = [cells for troubled, cells in rows if troubled]
    ordered += [cells for troubled, cells in rows if not troubled]
    headers = ["host", "link", "ssh", "agents", "load", "free disk", "agent CLIs"]
    text = table(headers, ordered)
    return text + ("\n\n" + "\n".join(notes) if notes else "")


def _load(facts: HostFacts | None) -> str:
    if facts is None or facts.load is None:
        return "—"
    cpus = f" ({facts.cpus} CPUs)" if facts.cpus else ""
    return f"{facts.load[0]:.2f}{cpus}"


def _disk(facts: HostFacts | None) -> str:
    if facts is None or facts.disk is None:
        return "—"
    return f"{facts.disk.free_bytes / 2**30:.1f} GiB"


def _clis(facts: HostFacts | None) -> str:
    if facts is None:
        return "—"
    found = []
    for name in _AGENT_CLIS:
        tool = facts.tool(name)
        if tool is not None:
            version = tool.version.split()[0] if tool.version else ""  # the host's word
            found.append(f"{name} {said(version)}".strip())
    return ", ".join(found) or "none"
