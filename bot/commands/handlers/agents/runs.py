"""The read-only commands about what agents did: ``logs NAME`` (the readable transcript,
or ``--raw`` output) and ``runs NAME`` (the agent's latest runs, each summarised)."""

from __future__ import annotations

from bot.commands.family import Family, command
from bot.commands.handlers.agents.specs import LOGS, RUNS
from bot.commands.routing.request import Reply, Request
from bot.render import fleet as render
from bot.render import forge as render_forge
from bot.render import machine
from bot.render.agents import mcp as render_mcp
from bot.render.agents import runs as render_runs
from bot.render.agents.transcript import lately
from bot.text.agent_text import escape
from fleet.budgets.quoting.words import quote_text
from fleet.ledger.stores.running.mcp_calls import McpCallsStore
from fleet.ledger.stores.spend.quotes import QuotesStore
from fleet.supervisor.admission.owners import ForgeRuns
from fleet.supervisor.interfaces import FleetView
from fleet.tasks.spent import TaskSpend

MCP_CALLS = 10
"""The latest calls through the MCP door ``runs NAME`` shows."""


class RunCommands(Family):
    """The ``logs`` and ``runs`` handlers over the fleet."""

    def __init__(
        self,
        fleet: FleetView,
        logs_lines: int,
        forge_runs: ForgeRuns | None = None,
        quotes: QuotesStore | None = None,
        tasks: TaskSpend | None = None,
        mcp_calls: McpCallsStore | None = None,
    ) -> None:
        """``forge_runs``: the live forge runs of an agent, whose links ``runs`` shows;
        ``quotes``: the runs' quotes, each shown with its run; ``tasks``: the spend line of
        the task each run was done for; ``mcp_calls``: its calls through the MCP door."""
        self._tasks = tasks
        self._mcp_calls = mcp_calls
        self._fleet = fleet
        self._logs_lines = logs_lines
        self._forge_runs = forge_runs
        self._quotes = quotes

    @command(LOGS)
    async def logs(self, req: Request) -> str:
        name = req.arg("NAME")
        lines = req.command.flags.get("lines", self._logs_lines)
        count = (
            lines if isinstance(lines, int) and not isinstance(lines, bool) else self._logs_lines
        )
        if req.command.flags.get("raw"):
            return render.logs(name, await self._fleet.logs(name, count), count)
        read = await self._fleet.outputs.transcript(name, count)
        return lately(name, read.events, count, read.malformed)

    @command(RUNS)
    async def runs(self, req: Request) -> Reply:
        name = req.arg("NAME")
        last = req.command.flags.get("last", 5)
        limit = last if isinstance(last, int) and not isinstance(last, bool) else 5
        await self._fleet.status(name)  # an unknown agent is said so
        stories = await self._fleet.outputs.stories.recent(name, limit)
        quotes: dict[int, str] = {}
        if self._quotes is not None:
            kept = await self._quotes.quotes_of([s.report.run.id for s in stories])
            quotes = {run_id: quote_text(quote) for run_id, quote in kept.items()}
        tasks: dict[int, str] = {}
        if self._tasks is not None:
            for story in stories:
                line = await self._tasks.of_run(story.report.run.id)
                if line is not None:
                    tasks[story.report.run.id] = line
        text = render_runs.runs(name, stories, req.message.timestamp, quotes, tasks)
        if self._mcp_calls is not None:
            text += render_mcp.calls_block(await self._mcp_calls.calls(name, MCP_CALLS))
        for status in await self._fleet.ps():  # as `ps` says it: paused at its cap, asking…
            if status.name == name and status.frozen is not None and status.state.is_live:
                text = f"Its run is frozen now: {escape(status.frozen)}.\n\n" + text
        if self._forge_runs is not None:
            for record in await self._forge_runs(name):
                text = f"Works on {render_forge.links(record)} ({record.state}).\n\n" + text
        return Reply(text, data=machine.runs(name, stories))
