"""The pacing report's lines of the past, over a real ledger: how far the week's projections
were off (tasks that ended this week with an error; an older one left out), and the
typical day per agent and per budget — the median of the whole UTC days from the first
with usage, the days without any after it counted as nothing, today left out; the
costliest five agents named and the others counted."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.render.spend.report import compose
from bot.render.spend.report_history import ReportHistory, projection_line, typical_text
from fleet.budgets.pacing.typical import TypicalSpend, last_days, typical_days
from fleet.ledger import Ledger
from fleet.ledger.records.tasks import Actual, NewTask, Projection
from fleet.tasks.accuracy import accuracy
from fleet.timing.clock import ManualClock
from tests.unit.bot.render.test_task_documents import task
from tests.unit.chat_fakes import T0
from tests.unit.fleet.budgets.test_budget_service import book, daily, use

PROJECTED = Projection("agent coder-1", (1,), (1000.0, 2000.0), None)
FEB = [datetime(2025, 2, day, 15, 0, tzinfo=UTC) for day in range(1, 29)]  # FEB[d - 1]: Feb d


@pytest.fixture
def clock() -> ManualClock:
    """Eight days before T0: a task ends then, out of the week the report looks back on."""
    return ManualClock(T0 - timedelta(days=8))


async def ended(ledger: Ledger, title: str, error: float) -> None:
    made = await ledger.tasks.add_task(NewTask(title, "chat", "@op:hs"), PROJECTED)
    actual = Actual(round(error * 1000), None, 1)
    await ledger.tasks.finish(
        made.id, "done", "merged", actual, (error, "tokens"), came_from=("todo",)
    )


async def test_the_report_says_how_far_projections_were_off_and_what_a_day_costs(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ended(ledger, "Long ago", 10.0)  # eight days ago: not this week
    clock.advance(8 * 86_400)  # T0: Mar 1, noon
    await ended(ledger, "Cheap one", 0.5)
    await ended(ledger, "Big rewrite", 3.0)
    await ended(ledger, "On the nose", 1.2)
    await ledger.tasks.add_task(NewTask("Still open", "chat", "@op:hs"), PROJECTED)
    usage = [
        use("coder-1", FEB[9], 77_777, 7.0),  # Feb 10: before the 14 days
        use("coder-1", FEB[23], 400, 0.04),  # Feb 24, its first day in them
        use("coder-1", FEB[24], 100, 0.01),  # Feb 25; Feb 26 nothing
        use("coder-1", FEB[26], 300, 0.03),
        use("coder-1", FEB[27], 150, 0.015),
        use("coder-1", FEB[27] + timedelta(hours=1), 50, 0.005),  # Feb 28: 200, $0.02
        use("coder-1", T0, 99_999, 9.0),  # today: not over yet
        use("ops-1", FEB[26], 1000),  # unpriced; Feb 28 nothing
        *(use(f"extra-{n}", FEB[27], 10 * n, 0.001 * n) for n in range(1, 7)),
    ]
    await ledger.metering.record_metering(usage, [])
    team = daily("group:team", None, limit_usd=5.0)
    service = await book(ledger, clock, daily("global"), team)
    history = ReportHistory(ledger.tasks.errors_since, service.typical)
    report = await compose(service, None, None, history)
    lines = report.markdown.splitlines()
    assert (
        "**Projections this week**: 3 tasks ended, actual/projected median ×1.20, "
        "from ×0.50 to ×3.00 (worst: #3 big-rewrite, ×3.00)."
    ) in lines
    typical = lines.index(
        "**Typical day** — the median of the 14 whole UTC days Feb 15–Feb 28, from the first "
        "with usage (the days without any after it count as nothing):"
    )
    # coder-1 over Feb 24..28: 400, 100, 0, 300, 200 tokens; $0.04, 0.01, 0, 0.03, 0.02.
    assert lines[typical + 1] == (
        "- agents: `coder-1` $0.02 · 200 tokens (5 d), `extra-6` $0.006 · 60 tokens (1 d), "
        "`extra-5` $0.005 · 50 tokens (1 d), `extra-4` $0.004 · 40 tokens (1 d), "
        "`extra-3` $0.003 · 30 tokens (1 d), …3 more"
    )
    # global over Feb 24..28: 400, 100, 0, 1300, 410 tokens; group:team is coder-1's dollars.
    assert lines[typical + 2] == "- budgets: `global` 400 tokens, `group:team` $0.02"
    assert report.markdown.index("Pace is use so far") < report.markdown.index("Typical day")


async def test_nothing_to_say_leaves_the_lines_out(ledger: Ledger, clock: ManualClock) -> None:
    clock.advance(8 * 86_400)
    service = await book(ledger, clock, daily("global"))
    history = ReportHistory(ledger.tasks.errors_since, service.typical)
    report = await compose(service, None, None, history)
    assert "Projections" not in report.markdown and "Typical day" not in report.markdown
    assert typical_text(TypicalSpend((), (), last_days(T0))) == ""


def test_a_typical_day_counts_from_the_first_day_with_usage() -> None:
    days = last_days(datetime(2025, 3, 1, 0, 30, tzinfo=UTC), count=4)
    assert days == tuple(date(2025, 2, d) for d in (25, 26, 27, 28))
    spent = {date(2025, 2, 26): (900, None), date(2025, 2, 28): (300, 0.3)}
    found = typical_days("a", spent, days)
    assert found is not None
    assert (found.tokens, found.usd, found.days) == (300.0, 0.0, 3)  # 900, 0, 300; $0, 0, .3
    assert typical_days("a", {date(2025, 2, 1): (5, None)}, days) is None
    unpriced = typical_days("b", {date(2025, 2, 25): (8, None)}, days)
    assert unpriced is not None and unpriced.usd is None and unpriced.tokens == 0.0


def test_the_worst_projection_is_the_furthest_off_either_way() -> None:
    under, over = replace(task(1), error=0.2, name="under"), replace(task(2), error=4.0)
    found = accuracy([under, over, task(3)])
    assert found is not None and found.worst.id == 1 and found.ended == 2
    nothing = accuracy([replace(task(4), error=0.0), over])
    assert nothing is not None and nothing.worst.id == 4
    one = accuracy([replace(task(5), error=1.5, name="[x](javascript:y) #1")])
    assert one is not None and projection_line(one) == (
        "**Projections this week**: 1 task ended, actual/projected median ×1.50 "
        "(worst: #5 \\[x\\](javascript:y) `#1`, ×1.50)."
    )
    assert accuracy([task(6)]) is None


async def test_a_report_with_no_budget_still_says_what_was_spent_today(
    ledger: Ledger, clock: ManualClock
) -> None:
    """With no budget to pace, the report says so and what each agent spent today (priced or
    not), the costliest first; yesterday's spend is not today's."""
    clock.advance(8 * 86_400)  # T0
    usage = [
        use("demo", T0, 42, 0.0002),
        use("ops-1", T0, 1000),  # unpriced
        use("coder-1", T0 - timedelta(days=1), 5000, 0.5),  # yesterday
    ]
    await ledger.metering.record_metering(usage, [])
    service = await book(ledger, clock)
    history = ReportHistory(
        ledger.tasks.errors_since, service.typical, ledger.metering.spend_by_agent
    )
    report = await compose(service, None, None, history)
    lines = report.markdown.split("\n\n")
    assert lines[0] == "No budgets are configured: there is nothing to pace."
    assert lines[1] == (
        "**Spent today** (since 00:00 UTC): 1,042 tokens · $0.0002 — "
        "`demo` $0.0002 · 42 tokens, `ops-1` 1,000 tokens."
    )
