"""What a review agent is asked (``review_prompt``) and what an agent is told of its peers
(``comms_block``): each says a thing once, and only what applies to the agent."""

from __future__ import annotations

from fleet.ledger.records.peers import ReviewRecord
from fleet.ledger.records.tasks import NO_PROJECTION, TaskRecord
from fleet.peers.review.words import review_prompt
from fleet.peers.telling import Circle, Member, comms_block
from fleet.repos.line.review import LineDiff
from tests.unit.chat_fakes import T0

REVIEW = ReviewRecord(
    4, 1, "coder", "reviewer", 1, 2, "app", "fw/coder/1", "a" * 40, None, None, "asked", "",
    T0, None,
)  # fmt: skip
DIFF = LineDiff(" README.md | 1 +\n+hello\n")


def _task(title: str, body: str) -> TaskRecord:
    return TaskRecord(
        id=1, name="add-a-readme", title=title, body=body, source="chat", source_ref="",
        mission=None, agent="coder", runtime="stub", repo="app", state="review",
        why="", asked_by="@alice on console", forge_run=None, branch="fw/coder/1",
        pull_url=None, created_at=T0, updated_at=T0, started_at=T0, ended_at=None,
        projection=NO_PROJECTION,
    )  # fmt: skip


def test_a_spawned_task_is_quoted_once_in_the_review_prompt() -> None:
    """A task whose body is its title (a spawn's prompt) is quoted once, not twice."""
    prompt = review_prompt(_task("add a README", "add a README"), REVIEW, DIFF)
    assert prompt.count("> add a README") == 1, prompt
    assert "(no description)" not in prompt


def test_a_task_with_a_body_of_its_own_quotes_both() -> None:
    """A body that says more than the title is quoted after it."""
    prompt = review_prompt(_task("Fix login", "The form drops the password."), REVIEW, DIFF)
    assert "> Fix login\n> The form drops the password.\n" in prompt


SOLO = Member("coder", "local", "stub", purpose="writes the code", repo="app")


def test_an_agent_with_no_peers_is_not_told_how_to_reach_them() -> None:
    """No peers, no callers, no review: the block says so and nothing of fw-msg or frames."""
    block = comms_block(Circle(SOLO, ()))
    assert "You have no peers: the roster lets you message no agent." in block
    assert "fw-msg" not in block and "How to reach them" not in block, block
    assert "A message to you arrives" not in block


def test_a_review_agent_with_no_peers_is_told_only_how_to_answer() -> None:
    """A review agent with no peers learns its verdict command, not how to message."""
    block = comms_block(Circle(SOLO, (), reviewer=True))
    assert "fw-msg review approve TEXT" in block
    assert "fw-msg send" not in block and "How to reach them" not in block, block


def test_an_agent_with_peers_is_told_how_to_reach_them() -> None:
    """Peers: how to send, hand a task, and the frame a message arrives in."""
    block = comms_block(Circle(SOLO, (Member("tester", "local", "stub"),)))
    assert "How to reach them — `fw-msg` is on your PATH:" in block
    assert "── message 12 from tester (stub on local) ──" in block
