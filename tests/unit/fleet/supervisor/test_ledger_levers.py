"""Tests for the ledger pieces of the emergency levers: confirmations waiting for a reply
(migration 14) and freezes made by hand, which no budget lifts or takes over."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fleet.ledger import Ledger
from fleet.ledger.records.chat import KEPT_EXPIRED
from fleet.model import AgentSpec, DesiredState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.cutoffs import CutoffKeeper
from fleet.supervisor.fleet import FleetSettings
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores

ROOM = "!room:example.org"
ADMIN = "@ada:example.org"


async def ask(
    ledger: Ledger, clock: ManualClock, *, sender: str = ADMIN, thread: str | None = None
) -> int:
    asked = await ledger.chat.ask_confirmation(
        connector="matrix",
        sender=sender,
        room=ROOM,
        thread=thread,
        command="!freeze all",
        summary="would pause 2 agents",
        expires_at=clock.now() + timedelta(seconds=60),
    )
    return asked.id


async def test_a_confirmation_is_taken_once_within_its_deadline(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A live confirmation is taken by the first reply only; it is then gone."""
    first = await ask(ledger, clock)
    [waiting] = await ledger.chat.confirmations_at("matrix", ROOM, None)
    assert (waiting.id, waiting.sender, waiting.command) == (first, ADMIN, "!freeze all")
    clock.advance(59)
    assert await ledger.chat.take_confirmation(first)
    assert not await ledger.chat.take_confirmation(first)
    assert await ledger.chat.confirmations_at("matrix", ROOM, None) == []


async def test_a_confirmation_keeps_the_plan_its_command_decided(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The plan asked with (migration 34) comes back as data; one asked without has none."""
    await ledger.chat.ask_confirmation(
        connector="matrix",
        sender=ADMIN,
        room=ROOM,
        thread="$t",
        command="!restart all",
        summary="would restart 2 one at a time: a, b.",
        expires_at=clock.now() + timedelta(seconds=60),
        plan={"restart": ["a", "b"], "frozen": ["c"]},
    )
    await ask(ledger, clock)
    [planned] = await ledger.chat.confirmations_at("matrix", ROOM, "$t")
    [plain] = await ledger.chat.confirmations_at("matrix", ROOM, None)
    assert planned.plan == {"restart": ["a", "b"], "frozen": ["c"]}
    assert plain.plan is None


async def test_an_expired_confirmation_never_acts_and_is_kept_only_to_say_so(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Past its deadline it cannot be taken; it is listed (to answer a late reply) only for
    a while, then dropped."""
    first = await ask(ledger, clock)
    clock.advance(61)
    [late] = await ledger.chat.confirmations_at("matrix", ROOM, None)
    assert late.expired(clock.now())
    clock.advance(KEPT_EXPIRED.total_seconds())
    assert await ledger.chat.confirmations_at("matrix", ROOM, None) == []
    assert not await ledger.chat.take_confirmation(first)


async def test_asking_again_replaces_and_places_are_apart(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A second question by the same person in the same place replaces the first; a thread
    and another person's question are other places."""
    first = await ask(ledger, clock)
    second = await ask(ledger, clock)
    in_thread = await ask(ledger, clock, thread="$thread")
    other = await ask(ledger, clock, sender="@bob:example.org")
    room = await ledger.chat.confirmations_at("matrix", ROOM, None)
    assert [c.id for c in room] == [other, second]
    assert [c.id for c in await ledger.chat.confirmations_at("matrix", ROOM, "$thread")] == [
        in_thread
    ]
    assert first not in {c.id for c in room}


async def test_a_confirmation_survives_a_restart_but_not_its_deadline(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Reopened, the ledger still holds a live question; once expired it never acts."""
    path = tmp_path / "restart.db"
    ledger = await Ledger.open(path, clock)
    try:
        live = await ask(ledger, clock)
        stale = await ask(ledger, clock, sender="@bob:example.org")
    finally:
        await ledger.close()
    clock.advance(30)
    reopened = await Ledger.open(path, clock)
    try:
        assert await reopened.chat.take_confirmation(live)
        clock.advance(31)
        assert not await reopened.chat.take_confirmation(stale)
    finally:
        await reopened.close()


async def test_a_budget_never_takes_over_a_freeze_made_by_hand(ledger: Ledger) -> None:
    """A freeze by hand replaces a budget's; a budget's later freeze leaves it as it is."""
    budget = await ledger.budgets.add_freeze(
        "coder", "agent:coder", "agent:coder reached its limit"
    )
    assert not budget.by_hand
    hand = await ledger.budgets.add_freeze("coder", "", "by ada: odd pushes", by=ADMIN)
    assert hand.by_hand
    kept = await ledger.budgets.add_freeze("coder", "agent:coder", "agent:coder reached its limit")
    assert (kept.by, kept.budget, kept.reason) == (ADMIN, "", "by ada: odd pushes")
    [stored] = await ledger.budgets.freezes()
    assert stored.by == ADMIN and stored.by_hand


async def test_a_budget_reset_lifts_only_its_own_freezes(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """The cutoff keeper's release continues the agents its budget froze, never one an admin
    froze by hand (even over that budget's freeze)."""
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=clock,
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={},
            settings=FleetSettings(state_dir=tmp_path),
            environ={},
        ),
    )
    for name in ("coder", "held"):
        await ledger.agents.upsert_agent(AgentSpec(AgentName(name), "stub"), DesiredState.RUNNING)
        await ledger.budgets.add_freeze(name, "global", "global reached its limit")
    await ledger.budgets.add_freeze("held", "", "by ada: odd pushes", by=ADMIN)
    await ledger.budgets.add_freeze("held", "global", "global reached its limit")  # a later cutoff
    assert await CutoffKeeper(fleet).release("global") == ["coder"]
    [kept] = await ledger.budgets.freezes()
    assert (kept.agent, kept.by) == ("held", ADMIN)
