"""A review agent's right to give its verdict, read when the verdict comes
(:mod:`fleet.peers.review.rights`, :meth:`fleet.peers.rules.Rules.may_review`): a reviewer
the repository no longer names (a restart named another), or that the roster no longer
has, is refused with why — its verdict recorded refused and told, its round ended and the
work a human's — over a real ledger and the real admission."""

from __future__ import annotations

import pytest

from fleet.errors import UnknownAgent
from fleet.ledger import Ledger
from fleet.ledger.records.peers import ReviewRecord
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.peers.errors import PeerRefusal
from fleet.peers.review.handoff import ReviewStores
from fleet.peers.review.stage import ReviewStage
from fleet.peers.rules import Rules
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0
from tests.unit.fleet.peers.review_rig import POLICY, Rig


class Roster:
    """The roster as it is now, as the rules read it."""

    def __init__(self, *names: str) -> None:
        self.specs = {name: AgentSpec(AgentName(name), "command") for name in names}

    async def knows(self, name: str) -> bool:
        return name in self.specs

    async def spec(self, name: str) -> AgentSpec:
        if name not in self.specs:
            raise UnknownAgent(f"no agent named {name}")
        return self.specs[name]

    def roster(self) -> list[AgentSpec]:
        return list(self.specs.values())


def guarded(rig: Rig, roster: Roster, named: dict[str, str]) -> ReviewStage:
    """``rig``'s stage, asking the rules over ``roster`` and the review agent each
    repository names in ``named`` (as they are when a verdict comes)."""
    ledger = rig.ledger
    rules = Rules(
        messages=ledger.messages, fleet=roster, clock=ManualClock(T0), max_chars=4000, queue=20
    )

    async def may_review(reviewer: str, review: ReviewRecord) -> str | None:
        return rules.may_review(reviewer, named.get(review.repo))

    return ReviewStage(
        stores=ReviewStores(
            ledger.reviews, ledger.messages, ledger.tasks, ledger.runs, ledger.spawn_queue
        ),
        admit=rig.admit,
        diff=rig.diff,
        redact=lambda text: text.replace("sk-secret", "[redacted]"),
        heard=rig.hear,
        send=rig.send,
        stop=rig.stop,
        may_review=may_review,
    )


@pytest.mark.parametrize(
    ("named", "names", "why"),
    [
        (
            "auditor",
            ("coder", "reviewer", "auditor"),
            "reviewer no longer reviews this repository's work (its review agent is auditor now)",
        ),
        ("reviewer", ("coder",), "reviewer is no longer in the roster"),
    ],
)
async def test_a_verdict_from_a_reviewer_that_lost_its_right_is_refused_the_work_a_humans(
    rig: Rig, ledger: Ledger, named: str, names: tuple[str, ...], why: str
) -> None:
    """A verdict from a reviewer no longer named (or no longer in the roster) is refused
    with why; the refused verdict is recorded and told; the round ends; a human has it."""
    repos, roster = {"app": "reviewer"}, Roster("coder", "reviewer")
    stage = guarded(rig, roster, repos)
    task = await rig.working_task()
    review = await stage.begin(rig.under(task), POLICY)
    assert review is not None and review.state == "asked"
    repos["app"] = named  # a restart named another review agent, or dropped this one
    roster.specs = Roster(*names).specs
    with pytest.raises(PeerRefusal) as refused:
        await stage.verdict("reviewer", True, "ship it sk-secret")
    assert f"{refused.value}" == f"{why}: your verdict is refused"
    ended = await ledger.reviews.review(review.id)
    assert ended is not None and ended.state == "ended" and why in ended.verdict
    [message] = rig.heard
    assert (message.kind, message.state, message.why) == (
        "review",
        "refused",
        f"verdict refused: {why}",
    )
    assert "sk-secret" not in message.text and "approved (round 1 of 2)" in message.text
    found = await ledger.tasks.task(task.id)
    assert found is not None and found.state == "review" and "a human reviews it now" in found.why
    assert rig.sent == []  # nothing went on to the coder
