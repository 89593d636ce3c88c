"""Tests for the forge commands (bot.commands.handlers.places.forge) over forge work with a real
ledger and the fake forge and fleet: what `pr NAME` answers when its agent works on no
issue — the run whose pull request was merged or closed, or none — naming no verb that
does not apply."""

from __future__ import annotations

import pytest

from bot.acl import Role
from bot.commands.errors import NotFound
from bot.commands.handlers.places.forge import ForgeCommands, ForgeParts
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Request
from bot.commands.specs import COMMANDS
from fleet.forge.model import EventKind
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunState
from fleet.ledger.records.lines import LineState
from fleet.timing.clock import ManualClock
from tests.unit.bot.commands.test_repo_commands import ADMIN
from tests.unit.chat_fakes import message
from tests.unit.fleet.forge.runs.work_rig import AGENT, BRANCH, WorkRig, event


@pytest.fixture
def work_rig(ledger: Ledger, clock: ManualClock) -> WorkRig:
    return WorkRig.make(ledger, clock)


async def _pr(rig: WorkRig, text: str = "!pr coder") -> str:
    """What `pr` refused, in its words."""
    command = Grammar(COMMANDS).parse(text)
    assert command is not None
    commands = ForgeCommands(
        ForgeParts(
            rig.work.forges,
            rig.ledger.forge,
            rig.work.publisher,
            rig.launcher,
            rig.work.holds,
            rig.work.lock,
        ),
        rig.clock,
    )
    with pytest.raises(NotFound) as refused:
        await commands.pr(Request(message(text, sender=ADMIN), Role.ADMIN, command, False))
    return str(refused.value)


@pytest.mark.parametrize("merged", [True, False])
async def test_pr_after_the_pull_request_ended_says_so(work_rig: WorkRig, merged: bool) -> None:
    """Its run's PR #18 merged (or closed) and its line ended: `pr coder` says so, that
    there is nothing to open and how to give it new work — never `push`."""
    record = await work_rig.started()
    await work_rig.ledger.forge.update_forge_run(
        record.id, pull=18, pull_url="https://github.com/acme/app/pull/18",
        state=ForgeRunState.WAITING,
    )  # fmt: skip
    work_rig.launcher.running.discard(AGENT)
    ev = event(EventKind.PULL_CLOSED, 18, is_pull=True, merged=merged, head=BRANCH)
    await work_rig.deliver(ev)
    work_rig.launcher.ended[7] = LineState.DISCARDED
    how = "merged" if merged else "closed"
    said = await _pr(work_rig)
    assert said == (
        f"coder's forge run on issue #3 of acme/app ended when its pull request #18 was "
        f"{how}: there is nothing to open. To go on, label an issue `fleetwarden:coder` to "
        "give it new work."
    ), said
    assert "push" not in said


async def test_pr_of_an_agent_that_never_had_an_issue(work_rig: WorkRig) -> None:
    """No forge run ever: with a live branch `push` is the way; without one, the label."""
    said = await _pr(work_rig)
    assert "`push coder` pushes its branch" in said, said
    work_rig.launcher.ended[7] = LineState.MERGED
    said = await _pr(work_rig)
    assert said == (
        "coder works on no issue from a forge and has no branch: label an issue "
        "`fleetwarden:coder` to give it new work"
    ), said
