"""A review agent's checkout of a line made by :class:`~fleet.repos.service.Repos` end to end:
the coder's commit pushed through the real git door, the review agent's spec working in
its own checkout detached at that commit, with no remote and no line of its own, its
workdir read-only in the real sandbox (a write fails there, its tests run), the change
from the fork to the commit, and the checkout gone once its run is over — no ref of the
line, the mirror or the upstream changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.repos.line.review import ReviewCheckout
from fleet.sandbox.policy import FORWARDER, Layout, bwrap_argv
from tests.integration.repos.test_repo_lines import Rig, agent_git, lines_rig

# What the sandbox's forwarder needs, wherever the checkout and its venv are (a checkout
# under /tmp is covered by the sandbox's own /tmp).
NEEDED = (FORWARDER.parents[2], Path(sys.prefix), Path(sys.base_prefix))

__all__ = ["lines_rig"]


async def test_the_review_agent_reads_the_pushed_commit_and_cannot_change_it(
    lines_rig: Rig,
) -> None:
    checkout = await lines_rig.spawn("coder")
    line = await lines_rig.repos.line_of("coder")
    assert line is not None
    (checkout / "src" / "main.py").write_text("print('reviewed')\n")
    await agent_git(checkout, "commit", "-q", "-am", "say reviewed")
    assert (await agent_git(checkout, "push", "-q", "origin", "HEAD")).returncode == 0
    tip = await lines_rig.repos.line_tip(line.id)
    head = (await agent_git(checkout, "rev-parse", "HEAD")).stdout.strip()
    assert tip == head
    upstream_before = lines_rig.upstream.branches("app")
    reviewer = AgentSpec(name=AgentName("reviewer"), runtime="command", repo="app")
    spec = await lines_rig.repos.reviews.checkout(reviewer, ReviewCheckout("app", line.id, head, 4))
    view = spec.workdir
    assert view is not None and view.name == "reviewer.review-4"
    assert spec.workdir_read_only and spec.repo is None  # it cuts and keeps no line
    assert (view / "src" / "main.py").read_text() == "print('reviewed')\n"
    assert (await agent_git(view, "rev-parse", "HEAD")).stdout.strip() == head
    assert (await agent_git(view, "remote")).stdout.strip() == ""
    assert await lines_rig.repos.line_of("reviewer") is None
    diff = await lines_rig.repos.line_diff(line.id, line.fork_sha, head)
    assert "+print('reviewed')" in diff.text and "-print('hi')" in diff.text
    home = lines_rig.state / "reviewer-home"
    home.mkdir()
    layout = Layout(workdir=view, home=home, hidden=(), needed=NEEDED, workdir_writable=False)

    def sandboxed(script: str) -> subprocess.CompletedProcess[str]:
        argv = bwrap_argv(layout, ["sh", "-c", script], bwrap="bwrap", python=sys.executable)
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    read = sandboxed("grep -c reviewed src/main.py && git log -1 --format=%s")
    assert read.returncode == 0 and "say reviewed" in read.stdout, read.stderr
    wrote = sandboxed("echo 'print(1)' > src/main.py")
    assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr
    committed = sandboxed("git -c user.name=r -c user.email=r@x commit --allow-empty -qm x")
    assert committed.returncode != 0
    assert (await agent_git(view, "rev-parse", "HEAD")).stdout.strip() == head
    await lines_rig.repos.reviews.over("reviewer")
    assert not view.exists() and checkout.exists()  # the coder's own checkout stays
    assert await lines_rig.repos.line_tip(line.id) == head
    assert lines_rig.upstream.branches("app") == upstream_before


async def test_a_review_checkout_never_takes_the_place_of_another_agents_checkout(
    lines_rig: Rig,
) -> None:
    """An agent named ``rev-review`` works on the repository beside a review agent named
    ``rev``: ``rev``'s review checkouts are named so none is ever ``rev-review``'s, and
    ``rev``'s run ending removes only its own."""
    checkout = await lines_rig.spawn("coder")
    line = await lines_rig.repos.line_of("coder")
    assert line is not None
    head = (await agent_git(checkout, "rev-parse", "HEAD")).stdout.strip()
    other = await lines_rig.spawn("rev-review")
    other_line = await lines_rig.repos.line_of("rev-review")
    assert other_line is not None and other.name == f"rev-review-{other_line.id}"
    (other / "notes.md").write_text("work not yet committed\n")
    reviewer = AgentSpec(name=AgentName("rev"), runtime="command", repo="app")
    asked = ReviewCheckout("app", line.id, head, other_line.id)
    spec = await lines_rig.repos.reviews.checkout(reviewer, asked)
    assert spec.workdir is not None and spec.workdir != other
    assert (other / "notes.md").read_text() == "work not yet committed\n"
    await lines_rig.repos.reviews.over("rev")
    assert spec.workdir is not None and not spec.workdir.exists()
    assert (other / "notes.md").read_text() == "work not yet committed\n"
