"""Tests for a forge run's pull request opened from the run's own line only
(fleet.forge.posts.publish): the round's retry and `pr` push the line the run was given, never the
agent's newer one, and take its base from it; a line merged or discarded from chat before
the pull request opened ends the run — said once on the issue and in chat, its status
comment following — instead of being tried again every few minutes."""

from __future__ import annotations

import pytest

from fleet.forge.facts import PullNews
from fleet.forge.posts.unpublished import RETRY_MINUTES, LineEnded
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunRecord
from fleet.ledger.records.lines import LineState
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import BRANCH, WorkRig

OWN = 7  # the line the run was given (the fake launcher's)
NEWER = 9  # a line of the agent's cut since, for other work


@pytest.fixture
def told() -> list[PullNews]:
    return []


@pytest.fixture
def own_line_rig(ledger: Ledger, clock: ManualClock, told: list[PullNews]) -> WorkRig:
    async def tell(news: PullNews) -> None:
        told.append(news)

    return WorkRig.make(ledger, clock, tell=tell)


async def _unpublished(rig: WorkRig) -> ForgeRunRecord:
    """A run whose `done ok` found the forge refusing PRs; then its agent got a newer line."""
    fresh = await rig.refused_at_done()
    assert (fresh.state, fresh.line_id) == ("unpublished", OWN)
    rig.launcher.newest = NEWER
    return fresh


async def _round_after_the_wait(rig: WorkRig) -> None:
    await rig.watch.tick()
    rig.clock.advance(60 * RETRY_MINUTES)
    await rig.watch.tick()


async def test_the_round_pushes_the_runs_own_line_not_the_agents_newer_one(
    own_line_rig: WorkRig,
) -> None:
    """The cause fixed, the round pushes line 7 — the run's — and opens the PR on its base,
    though the agent's newest line is another one."""
    await _unpublished(own_line_rig)
    del own_line_rig.api.failures["open_pull"]
    await _round_after_the_wait(own_line_rig)
    pushed = {call[2] for call in own_line_rig.launcher.named("push")}
    assert pushed == {OWN}
    [pull] = own_line_rig.api.pulls.values()
    assert (pull.head, pull.base) == (BRANCH, "trunk")


async def test_a_run_whose_line_was_discarded_ends_instead_of_being_tried_forever(
    own_line_rig: WorkRig, told: list[PullNews]
) -> None:
    """Its line discarded from chat: no push at all (the newer line stays unpushed), the
    run ends, the issue and chat are told once why, the status comment says it ended; the
    rounds after try nothing more."""
    record = await _unpublished(own_line_rig)
    pushes = len(own_line_rig.launcher.named("push"))
    own_line_rig.launcher.ended[OWN] = LineState.DISCARDED
    del own_line_rig.api.failures["open_pull"]
    await _round_after_the_wait(own_line_rig)
    fresh = await own_line_rig.record(record.id)
    assert (fresh.state, fresh.ended_at) == ("ended", own_line_rig.clock.now())
    assert len(own_line_rig.launcher.named("push")) == pushes and own_line_rig.api.pulls == {}
    [said] = [t for t in own_line_rig.api.texts_on(3) if "will not be opened" in t]
    assert f"its branch {BRANCH} was discarded from chat before its pull request" in said
    assert "give the issue to an agent again" in said and said.rstrip().endswith("</details>")
    assert told[-1].why is not None and "was discarded from chat" in told[-1].why
    assert told[-1].fix is not None and "will not try to open it again" in told[-1].fix
    status = own_line_rig.status(fresh).history[-1]
    assert status.startswith(
        "**coder** · 🏁 Ended: its branch ended before its pull request was opened."
    )
    comments, news = len(own_line_rig.api.comments_on(3)), len(told)
    for _ in range(3):
        own_line_rig.clock.advance(60 * RETRY_MINUTES)
        await own_line_rig.watch.tick()
    assert (len(own_line_rig.api.comments_on(3)), len(told)) == (comments, news)
    assert len(own_line_rig.launcher.named("push")) == pushes


async def test_pr_on_a_run_whose_line_was_merged_says_so_and_ends_it(
    own_line_rig: WorkRig, told: list[PullNews]
) -> None:
    """`pr` (open_now) on an unpublished run whose line was merged from chat: refused with
    why, nothing pushed, the run ended and the issue told its work was merged."""
    record = await _unpublished(own_line_rig)
    pushes = len(own_line_rig.launcher.named("push"))
    own_line_rig.launcher.ended[OWN] = LineState.MERGED
    with pytest.raises(LineEnded, match="was merged into trunk from chat"):
        await own_line_rig.work.publisher.open_now(record, draft=False)
    assert len(own_line_rig.launcher.named("push")) == pushes
    assert (await own_line_rig.record(record.id)).state == "ended"
    [said] = [t for t in own_line_rig.api.texts_on(3) if "will not be opened" in t]
    assert "was merged into trunk from chat" in said


async def test_pr_on_a_waiting_run_whose_line_ended_leaves_the_run_as_it_is(
    own_line_rig: WorkRig,
) -> None:
    """A run whose PR is open waits for review: `pr` says its line ended, pushes nothing,
    and the run goes on (its PR closing ends it)."""
    record = await own_line_rig.started()
    await own_line_rig.work.publisher.open_now(record, draft=False)
    own_line_rig.launcher.ended[OWN] = LineState.DISCARDED
    pushes = len(own_line_rig.launcher.named("push"))
    with pytest.raises(LineEnded):
        await own_line_rig.work.publisher.open_now(
            await own_line_rig.record(record.id), draft=False
        )
    assert len(own_line_rig.launcher.named("push")) == pushes
    assert (await own_line_rig.record(record.id)).state == "working"
