"""The ``report changes`` answer: what a merged change cost, per agent, runtime and model
served (:mod:`fleet.budgets.changes.report`), as a chat table with the words that say what
each figure is.

Agents and runtimes are the config's names, but a model's name is what the provider (or the
agent) said: every name in a cell passes :func:`bot.text.agent_text.said`, so none of it is
markup, a mention or a line of its own.
"""

from __future__ import annotations

from datetime import UTC

from bot.render.fleet import DASH, duration, money, table
from bot.text.agent_text import said
from fleet.budgets.changes.report import ChangeRow, ChangesReport
from fleet.metering import units

HEADERS = (
    "agent",
    "runtime",
    "model",
    "merged",
    "closed",
    "abandoned",
    "open",
    "merged %",
    "median per merged",
    "all-in per merged",
    "cost",
    "tokens",
    "median to merge",
    "approvals",
)
NO_CHANGES = (
    "No change came to an end, or was worked on, {span}. A change is a branch an agent's "
    "runs work on: an agent with a `repo:` (or `spawn --repo`) cuts one, and it ends when "
    "`merge` lands it or `discard` drops it here, or when its forge pull request is merged "
    "or closed."
)
WHAT_IS_WHAT = (
    "**median per merged**: the median cost of one merged change. **all-in per merged**: "
    "all the row's changes cost, merged or not, over the merged ones — the unmerged were "
    "paid for too. **cost** and **tokens**: every change of the row. A change counts under "
    "the model that served most of its tokens, and the runtime that used most of them; "
    "**merged %** is of the changes that came to an end; **median to merge**, from its "
    "branch's cut to its merge."
)


def _percent(share: float | None) -> str:
    return DASH if share is None else f"{share:.0%}"


def _cells(row: ChangeRow, *, total: bool = False) -> list[str]:
    names = ["**all**", "", ""] if total else [said(row.agent), said(row.runtime), said(row.model)]
    wait = row.median_time_to_merge
    return [
        *names,
        *(str(n) for n in (row.merged, row.closed, row.abandoned, row.open)),
        _percent(row.merge_rate),
        DASH if row.median_merged_cost_usd is None else money(row.median_merged_cost_usd),
        DASH if row.all_in_per_merged_usd is None else money(row.all_in_per_merged_usd),
        money(row.cost_usd),
        units.tokens(row.tokens),
        DASH if wait is None else duration(wait),
        str(row.approvals),
    ]


def changes_report(found: ChangesReport, *, window: str) -> str:
    """The report as chat markdown: the table with a totals row, what its figures are, and
    what the dollars leave out; ``window``: how far back, as it was asked (``30d``)."""
    since = found.since.astimezone(UTC)
    span = f"in the last {window} (since {since:%Y-%m-%d %H:%M} UTC)"
    if not found.rows:
        return NO_CHANGES.format(span=span)
    rows = [_cells(row) for row in found.rows]
    if len(found.rows) > 1:
        rows.append(_cells(found.total, total=True))
    parts = [f"Cost per merged change {span}:", table(HEADERS, rows), WHAT_IS_WHAT]
    if found.total.unpriced:
        n = found.total.unpriced
        parts.append(
            f"{n:,} {'request' if n == 1 else 'requests'} with tokens had no price in the "
            "config: the dollars leave them out, the tokens count them."
        )
    return "\n\n".join(parts)
