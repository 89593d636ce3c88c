"""What the branch verbs tell an operator, against real git and a real upstream behind
``git http-backend``: a merge refused for conflicts names the files and the next step — and
that step, followed, lands the branch; ``branches`` fetches first, so "behind" is true, and
says plainly when it could not and since when its counts stand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.render.work.changes import landed as said_landed
from fleet.repos.verbs import RepoVerbs
from fleet.timing.clock import ManualClock
from tests import sandbox_need
from tests.integration.repos.test_repo_lines import Rig, agent_git, lines_rig

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]
__all__ = ["lines_rig"]

T = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)


async def test_a_conflict_names_its_files_and_the_next_step_and_that_step_lands_it(
    lines_rig: Rig,
) -> None:
    """Refused with README.md named and `spawn coder --prompt …` then `merge coder` as the
    way on; the agent's next run on the same branch fetches the moved base through the
    door, merges it, resolves, pushes; the second merge lands."""
    checkout = await lines_rig.spawn("coder")
    (checkout / "README.md").write_text("# app, by the agent\n")
    await lines_rig.run_ended("coder", 3)
    lines_rig.upstream.commit("app", {"README.md": "# app, by a teammate\n"})
    refused = await lines_rig.verbs.merge("coder", "squash", by="ann")
    assert refused.new_sha is None and refused.conflicts == ("README.md",)
    text = said_landed(refused, agent="coder")
    assert "Conflicting files: README.md." in text and "Nothing was changed" in text
    step = 'spawn coder --prompt "git fetch origin, merge origin/main into your branch'
    assert step in text and "then `merge coder` again" in text, text
    # The step, as the agent's next run takes it: the same branch, the base moved.
    assert await lines_rig.spawn("coder") == checkout
    await agent_git(checkout, "fetch", "-q", "origin")
    merging = await agent_git(checkout, "merge", "-q", "origin/main", ok=False)
    assert merging.returncode != 0  # the conflict, in the agent's own checkout
    (checkout / "README.md").write_text("# app, by the agent and a teammate\n")
    await agent_git(checkout, "add", "README.md")
    await agent_git(checkout, "commit", "-q", "--no-edit")
    pushed = await agent_git(checkout, "push", "-q", "origin", "HEAD")
    assert pushed.returncode == 0, pushed.stderr
    await lines_rig.run_ended("coder", 4)
    landed = await lines_rig.verbs.merge("coder", "squash", by="ann")
    assert landed.new_sha is not None and landed.refused is None, landed
    merged = lines_rig.upstream.show("app", "show", f"{landed.new_sha}:README.md")
    assert merged == "# app, by the agent and a teammate"


async def test_branches_fetches_so_behind_is_true_and_says_when_it_cannot(lines_rig: Rig) -> None:
    """A base that moved upstream since the last fetch shows as behind once `branches`
    refreshes; with the upstream gone, the refresh says why and as of when the counts
    stand, and the table is still there."""
    verbs = RepoVerbs(lines_rig.repos, ManualClock(T))
    checkout = await lines_rig.spawn("coder")
    (checkout / "NEW.md").write_text("new\n")
    await lines_rig.run_ended("coder", 2)
    lines_rig.upstream.commit("app", {"OTHER.md": "a teammate's\n"})
    [stale] = await verbs.lines()
    assert stale.base_moved == 0  # the mirror has not fetched since
    assert await verbs.refresh() == []
    [fresh] = await verbs.lines()
    assert fresh.base_moved == 1
    assert await verbs.refresh("app") == []
    port = lines_rig.upstream.port
    lines_rig.upstream.stop()
    [note] = await verbs.refresh()
    assert note.startswith(
        "app's behind counts are as of its last fetch, at 2026-05-04 09:30 UTC. "
    )
    assert f"127.0.0.1:{port}" in note, note  # why, in Fleetwarden's words
    [kept] = await verbs.lines()
    assert kept.base_moved == 1
