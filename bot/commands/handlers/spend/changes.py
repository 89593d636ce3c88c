"""``report changes``: what a merged change cost, per agent, runtime and model served, since
a time (:mod:`fleet.budgets.changes`), read from the ledger's changes store."""

from __future__ import annotations

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.routing.request import Request
from bot.commands.specs import DEFAULT_SINCE, REPORT, REPORT_CHANGES
from bot.render.spend.change_costs import changes_report
from fleet.budgets.changes.report import report
from fleet.budgets.model import parse_duration
from fleet.ledger.stores.code.changes import ChangesStore
from fleet.timing.clock import Clock


class ChangeCommands(Family):
    """``report changes`` over the ledger's changes."""

    def __init__(self, changes: ChangesStore, clock: Clock) -> None:
        self._changes = changes
        self._clock = clock

    @command(REPORT_CHANGES, under=REPORT)
    async def changes(self, req: Request) -> str:
        window = (req.command.str_flag("since") or DEFAULT_SINCE).strip()
        try:
            since = self._clock.now() - parse_duration(window)
        except ValueError as exc:
            raise CommandError(f"--since: {exc}") from None
        except OverflowError:
            raise CommandError(f"--since: {window} is further back than time goes") from None
        found = report(await self._changes.changes(since), since)
        return changes_report(found, window=window)
