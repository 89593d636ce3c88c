"""Tests for the egress count a forge run's footer shows: the refusals of that forge run's
own span only, never an earlier run's of the same agent, over a real ledger."""

from __future__ import annotations

from pathlib import Path

from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunRecord, NewForgeRun, Slug
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import provenance_source
from tests.unit.fleet.metering.test_run_watch import run_of

AGENT = AgentName("coder")
SPEC = AgentSpec(AGENT, "claude", model="m-1")


async def _forge_run(ledger: Ledger, issue: int) -> ForgeRunRecord:
    record = await ledger.forge.add_forge_run(
        NewForgeRun(
            forge="hub",
            repo="app",
            slug=Slug("acme", "app"),
            issue=issue,
            title="Fix it",
            agent=AGENT,
            branch=f"fw/coder/issue-{issue}",
            requester="alice",
            issue_url=f"https://github.com/acme/app/issues/{issue}",
        )
    )
    assert record is not None
    return record


async def test_a_forge_runs_egress_counts_only_its_own_refusals(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """An earlier run's refusal (even of the same destination again) is not this run's."""
    source = provenance_source(ledger, clock)
    await run_of(ledger, clock, tmp_path, SPEC, seconds=100)  # an earlier run: npm refused
    await ledger.refusals.add_refusals(AGENT, "egress", "registry.npmjs.org:443", "not allowed")
    clock.advance(60)
    first = await _forge_run(ledger, 3)
    clock.advance(1)
    await run_of(ledger, clock, tmp_path, SPEC, seconds=100)  # this forge run's: none refused
    assert (await source.provenance(first)).egress.endswith("refused: 0")

    await ledger.refusals.add_refusals(AGENT, "egress", "registry.npmjs.org:443", "not allowed", 2)
    await ledger.forge.update_forge_run(first.id, ended_at=clock.now())
    ended = await ledger.forge.forge_run(first.id)
    assert ended is not None
    assert (await source.provenance(ended)).egress.endswith("refused: 2")

    clock.advance(60)
    await ledger.refusals.add_refusals(
        AGENT, "egress", "example.com:443", "not allowed"
    )  # after it
    assert (await source.provenance(ended)).egress.endswith("refused: 2")
    clock.advance(1)
    second = await _forge_run(ledger, 4)
    assert (await source.provenance(second)).egress.endswith("refused: 0")
