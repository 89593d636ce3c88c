"""The admission's chain of stages: every stage in its place, or no admission at all."""

from __future__ import annotations

import pytest

from fleet.model import AgentSpec, Fallback
from fleet.supervisor.admission.stages.budgets import BudgetStage
from fleet.supervisor.admission.stages.caps import CapStage
from fleet.supervisor.admission.stages.chain import ORDER, MissingStage, chained
from fleet.supervisor.admission.stages.handoff import HandoffStage
from fleet.supervisor.admission.stages.ownership import OwnershipStage
from fleet.supervisor.admission.stages.quote import QuoteStage


class NoFallbacks:
    async def fallback_of(self, name: str) -> Fallback | None:
        return None

    async def spec(self, name: str) -> AgentSpec:
        raise AssertionError("not asked")


def test_a_whole_chain_is_built_in_its_order() -> None:
    """Ownership, hand-off, budgets, quote and caps, in that order, make a chain."""
    who = NoFallbacks()
    stages = chained(
        (
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
                OwnershipStage(None),
                HandoffStage(None),
                CapStage(None),
                BudgetStage(None, who, None),
                QuoteStage(who, None, None, None),
            )
        )
