"""Tests for what keeps a forge run from waiting forever on the forge: a review or comment
on a run of an agent with no session to continue starts its next run on the same line
(fleet.forge.runs.onward) — or, when that cannot start, is refused on the pull request with
why — and an issue given to no agent Fleetwarden can start there is answered once
(fleet.forge.posts.answers), never only in the log."""

from __future__ import annotations

import pytest

from fleet.forge.launcher import LaunchRefused
from fleet.forge.model import EventKind
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunState
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import AGENT, BRANCH, LABEL, WorkRig, event

PULL = 18


@pytest.fixture
def onward_rig(ledger: Ledger, clock: ManualClock) -> WorkRig:
    made = WorkRig.make(ledger, clock)
    made.launcher.sessionless.add(AGENT)  # a `command` agent: no session once it exited
    return made


async def _done_with_pull(rig: WorkRig) -> int:
    """A run of #3 that said done and has PR #18; its agent exited; the run's key."""
    record = await rig.started()
    await rig.ledger.forge.update_forge_run(
        record.id,
        pull=PULL,
        pull_url=f"https://github.com/acme/app/pull/{PULL}",
        state=ForgeRunState.WAITING,
        done_signal="agent",
        done_status="ok",
    )
    rig.launcher.running.discard(AGENT)
    return record.id


def _review(body: str = "Cover the remember-me cookie too.") -> object:
    return event(EventKind.REVIEW, PULL, is_pull=True, review_state="changes_requested", body=body)


async def test_a_review_without_a_session_starts_the_next_run_on_the_same_line(
    onward_rig: WorkRig,
) -> None:
    """The follow-up finds no session: the next run starts on the run's own line, its
    prompt the branch, the open PR and the review's words; the run works again."""
    key = await _done_with_pull(onward_rig)
    outcome = await onward_rig.deliver(_review())  # type: ignore[arg-type]
    assert outcome == (
        f"started coder's next run on {BRANCH} (review by @alice): no session to continue"
    )
    [call] = onward_rig.launcher.named("start_on_line")
    assert call == ("start_on_line", AGENT, 7)  # the line the run was given
    prompt = onward_rig.launcher.starts[-1]["prompt"]
    assert f"`{BRANCH}`" in prompt and f"pull request #{PULL} is open" in prompt
    assert "Cover the remember-me cookie too." in prompt and "fw-forge done ok" in prompt
    fresh = await onward_rig.record(key)
    assert (fresh.state, fresh.done_signal, fresh.pull) == ("working", None, PULL)
    [line] = [a for a in await onward_rig.ledger.forge.forge_audit(key) if a.op == "continue"]
    assert line.allowed and "no session to continue" in line.detail


async def test_a_next_run_that_cannot_start_is_refused_on_the_pull_request(
    onward_rig: WorkRig,
) -> None:
    """A budget holds the next run: said on the PR where the review came, with what to
    do; the run stays waiting for review, its done standing."""
    key = await _done_with_pull(onward_rig)
    onward_rig.launcher.refuse[AGENT] = "not started: budget daily is spent until 00:00 UTC"
    outcome = await onward_rig.deliver(_review())  # type: ignore[arg-type]
    assert outcome.startswith("refused: not started: budget daily is spent")
    [said] = onward_rig.api.texts_on(PULL)
    assert "**coder** could not take up this review" in said
    assert "budget daily is spent" in said and "comment again" in said
    assert said.rstrip().endswith("</details>")
    fresh = await onward_rig.record(key)
    assert (fresh.state, fresh.done_signal, fresh.done_status) == ("waiting", "agent", "ok")


async def test_a_next_run_refused_for_the_operators_reasons_keeps_them_off_the_forge(
    onward_rig: WorkRig,
) -> None:
    """The next run refused with the operator's detail (an upstream's address): the PR
    hears the public words only — in the post and in its provenance — the audit keeps both."""
    key = await _done_with_pull(onward_rig)
    onward_rig.launcher.refuse[AGENT] = LaunchRefused(
        "not started: the operator has the details",
        "not started: the upstream of app (https://git.internal/app.git) refused APP_TOKEN",
    )
    outcome = await onward_rig.deliver(_review())  # type: ignore[arg-type]
    assert outcome.startswith("refused: not started: the upstream of app")
    [said] = onward_rig.api.texts_on(PULL)
    assert "the operator has the details" in said
    assert "git.internal" not in said and "APP_TOKEN" not in said
    [kept] = [a for a in await onward_rig.ledger.forge.forge_audit(key) if a.op == "continue"]
    assert "git.internal" in kept.detail


async def test_a_session_that_goes_on_is_continued_not_restarted(onward_rig: WorkRig) -> None:
    """An agent whose session can take the words: the same session, no new run."""
    await _done_with_pull(onward_rig)
    onward_rig.launcher.sessionless.clear()
    outcome = await onward_rig.deliver(_review())  # type: ignore[arg-type]
    assert outcome == "continued coder's session (review by @alice)"
    assert onward_rig.launcher.named("start_on_line") == []


async def test_a_review_while_the_agent_works_on_another_line_is_not_sent_into_it(
    onward_rig: WorkRig,
) -> None:
    """The agent's session works on a newer line (other work, cut since): the review's
    words go into no session and start no run there; the PR says why, without naming the
    other work, and the run waits as it did, its done standing."""
    key = await _done_with_pull(onward_rig)
    onward_rig.launcher.sessionless.clear()
    onward_rig.launcher.running.add(AGENT)  # its live session, on the newer line
    onward_rig.launcher.newest = 9
    outcome = await onward_rig.deliver(_review())  # type: ignore[arg-type]
    assert outcome.startswith("refused: not continued: coder works on another branch now")
    assert onward_rig.launcher.named("start_on_line") == []
    [said] = onward_rig.api.texts_on(PULL)
    assert "**coder** could not take up this review: not continued" in said
    assert "no session to continue" not in said and "fw/coder/9" not in said
    fresh = await onward_rig.record(key)
    assert (fresh.state, fresh.done_signal, fresh.done_status) == ("waiting", "agent", "ok")
    [line] = [a for a in await onward_rig.ledger.forge.forge_audit(key) if a.op == "continue"]
    assert not line.allowed and "another branch" in line.detail


async def test_a_label_naming_no_agent_is_answered_once(onward_rig: WorkRig) -> None:
    """`fleetwarden:nobody` by a writer: one comment on the issue naming the labels that
    start a run here; the delivery acted on again (after a restart) says nothing more."""
    labelled = event(EventKind.LABELED, label="fleetwarden:nobody")
    outcome = await onward_rig.deliver(labelled)
    assert outcome == "answered: no agent is named nobody"
    [said] = onward_rig.api.texts_on(3)
    assert "The label fleetwarden:nobody names **nobody**" in said
    assert "The labels that start a run here: `fleetwarden:coder`" in said
    assert "Fleetwarden · no run" in said and onward_rig.launcher.starts == []
    assert await onward_rig.work.resume_kept() == 0  # its outcome was written before the post
    assert len(onward_rig.api.texts_on(3)) == 1
    [line] = [a for a in await onward_rig.ledger.forge.forge_audit() if a.op == "answer"]
    assert line.detail == "#3 by @alice: no agent is named nobody"


async def test_an_agent_on_no_repository_is_answered(onward_rig: WorkRig) -> None:
    """A roster agent with no `repo:`: the issue is told so, with the labels that work."""
    onward_rig.launcher.repos["helper"] = None  # type: ignore[assignment]
    outcome = await onward_rig.deliver(event(EventKind.LABELED, label="fleetwarden:helper"))
    assert outcome.startswith("answered: helper is no agent on a repository")
    [said] = onward_rig.api.texts_on(3)
    assert "**helper** works on no repository" in said and "`fleetwarden:coder`" in said


async def test_a_hostile_label_is_escaped_and_a_strangers_gets_nothing(onward_rig: WorkRig) -> None:
    """A label that is no agent name is shown escaped, its agent not named; a stranger's
    label posts nothing at all."""
    hostile = "fleetwarden:@everyone <!-- x --> [a](javascript:1)"
    assert (await onward_rig.deliver(event(EventKind.LABELED, label=hostile))).startswith(
        "answered"
    )
    [said] = onward_rig.api.texts_on(3)
    body = said.split("<details>")[0]
    assert "`fleetwarden:@everyone`" in body and "<!--" not in body
    assert "\\[a\\](javascript:1)" in body  # as text, never a link
    stranger = event(EventKind.LABELED, actor="mallory", label="fleetwarden:nobody")
    assert (await onward_rig.deliver(stranger)).startswith("ignored: @mallory")
    assert len(onward_rig.api.texts_on(3)) == 1


async def test_a_trigger_label_for_an_agent_still_starts_its_run(onward_rig: WorkRig) -> None:
    """The answer is for labels that start nothing: the agent's own label starts it."""
    assert (await onward_rig.deliver(event(EventKind.LABELED, label=LABEL))).startswith("started")
