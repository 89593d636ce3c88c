"""Tests for fleet.budgets.pacing.policy: the ladder's state machine and the proxy's verdicts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fleet.budgets.model import BudgetStatus, Groups, Source
from fleet.budgets.pacing.law import Spent, assess, catch_up_time
from fleet.budgets.pacing.policy import ASK_LOOK, MARGIN, MAX_HOLD, SETTLE, PacingPolicy
from fleet.ledger.records.budgets import (
    Budget,
    Burst,
    Cutoff,
    Scope,
    Step,
    WindowKind,
    WindowSpec,
)
from fleet.metering.policy import ALLOW, Estimate, Hold, Refuse, RequestInfo, Rewrite, Verdict
from fleet.names import AgentName

START = datetime(2025, 3, 3, tzinfo=UTC)
END = START + timedelta(days=7)
MID = START + timedelta(days=3, hours=12)
LIMIT = 1_000_000.0
OPUS, SONNET, HAIKU = "claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"
LADDER = {"claude": (OPUS, SONNET, HAIKU), "codex": ("gpt-5", "gpt-5-mini")}
BUDGET = Budget(
    Scope("group", "team"),
    WindowSpec(WindowKind.ROLLING, length=timedelta(days=7)),
    limit_tokens=int(LIMIT),
    ladder=LADDER,
)
NO_LADDER = Budget(BUDGET.scope, BUDGET.window, limit_tokens=int(LIMIT))
KEY = BUDGET.key
GROUPS = Groups(parents={"team": None}, members={"coder-1": "team", "coder-2": "team"})
GOVERNING = {"coder-1": KEY, "coder-2": KEY}
TICK = timedelta(minutes=1)


def status(
    ratio: float, now: datetime = MID, burn: float = 0.0, budget: Budget = BUDGET
) -> BudgetStatus:
    """The budget at ``ratio`` × the even-spread line at ``now``, burning ``burn``/hour."""
    line = LIMIT * (now - START) / (END - START)
    return assess(
        budget,
        start=START,
        end=END,
        now=now,
        spent=Spent(used=min(line * ratio, LIMIT), limit=LIMIT, unit="tokens", burn_rate=burn),
        source=Source.METERING,
    )


def ask(
    policy: PacingPolicy, model: str | None = OPUS, at: datetime = MID, agent: str = "coder-1"
) -> Verdict:
    """The policy's verdict on one request from ``agent``."""
    return policy.decide(RequestInfo(AgentName(agent), "anthropic", "messages", model, True, at))


def climbed(steps: int, now: datetime = MID) -> PacingPolicy:
    """A policy whose budget has been over pace for ``steps`` ticks up to ``now``."""
    policy = PacingPolicy(GROUPS)
    for k in range(steps):
        policy.update([status(1.5, now - (steps - 1 - k) * TICK)], GOVERNING, now)
    return policy


# --- none and downgrade ----------------------------------------------------------------------


def test_an_agent_without_a_budget_goes_through() -> None:
    """No governing budget, no opinion."""
    policy = climbed(3)
    assert ask(policy, agent="stranger") is ALLOW


def test_on_pace_requests_go_through_and_nothing_is_posted() -> None:
    """A budget on its line stays at none, silently."""
    policy = PacingPolicy(GROUPS)
    assert policy.update([status(1.0)], GOVERNING, MID) == []
    assert ask(policy) is ALLOW


def test_over_pace_downgrades_one_rung_and_says_so_once() -> None:
    """Beyond the tolerance: one rung down on each ladder, one transition to post."""
    policy = PacingPolicy(GROUPS)
    [transition] = policy.update([status(1.35)], GOVERNING, MID)
    assert (transition.before, transition.after) == (Step.NONE, Step.DOWNGRADE)
    assert transition.agents == ("coder-1", "coder-2")
    assert transition.message == (
        f"{KEY} is 35 % over pace: downgrading {OPUS} → {SONNET}, gpt-5 → gpt-5-mini"
    )
    assert ask(policy) == Rewrite(SONNET, f"{KEY} is over pace")


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (OPUS, Rewrite(HAIKU, f"{KEY} is over pace")),
        (SONNET, Rewrite(HAIKU, f"{KEY} is over pace")),
        (HAIKU, ALLOW),
        ("gpt-5", Rewrite("gpt-5-mini", f"{KEY} is over pace")),
        ("some-other-model", ALLOW),
        (None, ALLOW),
    ],
)
def test_a_rewrite_goes_down_from_the_requested_model(
    requested: str | None, expected: object
) -> None:
    """Two rungs below what was asked, clamped at the floor; models on no ladder go as asked."""
    policy = climbed(2)
    assert ask(policy, requested) == expected


def test_each_tick_still_over_pace_is_one_more_rung() -> None:
    """Over pace again: down another rung, announced as further."""
    policy = climbed(1)
    [transition] = policy.update([status(1.35, MID + TICK)], GOVERNING, MID + TICK)
    assert (transition.before, transition.after) == (Step.DOWNGRADE, Step.DOWNGRADE)
    assert transition.message == f"{KEY} is 35 % over pace: downgrading further {SONNET} → {HAIKU}"


# --- queue -------------------------------------------------------------------------------------


def test_at_the_floor_and_still_over_pace_requests_are_held() -> None:
    """After the floor, the queue: holds of at most max_hold, until margin/2 under the line;
    the notice says new launches wait in the queue (where `queue` shows them)."""
    policy = climbed(2)
    now = MID + TICK
    over = status(1.35, now)
    [transition] = policy.update([over], GOVERNING, now)
    assert (transition.before, transition.after) == (Step.DOWNGRADE, Step.QUEUE)
    until = catch_up_time(LIMIT, over.used, START, END) + MARGIN / 2
    assert policy.queued_until("coder-1") == until
    assert transition.message == (
        f"{KEY} is 35 % over pace at the cheapest models: holding requests until "
        f"{until:%a %H:%M}; new launches wait in the queue until then (`queue` lists them)"
    )
    verdict = ask(policy, at=now)
    assert isinstance(verdict, Hold)
    assert verdict.until == now + MAX_HOLD
    assert verdict.reason == f"{KEY} is over pace: queued until {until:%a %H:%M}"


def test_a_short_queue_holds_until_it_clears() -> None:
    """A hold never lasts past queued_until; after it, requests go at the floor."""
    policy = climbed(2)
    now = MID + SETTLE
    policy.update([status(1.0005, now, burn=1e6)], GOVERNING, now)
    until = policy.queued_until("coder-1")
    assert until is not None
    later = until - timedelta(minutes=5)
    assert ask(policy, at=later) == Hold(until, f"{KEY} is over pace: queued until {until:%H:%M}")
    assert ask(policy, at=until) == Rewrite(HAIKU, f"{KEY} is over pace")


def test_the_queue_clears_by_the_reset_at_the_latest() -> None:
    """Near the end, queued_until is capped at the window's end."""
    policy = PacingPolicy(GROUPS)
    now = END - timedelta(minutes=30)
    ratio = (END - timedelta(minutes=10) - START) / (now - START)  # the line 10 minutes on
    policy.update([status(ratio, now, burn=1e9, budget=NO_LADDER)], GOVERNING, now)
    assert policy.queued_until("coder-1") == END


def test_without_a_ladder_over_pace_goes_straight_to_the_queue() -> None:
    """Nothing cheaper to serve: the first step is the queue."""
    policy = PacingPolicy(GROUPS)
    [transition] = policy.update([status(1.35, budget=NO_LADDER)], GOVERNING, MID)
    assert transition.after is Step.QUEUE
    assert "with no cheaper model" in transition.message
    assert isinstance(ask(policy), Hold)


# --- refuse ----------------------------------------------------------------------------------


def test_the_hard_limit_refuses_until_the_reset() -> None:
    """At the limit: 429 with retry-after = seconds to the window's end."""
    policy = climbed(1)
    now = END - timedelta(hours=6)
    [transition] = policy.update([status(2.0, now)], GOVERNING, now)
    assert (transition.before, transition.after) == (Step.DOWNGRADE, Step.REFUSE)
    assert transition.message == (
        f"{KEY} reached its limit (1,000,000 tokens): refusing requests until "
        f"{END:%a %H:%M} (reset)"
    )
    assert ask(policy, at=now) == Refuse(6 * 3600.0, f"{KEY} reached its limit")
    assert ask(policy, at=END) is ALLOW  # reset: the next tick will see the new window


def test_a_limit_that_asks_holds_requests_until_it_is_raised() -> None:
    """`cutoff: ask`: at the limit a request is held, looked at again in a second — never
    refused while the operators are asked; one reaching the limit between two looks is
    refused with a short retry-after; once the limit is raised it goes on."""
    asking = replace(BUDGET, cutoff=Cutoff.ASK)
    policy = PacingPolicy(GROUPS)
    now = END - timedelta(hours=6)
    policy.update([status(2.0, now, budget=asking)], GOVERNING, now)
    held = ask(policy, at=now)
    assert held == Hold(
        now + ASK_LOOK, f"{KEY} reached its limit; its operators are asked to raise it"
    )
    late = policy.reserve(
        RequestInfo(AgentName("coder-1"), "anthropic", "messages", OPUS, True, now),
        Estimate(100),
    )
    assert isinstance(late, Refuse) and late.retry_after == 2 * ASK_LOOK.total_seconds()
    policy.update([status(1.0, now, budget=asking)], GOVERNING, now)  # raised: under it again
    assert not isinstance(ask(policy, at=now), Hold | Refuse)


def test_a_new_window_starts_again_from_none() -> None:
    """Leaving refuse (the window reset) clears the ladder and says so."""
    policy = climbed(1)
    policy.update([status(2.0, END - TICK)], GOVERNING, END - TICK)
    fresh = assess(
        BUDGET,
        start=END,
        end=END + timedelta(days=7),
        now=END + TICK,
        spent=Spent(used=0.0, limit=LIMIT, unit="tokens", burn_rate=0.0),
        source=Source.METERING,
    )
    [transition] = policy.update([fresh], GOVERNING, END + TICK)
    assert (transition.before, transition.after) == (Step.REFUSE, Step.NONE)
    assert transition.message == f"{KEY}'s window has reset: requests go through again"
    assert ask(policy, at=END + TICK) is ALLOW


# --- hysteresis ------------------------------------------------------------------------------


def test_above_the_line_and_slowing_down_holds_the_place() -> None:
    """Within the tolerance and not heading for exhaustion: no move, nothing posted."""
    policy = climbed(1)
    assert policy.update([status(1.05, MID + TICK)], GOVERNING, MID + TICK) == []
    assert ask(policy, at=MID + TICK) == Rewrite(SONNET, f"{KEY} is over pace")


def test_under_the_line_but_within_the_margin_holds_the_place() -> None:
    """Just under the line is not yet back on pace: the margin is 30 minutes of line."""
    policy = climbed(1)
    now = MID + TICK
    just_under = 1 - (MARGIN / 2) / (now - START)
    assert policy.update([status(just_under, now)], GOVERNING, now) == []


def test_a_margin_under_the_line_steps_down_one_place_per_tick() -> None:
    """From the queue back to none takes three ticks, one place each, each posted."""
    policy = climbed(3)
    seen = []
    for k in range(1, 5):
        now = MID + k * TICK
        seen += policy.update([status(0.9, now)], GOVERNING, now)
    assert [(t.before, t.after) for t in seen] == [
        (Step.QUEUE, Step.DOWNGRADE),
        (Step.DOWNGRADE, Step.DOWNGRADE),
        (Step.DOWNGRADE, Step.NONE),
    ]
    assert [t.message for t in seen] == [
        f"{KEY} is back on pace: resuming requests, at {HAIKU}, gpt-5-mini",
        f"{KEY} is back on pace: upgrading {HAIKU} → {SONNET}",
        f"{KEY} is back on pace: models as requested",
    ]


def test_heading_for_exhaustion_above_the_line_escalates_once_settled() -> None:
    """Above the line and running out escalates, one place per ``settle``."""
    policy = PacingPolicy(GROUPS)
    fast = 1e6  # far above the target rate
    [first] = policy.update([status(1.02, MID, burn=fast)], GOVERNING, MID)
    assert first.message.startswith(f"{KEY} is 2.0 % over pace and on course to run out at ")
    soon = MID + SETTLE - TICK
    assert policy.update([status(1.02, soon, burn=fast)], GOVERNING, soon) == []
    settled = MID + SETTLE
    [second] = policy.update([status(1.02, settled, burn=fast)], GOVERNING, settled)
    assert second.message.startswith(f"{KEY} is 2.0 % over pace and on course to run out")
    assert "downgrading further" in second.message


def test_beyond_the_tolerance_escalates_without_waiting_to_settle() -> None:
    """Far over pace is urgent: one place per tick."""
    policy = climbed(3)
    assert policy.queued_until("coder-1") is not None


# --- bursts ----------------------------------------------------------------------------------


def burst(scope: Scope, until: datetime = MID + timedelta(hours=2)) -> Burst:
    return Burst(scope, until, granted_by="@admin:example.org", reason="release day")


@pytest.mark.parametrize(
    "scope", [Scope("group", "team"), Scope("agent", "coder-1"), Scope("global")]
)
def test_a_burst_on_a_covering_scope_lets_queued_requests_through(scope: Scope) -> None:
    """A burst on the budget's scope, the agent's or a broader one: allowed as asked."""
    policy = climbed(3)
    policy.allow_burst(burst(scope))
    assert ask(policy) is ALLOW
    assert policy.queued_until("coder-1") is None


def test_a_burst_elsewhere_or_expired_changes_nothing() -> None:
    """Another agent's burst, or one that has ended, leaves the queue in place."""
    policy = climbed(3)
    policy.allow_burst(burst(Scope("agent", "coder-2")))
    policy.allow_burst(burst(Scope("group", "team"), until=MID - TICK))
    assert isinstance(ask(policy), Hold)
    assert ask(policy, agent="coder-2") is ALLOW


def test_a_burst_lets_downgraded_requests_through_as_asked() -> None:
    """Within a burst the requested model is served."""
    policy = climbed(1)
    policy.allow_burst(burst(Scope("group", "team")))
    assert ask(policy) is ALLOW


def test_a_burst_does_not_pass_the_hard_limit() -> None:
    """A burst is permission to spend early, not to spend more: the limit still refuses."""
    policy = climbed(1)
    policy.update([status(2.0, END - timedelta(hours=1))], GOVERNING, END - timedelta(hours=1))
    policy.allow_burst(burst(Scope("global"), until=END))
    assert isinstance(ask(policy, at=END - timedelta(hours=1)), Refuse)


def test_expired_bursts_are_forgotten_at_the_next_tick() -> None:
    """A burst that ended before the tick no longer shows in the budget's status."""
    policy = climbed(1)
    policy.allow_burst(burst(BUDGET.scope, until=MID + TICK))
    assert policy.annotate(status(1.35)).burst is not None
    policy.update([status(1.35, MID + 2 * TICK)], GOVERNING, MID + 2 * TICK)
    assert policy.annotate(status(1.35, MID + 2 * TICK)).burst is None


# --- spawns -----------------------------------------------------------------------------------


def test_spawns_go_ahead_without_a_budget_or_an_estimate() -> None:
    """Nothing governs, or nothing is known about the launch: it goes."""
    policy = climbed(1)
    assert policy.admit_spawn("stranger", urgent=False, expected_tokens=1e9) == (True, "")
    assert policy.admit_spawn("coder-1", urgent=False, expected_tokens=None) == (True, "")


def test_a_launch_that_fits_the_pace_goes_and_one_that_does_not_waits() -> None:
    """The learned estimate decides, against the room under the tolerance line."""
    policy = PacingPolicy(GROUPS)
    policy.update([status(1.0)], GOVERNING, MID)  # 500,000 used, 50,000 of room
    assert policy.admit_spawn("coder-1", urgent=False, expected_tokens=40_000) == (True, "")
    ok, why = policy.admit_spawn("coder-1", urgent=False, expected_tokens=80_000)
    assert not ok
    assert why == (
        f"{KEY}: ~80,000 tokens expected, 50,000 fit the pace now; to start it now: "
        f"`budget allow-burst {KEY} --until 2h` (admin), then `spawn coder-1 --urgent`"
    )


def test_queued_budgets_defer_spawns_unless_urgent_within_a_burst() -> None:
    """Queued: deferred; --urgent alone is not enough; --urgent in a burst goes."""
    policy = climbed(3)
    until = policy.queued_until("coder-1")
    assert until is not None
    assert policy.admit_spawn("coder-1", urgent=False, expected_tokens=1.0) == (
        False,
        f"{KEY} is over pace, its requests queued until {until:%a %H:%M}; to start it now: "
        f"`budget allow-burst {KEY} --until 2h` (admin), then `spawn coder-1 --urgent`",
    )
    ok, why = policy.admit_spawn("coder-1", urgent=True, expected_tokens=1.0)
    assert not ok and "; --urgent needs a burst: `budget allow-burst " in why
    policy.allow_burst(burst(Scope("group", "team")))
    ok, why = policy.admit_spawn("coder-1", urgent=True, expected_tokens=1e9)
    assert ok and why.startswith("urgent, within the burst on group:team until ")


def test_no_spawn_passes_the_hard_limit() -> None:
    """Refusing: not even urgent launches in a burst."""
    policy = climbed(1)
    policy.update([status(2.0, END - timedelta(hours=1))], GOVERNING, END - timedelta(hours=1))
    policy.allow_burst(burst(Scope("global"), until=END))
    ok, why = policy.admit_spawn("coder-1", urgent=True, expected_tokens=1.0)
    assert not ok and why == (
        f"{KEY} reached its limit: no new launches until Mon 00:00 (reset); "
        f"`budget set {KEY} 2000000 --window 1w` (admin) doubles its limit"
    )


# --- reports and life cycle -------------------------------------------------------------------


def test_annotate_fills_in_the_enforcement_fields() -> None:
    """The report's status carries the step, rungs, queue time and burst."""
    policy = climbed(3)
    policy.allow_burst(burst(BUDGET.scope))
    annotated = policy.annotate(status(1.35))
    assert (annotated.step, annotated.level) == (Step.QUEUE, 2)
    assert annotated.queued_until is not None
    assert annotated.burst is not None and annotated.burst.reason == "release day"


def test_a_removed_budget_releases_its_agents() -> None:
    """A budget no longer in the tick's statuses: its agents go through, and that is said."""
    policy = climbed(3)
    [transition] = policy.update([], {}, MID + TICK)
    assert (transition.before, transition.after) == (Step.QUEUE, Step.NONE)
    assert transition.message == f"{KEY} is no longer budgeted: requests go through as asked"
    assert ask(policy) is ALLOW


def test_a_redefined_budget_keeps_its_place_within_the_new_ladder() -> None:
    """A shorter ladder on reload clamps the place instead of forgetting it."""
    policy = climbed(2)
    shorter = Budget(BUDGET.scope, BUDGET.window, limit_tokens=int(LIMIT), ladder={"x": ("a", "b")})
    policy.update([status(1.05, MID + TICK, budget=shorter)], GOVERNING, MID + TICK)
    assert policy.annotate(status(1.05, MID + TICK, budget=shorter)).step is Step.QUEUE


@pytest.mark.parametrize(
    "kwargs",
    [{"max_hold": timedelta(0)}, {"margin": -TICK}, {"settle": -TICK}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, timedelta]) -> None:
    """A zero hold or a negative margin is a ValueError."""
    with pytest.raises(ValueError):
        PacingPolicy(**kwargs)  # type: ignore[arg-type]


# --- restarts ---------------------------------------------------------------------------------


def test_a_resumed_budget_starts_where_it_was_without_posting_again() -> None:
    """After a restart the saved place is taken up as the budget is first seen: requests
    are downgraded at once, and staying over pace posts nothing new."""
    policy = PacingPolicy(GROUPS)
    policy.resume({KEY: (Step.DOWNGRADE, 1, MID - SETTLE / 2)})
    assert policy.place_of(KEY) == (Step.NONE, 0)  # not seen yet
    changes = policy.update([status(1.05, MID)], GOVERNING, MID)  # within the tolerance
    assert changes == []
    assert policy.place_of(KEY) == (Step.DOWNGRADE, 1)
    assert ask(policy) == Rewrite(SONNET, ask(policy).reason)  # type: ignore[union-attr]
