"""A forge run's line against real git, below the chat — a real upstream served by ``git
http-backend``, Fleetwarden's mirror and door repos, pushes through the real git door on a
real heartbeat endpoint, a real ledger: once the run's pull request is open its commits may
name it as they name its issue (and the door's refusal of any other names both); each run's
change tells only its own refusals, once each, and says when none of its commits reached
the branch; a squash merge names no issue but the run's, whatever the issue's title says;
and a verb on an agent whose branch has ended says what ended it and what cuts the next."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleet.ledger.records.forge import ForgeRunState, NewForgeRun
from fleet.model import AgentState
from fleet.names import AgentName
from fleet.repos.desk import NoLine, RepoError
from fleet.repos.facts import Change
from fleet.repos.hook.policy import Issue
from fleet.repos.line.cutting import Asked
from tests import sandbox_need
from tests.integration.components import SLUG
from tests.integration.repos.test_repo_lines import Rig, agent_git, lines_rig

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]
__all__ = ["lines_rig"]

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def forge_line(rig: Rig, title: str = "Write the release notes") -> tuple[int, Path]:
    """coder's line for issue #1 of acme/app, as a forge run starts it, its run 10 begun;
    the forge run's key and the checkout."""
    asked = Asked(issue=Issue(str(SLUG), 1), branch="fw/coder/issue-1")
    checkout = await rig.spawn("coder", asked)
    line = await rig.repos.line_of("coder")
    assert line is not None
    added = await rig.ledger.forge.add_forge_run(NewForgeRun(
        forge="gh", repo="app", slug=SLUG, issue=1, title=title, agent="coder",
        branch=line.branch, requester="ann", issue_url="https://github.com/acme/app/issues/1",
        state=ForgeRunState.WORKING,
    ))  # fmt: skip
    assert added is not None
    key = added.id
    await rig.ledger.forge.update_forge_run(key, line_id=line.id)
    await rig.repos.started(AgentName("coder"), 10)
    return key, checkout


async def commit(checkout: Path, name: str, message: str) -> None:
    (checkout / name).write_text(f"{name}\n")
    await agent_git(checkout, "add", name)
    await agent_git(checkout, "commit", "-q", "-m", message)


async def push(checkout: Path) -> tuple[bool, str]:
    """The agent's ``git push origin HEAD``: whether the door took it, and what it read."""
    done = await agent_git(checkout, "push", "-q", "origin", "HEAD", ok=False)
    return done.returncode == 0, done.stderr


async def run_ends(rig: Rig, run_id: int) -> Change:
    """coder's run ``run_id`` ends: what it left is kept on its branch; its change."""
    await rig.ledger.agents.set_state("coder", AgentState.EXITED, "done")
    change = await rig.repos.finished(AgentName("coder"), run_id)
    assert change is not None
    return change


async def test_a_commit_naming_the_runs_pull_request_is_taken_once_it_is_open(
    lines_rig: Rig,
) -> None:
    """Before the pull request is open, a commit naming #2 is refused with the fix naming
    the run's issue; once the ledger has PR #2 the same push is taken, and a commit naming
    another number is refused, the fix naming both the issue and the pull request — with no
    stray example number in it."""
    key, checkout = await forge_line(lines_rig)
    await commit(checkout, "NOTES.md", "Write the release notes\n\nFixes #1.")
    assert await push(checkout) == (True, "")
    await commit(checkout, "REVIEW.md", "Address the review on #2")
    taken, said = await push(checkout)
    assert not taken and "names #2" in said, said
    assert "but this run's own (issue #1)" in said, said
    assert "issue 12" not in said and "#12" not in said

    await lines_rig.ledger.forge.update_forge_run(
        key, pull=2, pull_url="https://github.com/acme/app/pull/2"
    )
    assert await push(checkout) == (True, "")  # the same commit, taken now
    await commit(checkout, "MORE.md", "Also see acme/app#7 and GH-2")
    taken, said = await push(checkout)
    assert not taken and "names acme/app#7" in said and "names GH-2" not in said, said
    assert "but this run's own (issue #1 and pull request #2)" in said, said
    assert "without '#' or 'GH-'" in said


async def test_each_runs_change_tells_its_own_refusals_once(lines_rig: Rig) -> None:
    """A commit refused by the door and refused again at the run's end is told once; the
    change says nothing of the run reached the branch (nor that it was pushed); the next
    run, whose own commit is taken, tells none of the earlier refusals."""
    _, checkout = await forge_line(lines_rig)
    await commit(checkout, "NOTES.md", "Write the release notes")
    assert await push(checkout) == (True, "")
    first = await run_ends(lines_rig, 10)
    assert first.arrived is True and first.refused == ()
    await lines_rig.repos.push_line(
        await lines_rig.repos.live("coder")
    )  # the branch on the upstream

    await lines_rig.repos.started(AgentName("coder"), 11)
    await commit(checkout, "OTHER.md", "Fixes #7 as well")
    taken, _ = await push(checkout)
    assert not taken
    second = await run_ends(lines_rig, 11)  # its end pushes the refused commit again
    assert second.arrived is False
    assert len(second.refused) == 1 and "names #7" in second.refused[0], second.refused
    assert second.pushed  # the upstream has the branch as it was before the run

    await lines_rig.repos.started(AgentName("coder"), 12)
    await agent_git(checkout, "reset", "-q", "--hard", "HEAD~1")
    await commit(checkout, "OTHER.md", "Say who shipped it")
    assert await push(checkout) == (True, "")
    third = await run_ends(lines_rig, 12)
    assert third.arrived is True and third.refused == (), third.refused


@pytest.mark.parametrize(
    ("title", "subject"),
    [
        ("Closes #12", "Closes 12"),
        ("Fixes acme/other#3 and GH-4", "Fixes acme/other 3 and GH 4"),
        ("Fix https://github.com/acme/app/issues/9 now", "Fix acme/app issue 9 now"),
        ("Fixes #1: the login page", "Fixes #1: the login page"),  # the run's own issue
    ],
)
async def test_a_squash_merge_names_no_issue_but_the_runs_own(
    lines_rig: Rig, title: str, subject: str
) -> None:
    """The forge issue's title is the squash commit's subject with every reference but to
    the run's own issue made plain, so the merge closes nothing else."""
    _, checkout = await forge_line(lines_rig, title=title)
    await commit(checkout, "NOTES.md", "Write the release notes")
    await run_ends(lines_rig, 10)
    landed = await lines_rig.verbs.merge("coder", "squash", by="ann")
    assert landed.new_sha is not None, landed
    message = lines_rig.upstream.show("app", "log", "-1", "--format=%B", landed.new_sha)
    assert message.split("\n")[0] == subject, message


async def test_a_verb_after_the_branch_ended_says_what_ended_it_and_what_is_next(
    lines_rig: Rig,
) -> None:
    """With no branch yet, `spawn coder` is the way (coder works on app); after its
    forge run's pull request was merged and its line ended, the answer names the branch,
    the pull request merged, when, and `spawn coder` — no `--repo` for an agent that has
    its repository; after a `merge` from chat, that it was merged."""
    with pytest.raises(NoLine, match="coder has no branch yet: `spawn coder --repo REPO`"):
        await lines_rig.verbs.diff("coder")
    key, checkout = await forge_line(lines_rig)
    await commit(checkout, "NOTES.md", "Write the release notes")
    await run_ends(lines_rig, 10)
    await lines_rig.ledger.forge.update_forge_run(key, pull=2)
    # The pull request merged on the forge: the run ends its line, as forge work does.
    await lines_rig.verbs.discard("coder")
    await lines_rig.ledger.forge.audit_forge(key, "coder", "end", True, "PR #2 merged")
    await lines_rig.ledger.forge.update_forge_run(key, state=ForgeRunState.ENDED)
    with pytest.raises(NoLine) as said:
        await lines_rig.verbs.diff("coder")
    words = str(said.value)
    assert words.startswith(
        "coder has no branch now: its last one, fw/coder/issue-1 of app, ended on "
    ), words
    assert "when its pull request #2 was merged. `spawn coder` cuts a new one on app." in words
    assert "--repo" not in words

    checkout = await lines_rig.spawn("coder")  # a new line, from chat
    await lines_rig.repos.started(AgentName("coder"), 11)
    await commit(checkout, "X.md", "More")
    await run_ends(lines_rig, 11)
    await lines_rig.verbs.merge("coder", "squash", by="ann")
    with pytest.raises(NoLine, match=r"its last one, fw/coder/\d+ of app, was merged on "):
        await lines_rig.verbs.merge("coder", "squash", by="ann")


async def test_a_branch_under_review_is_not_merged_from_chat(lines_rig: Rig) -> None:
    """While its forge run's pull request is open, `merge coder` (or its branch) is refused
    naming the pull request and the step on the forge, and nothing moves upstream; once
    the run has ended, the branch merges."""
    key, checkout = await forge_line(lines_rig)
    await commit(checkout, "NOTES.md", "Write the release notes")
    await run_ends(lines_rig, 10)
    url = "https://github.com/acme/app/pull/2"
    await lines_rig.ledger.forge.update_forge_run(
        key, pull=2, pull_url=url, state=ForgeRunState.WAITING
    )
    before = lines_rig.upstream.show("app", "rev-parse", "main")
    line = await lines_rig.repos.line_of("coder")
    assert line is not None
    for line_id in (None, line.id):
        with pytest.raises(RepoError) as refused:
            await lines_rig.verbs.merge("coder", "squash", by="ann", line_id=line_id)
        words = str(refused.value)
        assert f"pull request #2 on acme/app (<{url}>), open for review" in words, words
        assert "merge (or close) it on the forge, which ends its run" in words, words
    assert lines_rig.upstream.show("app", "rev-parse", "main") == before
    assert await lines_rig.repos.line_of("coder") == line  # still live, its checkout kept

    await lines_rig.ledger.forge.update_forge_run(key, state=ForgeRunState.ENDED, ended_at=WHEN)
    landed = await lines_rig.verbs.merge("coder", "squash", by="ann")
    assert landed.new_sha is not None, landed


async def test_a_refused_push_is_told_until_a_push_is_taken(lines_rig: Rig) -> None:
    """After the door refused the run's push, the line says why while nothing reached its
    branch; once the fixed commit is pushed and taken, it says nothing."""
    _, checkout = await forge_line(lines_rig)
    await commit(checkout, "NOTES.md", "Write the release notes")
    assert await push(checkout) == (True, "")
    assert await lines_rig.repos.door.push_refused("coder") is None
    await commit(checkout, "MORE.md", "Address the review on #9")
    taken, _ = await push(checkout)
    assert not taken
    why = await lines_rig.repos.door.push_refused("coder")
    assert why is not None and "names #9" in why, why
    await agent_git(checkout, "commit", "-q", "--amend", "-m", "Address the review")
    assert await push(checkout) == (True, "")
    assert await lines_rig.repos.door.push_refused("coder") is None
