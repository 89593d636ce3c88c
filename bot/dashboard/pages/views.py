"""What each dashboard page shows, as plain JSON-able data: the ``/api`` twins return it
as is, and the HTML pages are rendered from it (:mod:`bot.dashboard.pages.pages`).

:class:`Views` reads the running app's parts (the ledger, the fleet, budgets, accounts,
hosts, the repositories) and never changes anything; the Accounts and Hosts pages are
:mod:`bot.dashboard.pages.places`. The field names are the API's schema
(``docs/dashboard-api.md``): add fields, never rename one. Times are ISO 8601 in UTC,
durations in seconds, money in US dollars, tokens as counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.dashboard.pages.asked import AskedViews
from bot.dashboard.pages.change import ChangeDesk, ChangeView
from bot.dashboard.pages.change_costs import ChangeCosts
from bot.dashboard.pages.messages import MessageViews
from bot.dashboard.pages.places import Places, PlaceViews
from bot.dashboard.pages.shapes import (
    Json,
    Redacted,
    agent_row,
    budget_json,
    forge_row,
    iso,
    link_json,
    usage_json,
)
from bot.dashboard.pages.stores import PageStores
from bot.dashboard.pages.task_board import TaskBoard
from bot.render.agents import runs as render_runs
from bot.render.agents.transcript import transcript as transcript_markdown
from connectors.base import Connector
from connectors.health import HealthReport
from fleet.budgets.changes.report import OutcomeSum
from fleet.budgets.service import BudgetService
from fleet.errors import FleetError
from fleet.ledger.stores.operators.dashboard import UsageSum
from fleet.supervisor.interfaces import FleetView
from fleet.timing.clock import Clock

TRANSCRIPT_ENTRIES = 100
"""Entries an agent page shows at first; ``?entries=N`` pages further back."""
MAX_TRANSCRIPT_ENTRIES = 2_000
"""The most one page reads: a huge transcript is paged, never read whole."""
USAGE_DAYS = 7
SLOW_EVERY = timedelta(seconds=5)
"""How stale the fleet page's cost, models and pacing steps may be (see ``_slow_parts``)."""


@dataclass(frozen=True, slots=True)
class _Slow:
    at: datetime
    agents: list[str]
    cost: dict[str, float]
    models: dict[str, tuple[str, str, str | None]]
    steps: dict[str, Json]


class UnknownPage(FleetError):
    """A page asked about something nobody knows (an agent name): a 404."""


@dataclass(frozen=True, slots=True)
class PageSettings:
    """How the pages say what they show: in which zone, who serves them, where a chat
    message is linked, and what chat would not show (nor do the pages)."""

    timezone: ZoneInfo
    orchestrator: Callable[[], str]
    connector_named: Callable[[str], Connector | None]
    redact: Callable[[str], str] = lambda text: text
    links: Callable[[], Sequence[HealthReport]] = tuple
    """Each running connector's link to its service, for the fleet page."""
    enforce: str = "warn"
    """The config's ``enforce`` (``strict`` or ``warn``): the fleet page says which."""
    build: Json = field(default_factory=dict)  # the version and commit the app runs
    problems: Callable[[], list[str]] = list
    """What is wrong beyond the agents (a chat receive path that keeps failing), on the
    fleet page."""
    forges: bool = False
    """Whether the config has forges, whose runs the fleet page lists (none: the ledger is
    not asked)."""


MCP_CALLS = 20
"""The latest calls through the MCP door an agent's page shows."""


class Views:
    """Every page's data, read from the running app."""

    def __init__(
        self,
        *,
        stores: PageStores,
        fleet: FleetView,
        budgets: BudgetService | None,
        places: Places,
        clock: Clock,
        pages: PageSettings,
        repos: ChangeDesk | None = None,
    ) -> None:
        """``places``: the accounts and hosts the agents run on; ``repos``: the
        repositories' desk, for the change on an agent's page (none: no repositories, no
        change shown)."""
        self._stores = stores
        self._fleet = fleet
        self._budgets = budgets
        self._clock = clock
        self._tz = pages.timezone
        self._orchestrator = pages.orchestrator
        self._links = pages.links
        self._forges = pages.forges
        self._enforce = pages.enforce
        self._build = dict(pages.build)
        self._slow: _Slow | None = None
        self._redacted = Redacted(pages.redact)
        self._problems = pages.problems
        self._change = None if repos is None else ChangeView(repos, self._redacted, clock)
        self._costs = ChangeCosts(stores.changes, clock, self._redacted.line)
        self.board = TaskBoard(stores.work, clock, self._redacted, self._head)  # the Tasks page
        self._asked = AskedViews(
            stores.approvals, stores.audit, clock, pages.connector_named, self._redacted
        )
        self.messages = MessageViews(stores.messages, self._redacted, self._head)
        self.places = PlaceViews(
            places.accounts, places.hosts, stores.agents, clock, self._redacted, self._head
        )

    def _head(self) -> Json:
        return {"generated_at": iso(self._clock.now()), "orchestrator": self._orchestrator()}

    def _today(self) -> datetime:
        now = self._clock.now().astimezone(self._tz)
        return now.replace(hour=0, minute=0, second=0, microsecond=0)

    # -- fleet ------------------------------------------------------------------------------

    async def fleet(self) -> Json:
        now = self._clock.now()
        statuses = await self._fleet.ps()
        slow = await self._slow_parts([s.name for s in statuses])
        pending = Counter(a.agent for a in await self._stores.approvals.open_approvals())
        agents = [
            agent_row(
                s,
                now,
                slow.cost.get(s.name, 0.0),
                slow.models.get(s.name),
                slow.steps if s.state.is_live else {},
                pending,
                self._redacted.line,
            )
            for s in statuses
        ]
        agents.sort(key=lambda a: (not a["problems"], a["host"], a["name"]))
        states = Counter(a["state"] for a in agents)
        runs = await self._stores.forge.forge_runs() if self._forges else []
        forge_runs = [forge_row(r, self._redacted.line) for r in runs]
        return {
            **self._head(),
            "build": self._build,
            "agents": agents,
            "enforce": self._enforce,  # `strict`: no agent unmetered, unsandboxed or open
            "forge_runs": forge_runs,
            "connectors": [link_json(r, self._redacted.line) for r in self._links()],
            "problems": [self._redacted(line) for line in self._problems()],
            "tasks": await self.board.open_counts(),  # open tasks by state
            "totals": {
                "agents": len(agents),
                "by_state": dict(sorted(states.items())),
                "with_problems": sum(1 for a in agents if a["problems"]),
                "tokens_today": sum(a["tokens_today"] for a in agents),
                "cost_today_usd": round(sum(slow.cost.values()), 6),
            },
        }

    async def _slow_parts(self, agents: list[str]) -> _Slow:
        """What the fleet page reads from the usage and the budgets (today's cost, each
        agent's latest model, its pacing step): a few heavier queries, read again at most
        every :data:`SLOW_EVERY` (the fleet's states and heartbeats are read every time)."""
        now = self._clock.now()
        cached = self._slow
        if cached is not None and now - cached.at < SLOW_EVERY and cached.agents == agents:
            return cached
        cost: dict[str, float] = {}
        for row in await self._stores.dashboard.usage_sums(since=self._today()):
            cost[row.agent] = cost.get(row.agent, 0.0) + row.cost_usd
        models = await self._stores.dashboard.last_models(since=now - timedelta(days=1))
        steps: dict[str, Json] = {}
        if self._budgets is not None:
            for agent, status in (await self._budgets.governing_statuses(agents)).items():
                steps[agent] = {
                    "budget": status.budget.key,
                    "step": status.step.value,
                    "level": status.level,
                    "pace_ratio": round(status.pace_ratio, 4),
                }
        self._slow = _Slow(now, agents, cost, models, steps)
        return self._slow

    async def usage_after(self, after: int) -> tuple[list[UsageSum], int]:
        """The usage rows written after row ``after``, summed (``/metrics``' counters), each
        model's name guarded as the pages show it."""
        sums, last = await self._stores.dashboard.usage_sums_after(after)
        return [replace(u, model=self._redacted.line(u.model)) for u in sums], last

    async def check_agent(self, name: str) -> None:
        """:class:`UnknownPage` unless ``name`` is an agent the fleet knows."""
        if not await self._fleet.knows(name):
            raise UnknownPage(f"no agent is called {name!r}")

    # -- one agent --------------------------------------------------------------------------

    async def agent(self, name: str, entries: int = TRANSCRIPT_ENTRIES) -> Json:
        await self.check_agent(name)
        try:
            status = await self._fleet.status(name)
        except FleetError as exc:
            raise UnknownPage(str(exc)) from None
        now = self._clock.now()
        count = max(1, min(entries, MAX_TRANSCRIPT_ENTRIES))
        read = await self._fleet.outputs.transcript(name, count)
        stories = await self._fleet.outputs.stories.recent(name, 10)
        usage = await self._stores.dashboard.usage_sums(since=self._today(), agent=name)
        return {
            **self._head(),
            "agent": agent_row(
                status, now, sum(u.cost_usd for u in usage), None, {}, {}, self._redacted.line
            ),
            "transcript": {
                "entries": len(read.events),
                "asked": count,
                "more": len(read.events) >= count and count < MAX_TRANSCRIPT_ENTRIES,
                "markdown": await self._redacted.long(
                    transcript_markdown(read.events, agent=name) if read.events else ""
                ),
            },
            "runs": [
                {
                    "run_id": story.report.run.id,
                    "runtime": story.runtime,
                    "summary_markdown": await self._redacted.long(render_runs.summary(story, now)),
                    "requests": story.requests,
                    "tokens": story.tokens,
                    "cost_usd": story.cost_usd,
                }
                for story in stories
            ],
            "usage_today": [usage_json(u, self._redacted.line) for u in usage],
            "change": None if self._change is None else await self._change.of(name),
            "messages": await self.messages.rows(name),  # what it sent and received, newest first
            "mcp_calls": await self._mcp_calls(name),
        }

    async def _mcp_calls(self, name: str) -> list[Json]:
        """``name``'s latest calls through the MCP door, newest first: the agent's and the
        server's words (the tool, its arguments, its result, a reason) guarded."""
        line = self._redacted.line
        return [
            {
                "id": c.id,
                "at": c.at.isoformat(),
                "run_id": c.run_id,
                "task_id": c.task_id,
                "server": line(c.server),
                "method": line(c.method),
                "name": line(c.name),
                "outcome": c.outcome,
                "seconds": round(c.seconds, 3),
                "bytes_in": c.bytes_in,
                "bytes_out": c.bytes_out,
                "arguments": line(c.arguments),
                "result": line(c.result),
                "why": line(c.why),
                "cost_usd": c.cost_usd,
            }
            for c in await self._stores.dashboard.mcp_calls(name, MCP_CALLS)
        ]

    # -- budgets ----------------------------------------------------------------------------

    async def budgets(self) -> Json:
        if self._budgets is None:
            return {**self._head(), "budgets": []}
        return {
            **self._head(),
            "budgets": [budget_json(s) for s in await self._budgets.statuses()],
        }

    # -- usage ------------------------------------------------------------------------------

    async def usage(self, days: int = USAGE_DAYS) -> Json:
        start = self._today()
        rows: list[Json] = []
        for back in range(max(1, min(days, 31))):
            day = (start - timedelta(days=back)).replace(hour=0)
            until = day + timedelta(days=1)
            for u in await self._stores.dashboard.usage_sums(since=day, until=until):
                rows.append({"day": day.date().isoformat(), **usage_json(u, self._redacted.line)})
        totals: dict[str, dict[str, Json]] = {}
        for key in ("agent", "model", "account", "host", "day"):
            sums: dict[str, Json] = {}
            for row in rows:
                entry = sums.setdefault(
                    str(row[key]) or "—", {"requests": 0, "tokens": 0, "cost_usd": 0.0}
                )
                entry["requests"] += row["requests"]
                entry["tokens"] += row["tokens"]
                entry["cost_usd"] = round(entry["cost_usd"] + row["cost_usd"], 6)
            totals[key] = dict(sorted(sums.items()))
        return {**self._head(), "days": days, "timezone": str(self._tz), "rows": rows, "by": totals}

    # -- changes ------------------------------------------------------------------------------

    async def changes(self) -> Json:
        """What a merged change cost, per agent, runtime and model (the last 30 days)."""
        return {**self._head(), **await self._costs.page()}

    async def changes_ended(self) -> list[OutcomeSum]:
        """Every change that came to an end, summed for ``/metrics``."""
        return await self._costs.ended()

    # -- accounts, hosts --------------------------------------------------------------------

    async def accounts(self) -> Json:
        return await self.places.accounts()

    async def hosts(self) -> Json:
        return await self.places.hosts()

    # -- approvals, audit ---------------------------------------------------------------------

    async def approvals(self) -> Json:
        return {**self._head(), "approvals": await self._asked.approvals()}

    async def audit(self, limit: int = 200) -> Json:
        return {**self._head(), "entries": await self._asked.audit(limit)}
