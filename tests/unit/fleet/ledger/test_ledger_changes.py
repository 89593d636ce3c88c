"""The cost per merged change, from the ledger's own rows, on SQLite and on PostgreSQL: a
dozen runs of two agents on two models, written through the real stores, against figures
summed by hand (:mod:`tests.changes_rig`)."""

from __future__ import annotations

from dataclasses import fields

from fleet.budgets.changes.outcome import Outcome, change_of
from fleet.budgets.changes.report import ALL, ChangeRow, report
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.changes_rig import CODER, EXPECTED, OPEN, SONNET, TESTER, Expected, build


def as_expected(row: ChangeRow) -> Expected:
    return Expected(**{f.name: getattr(row, f.name) for f in fields(Expected)})


async def test_the_report_matches_the_rows_summed_by_hand(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Per agent, runtime and model served: the outcomes counted, the cost of all changes
    and of the merged ones, the medians, the approvals and the unpriced requests — the
    change served by two models under the one that served most of its tokens, a request
    between two runs in none, the old change outside the window."""
    since = await build(ledger, clock)
    found = report(await ledger.changes.changes(since), since)
    assert tuple(as_expected(row) for row in found.rows) == EXPECTED
    coder = found.rows[0]
    assert coder.all_in_per_merged_usd == CODER.cost_usd / 3
    assert coder.merge_rate == 3 / 5
    assert coder.merged_tokens == 1000 + 500 + 2000 + 100 + 800
    assert coder.median_merged_tokens == 1500  # of 800 (E), 1500 (A), 2100 (B)
    total = found.total
    assert (total.agent, total.runtime, total.model) == (ALL, ALL, ALL)
    assert total.merged == 4 and total.closed == 1 and total.abandoned == 2 and total.open == 1
    assert total.cost_usd == CODER.cost_usd + TESTER.cost_usd + OPEN.cost_usd
    assert total.all_in_per_merged_usd == total.cost_usd / 4
    assert total.approvals == 3


async def test_each_change_its_runs_and_outcome(ledger: Ledger, clock: ManualClock) -> None:
    """Each line's runs by the nesting of spans: the branch cut while another was live
    has its one run, the older one its two; forge ends read from the audit."""
    since = await build(ledger, clock)
    changes = {c.line_id: change_of(c) for c in await ledger.changes.changes(since)}
    by_branch = {
        line.branch: changes[line.id]
        for line in await ledger.lines.lines(state=None)
        if line.id in changes
    }
    assert "fw/old" not in by_branch
    runs = {branch: change.facts.runs for branch, change in by_branch.items()}
    assert runs == {"fw/a": 2, "fw/b": 1, "fw/c": 1, "fw/d": 2, "fw/e": 1, "fw/f": 2,
                    "fw/g": 1, "fw/h": 1}  # fmt: skip
    outcomes = {branch: change.outcome for branch, change in by_branch.items()}
    assert outcomes == {
        "fw/a": Outcome.MERGED, "fw/b": Outcome.MERGED, "fw/c": Outcome.CLOSED,
        "fw/d": Outcome.ABANDONED, "fw/e": Outcome.MERGED, "fw/f": Outcome.MERGED,
        "fw/g": Outcome.ABANDONED, "fw/h": Outcome.OPEN,
    }  # fmt: skip
    assert by_branch["fw/d"].tokens == 300 + 200 and by_branch["fw/e"].tokens == 800
    assert by_branch["fw/b"].model == SONNET  # 2,000 of its 2,100 tokens


async def test_an_empty_ledger_has_no_rows(ledger: Ledger, clock: ManualClock) -> None:
    found = report(await ledger.changes.changes(clock.now()), clock.now())
    assert found.rows == () and found.total.changes == 0
    assert found.total.all_in_per_merged_usd is None and found.total.merge_rate is None
