"""``spawn``'s cap on a run, checked before anything starts, and its answer's lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands.errors import CommandError
from bot.commands.handlers.agents.spawn.spend import SpawnSpend
from fleet.ledger import Ledger
from fleet.model import AgentSpec, DesiredState, RunBudget
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.unit.fleet.metering.test_run_watch import run_of

ROSTER = {"priced": AgentSpec(AgentName("priced"), "claude", model="m-priced")}


async def spec_of(name: str) -> AgentSpec | None:
    return ROSTER.get(name)


def spend(ledger: Ledger, *, metered: bool = True) -> SpawnSpend:
    priced = (lambda model: model == "m-priced") if metered else None
    return SpawnSpend(ledger.agents, ledger.runs, spec_of, priced=priced)


async def test_the_flags_become_the_run_s_cap(ledger: Ledger) -> None:
    """Both flags read into one cap; none given, no cap; the agent's own model is priced."""
    flags = {"max-tokens": "200k", "max-usd": "2.50"}
    assert await spend(ledger).cap("priced", flags, None, None) == RunBudget(200_000, 2.5)
    assert await spend(ledger).cap("priced", {}, None, None) is None


@pytest.mark.parametrize(
    ("name", "flags", "runtime", "model", "says"),
    [
        ("priced", {"max-tokens": "0"}, None, None, "--max-tokens must be more than 0"),
        ("priced", {"max-usd": "1.005"}, None, None, "at most two decimal places"),
        ("priced", {"max-usd": "1"}, None, "m-free", "'m-free': it has no price"),
        ("priced", {"max-usd": "1"}, "codex", None, "name it with --model"),
        ("new", {"max-usd": "1"}, None, None, "name it with --model"),
    ],
)
async def test_a_cap_that_cannot_bind_is_refused_before_anything_starts(
    ledger: Ledger,
    name: str,
    flags: dict[str, str],
    runtime: str | None,
    model: str | None,
    says: str,
) -> None:
    """Bad numbers, and dollars on a model without a price (or not known: another CLI's
    default, an ad hoc agent's), are refused with what to do."""
    with pytest.raises(CommandError, match=says):
        await spend(ledger).cap(name, flags, runtime, model)


async def test_without_metering_no_cap_is_taken(ledger: Ledger) -> None:
    """A cap needs the proxy: with metering off, the spawn is refused, saying why."""
    with pytest.raises(CommandError, match="needs the metering proxy"):
        await spend(ledger, metered=False).cap("priced", {"max-tokens": "5"}, None, None)


async def test_the_answer_names_the_cap_of_the_spec_as_launched(ledger: Ledger) -> None:
    """The ledger's spec (as launched) gives the cap line; no runs yet: no history."""
    launched = AgentSpec(AgentName("priced"), "claude", model="m-priced", run_budget=RunBudget(5))
    await ledger.agents.upsert_agent(launched, DesiredState.RUNNING)
    assert await spend(ledger).answer("priced") == (
        "This run is capped at 5 tokens.\nUsual cost of a run on claude (m-priced): no history yet."
    )
    assert await spend(ledger).answer("unknown") == ""


async def test_the_flags_keep_the_agent_s_cutoff(ledger: Ledger) -> None:
    """A spawn's amounts replace the roster's cap; its cutoff stays the agent's."""
    ROSTER["stopper"] = AgentSpec(
        AgentName("stopper"), "claude", model="m-priced", run_budget=RunBudget(5, None, "stop")
    )
    try:
        cap = await spend(ledger).cap("stopper", {"max-tokens": "9"}, None, None)
        assert cap == RunBudget(9, None, "stop")
    finally:
        del ROSTER["stopper"]


async def test_the_flags_keep_the_agents_ask_settings(ledger: Ledger) -> None:
    """A roster cap with `cutoff: ask` keeps how long it waits, its fallback and its offer
    under a spawn's amounts, never the last task's raises; an offer in a measure the
    spawn's cap lacks is refused with the fix."""
    asks = RunBudget(None, 2.0, "ask", ask_within=300.0, then="stop", offer_usd=0.5, raised_usd=4.0)
    ROSTER["asker"] = AgentSpec(AgentName("asker"), "claude", model="m-priced", run_budget=asks)
    try:
        cap = await spend(ledger).cap("asker", {"max-usd": "3"}, None, None)
        assert cap == RunBudget(None, 3.0, "ask", ask_within=300.0, then="stop", offer_usd=0.5)
        with pytest.raises(CommandError, match="give `--max-usd X` too"):
            await spend(ledger).cap("asker", {"max-tokens": "50000"}, None, None)
    finally:
        del ROSTER["asker"]


async def test_the_run_just_launched_is_not_its_own_history(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """A run that ended at once, before the answer was made, is no past run: on a fresh
    ledger the answer says there is no history yet."""
    spec = AgentSpec(AgentName("priced"), "claude", model="m-priced")
    await run_of(ledger, clock, tmp_path, spec, seconds=5)
    assert await spend(ledger).answer("priced") == (
        "Usual cost of a run on claude (m-priced): no history yet."
    )
