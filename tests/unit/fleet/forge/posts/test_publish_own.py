"""What a run's posts may name, by its forge's numbering: on GitHub and Gitea its issue and
pull request share one (``#3``, ``#7``); on GitLab its issue ``#3`` and its merge request
``!3`` are two things, so ``#3`` and ``!3`` stay live there and ``!4`` or ``#4`` are put in
code — even when the merge request's number is another issue's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunRecord
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.test_decide import RUN
from tests.unit.fleet.forge.runs.work_rig import FORGE, FakeForgeApi, WorkRig


@pytest.fixture
def lab(ledger: Ledger, clock: ManualClock) -> WorkRig:
    api = FakeForgeApi()
    api.kind = "gitlab"
    api.add_issue()
    return WorkRig.make(ledger, clock, api=api)


def _record(issue: int, pull: int | None) -> ForgeRunRecord:
    return replace(RUN, forge=FORGE, issue=issue, pull=pull)


async def test_on_gitlab_the_issue_and_the_merge_request_are_numbered_apart(lab: WorkRig) -> None:
    record = _record(3, 3)
    assert lab.work.publisher.posts.own_of(record) == ((3,), (3,))
    said = lab.work.publisher.posts.fit(record, "Fixed #3 in !3; see !4 and #4.")
    assert "#3" in said and "!3" in said
    assert "`!4`" in said and "`#4`" in said


async def test_on_gitlab_a_merge_requests_number_names_no_issue(lab: WorkRig) -> None:
    said = lab.work.publisher.posts.fit(_record(3, 5), "Closes #5, see !5.")
    assert "`#5`" in said and "!5" in said and "`!5`" not in said


async def test_on_github_the_two_share_their_numbers(rig: WorkRig) -> None:
    record = _record(3, 5)
    assert rig.work.publisher.posts.own_of(record) == ((3, 5), None)
    said = rig.work.publisher.posts.fit(record, "See #5 and #3, not #4.")
    assert "`#4`" in said and "`#5`" not in said and "`#3`" not in said
