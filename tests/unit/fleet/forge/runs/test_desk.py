"""Tests for the forge desk, the forge door's actions over forge work: the scope of an
agent's run, its comments and descriptions posted redacted, defused and signed, its pull
request opened once, and its ``done`` published once its turn is over — the branch
pushed, one pull request with the requester asked to review, the summary with the
provenance footer — or, on ``failed``, the summary on the issue."""

from __future__ import annotations

import asyncio
import re

import pytest

from fleet.errors import FleetwardenError
from fleet.events import EventKind as FleetKind
from fleet.forge.door.door import DoorRefusal, DoorScope
from fleet.forge.facts import NoRunNews, PullNews
from fleet.forge.model import EventKind
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import (
    AGENT,
    BOT,
    BRANCH,
    HEAD_SHA,
    LABEL,
    SECRET,
    SLUG,
    WorkRig,
    event,
    forge_entry,
)


async def _scope(rig: WorkRig) -> DoorScope:
    scope = await rig.desk.scope_of(AGENT)
    assert scope is not None
    return scope


async def _done(rig: WorkRig, status: str = "ok", summary: str = "Fixed the parser.") -> str:
    """The agent says done with its turn already over; what the door answers it."""
    rig.launcher.running.discard(AGENT)
    answer = await rig.desk.done(await _scope(rig), status, summary)
    await rig.work.settle()
    return answer


def _live_mentions(text: str) -> list[str]:
    """Mentions outside code spans: the ones a forge would notify."""
    return re.findall(r"(?<![\w`])@[A-Za-z0-9][\w-]*", re.sub(r"`[^`]*`", "", text))


async def test_the_scope_is_the_working_runs(rig: WorkRig) -> None:
    """No run: no scope; a working run: its repo, issue and branch; no pull yet."""
    assert await rig.desk.scope_of(AGENT) is None
    record = await rig.started()
    scope = await _scope(rig)
    assert scope == DoorScope(
        run_key=record.id, forge="hub", repo=SLUG, issue=3, pull=None, branch=BRANCH
    )


async def test_a_queued_or_stopped_run_has_no_scope(rig: WorkRig) -> None:
    """The agent's door answers for no run it is not working on."""
    rig.launcher.busy_why[AGENT] = "coder is running"
    await rig.deliver(event(EventKind.LABELED, label=LABEL))
    assert await rig.desk.scope_of(AGENT) is None
    rig.launcher.busy_why.clear()
    await rig.deliver(event(EventKind.UNLABELED, label=LABEL))
    await rig.started()
    scope = await _scope(rig)
    await rig.deliver(event(EventKind.UNLABELED, label=LABEL))
    assert await rig.desk.scope_of(AGENT) is None
    with pytest.raises(DoorRefusal, match="this forge run is over"):
        await rig.desk.comment(scope, 3, "still here")


async def test_done_ok_pushes_opens_one_pull_request_and_posts_the_summary(rig: WorkRig) -> None:
    """`done ok`, the turn over: the branch pushed, then one draft PR from it into the
    line's base with the requester asked to review, the summary posted on it with the
    footer, a check run on its head, and the run waiting for review."""
    record = await rig.started()
    answer = await _done(rig, summary="Fixed the parser; added a test.")
    assert answer.startswith("done: once this turn ends")
    # Pushed as its run ends (its summary says so), then for the PR; nothing frozen or stopped.
    assert rig.launcher.ops() == ["start", "push_at_end", "push"]
    [pull] = rig.api.pulls.values()
    assert (pull.head, pull.base, pull.draft, pull.title) == (BRANCH, "trunk", True, record.title)
    assert pull.body.startswith("Closes #3.") and "<details>" in pull.body
    assert rig.api.review_requests == {(str(SLUG), pull.number): ["alice"]}
    [summary] = rig.api.texts_on(pull.number)
    assert "Fixed the parser; added a test." in summary
    assert summary.count("<details>") == 1 and summary.rstrip().endswith("</details>")
    [check] = rig.api.check_runs.values()
    assert (check["head_sha"], check["conclusion"]) == (HEAD_SHA, "success")
    fresh = await rig.record(record.id)
    assert (fresh.state, fresh.pull, fresh.pull_url) == ("waiting", pull.number, pull.url)
    assert (fresh.done_signal, fresh.done_status) == ("agent", "ok")
    assert pull.url in rig.status(fresh).history[-1]
    assert len(rig.api.comments_on(3)) == 1  # the status comment alone on the issue


async def test_chat_hears_a_pull_request_opened_once(ledger: Ledger, clock: ManualClock) -> None:
    """The first `done ok` opens the PR: chat hears it, with its link (not "late"); a
    second done, whose commits the same PR takes, is no news."""
    told: list[PullNews | NoRunNews] = []

    async def tell(news: PullNews | NoRunNews) -> None:
        told.append(news)

    rig = WorkRig.make(ledger, clock, tell=tell)
    await rig.started()
    await _done(rig)
    [opened] = told
    assert isinstance(opened, PullNews) and opened.pull is not None and not opened.late
    assert opened.ended is None and opened.why is None
    rig.launcher.running.add(AGENT)
    await _done(rig, summary="Tidied the test.")
    assert told == [opened]


async def test_the_push_comes_before_the_pull_request(rig: WorkRig) -> None:
    """The branch is pushed before the forge is asked to open a PR from it."""
    await rig.started()
    pushed: list[bool] = []
    real_open = rig.api.open_pull

    async def open_pull(*args: object, **kwargs: object) -> object:
        pushed.append(bool(rig.launcher.named("push")))
        return await real_open(*args, **kwargs)  # type: ignore[arg-type]

    rig.api.open_pull = open_pull  # type: ignore[method-assign,assignment]
    await _done(rig)
    assert pushed == [True]


async def test_done_waits_for_the_turn_to_end(ledger: Ledger, clock: ManualClock) -> None:
    """While the agent still runs, nothing is pushed; once its turn ends, it is published
    without freezing it."""
    rig = WorkRig.make(ledger, clock, turn_wait=30.0)
    await rig.started()
    rig.launcher.asked.clear()
    await rig.desk.done(await _scope(rig), "ok", "Done.")
    await asyncio.wait_for(rig.launcher.asked.wait(), 5)
    assert rig.launcher.named("push") == [] and rig.api.named("open_pull") == []
    await rig.launcher.tell(AGENT, FleetKind.ENDED)  # its run ended: heard, not polled for
    await asyncio.wait_for(rig.work.settle(), 5)
    assert len(rig.launcher.named("push")) == 1 and len(rig.api.pulls) == 1
    assert rig.launcher.named("freeze") == [] and rig.launcher.named("stop") == []


@pytest.mark.parametrize(("on_done", "ended_by"), [("freeze", "freeze"), ("end", "stop")])
async def test_a_turn_past_the_wait_is_frozen_or_ended(
    ledger: Ledger, clock: ManualClock, on_done: str, ended_by: str
) -> None:
    """An agent still running after the wait is frozen (or ended, as `on_done` says),
    then its work is published."""
    rig = WorkRig.make(ledger, clock, entry=forge_entry(on_done=on_done))
    await rig.started()
    await rig.desk.done(await _scope(rig), "ok", "Done.")
    await rig.work.settle()
    ops = rig.launcher.ops()
    assert ops.count(ended_by) == 1
    assert ops.index(ended_by) < ops.index("push")
    assert len(rig.api.pulls) == 1


async def test_a_follow_up_before_the_turn_ended_is_not_frozen_or_published(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A mention continuing the session while `done` waits: the new turn goes on — not
    frozen when the wait runs out, nothing pushed or opened."""
    rig = WorkRig.make(ledger, clock, turn_wait=1.0)
    record = await rig.started()
    rig.launcher.asked.clear()
    await rig.desk.done(await _scope(rig), "ok", "Done.")
    await asyncio.wait_for(rig.launcher.asked.wait(), 5)
    outcome = await rig.deliver(event(EventKind.COMMENT, body=f"@{BOT} one more thing"))
    assert outcome.startswith("continued coder's session")
    await rig.work.settle()
    assert rig.launcher.named("push") == [] and rig.api.pulls == {}
    assert rig.launcher.named("freeze") == [] and rig.launcher.named("stop") == []
    fresh = await rig.record(record.id)
    assert (fresh.state, fresh.done_signal) == ("working", None)


async def test_a_second_done_after_a_follow_up_updates_the_same_pull_request(
    rig: WorkRig,
) -> None:
    """Done, a comment on the PR, done again: pushed twice, still one PR, both summaries
    on it, the requester asked once."""
    record = await rig.started()
    await _done(rig, summary="First pass.")
    [pull] = rig.api.pulls.values()
    ev = event(EventKind.COMMENT, pull.number, is_pull=True, body="Please rename it.")
    assert (await rig.deliver(ev)).startswith("continued")
    assert (await _scope(rig)).pull == pull.number
    await _done(rig, summary="Renamed it.")
    assert len(rig.launcher.named("push")) == 2
    assert len(rig.api.named("open_pull")) == 1 and len(rig.api.pulls) == 1
    assert len(rig.api.named("request_review")) == 1
    summaries = rig.api.texts_on(pull.number)
    assert len(summaries) == 2 and "Renamed it." in summaries[1]
    assert (await rig.record(record.id)).state == "waiting"


async def test_done_after_the_door_refused_the_push_says_so(rig: WorkRig) -> None:
    """The door refused the run's last push and nothing reached the branch since: `done`
    says so, with why and the way on — never that the pull request takes new commits."""
    await rig.started()
    await _done(rig, summary="First pass.")
    [pull] = rig.api.pulls.values()
    ev = event(EventKind.COMMENT, pull.number, is_pull=True, body="Please rename it.")
    assert (await rig.deliver(ev)).startswith("continued")
    rig.launcher.door_refused = "commit 1a2b3c4 names #9, not this run's own (issue #3).\nFix: …"
    answer = await _done(rig, summary="Renamed it.")
    assert answer == (
        "done noted, but the git door refused your last push: commit 1a2b3c4 names #9, not "
        "this run's own (issue #3). Those commits are not on your branch, and the pull "
        f"request #{pull.number} will not have them. Fix what it says (amend or rewrite those "
        "commits), push again, then run `fw-forge done` again."
    ), answer
    assert "takes the new commits" not in answer
    rig.launcher.door_refused = None  # pushed again, taken
    assert "takes the new commits" in await _done(rig, summary="Renamed it.")


async def test_done_failed_posts_the_summary_on_the_issue(rig: WorkRig) -> None:
    """`done failed`: nothing pushed or opened, the why posted on the issue, run failed."""
    record = await rig.started()
    answer = await _done(rig, "failed", "The tests need a database I cannot reach.")
    assert answer == "done: your summary is posted on the issue once this turn ends"
    assert rig.launcher.named("push") == [] and rig.api.pulls == {}
    status, failed = rig.api.comments_on(3)
    assert "The tests need a database I cannot reach." in failed.comment.body
    assert "could not finish" in failed.comment.body and "<details>" in failed.comment.body
    fresh = await rig.record(record.id)
    assert (fresh.state, fresh.done_status) == ("failed", "failed")
    assert status.history[-1] != status.history[0]


async def test_a_branch_that_cannot_be_pushed_leaves_the_run_unpublished(rig: WorkRig) -> None:
    """A push refused after `done ok`: no PR, the reason and what opens it on the issue,
    the run unpublished (not failed: the agent's work is done)."""
    record = await rig.started()
    rig.launcher.push_error = FleetwardenError("the upstream refused the push")
    await _done(rig)
    assert rig.api.named("open_pull") == []
    [said] = [t for t in rig.api.texts_on(3) if "is done, but" in t]
    assert "its branch could not be pushed to the repository" in said and "`pr coder`" in said
    assert "the upstream refused the push" not in said  # the upstream's words: chat's only
    assert (await rig.record(record.id)).state == "unpublished"


async def test_the_agents_comment_is_redacted_defused_and_signed(rig: WorkRig) -> None:
    """The agent's comment: the secret redacted, its mentions and HTML made harmless,
    one footer after it."""
    await rig.started()
    text = f"Used {SECRET} to test; @bob and @acme/owners look. <details>fake</details>"
    answer = await rig.desk.comment(await _scope(rig), 3, text)
    body = rig.api.texts_on(3)[-1]
    assert answer == f"commented: {rig.api.comments_on(3)[-1].comment.url}"
    assert SECRET not in body and "[REDACTED]" in body
    assert "`@bob`" in body and _live_mentions(body.split("<details>")[0]) == []
    assert body.count("<details>") == 1 and "<details>fake" not in body
    assert body.rstrip().endswith("</details>")


def _everything_posted(rig: WorkRig) -> dict[str, str]:
    """Every text the forge holds from Fleetwarden, by where: comments as they ever were,
    pull requests' titles and bodies, check runs' titles and summaries."""
    texts = {
        f"comment {key} v{n}": text
        for key, kept in rig.api.posted.items()
        for n, text in enumerate(kept.history)
    }
    for (_, number), pull in rig.api.pulls.items():
        texts |= {f"PR #{number} title": pull.title, f"PR #{number} body": pull.body}
    for key, check in rig.api.check_runs.items():
        texts |= {f"check {key} {k}": str(check[k]) for k in ("title", "summary")}
    return texts


async def test_no_secret_the_agent_wrote_reaches_the_forge(rig: WorkRig) -> None:
    """The secret in the agent's PR title, description and `done` summary is redacted
    everywhere Fleetwarden writes it: the PR, the summary, the check run, the status."""
    await rig.started()
    await rig.desk.open_pull(await _scope(rig), f"Rotate {SECRET}", "Body.", False)
    await rig.desk.describe(await _scope(rig), f"Now {SECRET}.")
    await _done(rig, summary=f"Set the key to {SECRET}.")
    posted = _everything_posted(rig)
    assert any("[REDACTED]" in text for text in posted.values())
    assert [where for where, text in posted.items() if SECRET in text] == []


async def test_no_secret_in_why_a_branch_was_not_published(rig: WorkRig) -> None:
    """The push's error may carry the agent's words: redacted and defused before posting."""
    await rig.started()
    rig.launcher.push_error = FleetwardenError(f"the hook refused: {SECRET} cc @bob")
    await _done(rig)
    [said] = [t for t in rig.api.texts_on(3) if "is done, but" in t]
    assert SECRET not in said and _live_mentions(said.split("<details>")[0]) == []


async def test_the_redactor_runs_before_defusing(ledger: Ledger, clock: ManualClock) -> None:
    """A secret split by markup the defuser adds would escape redaction: redact first."""
    rig = WorkRig.make(ledger, clock, redactor=lambda t: t.replace("tok&en", "[X]"))
    await rig.started()
    await rig.desk.comment(await _scope(rig), 3, "the value tok&en here")
    assert "[X]" in rig.api.texts_on(3)[-1]


async def test_the_agent_opens_its_pull_request_once(rig: WorkRig) -> None:
    """`pr` pushes and opens the PR with the review asked; a second `pr` finds the same."""
    record = await rig.started()
    scope = await _scope(rig)
    answer = await rig.desk.open_pull(scope, "Parse the last line", f"Fixes it. {SECRET}", False)
    [pull] = rig.api.pulls.values()
    assert answer == f"pull request #{pull.number} is open: {pull.url}"
    assert pull.draft  # the forge's `draft: true` holds
    assert SECRET not in pull.body and pull.title == "Parse the last line"
    again = await rig.desk.open_pull(await _scope(rig), "Another", "", True)
    assert again == answer and len(rig.api.named("open_pull")) == 1
    assert rig.api.review_requests == {(str(SLUG), pull.number): ["alice"]}
    assert (await rig.record(record.id)).pull == pull.number


async def test_a_pull_request_that_cannot_be_pushed_is_refused(rig: WorkRig) -> None:
    """The door hears why in Fleetwarden's words when the branch cannot be pushed."""
    await rig.started()
    rig.launcher.push_error = FleetwardenError("nothing committed on fw/coder/issue-3")
    with pytest.raises(DoorRefusal, match="refused: nothing committed"):
        await rig.desk.open_pull(await _scope(rig), "T", "B", False)
    assert rig.api.named("open_pull") == []


async def test_describe_sets_the_pull_requests_description(rig: WorkRig) -> None:
    """The agent's description replaces the PR's body, redacted, defused and signed."""
    await rig.started()
    await rig.desk.open_pull(await _scope(rig), "T", "B", False)
    [pull] = rig.api.pulls.values()
    answer = await rig.desk.describe(await _scope(rig), f"What changed, cc @carol. {SECRET}")
    assert answer == f"described: {pull.url}"
    body = rig.api.pulls[(str(SLUG), pull.number)].body
    assert "What changed" in body and "`@carol`" in body and SECRET not in body
    assert body.count("<details>") == 1


async def test_the_audit_is_kept_and_counts_as_a_sign_of_life(rig: WorkRig) -> None:
    """Each door call audited moves the run's last activity to now."""
    record = await rig.started()
    rig.clock.advance(600)
    await rig.desk.audit(await _scope(rig), AGENT, "read", True, "read PR #18 description")
    await rig.desk.audit(None, "other", "comment", False, "refused: no forge run")
    fresh = await rig.record(record.id)
    assert fresh.activity_at == rig.clock.now()
    lines = await rig.ledger.forge.forge_audit(record.id)
    assert lines[-1].detail == "read PR #18 description" and lines[-1].allowed
    [stray] = [a for a in await rig.ledger.forge.forge_audit() if a.forge_run is None]
    assert (stray.agent, stray.allowed) == ("other", False)
