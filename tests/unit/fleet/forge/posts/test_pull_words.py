"""What Fleetwarden writes of its own on a run's pull request: a title naming no issue but
the run's own (a squash merge on the forge makes it the commit's subject), and the post of
a ``done ok`` that never reads as new commits when none reached the branch."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleet.forge.posts.pull_words import done_body, pull_title
from fleet.repos.facts import Change

CHANGE = Change("app", "coder", "fw/coder/issue-1", "main", "a" * 40, "b" * 40, "c" * 40, 0)


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("Closes #12", "Closes 12"),
        ("Fixes acme/other#3\nand more", "Fixes acme/other 3 and more"),
        ("Fix #1: the login page", "Fix #1: the login page"),
        ("   ", "Work on #1"),
    ],
)
def test_a_pull_requests_title_names_no_issue_but_the_runs(title: str, shown: str) -> None:
    """One line; another issue's reference made plain; the run's own kept; none: a title
    naming its issue."""
    assert pull_title(title, "acme/app", (1,), 1) == shown


def fit(text: str) -> str:
    return f"<{text}>"  # stands for the publisher's redaction and defusing


def test_a_done_whose_push_the_door_refused_says_so_with_its_words() -> None:
    """Nothing of the turn on the branch and a refusal: said, the door's words fitted as
    the agent's; a turn with no commit and no refusal says so; one whose commits arrived,
    or whose change is not known, is the summary alone."""
    refused = replace(CHANGE, arrived=False, refused=("commit 0123: names #7",))
    assert done_body("coder", "Did it.", refused, fit) == (
        "**coder is done, but the git door refused its push:** <commit 0123: names #7>. "
        "None of this turn's commits reached the branch.\n\n<Did it.>"
    )
    nothing = done_body("coder", "Answered.", replace(CHANGE, arrived=False), fit)
    assert nothing == "**coder is done** (no new commits this turn):\n\n<Answered.>"
    for change in (replace(CHANGE, arrived=True), None):
        assert done_body("coder", "Did it.", change, fit) == "**coder is done:**\n\n<Did it.>"
