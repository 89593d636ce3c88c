"""The admission's chain of stages: every stage in its place, or no admission at all."""

from __future__ import annotations

import pytest

from fleet.model import AgentSpec, Fallback
from fleet.supervisor.admission.request import LaunchRequest, Origin
from fleet.supervisor.admission.stages.budgets import BudgetStage
from fleet.supervisor.admission.stages.caps import CapStage
from fleet.supervisor.admission.stages.chain import ORDER, MissingStage, chained
from fleet.supervisor.admission.stages.handoff import HandoffStage
from fleet.supervisor.admission.stages.naming import NamingStage
from fleet.supervisor.admission.stages.ownership import OwnershipStage
from fleet.supervisor.admission.stages.quote import QuoteStage


class NoFallbacks:
    async def fallback_of(self, name: str) -> Fallback | None:
        return None

    async def spec(self, name: str) -> AgentSpec:
        raise AssertionError("not asked")


def test_a_whole_chain_is_built_in_its_order() -> None:
    """Naming, ownership, hand-off, budgets, quote and caps, in that order, make a chain."""
    who = NoFallbacks()
    stages = chained(
        (
            NamingStage(None),
            OwnershipStage(None),
            HandoffStage(None),
            BudgetStage(None, who, None),
            QuoteStage(who, None, None, None),
            CapStage(None),
        )
    )
    assert tuple(stage.name for stage in stages) == ORDER


@pytest.mark.parametrize("left_out", ORDER)
def test_a_chain_missing_a_stage_is_refused_naming_it(left_out: str) -> None:
    """An admission without one of its stages is a start-up error naming the stage, never
    a launch that passes it unasked."""
    who = NoFallbacks()
    every = (
        NamingStage(None),
        OwnershipStage(None),
        HandoffStage(None),
        BudgetStage(None, who, None),
        QuoteStage(who, None, None, None),
        CapStage(None),
    )
    with pytest.raises(MissingStage, match=f"no {left_out} stage"):
        chained([stage for stage in every if stage.name != left_out])


def test_stages_out_of_order_are_refused() -> None:
    """The caps before the budgets is no admission: the order is part of the rules."""
    who = NoFallbacks()
    with pytest.raises(MissingStage, match="no budgets stage in its place"):
        chained(
            (
                NamingStage(None),
                OwnershipStage(None),
                HandoffStage(None),
                CapStage(None),
                BudgetStage(None, who, None),
                QuoteStage(who, None, None, None),
            )
        )


class Known:
    """A fleet that knows ``coder`` (the roster) and ``demo`` (it ran)."""

    async def knows(self, name: str) -> bool:
        return name in ("coder", "demo")

    async def names(self) -> set[str]:
        return {"coder", "demo", "worker-1", "nightly", "a1", "bot-a"}


@pytest.mark.parametrize(
    ("agent", "origin", "new", "refused"),
    [
        ("codr", "chat", False, "did you mean 'coder'?"),
        ("dmo", "schedule", False, "did you mean 'demo'?"),
        ("Coder", "peer", False, None),  # no agent's name: the launch refuses it in its words
        ("codr", "chat", True, None),  # `spawn codr --new`
        ("brandnew", "chat", False, None),  # close to none: an ad hoc agent
        ("nightyl", "chat", False, "did you mean 'nightly'?"),  # two letters swapped
        ("worker-2", "chat", False, None),  # a numbered sibling, told apart on purpose
        ("coder2", "chat", False, None),
        ("bot-b", "chat", False, None),  # a lettered sibling
        ("coder-docs", "chat", False, None),  # a part of its own added
        ("b1", "chat", False, None),  # too short for one letter to be a slip
        ("coder", "chat", False, None),
        ("codr", "forge", False, None),  # a name the fleet made, not typed
        ("codr", "restart", False, None),
    ],
)
async def test_a_typed_name_close_to_a_known_one_is_refused_unless_new(
    agent: str, origin: Origin, new: bool, refused: str | None
) -> None:
    """A typed name the fleet does not know, close to one it does, is a likely typo: refused
    naming the one meant and how to start a new one; any other launch goes on."""
    stage = NamingStage(Known())
    why = await stage.stranger(LaunchRequest(agent, origin=origin, new=new))
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why and f"`spawn {agent} --new`" in why
