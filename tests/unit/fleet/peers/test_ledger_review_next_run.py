"""The review stage for a coder without a live session (a ``command`` or stub agent, a
headless run that ended): a ``changes`` verdict starts the coder's next run on the branch
under review through the admission, bound to the task, the framed verdict its prompt —
its session resumed when its last run was the task's — the task ``working`` again and the
next run's done asking the next round; a round that cannot go on says why and leaves the
task with what a human does next, never waiting on a round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet.errors import AgentNotRunning
from fleet.ledger import Ledger
from fleet.ledger.records.lines import LineState
from fleet.ledger.records.tasks import TaskRecord
from fleet.ledger.stores.running.spawn_queue import SpawnAsk
from fleet.peers.review.handoff import ReviewStores
from fleet.peers.review.stage import ReviewStage
from fleet.repos.facts import Change, CommitLine, change_to_json
from fleet.supervisor.admission.request import Admitted, LaunchRequest, Queued, Refused
from tests.unit.fleet.peers.review_rig import BASE, COMMIT, POLICY, Rig

BRANCH = "fw/coder/1"
NEXT = "fedcba9876543210fedcba9876543210fedcba98"


class NextRunRig(Rig):
    """:class:`Rig` whose stage checks the coder's line in the ledger, and whose
    admission answers :attr:`answer` when it is set."""

    def __init__(self, ledger: Ledger, tmp_path: Path) -> None:
        super().__init__(ledger, tmp_path)
        self.answer: Admitted | None = None
        self.send_fails: Exception | None = None  # what typing into the session meets
        self.stage = ReviewStage(
            stores=ReviewStores(
                ledger.reviews, ledger.messages, ledger.tasks, ledger.runs, ledger.spawn_queue,
                ledger.lines,
            ),
            admit=self.answered, diff=self.diff, redact=lambda text: text, heard=self.hear,
            send=self.send, stop=self.stop,
        )  # fmt: skip
        self.task_runs.listen_for_review(self.chat({"app": POLICY}).up_for_review)

    async def send(self, agent: str, text: str) -> None:
        if self.send_fails is not None:
            raise self.send_fails
        await super().send(agent, text)

    async def answered(self, request: LaunchRequest) -> Any:
        if self.answer is not None and request.agent == "coder":
            self.launched.append(request)
            return self.answer
        return await self.admit(request)

    async def ends_with(self, run_id: int, head: str) -> None:
        """Run ``run_id`` of the coder ends with its branch at ``head``."""
        change = Change(
            repo="app", agent="coder", branch=BRANCH, base_ref="main", fork_sha=BASE,
            base_sha=BASE, head_sha=head, base_moved=0, commits=(CommitLine(head[:7], "fix"),),
        )  # fmt: skip
        await self.ledger.lines.record_change(run_id, change_to_json(change))
        await self.fleet.end("coder", run_id, "finished")

    async def in_round_one(self) -> TaskRecord:
        """A chat task whose coder's run ended with a commit on its line: round 1 asked."""
        task = await self.working_task()
        await self.ledger.lines.add_line(
            repo="app", agent="coder", branch=BRANCH, base_ref="main", fork_sha=BASE,
            checkout="/nonexistent",
        )  # fmt: skip
        await self.ends_with(task.runs[-1], COMMIT)
        found = await self.ledger.tasks.task(task.id)
        assert found is not None and "round 1 of 2: reviewer reviews" in found.why
        return found


@pytest.fixture
def ledger_review_next_run_rig(ledger: Ledger, tmp_path: Path) -> NextRunRig:
    return NextRunRig(ledger, tmp_path)


async def test_changes_start_the_coders_next_run_and_its_done_asks_round_two(
    ledger_review_next_run_rig: NextRunRig,
) -> None:
    """``changes`` for a coder whose run ended: its next run starts on the branch through
    the admission, bound to the task, the framed verdict its prompt and its session
    resumed; the task is ``working``; that run's done asks round 2, whose approval leaves
    the task to a human with the ``merge`` that lands it."""
    task = await ledger_review_next_run_rig.in_round_one()
    said = await ledger_review_next_run_rig.stage.verdict("reviewer", False, "a.py: handle None")
    assert "went to coder's next run on fw/coder/1" in said and "round 1 of 2" in said
    assert ledger_review_next_run_rig.sent == []  # no session to type into
    request = ledger_review_next_run_rig.launched[-1]
    assert (request.agent, request.task, request.repo, request.origin) == (
        "coder", task.id, "app", "review",
    )  # fmt: skip
    assert request.resume and not request.collect and request.asked() is None  # its line kept
    prompt = request.prompt or ""
    assert prompt.startswith("── review ") and "> a.py: handle None" in prompt
    found = await ledger_review_next_run_rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "working"
    assert "coder works on them in its next run on fw/coder/1" in found.why
    coder_run = await ledger_review_next_run_rig.ledger.runs.last_run("coder")
    assert coder_run is not None and coder_run.ended_at is None
    assert coder_run.id in found.runs  # bound to the task
    [message] = ledger_review_next_run_rig.heard
    assert message.state == "delivered" and message.receiver == "coder"
    await ledger_review_next_run_rig.ends_with(coder_run.id, NEXT)
    rounds = await ledger_review_next_run_rig.ledger.reviews.of_task(task.id)
    assert [(r.round, r.commit, r.state) for r in rounds] == [
        (1, COMMIT, "changes"), (2, NEXT, "asked"),
    ]  # fmt: skip
    found = await ledger_review_next_run_rig.ledger.tasks.task(task.id)
    assert found is not None and "round 2 of 2: reviewer reviews fedcba987654" in found.why
    assert "goes to a human now" in await ledger_review_next_run_rig.stage.verdict(
        "reviewer", True, "fine now"
    )
    found = await ledger_review_next_run_rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review"
    assert "approved by reviewer" in found.why and f"`merge {BRANCH}`" in found.why


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Refused("global budget reached: refusing new runs"), "global budget reached"),
        (Queued("the fleet's cap of 1 running agent is full"), "cap of 1 running agent"),
    ],
)
async def test_a_round_the_admission_does_not_start_says_what_a_human_does(
    ledger_review_next_run_rig: NextRunRig, answer: Admitted, words: str
) -> None:
    """The admission refuses or queues the coder's next run: the reviewer is told its
    verdict went no further, the message is marked refused, and the task says why and what
    a human does next — never still 'reviewer reviews'."""
    task = await ledger_review_next_run_rig.in_round_one()
    ledger_review_next_run_rig.answer = answer
    said = await ledger_review_next_run_rig.stage.verdict("reviewer", False, "rename x")
    assert said.startswith("your verdict is kept, but it went no further") and words in said
    found = await ledger_review_next_run_rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review"
    assert "reviewer reviews" not in found.why and words in found.why
    assert f"`task start {task.id}`" in found.why and f"`merge {BRANCH}`" in found.why
    assert found.why.startswith("round 1 of 2: reviewer's changes went no further (")
    [message] = ledger_review_next_run_rig.heard
    assert message.state == "refused"


async def test_a_queued_next_run_leaves_the_spawn_queue(
    ledger_review_next_run_rig: NextRunRig,
) -> None:
    """A cap queues the coder's next run: it is taken out of the spawn queue, so it never
    starts later unseen — the task says how a human starts it."""
    task = await ledger_review_next_run_rig.in_round_one()
    ask = SpawnAsk("coder", "", "review", "", "", "the cap is full")
    entry = await ledger_review_next_run_rig.ledger.spawn_queue.enqueue_spawn(ask, host="local")
    ledger_review_next_run_rig.answer = Queued("the cap is full", entry)
    await ledger_review_next_run_rig.stage.verdict("reviewer", False, "rename x")
    assert await ledger_review_next_run_rig.ledger.spawn_queue.queued_spawns() == []
    found = await ledger_review_next_run_rig.ledger.tasks.task(task.id)
    assert found is not None and "could not start now (the cap is full)" in found.why


async def test_a_branch_merged_meanwhile_is_never_worked_on_anew(
    ledger_review_next_run_rig: NextRunRig,
) -> None:
    """The coder's branch was merged or discarded before the verdict: no run is started
    (it would cut a new branch), and the task says so and what a human does."""
    task = await ledger_review_next_run_rig.in_round_one()
    [line] = await ledger_review_next_run_rig.ledger.lines.lines(repo="app")
    await ledger_review_next_run_rig.ledger.lines.update_line(line.id, state=LineState.MERGED)
    launched = len(ledger_review_next_run_rig.launched)
    said = await ledger_review_next_run_rig.stage.verdict("reviewer", False, "rename x")
    assert "fw/coder/1 is no longer coder's branch" in said
    assert len(ledger_review_next_run_rig.launched) == launched
    found = await ledger_review_next_run_rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review" and "no longer" in found.why
    assert "reviewer reviews" not in found.why and "merge" not in found.why
    assert found.why.endswith(f"`task start {task.id}` runs coder again on a new branch")


async def test_changes_a_live_session_cannot_take_say_what_a_human_does(
    ledger_review_next_run_rig: NextRunRig,
) -> None:
    """The coder's run still goes but its session refuses the verdict (busy on its last
    prompt): no second run is started beside it, and the task says why and what a human
    does, never still waiting on the reviewer."""
    task = await ledger_review_next_run_rig.working_task()
    under = ledger_review_next_run_rig.under(task)
    assert await ledger_review_next_run_rig.stage.begin(under, POLICY) is not None
    ledger_review_next_run_rig.send_fails = AgentNotRunning(
        "coder is still working on its last prompt"
    )
    launched = len(ledger_review_next_run_rig.launched)
    said = await ledger_review_next_run_rig.stage.verdict("reviewer", False, "rename x")
    assert "went no further: coder is still working on its last prompt" in said
    assert len(ledger_review_next_run_rig.launched) == launched
    found = await ledger_review_next_run_rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review" and "reviewer reviews" not in found.why
    assert "still working on its last prompt" in found.why
    assert f"`task start {task.id}` runs coder again" in found.why
