"""The arithmetic of a run's cap: what a request may claim, one in-flight request of
overshoot, the refusal once the cap is reached (told once), dollars, and the order
against the budgets' policy."""

from __future__ import annotations

import random
from datetime import timedelta

from fleet.budgets.runs.caps import RETRY_INFLIGHT, CappedPolicy, RunCaps, RunClaim
from fleet.metering.policy import (
    ALLOW,
    AllowAll,
    Estimate,
    Hold,
    Refuse,
    RequestInfo,
    Reservation,
)
from fleet.model import RunBudget
from fleet.names import AgentName
from tests.unit.chat_fakes import T0

AGENT = AgentName("coder-1")


def request(at_seconds: float = 10.0, agent: str = AGENT) -> RequestInfo:
    return RequestInfo(AgentName(agent), "anthropic", "anthropic", "m", True, T0 + _s(at_seconds))


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def told(caps: RunCaps) -> list[tuple[str, str]]:
    heard: list[tuple[str, str]] = []
    caps.on_capped = lambda agent, message, cutoff: heard.append((agent, f"{cutoff}: {message}"))
    return heard


def test_requests_pass_until_what_settled_reaches_the_cap_then_all_are_refused() -> None:
    """Cap 50k at 30k a request: the second request is admitted (30k < 50k) and overshoots;
    the third is refused with 400, and the thread is told once."""
    caps = RunCaps()
    heard = told(caps)
    caps.arm(AGENT, 1, RunBudget(max_tokens=50_000), T0)
    for _ in range(2):
        claim = caps.claim(request(), Estimate(9000))
        assert isinstance(claim, RunClaim)
        caps.settle(claim, 30_000, None)
    refused = caps.claim(request(), Estimate(9000))
    assert isinstance(refused, Refuse) and refused.status == 400
    assert "run capped at 50,000 tokens: refused" in refused.reason
    assert "60,000 tokens" in refused.reason
    assert caps.check(request()) is not None  # refused before any budget is asked
    assert len(heard) == 1 and heard[0][0] == AGENT
    assert heard[0][1].startswith("refuse: **coder-1**: run capped at 50,000 tokens: refused")
    caps.claim(request(), Estimate(9000))
    assert len(heard) == 1  # once per run


def test_requests_in_flight_fill_the_cap_for_a_moment_only() -> None:
    """With one request in flight whose estimate reaches the cap, a second waits (429, a
    short retry-after); once the first settles under the cap, it may go."""
    caps = RunCaps()
    heard = told(caps)
    caps.arm(AGENT, 1, RunBudget(max_tokens=10_000), T0)
    first = caps.claim(request(), Estimate(12_000))
    assert isinstance(first, RunClaim)  # nothing spent yet: admitted whatever its size
    second = caps.claim(request(), Estimate(100))
    assert isinstance(second, Refuse)
    assert (second.status, second.retry_after) == (429, RETRY_INFLIGHT)
    caps.settle(first, 4000, None)
    assert isinstance(caps.claim(request(), Estimate(100)), RunClaim)
    assert heard == []


def test_a_dollar_cap_counts_cost_and_refuses_a_model_without_a_price() -> None:
    """$0.30 at $0.21 a request: the second overshoots, the third is refused; an estimate
    without a price is refused with 400 naming the model and the fix."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_usd=0.30), T0)
    unpriced = caps.claim(request(), Estimate(10, None, "m-free"))
    assert isinstance(unpriced, Refuse) and unpriced.status == 400
    assert "'m-free' has no price" in unpriced.reason and "price_default" in unpriced.reason
    for _ in range(2):
        claim = caps.claim(request(), Estimate(10, 0.05, "m"))
        assert isinstance(claim, RunClaim)
        caps.settle(claim, 30_000, 0.21)
    refused = caps.claim(request(), Estimate(10, 0.05, "m"))
    assert isinstance(refused, Refuse) and "run capped at $0.30: refused" in refused.reason


def test_a_cap_belongs_to_one_run_and_counts_what_it_spent_before_it_was_armed() -> None:
    """Spend settled after the run started but before its cap was armed counts; spend from
    before the run does not; the run's end takes its cap away."""
    caps = RunCaps()
    before = caps.claim(request(at_seconds=-5), Estimate(10))
    early = caps.claim(request(at_seconds=1), Estimate(10))
    assert isinstance(before, RunClaim) and isinstance(early, RunClaim)
    caps.settle(before, 40_000, None)
    caps.settle(early, 45_000, None)
    caps.arm(AGENT, 7, RunBudget(max_tokens=50_000), T0)
    assert caps.cap_of(AGENT) == (RunBudget(max_tokens=50_000), 45_000.0, 0.0)
    claim = caps.claim(request(), Estimate(10))
    assert isinstance(claim, RunClaim)
    caps.settle(claim, 6000, None)
    assert isinstance(caps.claim(request(), Estimate(10)), Refuse)
    caps.end(AGENT, 6)  # another run's end changes nothing
    assert caps.cap_of(AGENT) is not None
    caps.end(AGENT, 7)
    assert caps.cap_of(AGENT) is None
    assert isinstance(caps.claim(request(), Estimate(10)), RunClaim)


def test_a_restarted_fleetwarden_arms_a_run_with_what_it_already_spent() -> None:
    """Armed with 49k already spent, one more request goes, then the cap binds."""
    caps = RunCaps()
    caps.arm(AGENT, 3, RunBudget(max_tokens=50_000), T0, (49_000, 0.0))
    claim = caps.claim(request(), Estimate(10))
    assert isinstance(claim, RunClaim)
    caps.settle(claim, 2000, None)
    assert isinstance(caps.claim(request(), Estimate(10)), Refuse)


def test_an_uncapped_run_and_other_agents_are_not_touched() -> None:
    """No cap (or an empty one): every request is claimed and nothing is refused."""
    caps = RunCaps()
    caps.arm(AGENT, 1, None, T0)
    caps.arm(AgentName("other"), 2, RunBudget(), T0)
    for agent in (AGENT, "other", "third"):
        for _ in range(3):
            claim = caps.claim(request(agent=agent), Estimate(10**9))
            assert isinstance(claim, RunClaim)
            caps.settle(claim, 10**9, 100.0)
        assert caps.check(request(agent=agent)) is None


class Budgets:
    """The budgets' policy, as the proxy sees it: refuses what it is told to."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.settled: list[tuple[int, int]] = []

    def decide(self, request: RequestInfo) -> object:
        return ALLOW

    def reserve(self, request: RequestInfo, estimate: Estimate) -> Reservation | Refuse | None:
        if self.refuse:
            return Refuse(60.0, "agent:coder-1 reached its limit")
        return Reservation(41, "agent:coder-1", "tokens", float(estimate.tokens))

    def settle(self, reservation: Reservation, tokens: int, cost: float | None) -> None:
        self.settled.append((reservation.id, tokens))


def test_the_capped_policy_asks_the_run_first_then_the_budgets() -> None:
    """A capped run is refused before the budgets are asked; otherwise their reservation
    carries the run's claim, and settling it settles both; a budget's refusal releases the
    run's claim."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_tokens=50_000), T0)
    budgets = Budgets()
    policy = CappedPolicy(budgets, caps)  # type: ignore[arg-type]
    assert policy.decide(request()) is ALLOW
    held = policy.reserve(request(), Estimate(100))
    assert isinstance(held, Reservation) and held.id == 41
    policy.settle(held, 50_000, None)
    assert budgets.settled == [(41, 50_000)]
    assert isinstance(policy.decide(request()), Refuse)
    assert isinstance(policy.reserve(request(), Estimate(100)), Refuse)

    caps.arm(AGENT, 2, RunBudget(max_tokens=50_000), T0 + _s(1))  # a new task
    refused = CappedPolicy(Budgets(refuse=True), caps)  # type: ignore[arg-type]
    assert isinstance(refused.reserve(request(), Estimate(100)), Refuse)
    assert caps.cap_of(AGENT) == (RunBudget(max_tokens=50_000), 0.0, 0.0)
    assert isinstance(caps.claim(request(), Estimate(60_000)), RunClaim)  # nothing in flight


def test_without_budgets_the_run_cap_holds_its_own_reservation() -> None:
    """Over a policy that governs nothing, the run's claim gets a reservation of its own,
    and settling it is not passed on."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_tokens=1000), T0)
    policy = CappedPolicy(AllowAll(), caps)
    held = policy.reserve(request(), Estimate(10))
    assert isinstance(held, Reservation) and held.id < 0 and held.budget == "run:coder-1"
    policy.settle(held, 1000, None)
    assert isinstance(policy.reserve(request(), Estimate(10)), Refuse)


def test_the_thread_is_told_the_run_s_cutoff() -> None:
    """A cap with `stop` or `freeze` says so, and hands the cutoff on; the request is
    refused all the same."""
    for cutoff, word in (("stop", "stopped"), ("freeze", "frozen")):
        caps = RunCaps()
        heard = told(caps)
        caps.arm(AGENT, 1, RunBudget(max_tokens=1, cutoff=cutoff), T0)
        claim = caps.claim(request(), Estimate(10))
        assert isinstance(claim, RunClaim)
        caps.settle(claim, 5, None)
        refused = caps.claim(request(), Estimate(10))
        assert isinstance(refused, Refuse) and "run capped at 1 token: refused" in refused.reason
        assert heard == [(AGENT, heard[0][1])]
        assert heard[0][1].startswith(f"{cutoff}: **coder-1**: run capped at 1 token: {word}")


def bounded(worst: int, usd: float | None = None) -> Estimate:
    """A request whose body bounds it at ``worst`` tokens (and ``usd`` dollars)."""
    return Estimate(max(worst // 4, 1), usd, "m", 0, worst, usd)


def test_requests_at_once_reserve_their_worst_case_so_only_what_fits_goes() -> None:
    """Cap 20,000, 6,000 at worst a request: three go at once, the fourth waits (429); one
    settling at 5,000 makes room for exactly one more (5,000 + 3 × 6,000 > 20,000 is not
    room: it waits again)."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_tokens=20_000), T0)
    claims = [caps.claim(request(), bounded(6_000)) for _ in range(3)]
    assert all(isinstance(claim, RunClaim) for claim in claims)
    fourth = caps.claim(request(), bounded(6_000))
    assert isinstance(fourth, Refuse) and (fourth.status, fourth.retry_after) == (
        429,
        RETRY_INFLIGHT,
    )
    caps.settle(claims[0], 5_000, None)  # type: ignore[arg-type]
    assert isinstance(caps.claim(request(), bounded(2_000)), RunClaim)  # 5k + 12k + 2k fits
    assert isinstance(caps.claim(request(), bounded(6_000)), Refuse)


def test_a_request_nothing_bounds_goes_alone() -> None:
    """A request without a worst case is admitted only with nothing in flight, and while
    it is in flight nothing else is; a bounded one in flight holds it back too."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_tokens=1_000_000), T0)
    alone = caps.claim(request(), Estimate(100))
    assert isinstance(alone, RunClaim)
    assert isinstance(caps.claim(request(), bounded(10)), Refuse)
    caps.settle(alone, 100, None)
    small = caps.claim(request(), bounded(10))
    assert isinstance(small, RunClaim)
    assert isinstance(caps.claim(request(), Estimate(100)), Refuse)
    caps.settle(small, 10, None)
    assert isinstance(caps.claim(request(), Estimate(100)), RunClaim)


def test_a_flood_of_parallel_requests_spends_past_the_cap_by_one_request_at_most() -> None:
    """30 agents' worth of requests at once, over and over, answered in a shuffled order
    each using up to its worst case: what settled never passes the cap by more than one
    request's worst case (the one admitted alone)."""
    rng = random.Random(40)
    for cap in (20_000, 3_000, 50_001):
        caps = RunCaps()
        caps.arm(AGENT, 1, RunBudget(max_tokens=cap), T0)
        inflight: list[tuple[RunClaim, int]] = []
        spent, worst_seen = 0, 0
        for _ in range(2_000):
            if rng.random() < 0.6 or not inflight:
                worst = rng.randint(100, 7_000)
                claim = caps.claim(request(), bounded(worst))
                if isinstance(claim, RunClaim):
                    inflight.append((claim, worst))
                    worst_seen = max(worst_seen, worst)
                elif claim.status == 400:
                    break
            else:
                claim, worst = inflight.pop(rng.randrange(len(inflight)))
                used = rng.randint(0, worst)
                caps.settle(claim, used, None)
                spent += used
        for claim, worst in inflight:
            caps.settle(claim, worst, None)
            spent += worst
        assert cap <= spent <= cap + worst_seen, (cap, spent)


def test_a_request_past_its_worst_case_sends_the_run_one_at_a_time() -> None:
    """An answer billed beyond its request's bound shows the bound wrong for this run: its
    requests go one at a time from then on."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_tokens=100_000), T0)
    first = caps.claim(request(), bounded(1_000))
    assert isinstance(first, RunClaim)
    caps.settle(first, 5_000, None)
    second = caps.claim(request(), bounded(1_000))
    assert isinstance(second, RunClaim)
    assert isinstance(caps.claim(request(), bounded(1_000)), Refuse)


def test_a_dollar_cap_reserves_each_request_s_worst_dollars() -> None:
    """$1.00 at $0.40 at worst a request: two go at once, the third waits; a request whose
    dollars nothing bounds goes alone."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_usd=1.0), T0)
    first, second = (caps.claim(request(), bounded(10, 0.40)) for _ in range(2))
    assert isinstance(first, RunClaim) and isinstance(second, RunClaim)
    assert isinstance(caps.claim(request(), bounded(10, 0.40)), Refuse)
    caps.settle(first, 10, 0.01)
    caps.settle(second, 10, 0.01)
    unbounded = Estimate(10, 0.01, "m", 0, 10, None)
    alone = caps.claim(request(), unbounded)
    assert isinstance(alone, RunClaim)
    assert isinstance(caps.claim(request(), bounded(10, 0.01)), Refuse)


def test_a_run_continuing_its_task_keeps_its_spend_and_its_requests_in_flight() -> None:
    """A run armed with its task's start (a watchdog's restart) counts on from what the
    ended run spent, a request still in flight at the end settles into it, and a capped
    task is told once; a run with another start is a new task."""
    caps = RunCaps()
    heard = told(caps)
    cap = RunBudget(max_tokens=3_000)
    caps.arm(AGENT, None, cap, T0)
    caps.bind(AGENT, 1)
    done, late = (caps.claim(request(), bounded(1_200)) for _ in range(2))
    assert isinstance(done, RunClaim) and isinstance(late, RunClaim)
    caps.settle(done, 1_060, None)
    caps.end(AGENT, 1)
    assert caps.cap_of(AGENT) is None
    caps.settle(late, 1_060, None)  # its answer ended after the run did
    caps.arm(AGENT, None, cap, T0 + _s(0.0004))  # the start, as the ledger kept it
    caps.bind(AGENT, 2)
    assert caps.cap_of(AGENT) == (cap, 2_120.0, 0.0)
    third = caps.claim(request(), bounded(1_200))
    assert isinstance(third, RunClaim)
    caps.settle(third, 1_060, None)
    assert isinstance(caps.claim(request(), bounded(1_200)), Refuse)
    caps.end(AGENT, 2)
    caps.arm(AGENT, 3, cap, T0)
    assert isinstance(caps.claim(request(), bounded(1_200)), Refuse)
    assert len(heard) == 1
    caps.arm(AGENT, 4, cap, T0 + _s(60))  # a new task: a spawn
    assert caps.cap_of(AGENT) == (cap, 0.0, 0.0)


def test_a_launch_that_did_not_start_is_disarmed() -> None:
    """A cap armed for a launch that failed (no run id yet) is taken off by ``end(None)``;
    a live run's cap is not."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_tokens=10), T0)
    caps.end(AGENT, None)
    assert caps.cap_of(AGENT) is not None
    caps.arm(AGENT, None, RunBudget(max_tokens=10), T0 + _s(5))
    caps.end(AGENT, None)
    assert caps.cap_of(AGENT) is None


def test_a_request_the_provider_works_on_after_answering_is_refused_under_a_cap() -> None:
    """``background: true`` brings no usage back, whatever its bound: a capped run's is
    refused with 400 naming the key, nothing is held; an uncapped agent's goes."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_tokens=3_000), T0)
    background = Estimate(100, None, "m", 0, None, None, "background")
    for _ in range(3):
        refused = caps.claim(request(), background)
        assert isinstance(refused, Refuse) and refused.status == 400
        assert "`background`" in refused.reason and "capped at 3,000 tokens" in refused.reason
    assert caps.cap_of(AGENT) == (RunBudget(max_tokens=3_000), 0.0, 0.0)
    assert isinstance(caps.claim(request(), bounded(1_000)), RunClaim)  # nothing held
    assert isinstance(caps.claim(request(agent="other"), background), RunClaim)


def test_an_answer_without_usage_settles_at_its_worst_case() -> None:
    """A bounded request whose answer carried no usage is charged its worst case (never
    the 0 or the floor the meter counted); its dollars too."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_tokens=20_000, max_usd=1.0), T0)
    claim = caps.claim(request(), bounded(6_000, 0.25))
    assert isinstance(claim, RunClaim)
    caps.settle(claim, 0, None, unmetered=True)
    assert caps.cap_of(AGENT) == (RunBudget(max_tokens=20_000, max_usd=1.0), 6_000.0, 0.25)
    floor = caps.claim(request(), bounded(6_000, 0.25))
    assert isinstance(floor, RunClaim)
    caps.settle(floor, 7_000, 0.30, unmetered=True)  # above the worst case: what was counted
    assert caps.cap_of(AGENT) == (RunBudget(max_tokens=20_000, max_usd=1.0), 13_000.0, 0.55)
    for _ in range(2):  # 3,500 each: the cap fills after two more
        again = caps.claim(request(), bounded(3_500, 0.01))
        assert isinstance(again, RunClaim)
        caps.settle(again, 0, None, unmetered=True)
    assert isinstance(caps.claim(request(), bounded(10, 0.01)), Refuse)


def test_an_unbounded_request_s_answer_without_usage_fills_the_cap() -> None:
    """Nothing bounded it and nothing says what it cost: the run's cap counts as reached,
    in tokens and in dollars; the capped policy passes the word on."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_tokens=50_000, max_usd=2.0), T0)
    policy = CappedPolicy(AllowAll(), caps)
    held = policy.reserve(request(), Estimate(100, 0.01, "m"))
    assert isinstance(held, Reservation)
    policy.settle(held, 40, 0.001, unmetered=True)
    assert caps.cap_of(AGENT) == (RunBudget(max_tokens=50_000, max_usd=2.0), 50_000.0, 2.0)
    refused = policy.reserve(request(), bounded(10, 0.01))
    assert isinstance(refused, Refuse) and refused.status == 400


def test_a_raised_cap_lets_requests_through_and_is_told_again_when_reached() -> None:
    """`cutoff: ask` at 50k: told "paused" once; raised to 100k, the next requests pass,
    and reaching the new cap is told again, once."""
    caps = RunCaps()
    heard = told(caps)
    cap = RunBudget(max_tokens=50_000, cutoff="ask", since=T0)
    caps.arm(AGENT, 1, cap, T0)
    for _ in range(2):
        claim = caps.claim(request(), Estimate(9000))
        assert isinstance(claim, RunClaim)
        caps.settle(claim, 30_000, None)
    assert isinstance(caps.claim(request(), Estimate(9000)), Refuse)
    assert heard[0][1].startswith("ask: **coder-1**: run capped at 50,000 tokens: paused")
    assert caps.raise_cap(AGENT, RunBudget(max_tokens=100_000, cutoff="ask", since=T0))
    for _ in range(2):  # 90k, then 120k: past the new cap by one request
        claim = caps.claim(request(), Estimate(9000))
        assert isinstance(claim, RunClaim)
        caps.settle(claim, 30_000, None)
    assert isinstance(caps.claim(request(), Estimate(9000)), Refuse)
    assert isinstance(caps.claim(request(), Estimate(9000)), Refuse)
    assert [said.split(": ")[0] for _, said in heard] == ["ask", "ask"]
    assert "100,000 tokens: paused" in heard[1][1]
    assert not caps.raise_cap(AgentName("other"), cap)


def test_a_cap_that_asks_holds_its_requests_until_raised_and_refuses_them_once_stopped() -> None:
    """`cutoff: ask`: a request past the cap is held (looked at again in a second), never
    refused while its operators are asked; raised, it goes on; a run stopped at its cap has
    what it still held refused (400), until the agent's next run is armed."""
    caps = RunCaps()
    heard = told(caps)
    cap = RunBudget(max_tokens=50_000, cutoff="ask", since=T0)
    caps.arm(AGENT, 1, cap, T0)
    claim = caps.claim(request(), Estimate(9000))
    assert isinstance(claim, RunClaim)
    caps.settle(claim, 60_000, None)
    held = caps.check(request(20))
    assert isinstance(held, Hold) and held.until == T0 + _s(21)
    assert "paused at its cap of 50,000 tokens while its operators are asked" in held.reason
    assert isinstance(caps.check(request(21)), Hold)
    assert len(heard) == 1  # asked once, however often the held request looks again
    late = caps.claim(request(), Estimate(9000))  # found reached only after its verdict
    assert isinstance(late, Refuse) and (late.status, late.retry_after) == (429, RETRY_INFLIGHT)
    assert caps.raise_cap(AGENT, RunBudget(max_tokens=100_000, cutoff="ask", since=T0))
    assert caps.check(request(22)) is None  # the held request goes on
    claim = caps.claim(request(), Estimate(9000))
    assert isinstance(claim, RunClaim)
    caps.settle(claim, 50_000, None)  # 110k: past the new cap
    assert isinstance(caps.check(request(30)), Hold)
    caps.end(AGENT, 1)  # stopped at its cap
    refused = caps.check(request(31))
    assert isinstance(refused, Refuse) and refused.status == 400
    assert "run ended at its cap of 100,000 tokens" in refused.reason
    caps.arm(AGENT, 2, cap, T0 + _s(60))  # a new task
    assert caps.check(request(61)) is None


def test_a_charge_beside_the_model_requests_counts_against_the_dollar_cap() -> None:
    """A priced MCP call charged to a run counts as settled dollars: the run's next model
    request is refused once the charges reach its cap in dollars, told once; a charge before
    the run is armed counts when it is."""
    caps = RunCaps()
    messages = told(caps)
    caps.charge(AGENT, T0 + _s(1), 0.4)  # before its run is armed: kept, counted at arming
    caps.arm(AGENT, 1, RunBudget(max_usd=1.0), T0)
    assert caps.cap_of(AGENT) == (RunBudget(max_usd=1.0), 0.0, 0.4)
    caps.charge(AGENT, T0 + _s(2), 0.4)
    assert caps.check(request()) is None
    assert messages == []
    caps.charge(AGENT, T0 + _s(3), 0.4)
    assert len(messages) == 1
    refused = caps.check(request())
    assert isinstance(refused, Refuse) and refused.status == 400
