"""How the ``budget`` commands read their arguments: scopes, limits and moments. Pure:
``now`` and the timezone are passed in; problems are :class:`~bot.commands.errors.CommandError`
with a message that says what to type instead."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.commands.errors import CommandError
from bot.commands.parsing.grammar import show
from fleet.budgets.model import parse_duration
from fleet.ledger.records.budgets import SCOPE_FORMS, Scope

_TOKENS = re.compile(r"(\d+(?:\.\d+)?)([kmg]?)")
_MULTIPLIERS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_MOMENT_HELP = "write HH:MM, an ISO date and time (2025-04-01T09:00) or a duration (2h)"


def parse_scope(text: str) -> Scope:
    """``global``, ``group:NAME`` or ``agent:NAME``."""
    try:
        return Scope.parse(text)
    except ValueError:
        raise CommandError(f"SCOPE {show(text)} is not a scope: write {SCOPE_FORMS}") from None


def parse_limit(text: str, *, usd: bool) -> tuple[int | None, float | None]:
    """LIMIT as ``(tokens, None)`` — ``5M``, ``500k``, ``1.5M``, ``1_200_000`` — or, with
    ``usd``, as ``(None, dollars)`` — ``25``, ``$12.50``."""
    compact = text.strip().lower().replace("_", "").replace(",", "")
    if usd:
        try:
            dollars = float(compact.removeprefix("$"))
        except ValueError:
            dollars = math.nan
        if not math.isfinite(dollars):
            raise CommandError(f"LIMIT {show(text)} is not a number of dollars: write e.g. 25")
        if dollars <= 0:
            raise CommandError(f"LIMIT must be more than $0, got {show(text)}")
        return None, dollars
    match = _TOKENS.fullmatch(compact)
    if match is None:
        raise CommandError(
            f"LIMIT {show(text)} is not a number of tokens: write e.g. 5M, 500k or 1200000 "
            "(or add --usd for dollars)"
        )
    value = float(match[1]) * _MULTIPLIERS[match[2]]
    if not value.is_integer():
        raise CommandError(f"LIMIT {show(text)} is not a whole number of tokens")
    if value <= 0:
        raise CommandError(f"LIMIT must be more than 0 tokens, got {show(text)}")
    return int(value), None


def parse_moment(text: str, *, now: datetime, tz: ZoneInfo, flag: str) -> datetime:
    """A moment after ``now``, in UTC: ``HH:MM`` (the next such time in ``tz``: today, or
    tomorrow once it has passed), an ISO date and time (in ``tz`` without an offset; a date
    alone is its midnight), or a duration from ``now`` (``2h``, ``1d12h``). ``flag`` names
    the flag in messages."""
    written = text.strip()
    clock = _CLOCK.fullmatch(written)
    if clock is not None:
        hour, minute = int(clock[1]), int(clock[2])
        if hour > 23 or minute > 59:
            raise CommandError(f"{flag} {show(text)} is not a time of day: {_MOMENT_HELP}")
        local = now.astimezone(tz)
        moment = datetime.combine(local.date(), time(hour, minute), tzinfo=tz)
        if moment <= now:
            moment = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), tz)
        return moment.astimezone(UTC)
    if written[:1].isdigit() and written[-1:].lower() in "mhdw":
        try:
            return now.astimezone(UTC) + parse_duration(written)
        except ValueError as exc:
            raise CommandError(f"{flag}: {exc}") from None
    try:
        parsed = datetime.fromisoformat(written)
    except ValueError:
        raise CommandError(f"{flag} {show(text)} is not a moment: {_MOMENT_HELP}") from None
    moment = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)
    if moment <= now:
        shown = f"{moment.astimezone(tz):%Y-%m-%d %H:%M %Z}"
        raise CommandError(f"{flag} {shown} is in the past: give a time still ahead")
    return moment.astimezone(UTC)
