"""The read-only commands about what agents did: ``logs NAME`` (the readable transcript,
or ``--raw`` output) and ``runs NAME`` (the agent's latest runs, each summarised)."""

from __future__ import annotations

from bot.commands.family import Family, command
from bot.commands.parsing.grammar import ArgSpec, CommandSpec, FlagSpec
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
_AGENT = ArgSpec("NAME", "The agent's name, e.g. `coder-1`.", agent=True)

LOGS = CommandSpec(
    name="logs",
    summary="Show what an agent did lately, as readable lines (or its raw output).",
    args=(_AGENT,),
    flags=(
        FlagSpec(
            "lines",
            "int",
            "How many entries (or raw lines) to show, 1-10000 (default 40).",
            "N",
            minimum=1,
            maximum=10000,
        ),
        FlagSpec("raw", "bool", "Show the raw output, exactly as the agent wrote it."),
    ),
    description=(
        "Shows the agent's latest work read from its output: its messages, one line per "
        "tool it used, what it waits for and its errors — the last 40 entries unless "
        "`--lines` says otherwise. `--raw` shows the last lines as written instead (a "
        "headless CLI's JSON stream). Secrets are redacted either way."
    ),
    examples=("logs coder-1 --lines 200", "logs coder-1 --raw"),
)

RUNS = CommandSpec(
    name="runs",
    summary="List an agent's latest runs, each with its summary.",
    args=(_AGENT,),
    flags=(
        FlagSpec(
            "last",
            "int",
            "How many runs to show, 1-20 (default 5).",
            "N",
            minimum=1,
            maximum=20,
        ),
    ),
    description=(
        "Each run with how it ended and why, its wall time, turns, the model requests, "
        "tokens and cost Fleetwarden metered, what it was quoted when it was admitted, its "
        "task's projection beside its actual, the "
        "models that served it (downgrades included), its last message, and its workdir "
        "with the git HEAD before and after; then its latest calls through the MCP door "
        "(server, tool, outcome, time, bytes, price), each with its run."
    ),
    examples=("runs coder-1", "runs coder-1 --last 10"),
)


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
