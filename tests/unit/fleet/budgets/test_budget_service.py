"""Tests for fleet.budgets.service: the running BudgetBook over a real ledger, driven by a
manual clock — statuses from metering and quota signals, the tick, set and burst, windows,
the next reset and learned spend at launch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fleet.budgets.model import BudgetError, BudgetStatus, Groups, PaceStatus, Source, Transition
from fleet.budgets.pacing.policy import PacingPolicy
from fleet.budgets.pacing.readings import SIGNAL_FRESHNESS
from fleet.budgets.service import BudgetService
from fleet.ledger import Ledger
from fleet.ledger.records.budgets import (
    Budget,
    Burst,
    Confidence,
    Scope,
    Step,
    WindowKind,
    WindowSpec,
)
from fleet.metering.counting.events import Outcome, QuotaSignal, Tokens, UsageEvent
from fleet.metering.policy import ALLOW, Hold, RequestInfo, Rewrite, Verdict
from fleet.model import AgentSpec, DesiredState, ExitInfo, RunHandle
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.job_context import RecordingBoard
from tests.fakes.doubles.stores import budget_stores
from tests.unit.chat_fakes import T0

DAY = datetime(2025, 3, 1, tzinfo=UTC)  # the 24 h window (epoch-anchored) holding T0, noon
HOUR = timedelta(hours=1)
UTC_ZONE = ZoneInfo("UTC")
ADMIN = "@ann:example.org"
OPUS, SONNET, HAIKU = "claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"
GROUPS = Groups(
    parents={"team": "eng", "eng": None, "ops": None},
    members={"coder-1": "team", "coder-2": "team", "ops-1": "ops"},
)


# --- Builders ---------------------------------------------------------------------------------


def daily(scope: str, tokens: int | None = 1_000_000, **changes: object) -> Budget:
    """A budget on ``scope`` over a rolling 24 h window (epoch-anchored: UTC midnights)."""
    made = Budget(
        Scope.parse(scope), WindowSpec(WindowKind.ROLLING, length=timedelta(days=1)), tokens
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def rolling(scope: str, length: timedelta, **changes: object) -> Budget:
    made = Budget(
        Scope.parse(scope), WindowSpec(WindowKind.ROLLING, length=length), limit_tokens=1_000_000
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def use(agent: str, at: datetime, tokens: int, cost: float | None = None) -> UsageEvent:
    """One metered request of ``agent`` spending ``tokens`` (and ``cost``, if priced)."""
    return UsageEvent(
        at=at,
        agent=agent,
        provider="anthropic",
        api="anthropic",
        requested_model=OPUS,
        served_model=OPUS,
        tokens=Tokens(input=tokens),
        stream=True,
        status=200,
        outcome=Outcome.OK,
        latency_ms=100.0,
        ttfb_ms=10.0,
        request_id=None,
        cost_usd=cost,
        priced=cost is not None,
    )


def quota(
    family: str,
    window: str,
    metric: str,
    value: str,
    at: datetime = T0 - timedelta(minutes=2),
    provider: str = "anthropic",
) -> QuotaSignal:
    """A quota header as the proxy records it (``{family}-{window}-{metric}``)."""
    name = f"{family}-{window}-{metric}"
    return QuotaSignal(at, "coder-1", provider, family, name, value, window, metric)


def epoch(at: datetime) -> str:
    return str(int(at.timestamp()))


async def book(
    ledger: Ledger,
    clock: ManualClock,
    *budgets: Budget,
    tz: ZoneInfo = UTC_ZONE,
) -> BudgetService:
    """A started service over ``budgets`` (as from the config)."""
    service = BudgetService(
        stores=budget_stores(ledger),
        budgets={b.key: b for b in budgets},
        groups=GROUPS,
        timezone=tz,
        clock=clock,
        policy=PacingPolicy(GROUPS),
    )
    await service.start()
    return service


async def status_of(service: BudgetService, key: str) -> BudgetStatus:
    return next(s for s in await service.statuses() if s.budget.key == key)


def ask(service: BudgetService, agent: str, model: str = OPUS, at: datetime = T0) -> Verdict:
    """The proxy's question for one request of ``agent``."""
    request = RequestInfo(AgentName(agent), "anthropic", "messages", model, True, at)
    return service.policy.decide(request)


async def record(ledger: Ledger, usage: Sequence[UsageEvent]) -> None:
    await ledger.metering.record_metering(usage, [])


@pytest.fixture
async def sqlite_ledger(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Ledger]:
    """A ledger on the test's clock (so grants and settings are stamped with its time)."""
    opened = await Ledger.open(tmp_path / "ledger.db", clock)
    yield opened
    await opened.close()


# --- statuses() from metering -------------------------------------------------------------------

FLEET_USAGE = (
    replace(
        use("coder-1", DAY + HOUR, 0, cost=2.5),
        tokens=Tokens(input=40_000, output=10_000, cache_read=45_000, cache_write=5_000),
    ),
    use("ops-1", DAY + 2 * HOUR, 250_000, cost=1.0),
    use("coder-1", DAY + 3 * HOUR, 70_000),  # unpriced
    use("coder-2", DAY + timedelta(hours=11, minutes=30), 50_000, cost=4.0),
    use("coder-1", DAY - HOUR, 999_999, cost=9.0),  # the day before: another window
)
BUCKET = timedelta(seconds=432)  # a day in 200 chart buckets


async def test_a_group_token_budget_counts_only_its_agents_usage(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """A group's token budget sums every token kind its agents used in the window, nobody
    else's, and paces it: at noon the line is at half the limit."""
    await record(sqlite_ledger, FLEET_USAGE)
    service = await book(sqlite_ledger, clock, daily("group:team"))
    [status] = await service.statuses()
    assert (status.start, status.end, status.now) == (DAY, DAY + timedelta(days=1), T0)
    assert (status.unit, status.used, status.limit) == ("tokens", 220_000.0, 1_000_000.0)
    assert status.source is Source.METERING
    assert status.pace_ratio == 0.44  # 220k against the line's 500k
    assert status.target_rate == 780_000 / 12  # what is left over the 12 h left
    # Burned in the last hour: coder-2's 50k, for 12 more hours.
    assert status.projected_end_use == 820_000.0
    assert status.projected_exhaustion is None
    assert (status.status, status.step) == (PaceStatus.UNDER, Step.NONE)


async def test_the_series_is_cumulative_and_ends_at_used(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """The chart's series starts at 0 at the window's start and adds each bucket's use of
    the budget's agents, ending where ``used`` is."""
    await record(sqlite_ledger, FLEET_USAGE)
    service = await book(sqlite_ledger, clock, daily("group:team"))
    [status] = await service.statuses()
    assert status.series == (
        (DAY, 0.0),
        (DAY + 9 * BUCKET, 100_000.0),  # 01:00 is in bucket 8
        (DAY + 26 * BUCKET, 170_000.0),  # 03:00 starts bucket 25
        (DAY + 96 * BUCKET, 220_000.0),  # 11:30 is in bucket 95
    )
    assert status.series[-1][1] == status.used


async def test_a_usd_budget_counts_priced_cost(sqlite_ledger: Ledger, clock: ManualClock) -> None:
    """A budget with only a dollar limit is in ``usd``: priced cost counts, unpriced
    tokens do not, and its series is of cost too."""
    await record(sqlite_ledger, FLEET_USAGE)
    service = await book(sqlite_ledger, clock, daily("agent:coder-1", None, limit_usd=10.0))
    [status] = await service.statuses()
    assert (status.unit, status.used, status.limit) == ("usd", 2.5, 10.0)
    assert status.pace_ratio == 0.5
    assert status.projected_end_use == 2.5  # no spend in the last hour
    assert status.status is PaceStatus.UNDER
    assert status.series == ((DAY, 0.0), (DAY + 9 * BUCKET, 2.5), (DAY + 26 * BUCKET, 2.5))


async def test_the_global_budget_counts_every_agent(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """The global budget counts all agents' usage, and is listed before groups and agents."""
    await record(sqlite_ledger, FLEET_USAGE)
    service = await book(
        sqlite_ledger, clock, daily("agent:coder-1"), daily("group:team"), daily("global")
    )
    statuses = await service.statuses()
    assert [s.budget.key for s in statuses] == ["global", "group:team", "agent:coder-1"]
    overall, _, agent = statuses
    assert (overall.used, overall.pace_ratio, overall.status) == (470_000.0, 0.94, PaceStatus.ON)
    # 530k left at coder-2's 50k/h runs out in 10.6 h, before midnight.
    assert overall.projected_exhaustion == T0 + timedelta(hours=10, minutes=36)
    assert overall.series[-1] == (DAY + 96 * BUCKET, 470_000.0)
    assert [v for _, v in overall.series] == [0.0, 100_000.0, 350_000.0, 420_000.0, 470_000.0]
    assert agent.used == 170_000.0


# --- account budgets: the provider's word ------------------------------------------------------

UNIFIED = "anthropic-ratelimit-unified"
FIVE_HOURS = timedelta(hours=5)


async def test_fresh_anthropic_signals_give_used_and_the_reset(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """An ``anthropic`` account budget reads the 5h utilization as a fraction of its limit
    and the provider's reset as its window's end (said to be the provider's); other
    windows' headers are ignored."""
    reset = T0 + timedelta(hours=2, minutes=30)
    await sqlite_ledger.metering.record_metering(
        [use("coder-1", T0 - HOUR, 100_000)],
        [
            quota(UNIFIED, "5h", "utilization", "0.25"),
            quota(UNIFIED, "5h", "reset", epoch(reset)),
            quota(UNIFIED, "7d", "utilization", "0.9"),
            quota(UNIFIED, "7d", "reset", epoch(T0 + timedelta(days=3))),
        ],
    )
    service = await book(sqlite_ledger, clock, rolling("global", FIVE_HOURS, account="anthropic"))
    [status] = await service.statuses()
    assert (status.source, status.reset_confidence) == (Source.PROVIDER, Confidence.PROVIDER)
    assert (status.used, status.limit) == (250_000.0, 1_000_000.0)
    assert (status.start, status.end) == (reset - FIVE_HOURS, reset)
    assert status.pace_ratio == 0.5  # a quarter used, half the window gone


async def test_a_utilization_above_one_is_a_percentage(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """A utilization of ``25`` is read as 25 %, not 25 times the limit."""
    reset = T0 + HOUR
    await sqlite_ledger.metering.record_metering(
        [],
        [
            quota(UNIFIED, "5h", "utilization", "25"),
            quota(UNIFIED, "5h", "reset", epoch(reset)),
        ],
    )
    service = await book(sqlite_ledger, clock, rolling("global", FIVE_HOURS, account="anthropic"))
    [status] = await service.statuses()
    assert (status.source, status.used, status.end) == (Source.PROVIDER, 250_000.0, reset)


@pytest.mark.parametrize(
    ("age", "source", "used"),
    [
        (SIGNAL_FRESHNESS, Source.PROVIDER, 250_000.0),
        (SIGNAL_FRESHNESS + timedelta(seconds=1), Source.ESTIMATED, 100_000.0),
    ],
)
async def test_stale_signals_fall_back_to_our_metering(
    sqlite_ledger: Ledger, clock: ManualClock, age: timedelta, source: Source, used: float
) -> None:
    """Signals up to SIGNAL_FRESHNESS old are the provider's word; older ones are ignored
    and the budget shows our own metering as ``estimated``, in its own window (its reset
    estimated too)."""
    await sqlite_ledger.metering.record_metering(
        [use("coder-1", T0 - HOUR, 100_000)],
        [
            quota(UNIFIED, "5h", "utilization", "0.25", at=T0 - age),
            quota(UNIFIED, "5h", "reset", epoch(T0 + HOUR), at=T0 - age),
        ],
    )
    service = await book(sqlite_ledger, clock, rolling("global", FIVE_HOURS, account="anthropic"))
    [status] = await service.statuses()
    assert (status.source, status.used) == (source, used)
    assert status.reset_confidence.value == source.value  # provider, or estimated
    if source is Source.ESTIMATED:  # the epoch-anchored 5 h window: 08:00 to 13:00
        assert (status.start, status.end) == (T0 - 4 * HOUR, T0 + HOUR)


async def test_an_account_without_signals_is_estimated(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """No quota headers at all: our metering, marked ``estimated``, never silence."""
    await record(sqlite_ledger, [use("coder-1", T0 - HOUR, 100_000)])
    service = await book(sqlite_ledger, clock, rolling("global", FIVE_HOURS, account="anthropic"))
    [status] = await service.statuses()
    assert (status.source, status.used) == (Source.ESTIMATED, 100_000.0)


async def test_codex_signals_match_the_budgets_window_by_its_minutes(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """An ``openai`` account budget takes the Codex window (primary or secondary) whose
    ``window-minutes`` equals its length; a length no window has is estimated."""
    primary_reset, secondary_reset = T0 + HOUR, T0 + timedelta(days=3)
    signals = [
        quota("x-codex", "primary", "used-percent", "30", provider="openai"),
        quota("x-codex", "primary", "window-minutes", "300", provider="openai"),
        quota("x-codex", "primary", "reset-at", epoch(primary_reset), provider="openai"),
        quota("x-codex", "secondary", "used-percent", "80", provider="openai"),
        quota("x-codex", "secondary", "window-minutes", "10080", provider="openai"),
        quota("x-codex", "secondary", "reset-at", epoch(secondary_reset), provider="openai"),
    ]
    await sqlite_ledger.metering.record_metering([], signals)
    week = timedelta(days=7)
    service = await book(
        sqlite_ledger,
        clock,
        rolling("global", FIVE_HOURS, account="openai"),
        rolling("group:team", week, account="openai"),
        rolling("agent:coder-1", HOUR, account="openai"),
    )
    five_hours, weekly, hourly = await service.statuses()
    assert (five_hours.source, five_hours.used) == (Source.PROVIDER, 300_000.0)
    assert (five_hours.start, five_hours.end) == (primary_reset - FIVE_HOURS, primary_reset)
    assert (weekly.source, weekly.used) == (Source.PROVIDER, 800_000.0)
    assert (weekly.start, weekly.end) == (secondary_reset - week, secondary_reset)
    assert (hourly.source, hourly.used) == (Source.ESTIMATED, 0.0)


# --- tick() and the policy ---------------------------------------------------------------------

LADDER = {"claude": (OPUS, SONNET, HAIKU)}


async def test_an_agent_far_over_pace_is_downgraded_by_the_most_specific_budget(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """A tick moves a budget far over pace to downgrade, once; its agents' requests are
    rewritten a rung down, while an agent with its own budget (the most specific scope)
    and agents under the generous global one go through."""
    service = await book(
        sqlite_ledger,
        clock,
        daily("global", 10_000_000),
        daily("group:team", ladder=LADDER),
        daily("agent:coder-2", 2_000_000),
    )
    await record(
        sqlite_ledger,
        [
            use("coder-1", DAY + HOUR, 900_000),
            use("coder-2", DAY + 2 * HOUR, 10_000),
            use("ops-1", DAY + 2 * HOUR, 10_000),
        ],
    )
    transitions = await service.tick()
    assert transitions == [
        Transition(
            "group:team",
            ("coder-1",),
            Step.NONE,
            Step.DOWNGRADE,
            f"group:team is 82 % over pace: downgrading {OPUS} → {SONNET}",
        )
    ]
    assert ask(service, "coder-1") == Rewrite(SONNET, "group:team is over pace")
    assert ask(service, "coder-1", HAIKU) == ALLOW  # already at the ladder's floor
    assert ask(service, "coder-2") == ALLOW
    assert ask(service, "ops-1") == ALLOW
    team = await status_of(service, "group:team")
    assert (team.used, team.status, team.step, team.level) == (
        910_000.0,
        PaceStatus.OVER,
        Step.DOWNGRADE,
        1,
    )
    # Still far over pace: one more place per tick, down to the queue, where it stays;
    # each change is returned once.
    steps = []
    for _ in range(3):
        clock.advance(60)
        steps.append([(t.before, t.after) for t in await service.tick()])
    assert steps == [[(Step.DOWNGRADE, Step.DOWNGRADE)], [(Step.DOWNGRADE, Step.QUEUE)], []]
    assert isinstance(ask(service, "coder-1", at=clock.now()), Hold)


async def test_agents_known_only_to_the_roster_are_governed_too(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """An agent in the ledger's roster that has not spent yet is governed by its group's
    budget from the first tick."""
    await sqlite_ledger.agents.upsert_agent(
        AgentSpec(AgentName("coder-2"), "claude"), DesiredState.RUNNING
    )
    await record(sqlite_ledger, [use("coder-1", DAY + HOUR, 900_000)])
    service = await book(sqlite_ledger, clock, daily("group:team", ladder=LADDER))
    assert ask(service, "coder-2") == Rewrite(SONNET, "group:team is over pace")


# --- set_budget ----------------------------------------------------------------------------------


async def test_a_contradictory_budget_is_refused_and_changes_nothing(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """set_budget raises BudgetError naming every fault; neither the ledger nor the
    budgets in force change."""
    configured = daily("global")
    service = await book(sqlite_ledger, clock, configured)
    bad = Budget(
        Scope("group", "nope"),
        WindowSpec(WindowKind.ROLLING, length=FIVE_HOURS),
        limit_tokens=0,
        tolerance=2.0,
    )
    with pytest.raises(BudgetError) as refused:
        await service.set_budget(bad, ADMIN)
    assert str(refused.value) == (
        "scope: unknown group 'nope'; known groups: eng, ops, team; "
        "limit_tokens: must be more than 0, found 0; "
        "tolerance: must be between 0 and 1, found 2.0"
    )
    past = Budget(
        Scope("global"), WindowSpec(WindowKind.FIXED, reset_at=T0 - HOUR), limit_tokens=1000
    )
    with pytest.raises(BudgetError, match=r"^reset_at: 2025-03-01 11:00 UTC is in the past"):
        await service.set_budget(past, ADMIN)
    assert await sqlite_ledger.budgets.command_budgets() == []
    assert service.budgets() == [configured]
    [status] = await service.statuses()
    assert status.budget == configured


async def test_a_set_budget_persists_and_a_new_service_takes_it_in(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """A valid budget is saved, replaces the config's of its scope at once, and a service
    started later over the same ledger has it in place of the config's."""
    configured = daily("global")
    service = await book(sqlite_ledger, clock, configured)
    wider = daily("global", 2_000_000, source="command")
    agent = rolling(
        "agent:coder-1",
        FIVE_HOURS,
        limit_tokens=200_000,
        ladder={"claude": (OPUS, HAIKU)},
        tolerance=0.2,
        source="command",
    )
    assert await service.set_budget(wider, ADMIN) == wider
    assert await service.set_budget(agent, ADMIN) == agent
    assert service.budgets() == [wider, agent]
    assert await sqlite_ledger.budgets.command_budgets() == [agent, wider]  # by scope
    assert [s.limit for s in await service.statuses()] == [2_000_000.0, 200_000.0]

    later = await book(sqlite_ledger, clock, configured)
    assert later.budgets() == [wider, agent]


async def test_setting_a_tighter_budget_takes_effect_at_once(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """set_budget re-ticks: the proxy's verdicts follow the new limit without waiting for
    the pacing job."""
    await record(sqlite_ledger, [use("coder-1", DAY + HOUR, 300_000)])
    service = await book(sqlite_ledger, clock, daily("group:team", ladder=LADDER))
    assert ask(service, "coder-1") == ALLOW
    await service.set_budget(daily("group:team", 400_000, ladder=LADDER), ADMIN)
    assert ask(service, "coder-1") == Rewrite(SONNET, "group:team is over pace")


# --- allow_burst --------------------------------------------------------------------------------


async def queued_team(ledger: Ledger, clock: ManualClock) -> BudgetService:
    """A service whose ``group:team`` budget (no ladder) is queued: 900k used by noon."""
    await record(ledger, [use("coder-1", DAY + HOUR, 900_000)])
    await ledger.agents.upsert_agent(
        AgentSpec(AgentName("coder-2"), "claude"), DesiredState.RUNNING
    )
    return await book(ledger, clock, daily("group:team"))


# The even-spread line reaches 900k at 21:36; the queue opens 15 minutes after that.
QUEUED_UNTIL = DAY + timedelta(hours=21, minutes=51)


async def test_a_burst_in_the_past_is_refused(sqlite_ledger: Ledger, clock: ManualClock) -> None:
    """A burst ending at or before now raises BudgetError and is not recorded."""
    service = await queued_team(sqlite_ledger, clock)
    with pytest.raises(BudgetError) as refused:
        await service.allow_burst(Burst(Scope("global"), T0 - timedelta(minutes=1), ADMIN))
    assert str(refused.value) == (
        "the burst would end at 2025-03-01 11:59 UTC, which has passed: give a time in the future"
    )
    with pytest.raises(BudgetError, match="has passed"):
        await service.allow_burst(Burst(Scope("global"), T0, ADMIN))
    assert await sqlite_ledger.budgets.active_bursts(T0) == []


@pytest.mark.parametrize("scope", ["agent:ops-1", "group:ops"])
async def test_a_burst_without_a_budget_over_its_scope_is_refused(
    sqlite_ledger: Ledger, clock: ManualClock, scope: str
) -> None:
    """A burst lifts a budget's pace: with no budget over the scope there is nothing to
    lift, so it is refused and not recorded."""
    service = await queued_team(sqlite_ledger, clock)
    with pytest.raises(BudgetError) as refused:
        await service.allow_burst(Burst(Scope.parse(scope), T0 + HOUR, ADMIN))
    assert str(refused.value) == (
        f"no budget applies to {scope}: a burst lifts a budget's pace, so set one first "
        "(`budget set`)"
    )
    assert await sqlite_ledger.budgets.active_bursts(T0) == []


@pytest.mark.parametrize("over", ["global", "group:eng"])
async def test_a_group_burst_under_a_broader_budget_is_granted(
    sqlite_ledger: Ledger, clock: ManualClock, over: str
) -> None:
    """A budget on global or on an ancestor group is over a group: a burst on that group
    is granted and lets the group's agents through the broader budget's queue."""
    await record(sqlite_ledger, [use("coder-1", DAY + HOUR, 900_000), use("ops-1", DAY, 1)])
    service = await book(sqlite_ledger, clock, daily(over))
    assert isinstance(ask(service, "coder-1"), Hold)
    granted = await service.allow_burst(Burst(Scope("group", "team"), T0 + HOUR, ADMIN))
    assert granted.granted_at == T0
    assert ask(service, "coder-1") == ALLOW
    if over == "global":
        assert isinstance(ask(service, "ops-1"), Hold)


async def test_a_burst_is_recorded_and_lets_its_agent_through_the_queue(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """A granted burst is stamped with now, kept in the ledger, and lets the agent's
    requests through its budget's queue (others still wait); a service started later
    takes the unexpired burst in."""
    service = await queued_team(sqlite_ledger, clock)
    hold = Hold(T0 + timedelta(minutes=15), "group:team is over pace: queued until 21:51")
    assert ask(service, "coder-1") == hold
    assert service.queued_until("coder-1") == QUEUED_UNTIL

    burst = Burst(Scope("agent", "coder-1"), T0 + 2 * HOUR, ADMIN, "release day")
    granted = await service.allow_burst(burst)
    assert granted == replace(burst, granted_at=T0)
    assert await sqlite_ledger.budgets.active_bursts(T0) == [granted]
    assert ask(service, "coder-1") == ALLOW
    assert service.queued_until("coder-1") is None
    assert ask(service, "coder-2") == hold
    [status] = await service.statuses()
    assert status.burst is None  # the budget's own scope has no burst; the agent's has

    later = await book(sqlite_ledger, clock, daily("group:team"))
    assert ask(later, "coder-1") == ALLOW
    assert ask(later, "coder-2") == hold


# --- admit_spawn with learned spend ----------------------------------------------------------


async def past_runs(
    ledger: Ledger, tmp_path: Path, agent: str, prompt: str, tokens: int, days: int = 3
) -> None:
    """``agent`` (claude, opus, ``prompt``) with one ended run per day before T0's window,
    each spending ``tokens``."""
    spec = AgentSpec(AgentName(agent), "claude", model=OPUS, prompt=prompt)
    await ledger.agents.upsert_agent(spec, DesiredState.RUNNING)
    handle = RunHandle("subprocess", 4242, 4242, tmp_path / agent, tmp_path / f"{agent}.log")
    for day in range(1, days + 1):
        began = DAY - timedelta(days=day)
        run = await ledger.runs.start_run(agent, handle, at=began)
        await record(ledger, [use(agent, began + timedelta(minutes=10), tokens)])
        await ledger.runs.end_run(run.id, ExitInfo(0, "exited"), at=began + HOUR)


async def test_a_launch_is_deferred_when_its_learned_spend_does_not_fit_the_pace(
    sqlite_ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """A launch is admitted when the median spend of past runs like it fits the budget's
    pace now, and deferred with the numbers when it does not."""
    await past_runs(sqlite_ledger, tmp_path, "coder-1", "fix the flaky tests", 600_000)
    await past_runs(sqlite_ledger, tmp_path, "coder-2", "review the diff", 200_000)
    await record(sqlite_ledger, [use("ops-1", DAY + HOUR, 1)])
    await record(sqlite_ledger, [use("coder-2", DAY + HOUR, 100_000)])
    service = await book(sqlite_ledger, clock, daily("group:team"))
    # The line is at 500k at noon; with 10 % tolerance, 450k more fit the pace.
    assert await service.admit_spawn("coder-1", urgent=False) == (
        False,
        "group:team: ~600,000 tokens expected, 450,000 fit the pace now; to start it now: "
        "`budget allow-burst group:team --until 2h` (admin), then `spawn coder-1 --urgent`",
    )
    assert await service.admit_spawn("coder-2", urgent=False) == (True, "")
    assert await service.admit_spawn("ops-1", urgent=False) == (True, "")  # no budget


async def test_a_queued_budget_defers_launches_unless_urgent_within_a_burst(
    sqlite_ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """While its budget queues, an agent's launch is deferred, even ``--urgent`` without a
    burst; the answer names the commands that start it now (``--urgent`` hinted before it
    is typed); with a burst on its group, an urgent launch goes through."""
    await past_runs(sqlite_ledger, tmp_path, "coder-1", "fix the flaky tests", 1_000)
    service = await queued_team(sqlite_ledger, clock)
    deferred = "group:team is over pace, its requests queued until 21:51; "
    grant = "`budget allow-burst group:team --until 2h` (admin), then `spawn coder-1 --urgent`"
    assert await service.admit_spawn("coder-1", urgent=False) == (
        False,
        deferred + "to start it now: " + grant,
    )
    assert await service.admit_spawn("coder-1", urgent=True) == (
        False,
        deferred + "--urgent needs a burst: " + grant,
    )
    await service.allow_burst(Burst(Scope("group", "team"), T0 + 2 * HOUR, ADMIN))
    assert await service.admit_spawn("coder-1", urgent=True) == (
        True,
        "urgent, within the burst on group:team until 14:00",
    )
    assert await service.admit_spawn("coder-1", urgent=False) == (
        False,
        deferred + "`spawn coder-1 --urgent` starts it now, within the burst on group:team "
        "until 14:00",
    )


async def test_a_restart_resumes_the_ladder_without_posting_it_again(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """The step a tick reached is saved; a new service over the same ledger starts there,
    and its first tick reports no change."""
    first = await queued_team(sqlite_ledger, clock)
    assert first.policy.place_of("group:team") == (Step.QUEUE, 0)
    assert (await sqlite_ledger.budgets.load_steps())["group:team"].step is Step.QUEUE
    again = await book(sqlite_ledger, clock, daily("group:team"))
    assert again.policy.place_of("group:team") == (Step.QUEUE, 0)
    assert await again.tick() == []
    board = RecordingBoard()
    third = BudgetService(
        stores=budget_stores(sqlite_ledger),
        budgets={},
        groups=GROUPS,
        timezone=UTC_ZONE,
        clock=clock,
        policy=PacingPolicy(GROUPS),
        notices=board,
    )
    await third.start()
    await third.set_budget(daily("group:team", tokens=2_000_000), ADMIN)
    [posted] = board.posted  # a change by command is posted, to the governed agents' threads
    assert "group:team" in posted.markdown and posted.agents


async def test_a_host_budget_counts_the_usage_of_the_agents_on_that_host(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """`scope: host:box2` sums what the agents on box2 used (their rows carry the host)
    and governs their requests — and nobody else's."""
    await sqlite_ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("far-1"), runtime="stub", host="box2"), DesiredState.RUNNING
    )
    await sqlite_ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("near-1"), runtime="stub"), DesiredState.RUNNING
    )
    await record(
        sqlite_ledger,
        [use("far-1", DAY + HOUR, 300_000), use("near-1", DAY + HOUR, 900_000)],
    )
    budget = replace(daily("host:box2"), limit_tokens=250_000)
    service = BudgetService(
        stores=budget_stores(sqlite_ledger),
        budgets={budget.key: budget},
        groups=GROUPS,
        timezone=UTC_ZONE,
        clock=clock,
        policy=PacingPolicy(GROUPS),
        via=lambda agent: [Scope("host", sqlite_ledger.agents.host_of(agent))],
    )
    await service.start()
    [status] = await service.statuses()
    assert (status.unit, status.used) == ("tokens", 300_000.0)
    assert ask(service, "far-1") != ALLOW  # over its host's budget: held or refused
    assert ask(service, "near-1") == ALLOW  # another host's agent: not governed
