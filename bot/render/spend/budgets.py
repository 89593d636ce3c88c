"""Pure renderers for the ``budget`` commands: budgets and bursts in, markdown out.

Times are shown in the configured timezone: ``HH:MM`` on today's date, with the date
otherwise. (The longer pacing table of ``pace`` and the report is
:mod:`bot.render.spend.report`; the
words both use for amounts, shares and pace are at the end of this module.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Final

from bot.render.fleet import compact, duration, money, table
from fleet.budgets.model import BudgetStatus, PaceStatus
from fleet.budgets.resets import reset_tag, resets
from fleet.budgets.wording import held_beside
from fleet.ledger.records.budgets import Budget, Burst, Cutoff, Step, WindowKind
from fleet.metering import units

NO_BUDGETS = (
    "No budgets configured. An admin sets one with `budget set SCOPE LIMIT --window W`, "
    "e.g. `budget set global 50M --window 7d`, or in the config file's `budgets`."
)
_DASH = "–"


def budgets(statuses: Sequence[BudgetStatus], now: datetime, tz: tzinfo) -> str:
    """The ``budget`` table: one row per budget, then the active bursts."""
    if not statuses:
        return NO_BUDGETS
    rows = [_row(status, now, tz) for status in statuses]
    headers = ["scope", "window", "used / limit", "pace", "status", "step", "source"]
    parts = [table(headers, rows)]
    bursts = _active_bursts(statuses, now)
    if bursts:
        parts.append("**Bursts**\n" + "\n".join(burst_line(b, now, tz) for b in bursts))
    if any(status.budget.source == "command" for status in statuses):
        parts.append("\\* set with `budget set`: it replaces the config's budget of that scope.")
    return "\n\n".join(parts)


def budget_set(applied: Budget, replaced: Budget | None, now: datetime, tz: tzinfo) -> str:
    """The answer to ``budget set``: what is in force now, and what it replaced."""
    text = f"Budget for `{applied.scope}` set: {describe(applied, now, tz)}."
    if replaced is None:
        return text
    where = "the config's" if replaced.source == "config" else "the"
    return text + f" It replaces {where} budget of {describe(replaced, now, tz)}."


def standing(status: BudgetStatus | None, now: datetime, tz: tzinfo) -> str:
    """What a budget just set does at once, when it is over pace or at its limit: to its
    agents' requests and to new launches, and the way back; empty when it is on pace."""
    if status is None:
        return ""
    scope = status.budget.scope
    back = f"`budget unset {scope}` undoes it (back to the config's budget, or none)."
    if status.step is Step.REFUSE or status.status is PaceStatus.EXHAUSTED:
        used = f"{_amount(status.used, status.unit)} of {_amount(status.limit, status.unit)}"
        asks = status.budget.cutoff is Cutoff.ASK
        requests = "held while its operators are asked to raise it" if asks else "refused"
        return (
            f"`{scope}` is at its limit at once ({used} used): its agents' requests are "
            f"{requests}, and new launches are refused until "
            f"{at(status.end, now, tz)} (reset). {back}"
        )
    if status.status is not PaceStatus.OVER and status.step is Step.NONE:
        return ""
    over = f"`{scope}` is over pace at once ({ratio(status.pace_ratio)} the even spread)"
    urgent = f"`spawn NAME --urgent` within a burst (`budget allow-burst {scope} --until 2h`)"
    if status.step is Step.QUEUE:
        until = at(status.queued_until or status.end, now, tz)
        return (
            f"{over}: its agents' requests are held until {until}, and new launches wait in "
            f"the queue until then (`queue` lists them; {urgent} starts one now). {back}"
        )
    if status.step is Step.DOWNGRADE:
        return (
            f"{over}: its agents' requests go to cheaper models, and a new launch starts only "
            f"if what it is expected to spend fits the pace ({urgent} starts one anyway). "
            f"{back}"
        )
    return f"{over}: the next pacing tick moves it along its ladder. {back}"


def budget_unset(removed: Budget, back: Budget | None, now: datetime, tz: tzinfo) -> str:
    """The answer to ``budget unset``: what was removed, and what is in force now."""
    text = f"Budget for `{removed.scope}` unset (it was {describe(removed, now, tz)})."
    if back is None:
        return text + f" `{removed.scope}` has no budget of its own now."
    return text + f" The config's budget is back: {describe(back, now, tz)}."


def bursts_ended(scope: str, ended: int) -> str:
    """The answer to ``budget end-burst``."""
    grants = "burst" if ended == 1 else f"{ended} bursts"
    return f"Ended the {grants} on `{scope}`: its agents are paced again from now."


def burst_granted(burst: Burst, now: datetime, tz: tzinfo) -> str:
    """The answer to ``budget allow-burst``."""
    why = f" Reason: {burst.reason}." if burst.reason else ""
    return (
        f"Burst granted: `{burst.scope}` may spend past its pace until "
        f"{at(burst.until, now, tz)} (for {duration((burst.until - now).total_seconds())}), "
        f"granted by {burst.granted_by}.{why} Its hard limit still holds."
    )


def describe(budget: Budget, now: datetime, tz: tzinfo) -> str:
    """``50M tokens per 7d``, ``$25.00 daily``, ``5M tokens until 2025-04-01 00:00 CEST (set
    by you)``: a reset given is shown with how sure it is."""
    limits = []
    if budget.limit_tokens is not None:
        limits.append(f"{compact(budget.limit_tokens)} tokens")
    if budget.limit_usd is not None:
        limits.append(money(budget.limit_usd))
    window = budget.window
    sure = f" ({reset_tag(window.confidence)})"
    if window.kind is WindowKind.ROLLING:
        per = f"per {window.label}"
    elif window.kind is WindowKind.FIXED and window.reset_at is not None:
        per = f"until {at(window.reset_at, now, tz)}{sure}"
    else:
        per = window.kind.value
    if window.kind is WindowKind.ROLLING and window.reset_at is not None:
        per += f", next reset {at(window.reset_at, now, tz)}{sure}"
    return f"{' and '.join(limits)} {per}"


def burst_line(burst: Burst, now: datetime, tz: tzinfo) -> str:
    why = f" — {burst.reason}" if burst.reason else ""
    return f"- `{burst.scope}` until {at(burst.until, now, tz)}, granted by {burst.granted_by}{why}"


def at(moment: datetime, now: datetime, tz: tzinfo) -> str:
    """``14:05 CET`` on the day of ``now`` in ``tz``, else ``2025-03-02 09:00 CET``."""
    local = moment.astimezone(tz)
    zone = local.tzname() or ""
    if local.date() == now.astimezone(tz).date():
        return f"{local:%H:%M} {zone}".rstrip()
    return f"{local:%Y-%m-%d %H:%M} {zone}".rstrip()


def _row(status: BudgetStatus, now: datetime, tz: tzinfo) -> list[str]:
    budget = status.budget
    scope = f"`{budget.scope}`" + (" \\*" if budget.source == "command" else "")
    label = "fixed" if budget.window.kind is WindowKind.FIXED else budget.window.label
    window = f"{label}, {reset(status, at(status.end, now, tz))}"
    state = status.status.value
    if status.burst is not None and status.burst.until > now:
        state += " (burst)"
    return [
        scope,
        window,
        f"{_amount(status.used, status.unit)}{held_beside(status, _amount)} / "
        f"{_amount(status.limit, status.unit)}" + share(status.used, status.limit),
        f"{status.pace_ratio:.2f}×" if math.isfinite(status.pace_ratio) else _DASH,
        state,
        _step(status, now, tz),
        status.source.value,
    ]


def _amount(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return _DASH
    return money(value) if unit == "usd" else compact(round(value))


def _step(status: BudgetStatus, now: datetime, tz: tzinfo) -> str:
    if status.step is Step.DOWNGRADE:
        return f"downgrade {status.level}"
    if status.step is Step.QUEUE:
        held = status.queued_until
        return "queue" if held is None else f"queue until {at(held, now, tz)}"
    if status.step is Step.REFUSE:
        return f"refuse until {at(status.end, now, tz)}"
    return _DASH


def _active_bursts(statuses: Sequence[BudgetStatus], now: datetime) -> list[Burst]:
    """Each unexpired burst once (several statuses may carry the same grant)."""
    found: dict[tuple[str, datetime, str], Burst] = {}
    for status in statuses:
        burst = status.burst
        if burst is not None and burst.until > now:
            found.setdefault((str(burst.scope), burst.until, burst.granted_by), burst)
    return list(found.values())


# --- Words shared by the budget table, the pacing report and its chart ---------------------

DASH: Final = "—"
_STATUS_WORDS: Final = {
    PaceStatus.UNDER: "under pace",
    PaceStatus.ON: "on pace",
    PaceStatus.OVER: "over pace",
    PaceStatus.EXHAUSTED: "exhausted",
}


def reset(status: BudgetStatus, when: str) -> str:
    """``resets 18:00 (provider)``: the reset of ``status``'s window, shown as ``when``, and
    how sure it is (:mod:`fleet.budgets.resets`)."""
    return resets(when, status.reset_confidence, passed=status.end <= status.now)


def status_words(status: BudgetStatus) -> str:
    """``under pace``, ``on pace``, ``over pace`` or ``exhausted``."""
    return _STATUS_WORDS.get(status.status, str(status.status))


def amount(value: float, unit: str) -> str:
    """A budget amount as the report shows it: whole tokens with separators, or dollars."""
    if not math.isfinite(value):
        return DASH
    if unit == "usd":
        return units.usd(value)
    return units.tokens(value)


def ratio(value: float) -> str:
    """A pace ratio such as ``1.23×``; a dash when it is undefined."""
    return f"{value:.2f}×" if math.isfinite(value) else DASH


def share(value: float, limit: float) -> str:
    """`` (42%)``: ``value`` as a share of ``limit``; empty when that means nothing."""
    if limit <= 0 or not math.isfinite(value):
        return ""
    return f" ({value / limit:.0%})"
