"""The ``budget`` commands, their specs and handlers: list the budgets, set one or unset it,
allow a burst or end it.

They talk to a :class:`~fleet.budgets.model.BudgetBook` (``None``: no budgets are configured, and
the commands say so). Arguments are read by :mod:`bot.commands.handlers.spend.budget_args`, answers
shaped by :mod:`bot.render.spend.budgets`; a :class:`~fleet.budgets.model.BudgetError` from
the book becomes a :class:`~bot.commands.errors.CommandError`, so the router shows it and audits
the command as an error. Nothing is applied unless every argument is good.
"""

from __future__ import annotations

from dataclasses import replace

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.spend.budget_args import parse_limit, parse_moment, parse_scope
from bot.commands.handlers.spend.specs import (
    BUDGET,
    BUDGET_ALLOW_BURST,
    BUDGET_END_BURST,
    BUDGET_REMOVE,
    BUDGET_SET,
    BUDGET_UNSET,
)
from bot.commands.routing.request import Reply, Request
from bot.render import machine
from bot.render.spend import budgets as render_budgets
from fleet.budgets.model import BudgetBook, BudgetError, parse_window
from fleet.ledger.records.budgets import Budget, Burst, Confidence, Cutoff

_OFF = "no budgets configured: pacing is not running here, so nothing was changed"


class BudgetHandlers(Family):
    """``budget`` and its subcommands (``set``, ``unset``/``remove``, ``allow-burst``,
    ``end-burst``), bound to one book."""

    def __init__(self, book: BudgetBook | None) -> None:
        self._book = book

    @command(BUDGET)
    async def budget(self, req: Request) -> Reply:
        book = self._book
        if book is None:
            return Reply(render_budgets.NO_BUDGETS, data=machine.budgets(()))
        statuses = await book.statuses()
        text = render_budgets.budgets(statuses, book.now(), book.timezone)
        return Reply(text, data=machine.budgets(statuses))

    @command(BUDGET_SET, under=BUDGET)
    async def budget_set(self, req: Request) -> Reply:
        book = self._require()
        command = req.command
        scope = parse_scope(req.arg("SCOPE"))
        tokens, dollars = parse_limit(req.arg("LIMIT"), usd=command.bool_flag("usd"))
        written = command.str_flag("window")
        if written is None:
            raise CommandError(
                "budget set: --window is required: a duration (5h, 7d), daily, weekly, "
                "monthly, or fixed with --reset-at"
            )
        now, tz = book.now(), book.timezone
        reset_text = command.str_flag("reset-at")
        reset_at = None
        if reset_text is not None:
            reset_at = parse_moment(reset_text, now=now, tz=tz, flag="--reset-at")
        confidence = Confidence(command.str_flag("confidence") or Confidence.USER)
        try:
            window = parse_window(written, reset_at=reset_at, confidence=confidence)
        except ValueError as exc:
            raise CommandError(f"budget set: {exc}") from None
        replaced = next((b for b in book.budgets() if b.scope == scope), None)
        # A budget set by command changes the limit and window; what the config says about
        # downgrades, the account and the tolerance carries over.
        budget = Budget(scope, window, tokens, dollars, source="command")
        if replaced is not None:
            budget = replace(
                replaced, window=window, limit_tokens=tokens, limit_usd=dollars, source="command"
            )
        cutoff = command.str_flag("cutoff")
        if cutoff is not None:
            budget = replace(budget, cutoff=Cutoff(cutoff))
        try:
            applied = await book.set_budget(budget, req.who)
        except BudgetError as exc:
            raise CommandError(f"budget set: {exc}; nothing changed") from None
        answer = render_budgets.budget_set(applied, replaced, now, tz)
        status = next((s for s in await book.statuses() if s.budget == applied), None)
        at_once = render_budgets.standing(status, now, tz)
        data = None if status is None else {"budget": machine.budget(status)}
        return Reply(f"{answer}\n\n{at_once}" if at_once else answer, data=data)

    @command(BUDGET_UNSET, under=BUDGET)
    @command(BUDGET_REMOVE, under=BUDGET)
    async def budget_unset(self, req: Request) -> str:
        book = self._require()
        scope = parse_scope(req.arg("SCOPE"))
        try:
            removed, back = await book.unset_budget(scope, req.who)
        except BudgetError as exc:
            raise CommandError(f"budget unset: {exc}; nothing changed") from None
        return render_budgets.budget_unset(removed, back, book.now(), book.timezone)

    @command(BUDGET_END_BURST, under=BUDGET)
    async def budget_end_burst(self, req: Request) -> str:
        book = self._require()
        scope = parse_scope(req.arg("SCOPE"))
        ended = await book.end_burst(scope, req.who)
        if not ended:
            raise CommandError(
                f"budget end-burst: no burst runs on {scope}: `budget` lists the bursts; "
                "nothing changed"
            )
        return render_budgets.bursts_ended(str(scope), ended)

    @command(BUDGET_ALLOW_BURST, under=BUDGET)
    async def budget_allow_burst(self, req: Request) -> str:
        book = self._require()
        command = req.command
        scope = parse_scope(req.arg("SCOPE"))
        written = command.str_flag("until")
        if written is None:
            raise CommandError(
                "budget allow-burst: --until is required: HH:MM, an ISO date and time, or a "
                "duration such as 2h"
            )
        now = book.now()
        until = parse_moment(written, now=now, tz=book.timezone, flag="--until")
        burst = Burst(
            scope=scope,
            until=until,
            granted_by=req.who,
            reason=(command.str_flag("reason") or "").strip(),
            granted_at=now,
        )
        try:
            granted = await book.allow_burst(burst)
        except BudgetError as exc:
            raise CommandError(f"budget allow-burst: {exc}; nothing changed") from None
        return render_budgets.burst_granted(granted, now, book.timezone)

    def _require(self) -> BudgetBook:
        if self._book is None:
            raise CommandError(_OFF)
        return self._book
