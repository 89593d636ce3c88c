"""The ledger's budget tables (migration 5: budgets set by command, bursts, pacing steps) and
the usage queries pacing reads (spend per agent, usage in time buckets)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from fleet.errors import LedgerError
from fleet.ledger import LATEST_VERSION, MIGRATIONS, Ledger, StepRecord, migrate
from fleet.ledger.database.engine import SqliteDatabase
from fleet.ledger.records.budgets import (
    Budget,
    Burst,
    Confidence,
    Scope,
    Step,
    WindowKind,
    WindowSpec,
)
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0
from tests.unit.fleet.ledger.test_ledger_metering import event

FIVE_MINUTES = timedelta(minutes=5)
ROLLING = Budget(
    scope=Scope("global"),
    window=WindowSpec(
        WindowKind.ROLLING,
        length=timedelta(hours=5),
        reset_at=T0 + timedelta(hours=2),
        confidence=Confidence.PROVIDER,
    ),
    limit_tokens=5_000_000,
    limit_usd=40.0,
    account="anthropic",
    ladder={"claude": ("opus", "sonnet", "haiku"), "codex": ("gpt-5",)},
    tolerance=0.25,
    source="command",
)


# -- migration 5 -------------------------------------------------------------------------------


async def test_migration_5_applies_to_a_version_4_ledger_and_keeps_its_usage(
    tmp_path: Path,
) -> None:
    """A ledger at version 4 with usage gains the budget tables on open; its usage stays."""
    path = tmp_path / "ledger.db"
    conn = await SqliteDatabase.connect(path)
    try:
        assert await migrate(conn, MIGRATIONS[:4]) == 4
        await conn.execute(
            "INSERT INTO usage (at, agent, provider, api, input_tokens, stream, status, outcome,"
            " latency_ms) VALUES (?, 'old-1', 'anthropic', 'anthropic', 70, 0, 200, 'ok', 1.0)",
            (T0.timestamp(),),
        )
    finally:
        await conn.close()
    ledger = await Ledger.open(path, ManualClock(T0))
    try:
        assert MIGRATIONS[4].version == 5
        assert await ledger.schema_version() == LATEST_VERSION >= 5
        assert await ledger.metering.spend_by_agent(T0) == {"old-1": (70, None)}
        assert await ledger.budgets.command_budgets() == []
        assert await ledger.budgets.active_bursts(T0) == []
        assert await ledger.budgets.load_steps() == {}
    finally:
        await ledger.close()


@pytest.mark.parametrize(
    "values",
    [
        "('global', 'rolling', 3600, NULL, 'user', NULL, NULL, '{}', 0.1, 'x', 0)",  # no limit
        "('global', 'hourly', 3600, NULL, 'user', 5, NULL, '{}', 0.1, 'x', 0)",  # unknown kind
        "('global', 'rolling', 0, NULL, 'user', 5, NULL, '{}', 0.1, 'x', 0)",  # zero window
        "('global', 'rolling', 3600, NULL, 'sure', 5, NULL, '{}', 0.1, 'x', 0)",  # confidence
        "('global', 'rolling', 3600, NULL, 'user', 5, NULL, '{}', 1.5, 'x', 0)",  # tolerance
    ],
)
async def test_budgets_table_refuses_rows_the_model_cannot_hold(
    ledger: Ledger, values: str
) -> None:
    """The table's CHECKs refuse a budget without a limit, an unknown kind or confidence, a
    window of zero, a tolerance past 1."""
    with pytest.raises(LedgerError, match="constraint"):
        async with ledger.budgets._transaction("write a budget the model cannot hold") as conn:
            await conn.execute(
                "INSERT INTO budgets (scope, window_kind, window_seconds, reset_at, confidence,"
                " limit_tokens, limit_usd, ladder_json, tolerance, set_by, set_at)"
                f" VALUES {values}"
            )


# -- budgets set by command --------------------------------------------------------------------


async def test_a_budget_set_by_command_round_trips(ledger: Ledger) -> None:
    """Every field of a budget comes back as saved, marked as set by command."""
    await ledger.budgets.set_budget(
        replace(ROLLING, source="config"), by="@ann:example.org on matrix"
    )
    assert await ledger.budgets.command_budgets() == [ROLLING]


@pytest.mark.parametrize(
    "window",
    [
        WindowSpec(WindowKind.DAILY),
        WindowSpec(WindowKind.MONTHLY, confidence=Confidence.UNKNOWN),
        WindowSpec(WindowKind.FIXED, reset_at=datetime(2025, 4, 1, 6, 30, tzinfo=UTC)),
        WindowSpec(WindowKind.ROLLING, length=timedelta(days=7)),
    ],
    ids=["daily", "monthly", "fixed", "rolling"],
)
async def test_every_window_kind_round_trips(ledger: Ledger, window: WindowSpec) -> None:
    """Calendar, fixed and rolling windows come back with their length, reset and confidence."""
    budget = Budget(Scope("agent", "coder-1"), window, limit_usd=12.5, source="command")
    await ledger.budgets.set_budget(budget, by="ann")
    assert await ledger.budgets.command_budgets() == [budget]


async def test_setting_a_scope_again_replaces_its_budget_and_records_who(
    tmp_path: Path,
) -> None:
    """One row per scope: the latest `budget set` wins, with its author and time."""
    clock = ManualClock(T0)
    ledger = await Ledger.open(tmp_path / "set.db", clock)
    try:
        group = Budget(Scope("group", "backend"), WindowSpec(WindowKind.WEEKLY), limit_tokens=9)
        await ledger.budgets.set_budget(ROLLING, by="ann")
        await ledger.budgets.set_budget(group, by="ann")
        clock.advance(60)
        tighter = replace(ROLLING, limit_tokens=1_000_000, limit_usd=None)
        await ledger.budgets.set_budget(tighter, by="bob")
        assert await ledger.budgets.command_budgets() == [tighter, replace(group, source="command")]
    finally:
        await ledger.close()
    async with aiosqlite.connect(tmp_path / "set.db") as conn:
        rows = await conn.execute_fetchall("SELECT scope, set_by, set_at FROM budgets")
    assert sorted(rows) == [
        ("global", "bob", (T0 + timedelta(seconds=60)).timestamp()),
        ("group:backend", "ann", T0.timestamp()),
    ]


# -- bursts ------------------------------------------------------------------------------------


async def test_bursts_are_active_from_their_grant_until_they_end(ledger: Ledger) -> None:
    """active_bursts(now) returns the grants made by now that end after now, oldest first."""
    early = Burst(Scope("global"), T0 + timedelta(hours=2), "ann", "release", T0)
    later = Burst(Scope("group", "api"), T0 + timedelta(hours=1), "bob", "", T0 + FIVE_MINUTES)
    first = await ledger.budgets.add_burst(early)
    second = await ledger.budgets.add_burst(later)
    assert second == first + 1
    assert await ledger.budgets.active_bursts(T0) == [early]  # `later` is not granted yet
    assert await ledger.budgets.active_bursts(T0 + 2 * FIVE_MINUTES) == [early, later]
    assert await ledger.budgets.active_bursts(T0 + timedelta(hours=1)) == [
        early
    ]  # `until` excluded
    assert await ledger.budgets.active_bursts(T0 + timedelta(hours=3)) == []


async def test_a_burst_without_a_grant_time_is_granted_now(ledger: Ledger) -> None:
    """granted_at defaults to the ledger clock's now."""
    await ledger.budgets.add_burst(Burst(Scope("agent", "coder-1"), T0 + timedelta(hours=1), "ann"))
    [burst] = await ledger.budgets.active_bursts(T0)
    assert burst.granted_at == T0


async def test_removing_a_scopes_budget_forgets_only_it(ledger: Ledger) -> None:
    """remove_budget deletes the scope's row, says whether there was one, and leaves the
    other scopes' budgets."""
    other = replace(ROLLING, scope=Scope("group", "api"))
    await ledger.budgets.set_budget(ROLLING, "ann")
    await ledger.budgets.set_budget(other, "ann")
    assert await ledger.budgets.remove_budget(Scope("global")) is True
    assert await ledger.budgets.command_budgets() == [other]
    assert await ledger.budgets.remove_budget(Scope("global")) is False


async def test_ending_bursts_ends_only_the_running_ones_on_that_scope(ledger: Ledger) -> None:
    """end_bursts(scope, now) ends the scope's running grants at now (kept, no longer
    active) and counts them; other scopes' grants and ended ones are left as they are."""
    mine = Burst(Scope("global"), T0 + timedelta(hours=2), "ann", "release", T0)
    theirs = Burst(Scope("group", "api"), T0 + timedelta(hours=1), "bob", "", T0)
    await ledger.budgets.add_burst(mine)
    await ledger.budgets.add_burst(theirs)
    now = T0 + FIVE_MINUTES
    assert await ledger.budgets.end_bursts(Scope("global"), now) == 1
    assert await ledger.budgets.active_bursts(now) == [theirs]
    assert await ledger.budgets.end_bursts(Scope("global"), now) == 0


# -- pacing steps ------------------------------------------------------------------------------


async def test_steps_are_saved_by_budget_and_resume_after_reopening(tmp_path: Path) -> None:
    """save_steps upserts (others keep their rows); a reopened ledger loads them."""
    path = tmp_path / "steps.db"
    ledger = await Ledger.open(path, ManualClock(T0))
    try:
        await ledger.budgets.save_steps(
            [
                StepRecord("global", Step.DOWNGRADE, 1),
                StepRecord("agent:coder-1", Step.QUEUE, 0, T0 - timedelta(minutes=3)),
            ]
        )
        await ledger.budgets.save_steps([StepRecord("global", Step.DOWNGRADE, 2)])
        await ledger.budgets.save_steps([])
    finally:
        await ledger.close()
    reopened = await Ledger.open(path, ManualClock(T0 + timedelta(hours=1)))
    try:
        assert await reopened.budgets.load_steps() == {
            "agent:coder-1": StepRecord("agent:coder-1", Step.QUEUE, 0, T0 - timedelta(minutes=3)),
            "global": StepRecord("global", Step.DOWNGRADE, 2, T0),
        }
    finally:
        await reopened.close()


# -- the usage pacing reads --------------------------------------------------------------------


async def test_spend_by_agent_sums_tokens_and_priced_cost_in_a_span(ledger: Ledger) -> None:
    """Tokens and priced cost per agent for since <= at < until; cost None if none priced."""
    await ledger.metering.record_metering(
        [
            event("coder-1", T0 - timedelta(seconds=1)),  # before the span
            event("coder-1", T0, cost_usd=0.5),
            event("coder-1", T0 + timedelta(minutes=30), cost_usd=None, priced=False),
            event("docs", T0 + timedelta(minutes=59), cost_usd=None, priced=False),
            event("docs", T0 + timedelta(hours=1)),  # at `until`: after the span
        ],
        [],
    )
    total = event().tokens.total
    assert await ledger.metering.spend_by_agent(T0, T0 + timedelta(hours=1)) == {
        "coder-1": (2 * total, 0.5),
        "docs": (total, None),
    }
    assert (await ledger.metering.spend_by_agent(T0))["docs"] == (2 * total, 0.0125)
    assert await ledger.metering.spend_by_agent(T0 + timedelta(days=1)) == {}


async def test_usage_series_buckets_from_since_and_skips_empty_buckets(ledger: Ledger) -> None:
    """Buckets start at since + k × size; each sums tokens and priced cost (0.0 if none)."""
    await ledger.metering.record_metering(
        [
            event("coder-1", T0 - timedelta(minutes=1)),  # before since
            event("coder-1", T0, cost_usd=0.25),
            event("docs", T0 + timedelta(minutes=14, seconds=59), cost_usd=0.5),
            event("coder-1", T0 + timedelta(minutes=45), cost_usd=None, priced=False),
            event("api-1", T0 + timedelta(minutes=50), cost_usd=1.0),
        ],
        [],
    )
    total = event().tokens.total
    fifteen = timedelta(minutes=15)
    assert await ledger.metering.usage_series(T0, agents=None, bucket_seconds=900) == [
        (T0, 2 * total, 0.75),
        (T0 + 3 * fifteen, 2 * total, 1.0),
    ]
    assert await ledger.metering.usage_series(
        T0, agents=["coder-1", "docs"], bucket_seconds=900
    ) == [
        (T0, 2 * total, 0.75),
        (T0 + 3 * fifteen, total, 0.0),
    ]
    assert await ledger.metering.usage_series(T0, agents=[], bucket_seconds=900) == []
    with pytest.raises(ValueError, match="bucket_seconds must be more than 0"):
        await ledger.metering.usage_series(T0, agents=None, bucket_seconds=0)


async def test_daily_spend_sums_each_utc_day_by_agent_or_by_what_served_it(
    ledger: Ledger,
) -> None:
    """Tokens and priced cost per agent (or account…) and UTC day for since <= at < until:
    a day's cost None if none was priced there, days without usage absent."""
    midnight = datetime(2025, 3, 2, tzinfo=UTC)
    await ledger.metering.record_metering(
        [
            event("coder-1", midnight - timedelta(days=2)),  # before the span
            event("coder-1", midnight - timedelta(seconds=1), cost_usd=0.5),  # Mar 1, 23:59:59
            event("coder-1", midnight),  # Mar 2, 00:00
            event("coder-1", midnight + timedelta(hours=23, minutes=59)),
            event("docs", midnight + timedelta(days=2), cost_usd=None, priced=False),
            event("docs", midnight + timedelta(days=3)),  # at `until`: after the span
        ],
        [],
    )
    total = event().tokens.total
    since, until = midnight - timedelta(days=1), midnight + timedelta(days=3)
    found = await ledger.metering.daily_spend(since, until)
    assert found == {
        "coder-1": {
            date(2025, 3, 1): (total, 0.5),
            date(2025, 3, 2): (2 * total, pytest.approx(0.025)),
        },
        "docs": {date(2025, 3, 4): (total, None)},
    }
    assert await ledger.metering.daily_spend(since, until, by="provider") == {
        "anthropic": {
            date(2025, 3, 1): (total, 0.5),
            date(2025, 3, 2): (2 * total, pytest.approx(0.025)),
            date(2025, 3, 4): (total, None),
        }
    }
    assert await ledger.metering.daily_spend(until + timedelta(days=1)) == {}
    with pytest.raises(ValueError, match="cannot sum usage by"):
        await ledger.metering.daily_spend(since, by="model; DROP TABLE usage")
