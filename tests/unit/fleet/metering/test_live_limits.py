"""Tests for hard limits on every request: fleet.budgets.pacing.live, the policy's reserve and
settle, fleet.metering.counting.estimate, and fleet.backends.freezer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from fleet.backends.freezer import children_map, signal_all, tree
from fleet.budgets.model import Transition
from fleet.budgets.pacing.live import LiveSpend
from fleet.budgets.pacing.policy import PacingPolicy
from fleet.ledger.records.budgets import Budget, Cutoff, Step
from fleet.metering.config import Price, PriceTable
from fleet.metering.counting.estimate import DEFAULT_OUTPUT, estimate
from fleet.metering.policy import Estimate, Refuse, RequestInfo, Reservation
from fleet.names import AgentName
from tests.unit.fleet.budgets.test_pacing_policy import (
    BUDGET,
    END,
    GOVERNING,
    GROUPS,
    LIMIT,
    MID,
    status,
)


def request(agent: str = "coder-1", at=MID) -> RequestInfo:  # type: ignore[no-untyped-def]
    return RequestInfo(AgentName(agent), "anthropic", "messages", "m", True, at)


LINE = (MID - (END - timedelta(days=7))) / timedelta(days=7)  # the line's share at MID
AT_NINETY = status(0.9 / LINE)


def near_limit(used_share: float = 0.9, budget: Budget = BUDGET) -> PacingPolicy:
    """A policy whose budget has used ``used_share`` of its limit at the last tick."""
    policy = PacingPolicy(GROUPS)
    policy.update([status(used_share / LINE, budget=budget)], GOVERNING, MID)
    return policy


def test_a_reservation_counts_until_it_settles_to_the_real_usage() -> None:
    live = LiveSpend()
    first = live.reserve("k", "tokens", 500.0)
    live.reserve("k", "tokens", 300.0)
    assert live.extra("k") == 800.0
    live.settle(first, 120.0)
    assert live.extra("k") == 420.0


def test_a_tick_forgets_what_settled_before_its_mark_only() -> None:
    """What settled before the tick read the ledger is in the ledger: dropped; what
    settled after may be in both (counted twice, never missed)."""
    live = LiveSpend()
    live.settle(live.reserve("k", "tokens", 1.0), 100.0)
    mark = live.mark()
    live.settle(live.reserve("k", "tokens", 1.0), 50.0)
    pending = live.reserve("k", "tokens", 7.0)
    live.rebase("k", mark)
    assert live.extra("k") == 57.0
    live.settle(pending, 0.0)
    assert live.extra("k") == 50.0


def test_requests_are_refused_once_the_live_total_reaches_the_limit() -> None:
    policy = near_limit(0.9)  # 100 000 tokens left
    claims = [policy.reserve(request(), Estimate(40_000)) for _ in range(4)]
    assert all(isinstance(c, Reservation) for c in claims[:3])
    refused = claims[3]
    assert isinstance(refused, Refuse) and "reached its limit" in refused.reason
    assert refused.retry_after == (END - MID).total_seconds()


def test_a_settle_at_the_limit_moves_the_budget_to_refuse_between_ticks_once() -> None:
    policy = near_limit(0.9)
    posted: list[Transition] = []
    policy.on_transition = posted.append
    claim = policy.reserve(request(), Estimate(10))
    assert isinstance(claim, Reservation)
    mark = policy.live.mark()  # a tick reads the ledger before this answer is in it
    policy.settle(claim, int(LIMIT * 0.2), None)  # the answer was far bigger than estimated
    assert [t.after for t in posted] == [Step.REFUSE]
    assert isinstance(policy.decide(request()), Refuse)
    assert isinstance(policy.reserve(request("coder-2"), Estimate(1)), Refuse)
    assert len(posted) == 1  # one notice per transition, never one per request
    # The next tick, reading a ledger that does not have it yet, keeps refusing.
    policy.update([AT_NINETY], GOVERNING, MID, mark)
    assert policy.place_of(BUDGET.key)[0] is Step.REFUSE


def test_the_refuse_message_says_what_the_cutoff_does() -> None:
    frozen = Budget(BUDGET.scope, BUDGET.window, limit_tokens=int(LIMIT), cutoff=Cutoff.FREEZE)
    policy = near_limit(0.999, frozen)
    posted: list[Transition] = []
    policy.on_transition = posted.append
    claim = policy.reserve(request(), Estimate(10))
    assert isinstance(claim, Reservation)
    policy.settle(claim, int(LIMIT), None)
    assert "freezing its agents (coder-1, coder-2)" in posted[0].message
    assert "`resume NAME`" in posted[0].message


def test_an_agent_new_since_the_tick_is_governed_by_its_groups_budget() -> None:
    groups = GROUPS
    policy = near_limit(0.9)
    assert "coder-3" not in GOVERNING and groups.members.get("coder-3") is None
    assert policy.reserve(request("coder-3"), Estimate(1)) is None  # no budget over it
    policy2 = PacingPolicy(groups)
    policy2.update([status(1.0)], {}, MID)  # the tick saw no agent at all
    assert isinstance(policy2.reserve(request("coder-1"), Estimate(1)), Reservation)


def test_the_estimate_is_body_size_plus_the_output_cap() -> None:
    prices = PriceTable({"m": Price(input=3.0, output=15.0)})
    est = estimate({"max_tokens": 1000}, 4000, "m", prices)
    assert est.tokens == 1000 + 1000
    assert est.usd is not None and abs(est.usd - (1000 * 3 + 1000 * 15) / 1e6) < 1e-9
    assert estimate(None, 0, None, PriceTable()).tokens == DEFAULT_OUTPUT
    assert estimate({"max_output_tokens": 5}, 0, None, PriceTable()).tokens == 5
    assert estimate({"max_tokens": True}, 0, None, PriceTable()).tokens == DEFAULT_OUTPUT
    assert estimate({"max_tokens": 10**12}, 0, None, PriceTable()).tokens == 1_000_000


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def test_freezing_stops_every_process_of_the_tree_even_one_that_left_the_group() -> None:
    """A parent with a child in its own session (setsid): SIGSTOP reaches both, SIGCONT
    continues both."""
    script = (
        "import os, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(tree(parent.pid, children_map())) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = tree(parent.pid, children_map())
        assert len(pids) == 2
        assert signal_all(parent.pid, parent.pid, signal.SIGSTOP) == 2
        deadline = time.monotonic() + 5
        while any(_state(p) != "T" for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [_state(p) for p in pids] == ["T", "T"]
        signal_all(parent.pid, parent.pid, signal.SIGCONT)
        deadline = time.monotonic() + 5
        while any(_state(p) == "T" for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(_state(p) != "T" for p in pids)
    finally:
        for pid in tree(parent.pid, children_map()):
            os.kill(pid, signal.SIGKILL)
        parent.wait()


def test_live_totals_stay_exact_over_many_settles_and_ticks() -> None:
    """The running sums equal a fresh sum after thousands of reserves, settles and ticks."""
    live = LiveSpend()
    settled: list[tuple[int, float]] = []
    pending = []
    for n in range(1, 3001):
        claim = live.reserve("k", "tokens", float(n % 97 + 1))
        pending.append((claim, float(n % 89)))
        if n % 3 == 0:
            done, actual = pending.pop(0)
            live.settle(done, actual)
            if actual > 0:
                settled.append((live.mark(), actual))
        if n % 500 == 0:
            mark = live.mark() - 7
            live.rebase("k", mark)
            settled = [(m, a) for m, a in settled if m > mark]
    inflight = sum(float(claim.amount) for claim, _ in pending)
    assert live.extra("k") == sum(a for _, a in settled) + inflight
    for claim, actual in pending:
        live.settle(claim, actual)
    live.rebase("k", live.mark())
    assert live.extra("k") == 0.0
