"""Tests for the ledger's run quotes (migration 26), on SQLite and PostgreSQL: a quote is
kept on its run as it was made (a run keeps its first), read back whole — with no history,
without prices, capped — and found for the open runs; and the quoting reckons a launch's
quote from the agent's finished runs before it, never the run itself, restoring the open
runs' holds at start."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from fleet.budgets.quoting.holds import Holds
from fleet.budgets.quoting.quote import quote_of
from fleet.budgets.quoting.service import Quoting, restore_holds
from fleet.ledger import Ledger
from fleet.ledger.records.budgets import Scope
from fleet.model import RunBudget
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0
from tests.unit.fleet.budgets.test_holds import Book, status
from tests.unit.fleet.metering.test_run_watch import AGENT, SPEC, run_of, used


async def test_a_quote_is_kept_on_its_run_and_read_back_whole(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    run = await run_of(ledger, clock, tmp_path, SPEC, seconds=0)
    past = [(12, 30_000, 1.25), (11, 10_000, None), (9, 20_000, 0.75)]
    quote = quote_of(AGENT, "claude", "m-1", past, RunBudget(25_000, 5.0), T0)
    await ledger.quotes.keep_quote(run, quote)
    assert await ledger.quotes.quote_of(run) == quote
    assert quote.basis == (12, 11, 9) and quote.hold_tokens == 25_000.0
    later = replace(quote, hold_usd=0.01, quoted_at=T0 + timedelta(hours=1))
    await ledger.quotes.keep_quote(run, later)  # a run keeps the quote it was admitted with
    assert await ledger.quotes.quote_of(run) == quote
    assert await ledger.quotes.quote_of(run + 1) is None


async def test_a_quote_without_history_or_prices_reads_back_as_nothing_held(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    first = await run_of(ledger, clock, tmp_path, SPEC, seconds=0)
    second = await run_of(ledger, clock, tmp_path, replace(SPEC, model=None), seconds=0)
    none = quote_of(AGENT, "claude", "m-1", [], None, T0)
    unpriced = quote_of(AGENT, "claude", None, [(3, 8_000, None)], None, T0)
    await ledger.quotes.keep_quote(first, none)
    await ledger.quotes.keep_quote(second, unpriced)
    found = await ledger.quotes.quotes_of([first, second, 999])
    assert found == {first: none, second: unpriced}
    assert found[second].usd is None and found[second].tokens == (8000.0, 8000.0)
    assert await ledger.quotes.quotes_of([]) == {}


async def test_the_quoting_reckons_from_finished_runs_before_now_and_keeps_the_quote(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    quoting = Quoting(ledger.runs, ledger.quotes, clock, default_runtime="claude")
    one = await run_of(ledger, clock, tmp_path, SPEC, seconds=100)  # T0 .. T0+100
    two = await run_of(ledger, clock, tmp_path, SPEC, seconds=100)  # T0+100 .. T0+200
    await ledger.metering.record_metering([used(50, 4000, 0.04), used(150, 8000, 0.08)], [])
    quote = await quoting.quote(AGENT, "claude", "m-1", None)
    assert quote.basis == (two, one) and quote.tokens == (6000.0, 7600.0)
    assert quote.usd == pytest.approx((0.06, 0.076)) and quote.quoted_at == clock.now()
    run = await run_of(ledger, clock, tmp_path, SPEC, seconds=0)  # the launch it was made for
    assert await quoting.keep(quote) == run
    assert await quoting.of_run(run) == quote
    assert (await quoting.quote(AGENT, "claude", "m-2", None)).runs == 0


async def test_the_open_runs_hold_again_from_their_kept_quotes(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    ended = await run_of(ledger, clock, tmp_path, SPEC, seconds=100)
    await ledger.quotes.keep_quote(
        ended, quote_of(AGENT, "claude", "m-1", [], RunBudget(None, 9.0), T0)
    )
    going = await run_of(ledger, clock, tmp_path, SPEC, seconds=0)  # open, from T0+100
    await ledger.quotes.keep_quote(
        going, quote_of(AGENT, "claude", "m-1", [], RunBudget(None, 2.0), T0)
    )
    await ledger.metering.record_metering([used(50, 1000, 5.0), used(150, 2000, 0.5)], [])
    holds = Holds(Book(status(Scope("global"), 10.0, 0.0)))
    assert await restore_holds(holds, ledger.runs, ledger.quotes) == 1
    assert holds.of(AGENT) == {"usd": 1.5}
