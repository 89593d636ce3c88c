"""Pacing simulation: a 7-day window, 10 agents with bursty demand, paced vs first come,
first served. In process, on an injected clock; no network, no wall-clock waits.

Run from the repository root::

    python -m bench.pacing_sim [--seed 1] [--seeds 1] [--no-ladder] [--messages 0]
        [--png pacing_sim.png]

**Demand** (seeded): each agent has its own base rate, working hours (about 8–21 UTC,
9–11 hours long) and a factor per day (0.8–1.2); outside its hours it runs at 15 % (runs
finishing, nightly jobs). Each minute is noisy (gamma-distributed, mean 1), and spikes
come on top: 3× for 30–120 minutes on ~35 % of agent-days, 2× for 1–3 hours at night on
~10 %. The whole is scaled so that the week's demand is :data:`DEMAND_RATIO` × the limit —
more than the budget allows, or pacing would have nothing to do. Demand is counted in
top-model units. The budget is ``global``, a 7-day rolling window starting on a Monday at
midnight, with the ladders in :data:`LADDER` and the default tolerance (10 %).

**One step** is one minute, the pacing tick's interval, on an injected clock: the real law
(:func:`fleet.budgets.pacing.law.assess`, the burn rate over the last 5 minutes) and
:meth:`PacingPolicy.update` (the tick), then one :meth:`PacingPolicy.decide` per agent
for its demand of the minute plus what it has been held back:

* allow → it runs, at most :data:`CAP` × its base rate (an agent cannot do an hour's work
  in a minute); the rest waits in its backlog, which holds at most :data:`BACKLOG` of work
  at that rate (beyond that, operators give up on tasks: counted as dropped);
* rewrite → the same, each rung down the ladder costing :data:`RUNG_COST` × as much;
* hold → it waits: the demand joins the backlog, and the agent asks again next minute;
* refuse → the demand and the backlog are dropped.

**First come, first served** gives the same demand to the same agents with the same caps,
and only the hard limit: everything runs until the limit is reached, then is refused.

Prints a per-day table for both strategies and the targets of issue 6 (``--seeds N``: the
targets over seeds ``seed … seed + N - 1``), and writes a PNG of both cumulative curves
against the even-spread line. ``--no-ladder`` paces with the same budget without ladders:
the queue alone. ``--messages N`` prints the first N transitions posted.
"""

from __future__ import annotations

import argparse
import itertools
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from fleet.budgets.model import Source, Transition
from fleet.budgets.pacing.law import Spent, assess, burn_rate
from fleet.budgets.pacing.policy import PacingPolicy
from fleet.ledger.records.budgets import Budget, Scope, WindowKind, WindowSpec
from fleet.metering.policy import ALLOW, Hold, Refuse, RequestInfo, Rewrite, Verdict
from fleet.names import AgentName

Strategy = Literal["paced", "fcfs"]

START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
DAYS = 7
STEP = timedelta(minutes=1)
BURN_SPAN = timedelta(minutes=5)
LIMIT = 50_000_000.0
DEMAND_RATIO = 1.6
RUNG_COST = 0.4
CAP = 4.0  # an agent's most work per step, in multiples of its base rate
BACKLOG = timedelta(hours=1)  # an agent's backlog holds at most this long at its cap
NIGHT = 0.15
LADDER = {
    "claude": ("claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"),
    "codex": ("gpt-5", "gpt-5-mini"),
}
AGENTS: tuple[tuple[str, str], ...] = (
    *((f"coder-{n}", "claude-opus-4-1") for n in range(1, 7)),
    ("reviewer-1", "claude-sonnet-4-5"),
    ("reviewer-2", "claude-sonnet-4-5"),
    ("codex-1", "gpt-5"),
    ("codex-2", "gpt-5"),
)
BUDGET = Budget(
    Scope("global"),
    WindowSpec(WindowKind.ROLLING, length=timedelta(days=DAYS)),
    limit_tokens=int(LIMIT),
    ladder=LADDER,
)


@dataclass(frozen=True, slots=True)
class Demand:
    """Each agent's demand per step (top-model units) and most work per step."""

    steps: dict[str, list[float]]
    cap: dict[str, float]


@dataclass(slots=True)
class Outcome:
    """What one strategy did with the week's demand."""

    strategy: Strategy
    series: list[tuple[datetime, float]]  # cumulative use at each step's end
    exhausted_at: datetime | None = None
    verdicts: Counter[str] = field(default_factory=Counter)
    transitions: list[Transition] = field(default_factory=list)
    served_units: float = 0.0  # demand served, in top-model units
    dropped: float = 0.0
    backlog: float = 0.0  # still waiting at the end

    @property
    def final(self) -> float:
        """Use at the end of the window, as a fraction of the limit."""
        return self.series[-1][1] / LIMIT

    def daily(self) -> list[float]:
        """Use in each day of the window."""
        midnights = [0.0] + [self.series[d * _STEPS_PER_DAY - 1][1] for d in range(1, DAYS + 1)]
        return [b - a for a, b in itertools.pairwise(midnights)]


_STEPS_PER_DAY = int(timedelta(days=1) / STEP)


def make_demand(seed: int) -> Demand:
    """The week's demand for :data:`AGENTS`, from ``seed``, scaled to
    :data:`DEMAND_RATIO` × :data:`LIMIT`."""
    rng = random.Random(seed)
    raw: dict[str, list[float]] = {}
    base: dict[str, float] = {}
    for name, _model in AGENTS:
        base[name] = rng.uniform(0.6, 1.4)
        begin = rng.uniform(8.0, 10.5)
        hours = rng.uniform(9.0, 11.0)
        steps: list[float] = []
        for _day in range(DAYS):
            factor = rng.uniform(0.8, 1.2)
            spikes = _spikes(rng, begin, hours)
            for k in range(_STEPS_PER_DAY):
                hour = k * STEP / timedelta(hours=1)
                weight = 1.0 if begin <= hour < begin + hours else NIGHT
                for lo, hi, mult in spikes:
                    if lo <= hour < hi:
                        weight *= mult
                steps.append(base[name] * factor * weight * rng.gammavariate(2.0, 0.5))
        raw[name] = steps
    scale = DEMAND_RATIO * LIMIT / sum(sum(s) for s in raw.values())
    return Demand(
        {name: [x * scale for x in s] for name, s in raw.items()},
        {name: CAP * base[name] * scale for name in raw},
    )


def _spikes(rng: random.Random, begin: float, hours: float) -> list[tuple[float, float, float]]:
    """One day's spikes as (from hour, to hour, multiplier)."""
    spikes = []
    if rng.random() < 0.35:
        at = rng.uniform(begin, begin + hours - 0.5)
        spikes.append((at, at + rng.uniform(0.5, 2.0), 3.0))
    if rng.random() < 0.10:
        at = rng.uniform(0.0, 6.0)
        spikes.append((at, at + rng.uniform(1.0, 3.0), 2.0))
    return spikes


def simulate(demand: Demand, strategy: Strategy, budget: Budget = BUDGET) -> Outcome:
    """Run the week under ``strategy``, with ``budget`` (paced) or only its limit (fcfs)."""
    end = START + timedelta(days=DAYS)
    policy = PacingPolicy()
    governing = {name: budget.key for name, _ in AGENTS}
    outcome = Outcome(strategy, [])
    backlog = dict.fromkeys(governing, 0.0)
    used = 0.0
    for i in range(DAYS * _STEPS_PER_DAY):
        now = START + i * STEP
        if strategy == "paced":
            status = assess(
                budget,
                start=START,
                end=end,
                now=now,
                spent=Spent(
                    used=used,
                    limit=LIMIT,
                    unit="tokens",
                    burn_rate=burn_rate(
                        outcome.series[-int(BURN_SPAN / STEP) - 1 :], now, BURN_SPAN
                    ),
                ),
                source=Source.METERING,
            )
            outcome.transitions += policy.update([status], governing, now)
        for name, model in AGENTS:
            pending = backlog[name] + demand.steps[name][i]
            if strategy == "paced":
                request = RequestInfo(AgentName(name), "anthropic", "messages", model, True, now)
                verdict: Verdict = policy.decide(request)
            else:
                verdict = Refuse(0.0, "limit") if used >= LIMIT else ALLOW
            outcome.verdicts[type(verdict).__name__] += 1
            if isinstance(verdict, Refuse):
                outcome.dropped += pending
                backlog[name] = 0.0
                continue
            work = 0.0 if isinstance(verdict, Hold) else min(pending, demand.cap[name])
            keep = demand.cap[name] * (BACKLOG / STEP)
            outcome.dropped += max(pending - work - keep, 0.0)
            backlog[name] = min(pending - work, keep)
            outcome.served_units += work
            served = verdict.model if isinstance(verdict, Rewrite) else model
            used = min(used + work * _cost(model, served), LIMIT)
        if used >= LIMIT and outcome.exhausted_at is None:
            outcome.exhausted_at = now + STEP
        outcome.series.append((now + STEP, used))
    outcome.backlog = sum(backlog.values())
    return outcome


def _cost(requested: str, served: str) -> float:
    """What a unit of work costs at ``served`` when ``requested`` was asked for."""
    for models in LADDER.values():
        if requested in models and served in models:
            return RUNG_COST ** (models.index(served) - models.index(requested))
    return 1.0


# --- Reporting ----------------------------------------------------------------------------


def day_table(paced: Outcome, fcfs: Outcome) -> str:
    """Per day: each strategy's use, in % of the limit and against the even spread."""
    even = LIMIT / DAYS
    rows = [
        "day | paced % limit | paced vs even | cum. paced | fcfs % limit | fcfs vs even"
        " | cum. fcfs",
        "--- | ---: | ---: | ---: | ---: | ---: | ---:",
    ]
    cum_p = cum_f = 0.0
    for d, (p, f) in enumerate(zip(paced.daily(), fcfs.daily(), strict=True), 1):
        cum_p, cum_f = cum_p + p, cum_f + f
        rows.append(
            f"{d} | {p / LIMIT:6.1%} | {p / even - 1:+6.1%} | {cum_p / LIMIT:6.1%} |"
            f" {f / LIMIT:6.1%} | {f / even - 1:+6.1%} | {cum_f / LIMIT:6.1%}"
        )
    return "\n".join(rows)


def summary(paced: Outcome, fcfs: Outcome) -> str:
    """The issue's targets, met or not, and what else happened."""
    fcfs_out = fcfs.exhausted_at
    lines = [
        f"paced: window ends at {paced.final:.1%} of the limit (target 97–100 %); "
        f"exhausted before the reset: {_when(paced.exhausted_at)}; max daily deviation "
        f"{_deviation(paced):.1%} (target ≤ 15 %)",
        f"fcfs:  exhausted at {_when(fcfs_out)}"
        + (f" (day {_day(fcfs_out):.2f} of {DAYS})" if fcfs_out else ""),
        f"paced verdicts: {dict(sorted(paced.verdicts.items()))}; "
        f"{len(paced.transitions)} transitions posted",
        f"work (top-model units, % of the limit): served paced {paced.served_units / LIMIT:.0%}"
        f", fcfs {fcfs.served_units / LIMIT:.0%}; dropped paced {paced.dropped / LIMIT:.0%}, "
        f"fcfs {fcfs.dropped / LIMIT:.0%}; waiting at the end paced "
        f"{paced.backlog / LIMIT:.1%}, fcfs {fcfs.backlog / LIMIT:.1%}",
    ]
    return "\n".join(lines)


def across(runs: Sequence[tuple[Outcome, Outcome]]) -> str:
    """The targets' ranges over several (paced, fcfs) runs."""
    finals = [p.final for p, _ in runs]
    dried = sum(p.exhausted_at is not None for p, _ in runs)
    fcfs_days = [_day(f.exhausted_at) for _, f in runs if f.exhausted_at is not None]
    posted = [len(p.transitions) for p, _ in runs]
    return "\n".join(
        [
            f"paced: ends at {min(finals):.1%}–{max(finals):.1%} of the limit; max daily "
            f"deviation {max(_deviation(p) for p, _ in runs):.1%}; exhausted early in "
            f"{dried} of {len(runs)}; {min(posted)}–{max(posted)} transitions a week",
            f"fcfs:  exhausted in {len(fcfs_days)} of {len(runs)}, on day "
            f"{min(fcfs_days, default=0):.2f}–{max(fcfs_days, default=0):.2f}",
        ]
    )


def _deviation(outcome: Outcome) -> float:
    return max(abs(d / (LIMIT / DAYS) - 1) for d in outcome.daily())


def _day(at: datetime | None) -> float:
    return 0.0 if at is None else (at - START) / timedelta(days=1)


def _when(at: datetime | None) -> str:
    return "never" if at is None else f"{at:%a %H:%M} UTC"


def plot(paced: Outcome, fcfs: Outcome, path: Path) -> None:
    """Both cumulative curves against the even-spread line, the reset marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = START + timedelta(days=DAYS)

    def days(series: Sequence[tuple[datetime, float]]) -> list[float]:
        return [(t - START) / timedelta(days=1) for t, _ in series]

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    ax.plot([0, DAYS], [0, 100], color="grey", linestyle="--", label="even spread")
    for outcome, color in ((paced, "tab:blue"), (fcfs, "tab:red")):
        label = "paced" if outcome.strategy == "paced" else "first come, first served"
        series = [(START, 0.0), *outcome.series]
        ax.plot(days(series), [u / LIMIT * 100 for _, u in series], color=color, label=label)
        if outcome.exhausted_at is not None:
            day = _day(outcome.exhausted_at)
            ax.plot([day], [100], marker="x", color=color)
            ax.annotate(f"exhausted {outcome.exhausted_at:%a %H:%M}", (day, 101), fontsize=8)
    ax.axvline(DAYS, color="black", linewidth=1)
    ax.annotate(f"reset {end:%a %H:%M} UTC", (DAYS, 3), ha="right", fontsize=8)
    ax.set_xlim(0, DAYS + 0.1)
    ax.set_ylim(0, 105)
    ax.set_xlabel("days into the window")
    ax.set_ylabel("% of the limit used")
    ax.set_title(f"{DAYS}-day window, {len(AGENTS)} agents, demand {DEMAND_RATIO} × the limit")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="the demand's seed (default 1)")
    parser.add_argument("--seeds", type=int, default=1, help="check the targets over N seeds")
    parser.add_argument("--no-ladder", action="store_true", help="pace by the queue alone")
    parser.add_argument("--messages", type=int, default=0, help="print N transitions")
    parser.add_argument("--png", type=Path, default=Path("pacing_sim.png"))
    args = parser.parse_args(argv)
    budget = replace(BUDGET, ladder={}) if args.no_ladder else BUDGET
    demand = make_demand(args.seed)
    paced, fcfs = simulate(demand, "paced", budget), simulate(demand, "fcfs", budget)
    print(f"seed {args.seed}: even spread = {LIMIT / DAYS:,.0f} tokens a day\n")
    print(day_table(paced, fcfs))
    print()
    print(summary(paced, fcfs))
    for transition in paced.transitions[: args.messages]:
        print(f"  {transition.message}")
    plot(paced, fcfs, args.png)
    print(f"\nchart: {args.png}")
    if args.seeds > 1:
        runs = []
        for seed in range(args.seed, args.seed + args.seeds):
            more = make_demand(seed)
            runs.append((simulate(more, "paced", budget), simulate(more, "fcfs", budget)))
        print(f"\nseeds {args.seed}–{args.seed + args.seeds - 1}:\n{across(runs)}")


if __name__ == "__main__":
    main()
