"""An agent's own commits against real git, through the real git door: it commits as the
identity its config gives (and the door takes no other), the person who asked for the run
is each commit's `Co-authored-by:` by a hook in its checkout (and no later line's, when its
launch never cut one), a hostile requester cannot add a trailer, and a squash merge names
the work and keeps the agent's commit subjects."""

from __future__ import annotations

import pytest

from fleet.repos.desk import RepoError
from fleet.repos.line.cutting import Asked
from tests import sandbox_need
from tests.integration.repos.test_repo_lines import Rig, agent_git, lines_rig

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]
__all__ = ["lines_rig"]

ANN = "Ann Lee <ann@example.org>"


async def test_an_agent_commits_as_its_configured_identity_and_the_door_takes_no_other(
    lines_rig: Rig,
) -> None:
    """`git_name`/`git_email` (placeholders filled) are the checkout's `user.*`: a plain
    `git commit` is pushed; a commit as the default identity is refused; the run's `wip`
    commit carries the configured one too."""
    checkout = await lines_rig.spawn(
        "coder", git_name="{agent} (bot)", git_email="{agent}+{host}@bots.example.org"
    )
    who = "coder (bot) <coder+local@bots.example.org>"
    (checkout / "NOTES.md").write_text("notes\n")
    await agent_git(checkout, "add", "NOTES.md")
    await agent_git(checkout, "commit", "-q", "-m", "Add notes")
    pushed = await agent_git(checkout, "push", "-q", "origin", "HEAD")
    assert pushed.returncode == 0, pushed.stderr
    author = await agent_git(checkout, "log", "-1", "--format=%an <%ae>|%cn <%ce>")
    assert author.stdout.strip() == f"{who}|{who}"
    # Another identity — the default one, say — is not the agent's: refused.
    other = ["-c", "user.name=coder", "-c", "user.email=coder@local.fleetwarden.invalid"]
    (checkout / "MORE.md").write_text("more\n")
    await agent_git(checkout, "add", "MORE.md")
    await agent_git(checkout, *other, "commit", "-q", "-m", "More")
    refused = await agent_git(checkout, "push", "-q", "origin", "HEAD", ok=False)
    assert refused.returncode != 0 and who in refused.stderr, refused.stderr
    await agent_git(checkout, "reset", "-q", "HEAD~1")
    await lines_rig.run_ended("coder", 3)  # MORE.md, left uncommitted, goes in the wip commit
    line = await lines_rig.repos.line_of("coder")
    assert line is not None and line.head_sha is not None  # the door took the wip push
    wip = await agent_git(checkout, "log", "-1", "--format=%an <%ae>|%s")
    assert wip.stdout.strip() == f"{who}|wip: what run 3 of coder left uncommitted"
    # The line keeps the identity it was cut with when its checkout is made again.
    again = await lines_rig.spawn("coder")
    assert (await agent_git(again, "config", "user.email")).stdout.strip() == (
        "coder+local@bots.example.org"
    )


async def test_the_requester_is_each_commits_co_author_and_the_door_takes_it(
    lines_rig: Rig,
) -> None:
    """With a requester, the agent's own plain `git commit -m` gets their
    `Co-authored-by:` (once, even on an amend), the door takes it, and the `wip` commit
    names them too."""
    checkout = await lines_rig.spawn("coder", Asked(co_author=ANN))
    (checkout / "a.txt").write_text("a\n")
    await agent_git(checkout, "add", "a.txt")
    await agent_git(checkout, "commit", "-q", "-m", "Add a")
    await agent_git(checkout, "commit", "-q", "--amend", "-m", "Add a\n\nWith a body.")
    body = (await agent_git(checkout, "log", "-1", "--format=%B")).stdout
    assert body.count(f"Co-authored-by: {ANN}") == 1, body
    assert body.startswith("Add a\n\nWith a body.\n"), body
    pushed = await agent_git(checkout, "push", "-q", "origin", "HEAD")
    assert pushed.returncode == 0, pushed.stderr
    (checkout / "b.txt").write_text("b\n")
    await lines_rig.run_ended("coder", 4)
    wip = (await agent_git(checkout, "log", "-1", "--format=%B")).stdout
    assert wip.startswith("wip") and f"Co-authored-by: {ANN}" in wip
    line = await lines_rig.repos.line_of("coder")
    assert line is not None and line.head_sha is not None and line.co_author == ANN


async def test_a_requester_whose_launch_never_cut_a_line_credits_no_later_one(
    lines_rig: Rig,
) -> None:
    """A launch whose cut failed (no such base upstream): the next line cut — an
    autostart's, say — names no one as its co-author (what a launch asks of its line is
    said to that launch's cut only)."""
    await lines_rig.spawn("coder")
    line = await lines_rig.repos.line_of("coder")
    assert line is not None and line.co_author is None
    with pytest.raises(RepoError):
        await lines_rig.spawn("coder", Asked(co_author=ANN, fresh=True), repo_base="no-such-branch")
    await lines_rig.spawn("coder", Asked(fresh=True))
    newer = await lines_rig.repos.line_of("coder")
    assert newer is not None and newer.id != line.id and newer.co_author is None


async def test_a_hostile_requester_adds_no_trailer_of_its_own(lines_rig: Rig) -> None:
    """A requester line carrying a second trailer is not kept: no hook, no co-author, and
    the `wip` commit has Fleetwarden's trailers only."""
    hostile = "Ann <ann@example.org>\nCo-authored-by: M <m@x.org>"
    checkout = await lines_rig.spawn("coder", Asked(co_author=hostile))
    assert not (checkout / ".git" / "hooks" / "prepare-commit-msg").exists()
    (checkout / "c.txt").write_text("c\n")
    await lines_rig.run_ended("coder", 5)
    wip = (await agent_git(checkout, "log", "-1", "--format=%B")).stdout
    assert "Co-authored-by" not in wip and "Fleetwarden-Agent: coder" in wip


async def test_a_squash_merge_names_the_work_and_lists_the_agents_subjects(lines_rig: Rig) -> None:
    """The upstream's new commit's subject is the prompt's first line; its body lists
    the agent's subjects in order, says who merged which branch, and ends with the
    trailers (the requester and the merger as co-authors)."""
    checkout = await lines_rig.spawn(
        "coder", Asked(co_author=ANN), prompt="Retry uploads that time out\nwith a test"
    )
    for name, subject in (("up.py", "Retry on timeout"), ("test_up.py", "Test the retry")):
        (checkout / name).write_text(f"# {name}\n")
        await agent_git(checkout, "add", name)
        await agent_git(checkout, "commit", "-q", "-m", subject)
    await lines_rig.run_ended("coder", 6)
    line = await lines_rig.repos.line_of("coder")
    assert line is not None
    landed = await lines_rig.verbs.merge(
        "coder", "squash", by="@bob:example.org on matrix", co_author="Bob <bob@example.org>"
    )
    assert landed.new_sha is not None, landed
    message = lines_rig.upstream.show("app", "log", "-1", "--format=%B", landed.new_sha)
    assert message.split("\n")[0] == "Retry uploads that time out"
    assert "\n\n* Retry on timeout\n* Test the retry\n\n" in message, message
    assert f"Merged by bob:example.org on matrix with Fleetwarden: {line.branch} (squash)." in (
        message
    )
    assert message.rstrip("\n").endswith(
        f"Fleetwarden-Run: 6\nFleetwarden-Agent: coder\nCo-authored-by: {ANN}\n"
        "Co-authored-by: Bob <bob@example.org>"
    ), message
