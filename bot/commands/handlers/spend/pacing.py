"""The commands on what the fleet spends: ``usage`` (tokens and cost over a window, per
agent or host), ``pace`` (the pacing table) and ``report`` (that table with its charts and
the accounts)."""

from __future__ import annotations

from pathlib import Path

from bot.commands.family import Family, command
from bot.commands.handlers.places.hosts import host_flag
from bot.commands.handlers.spend.accounts import AccountCommands
from bot.commands.parsing.grammar import no_agent
from bot.commands.routing.request import Reply, Request
from bot.commands.specs import PACE, REPORT, USAGE
from bot.render import fleet as render
from bot.render.spend.report import NO_BUDGETS, compose, render_text
from bot.render.spend.report_history import ReportHistory
from fleet.accounts.book import AccountBook
from fleet.budgets.model import BudgetBook
from fleet.budgets.pacing.report_windows import DEFAULT_WINDOW
from fleet.schema import did_you_mean
from fleet.supervisor.interfaces import AgentControl


class PacingCommands(Family):
    """``usage``, ``pace`` and ``report`` over one fleet and its budgets."""

    def __init__(
        self,
        fleet: AgentControl,
        budgets: BudgetBook | None = None,
        reports_dir: Path | None = None,
        accounts: AccountBook | None = None,
        history: ReportHistory | None = None,
    ) -> None:
        """``budgets``: what ``pace`` and ``report`` read (``None``: none are configured).
        ``reports_dir``: where ``report`` keeps its charts (``None``: the report is text
        only). ``accounts``: the accounts table the report ends with. ``history``: what
        the report says of the past (the week's projections, the typical day)."""
        self._history = history
        self._fleet = fleet
        self._budgets = budgets
        self._reports_dir = reports_dir
        self._accounts = AccountCommands(accounts)

    @command(USAGE)
    async def usage(self, req: Request) -> str:
        name = req.command.args.get("NAME")
        window = req.command.str_flag("window") or DEFAULT_WINDOW
        since = self._fleet.window_start(window)
        host = host_flag(req.command.str_flag("host"))
        totals = await self._fleet.usage(since, agent=name, host=host)
        known = name is None or bool(totals) or await self._fleet.knows(name)
        if name is not None and not known:
            names = {status.name for status in await self._fleet.ps()}
            names.update(spec.name for spec in self._fleet.roster())
            if did_you_mean(name, sorted(names)) is not None:
                raise no_agent(name, names)
        text = render.usage(totals, window=window, since=since, agent=name, known=known)
        return text if host is None else f"On host **{host}**:\n\n{text}"

    @command(PACE)
    async def pace(self, req: Request) -> str:
        book = self._budgets
        if book is None:
            return NO_BUDGETS
        return render_text(await book.statuses(), book.now(), book.timezone)

    @command(REPORT)
    async def report(self, req: Request) -> Reply:
        if self._budgets is None:
            return Reply(NO_BUDGETS)
        report = await compose(
            self._budgets, self._reports_dir, self._accounts.text(), self._history
        )
        return Reply(report.markdown, images=report.images)
