"""Tests for what a forge run's status comment says a run like it costs: the runs before
it, never itself — on a fresh ledger, that there is no history yet — over a real ledger."""

from __future__ import annotations

from pathlib import Path

from fleet.budgets.quoting.quote import quote_of
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunRecord, NewForgeRun, Slug
from fleet.model import AgentSpec, ExitInfo
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0
from tests.unit.fleet.forge.runs.work_rig import provenance_source
from tests.unit.fleet.metering.test_run_watch import run_of, used

AGENT = AgentName("coder-1")
SPEC = AgentSpec(AGENT, "claude", model="m-1")


async def _forge_run(ledger: Ledger) -> ForgeRunRecord:
    record = await ledger.forge.add_forge_run(
        NewForgeRun(
            forge="hub",
            repo="app",
            slug=Slug("acme", "app"),
            issue=3,
            title="Fix it",
            agent=AGENT,
            branch="fw/coder-1/issue-3",
            requester="alice",
            issue_url="https://github.com/acme/app/issues/3",
        )
    )
    assert record is not None
    return record


async def test_a_forge_runs_estimate_leaves_out_its_own_run(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """On a fresh ledger the run's own finished run is no history: none yet, said so;
    with one earlier run, the estimate is of that one alone."""
    source = provenance_source(ledger, clock)
    record = await _forge_run(ledger)
    clock.advance(1)
    await run_of(ledger, clock, tmp_path, SPEC, seconds=100)  # the forge run's own
    await ledger.metering.record_metering([used(50, 4000, 0.04)], [])
    assert (await source.spend(record)).estimate is None

    clock.advance(100)
    await ledger.forge.update_forge_run(record.id, ended_at=clock.now())
    second = await _forge_run(ledger)  # the same issue again, after the first ended
    clock.advance(1)
    await run_of(ledger, clock, tmp_path, SPEC, seconds=100)
    await ledger.metering.record_metering([used(260, 9000, 0.09)], [])
    estimate = (await source.spend(second)).estimate
    assert estimate is not None and (estimate.runs, estimate.tokens) == (1, (4000.0, 4000.0))


async def test_a_forge_run_tells_the_quote_kept_on_its_run_unchanged_by_later_runs(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Once its run has a quote, the status comment tells that quote, whatever runs end
    after it (they are not what the run was quoted from)."""
    source = provenance_source(ledger, clock)
    record = await _forge_run(ledger)
    run = await run_of(ledger, clock, tmp_path, SPEC, seconds=0)
    quote = quote_of(AGENT, "claude", "m-1", [(1, 6000, 0.5), (2, 2000, 0.1)], None, T0)
    await ledger.quotes.keep_quote(run, quote)
    await ledger.forge.update_forge_run(record.id, run_id=run)
    record = await ledger.forge.forge_run(record.id)
    assert record is not None
    told = (await source.spend(record)).estimate
    assert told is not None and (told.runs, told.tokens) == (2, (4000.0, 5600.0))
    await ledger.runs.end_run(run, ExitInfo(0, "exited"))
    await run_of(ledger, clock, tmp_path, SPEC, seconds=100)
    await ledger.metering.record_metering([used(50, 90_000, 9.0)], [])
    assert (await source.spend(record)).estimate == told
