"""Tests for what a hostile review of forge work found, each kept fixed: one spelling of a
repository in the ledger, an issue closed by its pull request's merge ending the run as the
merge does, a done published once whatever the posts after it meet, and a run's branch
being the one its line was really given."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleet.forge.door.door import DoorScope
from fleet.forge.events.kept import kept
from fleet.forge.model import EventKind, ForgeApiError
from fleet.ledger.records.forge import ForgeRunState, Slug
from fleet.ledger.records.lines import LineRecord
from tests.unit.fleet.forge.runs.work_rig import AGENT, BOT, FORGE, LABEL, WorkRig, event


async def test_a_repository_spelt_otherwise_is_the_same_repository(rig: WorkRig) -> None:
    """GitHub's full_name in another case: the run is kept under the config's spelling,
    and the same issue spelt either way has one run."""
    shouted = replace(event(EventKind.LABELED, label=LABEL), repo=Slug("ACME", "App"))
    assert (await rig.deliver(shouted)).startswith("started")
    again = event(EventKind.LABELED, label=LABEL)
    assert "already has a run" in await rig.deliver(again)
    [run] = await rig.ledger.forge.forge_runs()
    assert str(run.slug) == "acme/app"


async def test_an_issue_closed_by_its_merged_pull_request_ends_the_run(rig: WorkRig) -> None:
    """ "Closes #3" in the merged PR closes the issue, maybe before the PR's own event:
    the run ends as a merge ends it — branch deleted, line discarded."""
    record = await rig.started()
    pull = await rig.api.open_pull(
        record.slug, head=record.branch, base="main", title="t", body="b", draft=True
    )
    await rig.ledger.forge.update_forge_run(
        record.id, pull=pull.number, state=ForgeRunState.WAITING
    )
    rig.launcher.running.discard(AGENT)
    rig.api.pulls[(str(record.slug), pull.number)] = replace(pull, state="closed", merged=True)
    outcome = await rig.deliver(event(EventKind.CLOSED))
    assert outcome.startswith(f"ended coder's run: PR #{pull.number} merged"), outcome
    assert rig.launcher.named("discard")
    assert (await rig.record(record.id)).state == "ended"


async def test_a_done_is_published_once_when_the_check_run_is_refused(rig: WorkRig) -> None:
    """An App without checks: write: the PR is open, the run waits for review, and the
    next rounds publish nothing again."""
    rig.api.failures["check_run"] = ForgeApiError("no checks: write", 403)
    record = await rig.started()
    await rig.desk.done(await _scope(rig), "ok", "Done.")
    rig.launcher.running.discard(AGENT)
    await rig.work.settle()
    assert (await rig.record(record.id)).state == "waiting"
    pushes = len(rig.launcher.named("push"))
    for _ in range(3):
        await rig.watch.tick()
        await rig.work.settle()
    assert len(rig.launcher.named("push")) == pushes == 1
    assert len(rig.api.pulls) == 1


async def test_the_runs_branch_is_the_one_its_line_was_given(
    rig: WorkRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line of a second run of an issue is named anew (an earlier one's branch may live
    on upstream): the forge run keeps the line's own name, which its PR is opened from."""
    given = rig.launcher.line

    async def renamed(agent: str, line_id: int | None = None) -> LineRecord | None:
        line = await given(agent, line_id)
        return None if line is None else replace(line, branch="fw/coder/issue-3-2")

    monkeypatch.setattr(rig.launcher, "line", renamed)
    record = await rig.started()
    assert record.branch == "fw/coder/issue-3-2"
    await rig.desk.done(await _scope(rig), "ok", "Done.")
    rig.launcher.running.discard(AGENT)
    await rig.work.settle()
    [pull] = rig.api.pulls.values()
    assert pull.head == "fw/coder/issue-3-2"


async def _scope(rig: WorkRig) -> DoorScope:
    scope = await rig.desk.scope_of(AGENT)
    assert scope is not None, "the run has no scope"
    return scope


async def test_a_login_that_is_not_the_credentials_holds_the_forges_events(
    rig: WorkRig,
) -> None:
    """The config's login is not the account the token acts as: the bot would take its
    own comments for a person's, so the forge's events are refused, saying the fix; one
    taken meanwhile is kept, and acted on at the next start, the login fixed."""
    rig.api.login = "someone-else"
    why = await rig.work.holds.check_login(FORGE)
    assert why is not None and "set login: someone-else" in why
    labelled = event(EventKind.LABELED, label=LABEL)
    assert await rig.ledger.forge.take_delivery(labelled.forge, labelled.delivery, labelled.name,
                                          kept(labelled))  # fmt: skip
    outcome = await rig.work.receive(labelled)
    assert outcome.startswith(f"refused: forge {FORGE} is held") and rig.launcher.starts == []
    assert "someone-else" not in outcome  # the operator's words stay the operator's
    rig.api.login = BOT
    assert await rig.work.holds.check_login(FORGE) is None
    assert await rig.work.resume_kept() == 1
    await rig.work.settle()
    assert [s["branch"] for s in rig.launcher.starts] == ["fw/coder/issue-3"]
