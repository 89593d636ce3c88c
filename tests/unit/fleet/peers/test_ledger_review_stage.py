"""The review stage over a real ledger (SQLite and PostgreSQL) and the real admission: a
round asked of the review agent moves the task to review and launches the agent bound to
the task — its spend counted there — whose run's end leaves the task where it is; its
prompt quotes the task and the change as data and says how to answer; ``changes`` goes
back into the working agent's session in the frame and the next done asks the next
round; ``approve``, or the last round's ``changes``, hands the work to a human (a forge
run's through the forge's side); a verdict with no round asked, or a second one, is
refused; an agent that cannot start asks nothing and the work goes to a human."""

from __future__ import annotations

import asyncio

import pytest

from fleet.errors import LaunchFailed
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.peers import NewReview
from fleet.ledger.stores.running.spawn_queue import SpawnAsk
from fleet.model import AgentState, ExitInfo
from fleet.names import AgentName
from fleet.peers.errors import PeerRefusal
from fleet.peers.review.stage import NOT_ASKED
from fleet.repos.desk import RepoError
from fleet.repos.facts import Change, CommitLine, change_to_json
from fleet.supervisor.admission.request import Queued
from tests.unit.fleet.peers.review_rig import BASE, COMMIT, POLICY, Rig


async def test_a_round_is_asked_bound_to_the_task_and_its_end_leaves_the_task(rig: Rig) -> None:
    task = await rig.working_task()
    review = await rig.stage.begin(rig.under(task), POLICY)
    assert review is not None and (review.round, review.rounds, review.state) == (1, 2, "asked")
    found = await rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review"
    assert "round 1 of 2: reviewer reviews a1b2c3d4e5f6" in found.why
    [request] = rig.launched
    assert request.agent == "reviewer" and request.task == task.id
    assert request.review_of is not None and request.review_of.commit == COMMIT
    assert (request.review_of.line_id, request.review_of.review_id) == (5, review.id)
    assert rig.diffs == [(5, BASE, COMMIT)]
    reviewer_run = await rig.ledger.runs.last_run("reviewer")
    assert reviewer_run is not None and review.run_id == reviewer_run.id
    assert reviewer_run.id in found.runs  # its spend counts on the task
    prompt = request.prompt or ""
    assert "round 1 of 2" in prompt and "> Fix the login" in prompt and "> It 500s." in prompt
    assert "| +print('hi')" in prompt and "fw-msg review approve" in prompt
    assert "fw-msg review changes" in prompt and "your own call" in prompt
    assert "\n── end of review" not in prompt  # the change's text is quoted, never a frame
    await rig.fleet.end("reviewer", reviewer_run.id, "finished")
    after = await rig.ledger.tasks.task(task.id)
    assert after is not None and after.state == "review" and after.why == found.why


async def test_a_verdict_sent_before_the_runs_start_is_heard_answers_its_round(rig: Rig) -> None:
    """The review agent answers the moment it runs, before the fleet has told the task runs
    of its start (its run not yet bound to the task): the verdict waits for the launch to be
    over, then approves the round it was launched for — never "no review is asked"."""
    task = await rig.working_task()
    sent: list[asyncio.Task[str]] = []

    async def answer_at_once(agent: str, run_id: int) -> None:
        if agent == "reviewer":
            verdict = asyncio.create_task(rig.stage.verdict("reviewer", True, "fine as it is"))
            sent.append(verdict)
            await asyncio.wait({verdict}, timeout=0.5)  # as far as it goes meanwhile
            assert not verdict.done(), verdict.result()

    rig.fleet.starting = answer_at_once
    review = await rig.stage.begin(rig.under(task), POLICY)
    assert review is not None
    said = await sent[0]
    assert "no review is asked" not in said
    kept = await rig.ledger.reviews.review(review.id)
    assert kept is not None and kept.state == "approved" and kept.verdict == "fine as it is"
    assert rig.forge.made_ready == [] and "reviewer" in rig.heard[0].sender


async def test_a_review_run_that_ends_before_its_round_is_bound_ends_the_round(rig: Rig) -> None:
    """The review agent's run ends at once, without a verdict, before its start is heard:
    its round ends, said, and the work is a human's — never a round left asked."""
    task = await rig.working_task()
    rig.fleet.listeners.append(rig.stage.hear)

    async def end_at_once(agent: str, run_id: int) -> None:
        if agent == "reviewer":
            await rig.fleet.end("reviewer", run_id, "failed", code=1)

    rig.fleet.starting = end_at_once
    review = await rig.stage.begin(rig.under(task), POLICY)
    assert review is not None and review.state == "ended", review
    assert "ended without a verdict" in review.verdict
    found = await rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review" and "without a verdict" in found.why


async def test_changes_go_back_into_the_session_and_the_next_done_asks_round_two(
    rig: Rig,
) -> None:
    task = await rig.working_task()
    first = await rig.stage.begin(rig.under(task), POLICY)
    assert first is not None
    said = await rig.stage.verdict("reviewer", False, "a.py: \x1b[31mhandle None\nsk-secret")
    assert "went to coder" in said and "round 1 of 2" in said
    [(agent, framed)] = rig.sent
    assert agent == "coder"
    assert framed.splitlines()[0] == f"── review {first.id} from reviewer ──"
    assert "> a.py: handle None" in framed and "> [redacted]" in framed
    assert framed.splitlines()[-1].startswith(f"── end of review {first.id} · ")
    kept = await rig.ledger.reviews.review(first.id)
    assert kept is not None and kept.state == "changes" and "sk-secret" not in kept.verdict
    [message] = rig.heard
    assert (message.kind, message.state, message.sender, message.receiver) == (
        "review", "delivered", "reviewer", "coder",
    )  # fmt: skip
    assert message.task_id == task.id and "sk-secret" not in message.text
    found = await rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "working"
    with pytest.raises(PeerRefusal, match="no review is asked of you"):
        await rig.stage.verdict("reviewer", True, "again")
    second = await rig.stage.begin(rig.under(task), POLICY)
    assert second is not None and (second.round, second.rounds) == (2, 2) and second.last_round
    assert rig.stopped == ["reviewer"]  # its round-1 run still went: ended first
    said = await rig.stage.verdict("reviewer", False, "still wrong")
    assert "goes to a human" in said and len(rig.sent) == 1  # the last round: no more rounds
    found = await rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review"
    assert "rounds are over" in found.why and "`merge fw/coder/5`" in found.why
    assert await rig.stage.begin(rig.under(task), POLICY) is None  # a human's now


async def test_an_approval_of_a_forge_runs_work_makes_its_pull_request_ready(rig: Rig) -> None:
    task = await rig.working_task(forge_run=9)
    review = await rig.stage.begin(rig.under(task, forge_run=9), POLICY)
    assert review is not None and review.forge_run == 9
    assert rig.launched[0].origin == "forge"
    said = await rig.stage.verdict("reviewer", True, "LGTM: tests pass")
    assert said == "the pull request is ready for review"
    assert rig.forge.made_ready == [(review.id, "LGTM: tests pass", True)]
    assert rig.forge.went_on == [] and rig.sent == []
    assert await rig.stage.begin(rig.under(task, forge_run=9), POLICY) is None


async def test_forge_changes_go_on_through_the_forge(rig: Rig) -> None:
    task = await rig.working_task(forge_run=9)
    review = await rig.stage.begin(rig.under(task, forge_run=9), POLICY)
    assert review is not None
    assert await rig.stage.verdict("reviewer", False, "rename x") == "continued coder's session"
    [(review_id, framed)] = rig.forge.went_on
    assert review_id == review.id and "> rename x" in framed


async def test_a_verdict_with_no_round_asked_is_refused(rig: Rig) -> None:
    with pytest.raises(PeerRefusal) as refused:
        await rig.stage.verdict("reviewer", True, "fine")
    assert str(refused.value) == NOT_ASKED
    assert rig.heard == [] and await rig.ledger.messages.recent(None, 10) == []


async def test_a_review_agent_that_cannot_start_hands_the_work_to_a_human(rig: Rig) -> None:
    task = await rig.working_task()
    await rig.fleet.launch("reviewer")  # busy with something else
    assert await rig.stage.begin(rig.under(task), POLICY) is None
    [review] = await rig.ledger.reviews.of_task(task.id)
    assert review.state == "ended" and "already running" in review.verdict
    found = await rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review" and "no review by reviewer" in found.why
    assert rig.stopped == []  # its run was not the task's: left alone


async def test_a_chat_tasks_run_ending_with_a_change_asks_its_repositorys_review(
    rig: Rig,
) -> None:
    """The run's end puts the task up for review with its change on a branch: round 1 is
    asked on the branch's tip; a repository without review asks nothing."""
    task = await rig.working_task()
    line_id = await rig.ledger.lines.add_line(
        repo="app", agent="coder", branch="fw/coder/1", base_ref="main", fork_sha=BASE,
        checkout="/nonexistent",
    )  # fmt: skip
    policies = {"app": POLICY}
    rig.task_runs.listen_for_review(rig.chat(policies).up_for_review)
    [coder_run] = task.runs
    change = Change(
        repo="app", agent="coder", branch="fw/coder/1", base_ref="main", fork_sha=BASE,
        base_sha=BASE, head_sha=COMMIT, base_moved=0, commits=(CommitLine(COMMIT[:7], "fix"),),
    )  # fmt: skip
    await rig.ledger.lines.record_change(coder_run, change_to_json(change))
    await rig.fleet.end("coder", coder_run, "finished")
    [review] = await rig.ledger.reviews.of_task(task.id)
    assert (review.round, review.commit, review.branch) == (1, COMMIT, "fw/coder/1")
    assert rig.diffs == [(line_id, BASE, COMMIT)]
    found = await rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review" and "round 1 of 2" in found.why
    policies.clear()  # the next task's repository has no review
    other = await rig.working_task()
    [other_run] = other.runs
    await rig.ledger.lines.record_change(other_run, change_to_json(change))
    await rig.fleet.end("coder", other_run, "finished")
    assert await rig.ledger.reviews.of_task(other.id) == []


async def test_a_review_run_that_ends_without_a_verdict_hands_the_work_to_a_human(
    rig: Rig,
) -> None:
    """The review agent's run ends with its round still asked: the round ends, said, and
    the work goes to a human (a forge run's through the forge's side); an end of another
    run of the agent, or after its verdict, changes nothing."""
    task = await rig.working_task(forge_run=9)
    review = await rig.stage.begin(rig.under(task, forge_run=9), POLICY)
    assert review is not None and review.run_id is not None
    other = FleetEvent(AgentName("reviewer"), EventKind.ENDED, AgentState.EXITED, "", False, 999)
    await rig.stage.hear(other)
    assert rig.forge.made_ready == []
    await rig.fleet.end("reviewer", review.run_id, "finished")
    await rig.stage.hear(
        FleetEvent(AgentName("reviewer"), EventKind.ENDED, AgentState.EXITED, "", False,
                   review.run_id)
    )  # fmt: skip
    ended = await rig.ledger.reviews.review(review.id)
    assert ended is not None and ended.state == "ended"
    assert "ended without a verdict" in ended.verdict
    [(review_id, said, approved)] = rig.forge.made_ready
    assert review_id == review.id and not approved and "without a verdict" in said
    with pytest.raises(PeerRefusal):
        await rig.stage.verdict("reviewer", True, "late")


async def test_a_live_sessions_turn_over_asks_a_round_on_what_it_pushed_once(rig: Rig) -> None:
    """A live session's turn is over: round 1 on its line's pushed tip; nothing pushed yet
    asks nothing; the run's end on the same commit asks no second round."""
    task = await rig.working_task()
    line_id = await rig.ledger.lines.add_line(
        repo="app", agent="coder", branch="fw/coder/1", base_ref="main", fork_sha=BASE,
        checkout="/nonexistent",
    )  # fmt: skip
    rig.task_runs.listen_for_review(rig.chat({"app": POLICY}).up_for_review)
    [coder_run] = task.runs
    rig.tips[line_id] = BASE  # nothing pushed on the branch yet
    await rig.task_runs.turn_over("coder", coder_run)
    assert await rig.ledger.reviews.of_task(task.id) == []
    await rig.ledger.tasks.move(task.id, "working", "told to go on")
    rig.tips[line_id] = COMMIT
    await rig.task_runs.turn_over("coder", coder_run)
    [review] = await rig.ledger.reviews.of_task(task.id)
    assert (review.commit, review.branch, review.round) == (COMMIT, "fw/coder/1", 1)
    change = Change(
        repo="app", agent="coder", branch="fw/coder/1", base_ref="main", fork_sha=BASE,
        base_sha=BASE, head_sha=COMMIT, base_moved=0, commits=(CommitLine(COMMIT[:7], "fix"),),
    )  # fmt: skip
    await rig.ledger.lines.record_change(coder_run, change_to_json(change))
    await rig.fleet.end("coder", coder_run, "finished")
    assert [r.id for r in await rig.ledger.reviews.of_task(task.id)] == [review.id]


async def test_a_review_launch_that_fails_hands_the_forge_runs_work_to_a_human(rig: Rig) -> None:
    """The review agent's launch fails (its checkout could not be made): the round ends
    saying why, and the pull request goes to a human as with no review."""
    task = await rig.working_task(forge_run=9)
    rig.failed = LaunchFailed("commit a1b2c3d4e5f6 could not be checked out")
    assert await rig.stage.begin(rig.under(task, forge_run=9), POLICY) is None
    [review] = await rig.ledger.reviews.of_task(task.id)
    assert review.state == "ended" and "could not be checked out" in review.verdict
    [(review_id, said, approved)] = rig.forge.made_ready
    assert review_id == review.id and not approved and "no review by reviewer" in said


async def test_the_agent_that_did_the_work_never_reviews_it(rig: Rig) -> None:
    """A forge issue given to the review agent itself: no round is asked of it — its own
    run is not stopped, nothing launched, no verdict of its taken — and the pull request
    goes to a human, saying why."""
    task = await rig.working_task(forge_run=9)
    await rig.ledger.tasks.set_fields(task.id, agent="reviewer")
    run = await rig.fleet.launch("reviewer")
    await rig.ledger.tasks.add_run(task.id, run)
    assert await rig.stage.begin(rig.under(task, forge_run=9, coder="reviewer"), POLICY) is None
    assert rig.launched == [] and rig.stopped == []
    [review] = await rig.ledger.reviews.of_task(task.id)
    assert review.state == "ended" and "never reviews its own work" in review.verdict
    [(review_id, said, approved)] = rig.forge.made_ready
    assert review_id == review.id and not approved and "its own work" in said
    with pytest.raises(PeerRefusal):
        await rig.stage.verdict("reviewer", True, "my own work is perfect")


async def test_a_verdict_answers_the_round_its_run_was_launched_for(rig: Rig) -> None:
    """The review agent reviews task A when task B's round is asked of it too: a verdict
    it gives while B's launch is under way answers A's round, never B's (B's launch
    finds the agent busy: B's work goes to a human without an approval); a verdict after
    its run ended, before its end was heard, answers nothing."""
    first = await rig.working_task(forge_run=9)
    a = await rig.stage.begin(rig.under(first, forge_run=9), POLICY)
    assert a is not None and a.run_id is not None
    rig.fleet.running.discard("coder")
    second = await rig.working_task(forge_run=10)
    said: list[str] = []

    async def approve_a() -> None:
        said.append(await rig.stage.verdict("reviewer", True, "A is fine"))

    rig.meanwhile = approve_a
    assert await rig.stage.begin(rig.under(second, forge_run=10), POLICY) is None
    assert said == ["the pull request is ready for review"]
    answered = await rig.ledger.reviews.review(a.id)
    assert answered is not None and answered.state == "approved"
    [b] = await rig.ledger.reviews.of_task(second.id)
    assert b.state == "ended" and "already running" in b.verdict
    assert [(r, ok) for r, _, ok in rig.forge.made_ready] == [(a.id, True), (b.id, False)]
    rig.meanwhile = None
    await rig.ledger.reviews.add_review(
        NewReview(
            task_id=first.id, coder="coder", reviewer="reviewer", round=2, rounds=2,
            repo="app", branch="fw/coder/5", commit=COMMIT, forge_run=9,
        )
    )  # fmt: skip
    await rig.ledger.runs.end_run(a.run_id, ExitInfo(0, "exited"))
    with pytest.raises(PeerRefusal, match="no review is asked of you"):
        await rig.stage.verdict("reviewer", True, "late")


async def test_a_review_launch_that_would_wait_leaves_the_spawn_queue(rig: Rig) -> None:
    """A cap makes the review agent's launch wait: its round ends now, the work goes to a
    human, and the launch is taken out of the spawn queue — it never starts later for a
    round that is over; a place the agent held in the queue before is left alone."""
    task = await rig.working_task()
    ask = SpawnAsk("reviewer", "", "review", "", "", "the cap is full")
    entry = await rig.ledger.spawn_queue.enqueue_spawn(ask, host="local")
    rig.queued = Queued("the cap is full", entry)
    assert await rig.stage.begin(rig.under(task), POLICY) is None
    [review] = await rig.ledger.reviews.of_task(task.id)
    assert review.state == "ended" and "could not start now (the cap is full)" in review.verdict
    assert await rig.ledger.spawn_queue.queued_spawns() == []
    before = await rig.ledger.spawn_queue.enqueue_spawn(ask, host="local")
    rig.queued = Queued("the cap is full", before, already=True)
    await rig.ledger.tasks.move(task.id, "working", "on it again")
    assert await rig.stage.begin(rig.under(task), POLICY) is None
    assert [e.id for e in await rig.ledger.spawn_queue.queued_spawns()] == [before.id]


async def test_at_the_start_a_round_whose_run_ended_meanwhile_goes_to_a_human(rig: Rig) -> None:
    """Fleetwarden was away when the review agent's run ended (its end was never heard):
    at the start the round ends, said, and the pull request goes to a human; a round whose
    run was reattached waits; one whose launch Fleetwarden stopped in the middle of is
    bound to the run it made, or ends when there is none."""
    task = await rig.working_task(forge_run=9)
    review = await rig.stage.begin(rig.under(task, forge_run=9), POLICY)
    assert review is not None and review.run_id is not None
    assert await rig.stage.sweep() == 0  # its run goes on: reattached
    live = await rig.ledger.reviews.review(review.id)
    assert live is not None and live.state == "asked"
    await rig.ledger.runs.end_run(review.run_id, ExitInfo(0, "exited"))
    assert await rig.stage.sweep() == 1
    ended = await rig.ledger.reviews.review(review.id)
    assert ended is not None and ended.state == "ended"
    assert "ended while Fleetwarden was away" in ended.verdict
    [(review_id, said, approved)] = rig.forge.made_ready
    assert review_id == review.id and not approved and "while Fleetwarden was away" in said
    rig.fleet.running.discard("reviewer")
    new = NewReview(
        task_id=task.id, coder="coder", reviewer="reviewer", round=2, rounds=2,
        repo="app", branch="fw/coder/5", commit=COMMIT, forge_run=9,
    )  # fmt: skip
    unbound = await rig.ledger.reviews.add_review(new)
    run = await rig.fleet.launch("reviewer")
    await rig.ledger.tasks.add_run(task.id, run)
    assert await rig.stage.sweep() == 0
    bound = await rig.ledger.reviews.review(unbound.id)
    assert bound is not None and bound.state == "asked" and bound.run_id == run
    await rig.ledger.runs.end_run(run, ExitInfo(0, "exited"))
    lost = await rig.ledger.reviews.add_review(new)
    assert await rig.stage.sweep() == 2
    gone = await rig.ledger.reviews.review(lost.id)
    assert gone is not None and gone.state == "ended" and "stopped while" in gone.verdict


async def test_an_earlier_rounds_run_never_answers_the_next_round(rig: Rig) -> None:
    """The next round is asked on a later commit while the review agent's run of the
    earlier round still goes (it is being stopped): a verdict of that run answers
    nothing — it never read the later commit — and the next round's own run answers it."""
    task = await rig.working_task()
    first = await rig.stage.begin(rig.under(task), POLICY)
    assert first is not None and first.run_id is not None
    said: list[str] = []

    async def verdict_as_stopped() -> None:
        try:
            said.append(await rig.stage.verdict("reviewer", True, "approve the old commit"))
        except PeerRefusal as refusal:
            said.append(str(refusal))

    rig.stopping = verdict_as_stopped
    second = await rig.stage.begin(rig.under(task), POLICY)
    assert said == [NOT_ASKED]
    assert second is not None and second.state == "asked" and second.run_id != first.run_id
    answered = await rig.stage.verdict("reviewer", False, "the new commit needs a test")
    assert answered.startswith("your verdict went to coder")
    found = await rig.ledger.reviews.review(second.id)
    assert found is not None and found.state == "changes"


async def test_a_verdict_on_a_task_ended_meanwhile_goes_nowhere(rig: Rig) -> None:
    """The task was done (merged by hand) or cancelled while its round was asked: the
    verdict is refused saying so, the round ends, and the working agent is never told
    to go on with changes to work that is over."""
    task = await rig.working_task()
    review = await rig.stage.begin(rig.under(task), POLICY)
    assert review is not None
    await rig.ledger.tasks.move(task.id, "cancelled", "an operator cancelled it")
    with pytest.raises(PeerRefusal, match=f"task #{task.id} is cancelled now"):
        await rig.stage.verdict("reviewer", False, "rename x")
    assert rig.sent == [] and rig.heard == []
    ended = await rig.ledger.reviews.review(review.id)
    assert ended is not None and ended.state == "ended"


async def test_a_change_that_cannot_be_read_hands_the_work_to_a_human(rig: Rig) -> None:
    """The line's change cannot be read (its line gone, git failed or took too long): no
    agent is asked to review what nobody read, and the pull request goes to a human —
    never left a draft with no round asked."""
    task = await rig.working_task(forge_run=9)
    rig.unread = RepoError("line 5 is not there to review")
    assert await rig.stage.begin(rig.under(task, forge_run=9), POLICY) is None
    assert rig.launched == []
    [review] = await rig.ledger.reviews.of_task(task.id)
    assert review.state == "ended" and "the change could not be read" in review.verdict
    [(review_id, said, approved)] = rig.forge.made_ready
    assert review_id == review.id and not approved and "line 5 is not there" in said
