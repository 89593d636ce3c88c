"""The admission's ownership stage: an agent on a forge issue, or running under a
``--fresh``, is not a chat launch's to take; other origins go on."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.model import AgentSpec, Fallback
from fleet.supervisor.admission.request import LaunchRequest, Origin, Refused, Started
from fleet.supervisor.status import SpawnOutcome
from tests.fakes.doubles.launches import an_admission


class Owned:
    """An agent ``coder`` on issue #12 (``on_issue``), live or not, on branch fw/coder/12."""

    def __init__(self, *, on_issue: bool, live: bool) -> None:
        self.on_issue, self.is_live = on_issue, live

    async def live(self, agent: str) -> bool:
        return self.is_live

    async def on_an_issue(self, agent: str, live: bool) -> str | None:
        if not self.on_issue:
            return None
        return f"{agent} works on #12 ({'live' if live else 'waiting'})"

    async def branch_of(self, agent: str) -> str | None:
        return "fw/coder/12"

    async def not_free(self, request: LaunchRequest) -> str | None:
        return None  # free for the run of its own issue


class Launching:
    """The fleet as the admission launches through it, counting its launches."""

    def __init__(self) -> None:
        self.spawned: list[LaunchRequest] = []

    async def fallback_of(self, name: str) -> Fallback | None:
        return None

    async def spec(self, name: str) -> AgentSpec:
        raise AssertionError("not asked")

    async def spawn(self, request: LaunchRequest) -> SpawnOutcome:
        self.spawned.append(request)
        status: Any = object()
        return SpawnOutcome(status, started=True, pid=7)


@pytest.mark.parametrize("origin", ["chat", "schedule"])
async def test_a_chat_launch_of_an_agent_on_an_issue_is_refused_saying_whose(
    origin: Origin,
) -> None:
    """A chat (or schedule) launch of an agent working on a forge issue is refused with the
    issue's words, and nothing is launched."""
    fleet = Launching()
    admission = an_admission(
        fleet, slots=None, budgets=None, owners=Owned(on_issue=True, live=True)
    )
    admitted = await admission.admit(LaunchRequest("coder", origin=origin))
    assert admitted == Refused("coder works on #12 (live)")
    assert fleet.spawned == []


@pytest.mark.parametrize("origin", ["forge", "peer", "review", "task", "autostart"])
async def test_other_origins_are_not_the_ownership_stages_to_refuse(origin: Origin) -> None:
    """A forge run, a peer's wake, a review, a hand-off, a roster start of an agent on an
    issue go on past the ownership stage (their owners decide for them)."""
    fleet = Launching()
    admission = an_admission(
        fleet, slots=None, budgets=None, owners=Owned(on_issue=True, live=False)
    )
    admitted = await admission.admit(LaunchRequest("coder", origin=origin))
    assert isinstance(admitted, Started) and len(fleet.spawned) == 1


async def test_fresh_while_live_is_refused_naming_the_branch() -> None:
    """``--fresh`` of a running agent is refused, naming its branch and what to do; the
    same launch of an idle agent starts."""
    fleet = Launching()
    owners = Owned(on_issue=False, live=True)
    admission = an_admission(fleet, slots=None, budgets=None, owners=owners)
    admitted = await admission.admit(LaunchRequest("coder", fresh=True))
    assert admitted == Refused(
        "coder is running on its branch fw/coder/12: `stop coder` first, then "
        "`spawn coder --fresh` cuts a new one"
    )
    assert fleet.spawned == []
    owners.is_live = False
    assert isinstance(await admission.admit(LaunchRequest("coder", fresh=True)), Started)


async def test_a_live_agents_plain_spawn_goes_on() -> None:
    """A live agent on no issue: its plain spawn passes the stage (the launch reports it)."""
    fleet = Launching()
    admission = an_admission(
        fleet, slots=None, budgets=None, owners=Owned(on_issue=False, live=True)
    )
    assert isinstance(await admission.admit(LaunchRequest("coder")), Started)
    assert len(fleet.spawned) == 1
