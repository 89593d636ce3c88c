"""The ledger's metering tables: migration 4, batch writes, round trips and the sums."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from fleet.errors import LedgerError
from fleet.ledger import LATEST_VERSION, MIGRATIONS, Ledger, UsageTotal, migrate
from fleet.ledger.database.engine import SqliteDatabase
from fleet.metering.counting.events import Outcome, QuotaSignal, Tokens, UsageEvent
from fleet.model import AgentSpec, DesiredState
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0


def event(agent: str = "coder-1", at: datetime = T0, **changes: object) -> UsageEvent:
    made = UsageEvent(
        at=at,
        agent=agent,
        provider="anthropic",
        api="anthropic",
        requested_model="claude-sonnet-4",
        served_model="claude-sonnet-4-20250514",
        tokens=Tokens(input=100, output=40, cache_read=2000, cache_write=300, reasoning=10),
        stream=True,
        status=200,
        outcome=Outcome.OK,
        latency_ms=812.5,
        ttfb_ms=120.25,
        request_id="req_01",
        cost_usd=0.0125,
        priced=True,
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def signal(name: str, value: str, at: datetime = T0, **changes: object) -> QuotaSignal:
    made = QuotaSignal(
        at=at,
        agent="coder-1",
        provider="anthropic",
        family="anthropic-ratelimit-unified",
        name=name,
        value=value,
    )
    return replace(made, **changes)  # type: ignore[arg-type]


# -- migration 4 ----------------------------------------------------------------------------


async def test_migration_4_applies_to_a_version_3_ledger_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    """A ledger at version 3 with an agent gains the usage and quota tables on open."""
    path = tmp_path / "ledger.db"
    conn = await SqliteDatabase.connect(path)
    try:
        assert await migrate(conn, MIGRATIONS[:3]) == 3
        await conn.execute(
            "INSERT INTO agents (name, runtime, backend, desired_state, state,"
            " state_changed_at, created_at, updated_at)"
            " VALUES ('old-1', 'stub', 'subprocess', 'stopped', 'stopped', 1.0, 1.0, 1.0)"
        )
    finally:
        await conn.close()
    ledger = await Ledger.open(path, ManualClock(T0))
    try:
        assert await ledger.schema_version() == LATEST_VERSION >= 4
        assert [a.name for a in await ledger.agents.list_agents()] == ["old-1"]
        await ledger.metering.record_metering([event("old-1")], [signal("x-limit", "10")])
        assert await ledger.metering.usage_events() == [event("old-1")]
        assert await ledger.metering.quota_signals() == [signal("x-limit", "10")]
    finally:
        await ledger.close()


async def test_usage_rows_need_no_agent_row(ledger: Ledger) -> None:
    """Usage of an agent the ledger never knew (a refused request) is kept; deleting an
    agent keeps its usage."""
    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("coder-1"), runtime="stub", backend="subprocess"),
        DesiredState.RUNNING,
    )
    refused = event("stranger", outcome=Outcome.REFUSED, status=403, reason="unknown agent")
    await ledger.metering.record_metering([event(), refused], [])
    assert await ledger.agents.delete_agent("coder-1")
    assert [e.agent for e in await ledger.metering.usage_events()] == ["coder-1", "stranger"]


async def test_the_outcome_check_accepts_every_outcome_and_nothing_else(ledger: Ledger) -> None:
    """Every Outcome value can be stored (a new one needs a migration); other text cannot."""
    events = [event(at=T0 + timedelta(seconds=i), outcome=o) for i, o in enumerate(Outcome)]
    await ledger.metering.record_metering(events, [])
    assert [e.outcome for e in await ledger.metering.usage_events()] == list(Outcome)
    with pytest.raises(LedgerError, match="constraint"):
        async with ledger.metering._transaction("write an unknown outcome") as conn:
            await conn.execute(
                "INSERT INTO usage (at, agent, provider, api, stream, status, outcome,"
                " latency_ms) VALUES (1.0, 'a', 'p', 'chat', 0, 200, 'fine', 1.0)"
            )


# -- writing and reading back ---------------------------------------------------------------


async def test_usage_and_signals_round_trip_exactly(ledger: Ledger) -> None:
    """Every field of a usage event and a quota signal comes back as it was recorded, with
    None and non-UTC times intact."""
    full = event(
        at=datetime(2025, 3, 1, 12, 0, 15, 123456, tzinfo=UTC),
        api="responses",
        stream=False,
        outcome=Outcome.PARTIAL,
        partial=True,
        reason="upstream cut the stream",
        rewritten_from="claude-opus-4",
    )
    bare = event(
        "docs",
        at=T0 + timedelta(minutes=1),
        provider="openai",
        api="chat",
        requested_model=None,
        served_model=None,
        tokens=Tokens(),
        outcome=Outcome.UNREACHABLE,
        ttfb_ms=None,
        request_id=None,
        cost_usd=None,
        priced=False,
        status=502,
    )
    parsed = signal("anthropic-ratelimit-unified-5h-utilization", "0.42", window="5h")
    parsed = replace(parsed, metric="utilization", at=T0.astimezone(timezone(timedelta(hours=2))))
    await ledger.metering.record_metering([full, bare], [parsed, signal("retry-after", "30")])
    assert await ledger.metering.usage_events() == [full, bare]
    assert await ledger.metering.quota_signals() == [parsed, signal("retry-after", "30")]


async def test_an_empty_batch_writes_nothing(ledger: Ledger) -> None:
    """Recording no events and no signals is a no-op."""
    await ledger.metering.record_metering([], [])
    assert await ledger.metering.usage_events() == []
    assert await ledger.metering.quota_signals() == []


async def test_a_batch_with_a_naive_time_writes_nothing(ledger: Ledger) -> None:
    """A naive timestamp anywhere in a batch refuses the whole batch before writing."""
    naive = event(at=datetime(2025, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.metering.record_metering([event(), naive], [signal("x", "1")])
    assert await ledger.metering.usage_events() == []
    assert await ledger.metering.quota_signals() == []


async def test_usage_events_filter_by_agent_and_time_and_keep_the_newest_n(
    ledger: Ledger,
) -> None:
    """usage_events filters by agent and since (inclusive), oldest first; limit keeps the
    newest rows, still oldest first."""
    rows = [
        event("coder-1", T0),
        event("docs", T0 + timedelta(minutes=1)),
        event("coder-1", T0 + timedelta(minutes=2)),
        event("coder-1", T0 + timedelta(minutes=3)),
    ]
    await ledger.metering.record_metering(list(reversed(rows)), [])
    assert await ledger.metering.usage_events() == rows
    assert await ledger.metering.usage_events(agent="coder-1") == [rows[0], rows[2], rows[3]]
    assert await ledger.metering.usage_events(since=T0 + timedelta(minutes=1)) == rows[1:]
    assert await ledger.metering.usage_events(agent="coder-1", limit=2) == [rows[2], rows[3]]
    assert await ledger.metering.usage_events(limit=0) == []


# -- sums -----------------------------------------------------------------------------------


async def test_usage_totals_group_by_agent_provider_and_model(ledger: Ledger) -> None:
    """Totals sum requests and tokens per agent, provider and model (served, else requested
    when answered, else '?'; a request nobody served under '(not served)', whatever name it
    asked for), sorted by agent then model, counting only rows since the given time."""
    sonnet = event(cost_usd=0.01)
    await ledger.metering.record_metering(
        [
            event(at=T0 - timedelta(hours=1)),  # before the window
            sonnet,
            replace(sonnet, at=T0 + timedelta(seconds=1), cost_usd=0.02),
            event(served_model=None, requested_model="gpt-5", provider="openai", cost_usd=0.5),
            event(
                served_model=None,
                requested_model="a-name-the-agent-made-up",
                outcome=Outcome.REFUSED,
                priced=False,
                cost_usd=None,
                tokens=Tokens(),
                status=403,
            ),
            event(
                served_model=None,
                requested_model="another-made-up-name",
                outcome=Outcome.UPSTREAM_ERROR,
                priced=False,
                cost_usd=None,
                tokens=Tokens(),
                status=404,
            ),
            event(served_model=None, requested_model=None, tokens=Tokens(), cost_usd=None),
            event("docs", tokens=Tokens(input=7), cost_usd=0.001),
        ],
        [],
    )
    totals = await ledger.metering.usage_totals(T0)
    assert [(t.agent, t.provider, t.model, t.requests) for t in totals] == [
        ("coder-1", "anthropic", "(not served)", 2),
        ("coder-1", "anthropic", "?", 1),
        ("coder-1", "anthropic", "claude-sonnet-4-20250514", 2),
        ("coder-1", "openai", "gpt-5", 1),
        ("docs", "anthropic", "claude-sonnet-4-20250514", 1),
    ]
    assert totals[2] == UsageTotal(
        agent="coder-1",
        provider="anthropic",
        model="claude-sonnet-4-20250514",
        requests=2,
        tokens=Tokens(input=200, output=80, cache_read=4000, cache_write=600, reasoning=20),
        cost_usd=pytest.approx(0.03),  # type: ignore[arg-type]
        unpriced=0,
        partial=0,
        unmetered=0,
        errors=0,
        refused=0,
    )
    assert totals[2].total_tokens == 4880
    assert [t.refused for t in totals] == [1, 0, 0, 0, 0]
    assert [t.errors for t in totals] == [1, 0, 0, 0, 0]
    assert [t.agent for t in await ledger.metering.usage_totals(T0, agent="docs")] == ["docs"]
    assert await ledger.metering.usage_totals(T0 + timedelta(hours=1)) == []


async def test_usage_totals_cost_is_none_only_when_nothing_was_priced(ledger: Ledger) -> None:
    """Cost sums the priced rows; a group with no priced row has cost None, and metered
    rows without a price are counted as unpriced."""
    unpriced = event(served_model="mystery-1", cost_usd=None, priced=False)
    await ledger.metering.record_metering(
        [
            unpriced,
            replace(unpriced, outcome=Outcome.PARTIAL, partial=True),
            replace(unpriced, outcome=Outcome.UPSTREAM_ERROR, tokens=Tokens(), status=529),
            event(served_model="mixed-1", cost_usd=0.25),
            event(served_model="mixed-1", cost_usd=None, priced=False),
        ],
        [],
    )
    by_model = {t.model: t for t in await ledger.metering.usage_totals(T0)}
    assert by_model["mystery-1"].cost_usd is None
    assert (by_model["mystery-1"].unpriced, by_model["mystery-1"].partial) == (2, 1)
    assert by_model["mystery-1"].errors == 1
    assert by_model["mixed-1"].cost_usd == 0.25
    assert by_model["mixed-1"].unpriced == 1


async def test_usage_totals_count_each_kind_of_incomplete_request(ledger: Ledger) -> None:
    """Partial, unmetered, refused and errors (upstream error or unreachable) are counted."""
    outcomes = [
        Outcome.OK,
        Outcome.PARTIAL,
        Outcome.UNMETERED,
        Outcome.UNMETERED,
        Outcome.REFUSED,
        Outcome.UPSTREAM_ERROR,
        Outcome.UNREACHABLE,
        Outcome.CLIENT_GONE,
    ]
    await ledger.metering.record_metering([event(outcome=o) for o in outcomes], [])
    [only] = await ledger.metering.usage_totals(T0)
    assert (only.requests, only.partial, only.unmetered, only.refused, only.errors) == (
        8,
        1,
        2,
        1,
        2,
    )


async def test_tokens_by_agent_sums_every_kind_since_a_time(ledger: Ledger) -> None:
    """tokens_by_agent totals input, output, cache reads and writes (not reasoning twice)."""
    await ledger.metering.record_metering(
        [
            event("coder-1", T0 - timedelta(days=1)),
            event("coder-1", T0),
            event("coder-1", T0 + timedelta(hours=1), tokens=Tokens(input=5, output=5)),
            event("docs", T0, tokens=Tokens(cache_write=1)),
        ],
        [],
    )
    assert await ledger.metering.tokens_by_agent(T0) == {"coder-1": 2450, "docs": 1}
    assert await ledger.metering.tokens_by_agent(T0 + timedelta(days=1)) == {}


# -- quota signals --------------------------------------------------------------------------


async def test_quota_signals_filter_by_time_provider_and_agent(ledger: Ledger) -> None:
    """quota_signals returns rows oldest first, narrowed by since, provider and agent."""
    first = signal("x-ratelimit-remaining-requests", "99", provider="openai", family="x-ratelimit")
    second = signal("anthropic-ratelimit-requests-remaining", "40", T0 + timedelta(seconds=5))
    third = replace(second, agent="docs", at=T0 + timedelta(seconds=9))
    await ledger.metering.record_metering([], [third, first, second])
    assert await ledger.metering.quota_signals() == [first, second, third]
    assert await ledger.metering.quota_signals(provider="anthropic") == [second, third]
    assert await ledger.metering.quota_signals(agent="docs") == [third]
    assert await ledger.metering.quota_signals(
        since=T0 + timedelta(seconds=5), agent="coder-1"
    ) == [second]


async def test_latest_quota_signals_are_the_newest_per_provider_and_header(
    ledger: Ledger,
) -> None:
    """latest_quota_signals keeps the newest row of each (provider, name), whichever agent
    sent it; on equal times the later write wins."""
    name = "anthropic-ratelimit-unified-5h-utilization"
    await ledger.metering.record_metering(
        [],
        [
            signal(name, "0.10", T0),
            signal(name, "0.30", T0 + timedelta(minutes=2), agent="docs"),
            signal(name, "0.20", T0 + timedelta(minutes=1)),
            signal("anthropic-ratelimit-unified-status", "allowed", T0),
            signal("anthropic-ratelimit-unified-status", "rejected", T0),
            signal("x-codex-primary-used-percent", "12", T0, provider="openai", family="x-codex"),
        ],
    )
    latest = await ledger.metering.latest_quota_signals()
    assert [(s.provider, s.name, s.value, s.agent) for s in latest] == [
        ("anthropic", name, "0.30", "docs"),
        ("anthropic", "anthropic-ratelimit-unified-status", "rejected", "coder-1"),
        ("openai", "x-codex-primary-used-percent", "12", "coder-1"),
    ]
    assert [s.value for s in await ledger.metering.latest_quota_signals("openai")] == ["12"]
    assert await ledger.metering.latest_quota_signals("google") == []


async def test_one_row_the_database_cannot_hold_does_not_lose_its_batch(ledger: Ledger) -> None:
    """A row with a count past SQLite's integers is kept with its counts zeroed and flagged;
    the rest of its batch is written as it was."""
    bad = event(tokens=Tokens(input=2**63, output=1), cost_usd=float("inf"))
    await ledger.metering.record_metering([event("a"), bad, event("b")], [signal("x", "1")])
    rows = await ledger.metering.usage_events()
    assert [row.agent for row in rows] == ["a", "coder-1", "b"]
    assert rows[0] == event("a")
    assert rows[1].tokens == Tokens() and rows[1].outcome is Outcome.UNMETERED
    assert "out of range" in rows[1].reason and rows[1].cost_usd is None


async def test_usage_rows_carry_the_host_their_agent_runs_on(ledger: Ledger) -> None:
    """A request of an agent on box2 is counted under box2, one of a local agent (or of an
    agent the ledger does not know) under `local`; `usage --host` sums one host's."""
    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("far"), runtime="stub", host="box2"), DesiredState.RUNNING
    )
    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("near"), runtime="stub"), DesiredState.RUNNING
    )
    await ledger.metering.record_metering(
        [event("far"), event("far"), event("near"), event("stranger")], []
    )
    far = await ledger.metering.usage_totals(T0, host="box2")
    assert [(t.agent, t.requests) for t in far] == [("far", 2)]
    near = await ledger.metering.usage_totals(T0, host="local")
    assert sorted((t.agent, t.requests) for t in near) == [("near", 1), ("stranger", 1)]
    assert await ledger.metering.usage_totals(T0, host="box3") == []
    # A ledger opened afresh (a restarted orchestrator, a standby) reads the hosts again.
    await ledger.agents.list_agents()
    await ledger.metering.record_metering([event("far")], [])
    assert [(t.agent, t.requests) for t in await ledger.metering.usage_totals(T0, host="box2")] == [
        ("far", 3)
    ]


async def test_runs_record_the_host_of_their_agent(ledger: Ledger) -> None:
    """A run of an agent on box2 is recorded with host box2."""
    from fleet.model import RunHandle

    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("far"), runtime="stub", host="box2"), DesiredState.RUNNING
    )
    handle = RunHandle("tmux@box2", 11, 11, Path("/tmp/r"), Path("/tmp/l"), None, "far")
    run = await ledger.runs.start_run("far", handle)
    rows = await ledger.runs._all("SELECT host FROM runs WHERE id = ?", (run.id,))
    assert [str(row["host"]) for row in rows] == ["box2"]
    assert (await ledger.agents.get_agent("far")).host == "box2"  # type: ignore[union-attr]
