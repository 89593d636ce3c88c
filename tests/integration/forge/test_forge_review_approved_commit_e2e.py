"""An approval is of one commit on a forge too, through the real ``fleetwarden run`` with the
strict fake GitHub (held to GitHub's OpenAPI description), a real git upstream (``git
http-backend``) and ``command`` agents: the review agent approves the pull request's head A
(its draft lifted); a person's review then continues the run, whose next commit B is its
new head. With no round left, the pull request is made a draft again — a person's merge on
the forge is refused — its status comment names the commit approved and the head that
changed since, and chat is told.

GitHub only: each test ends in a person's merge through the forge's API, refused while the
pull request is a draft — the strict fake Gitea serves no merge route (its ``merge_pull`` is
the test's own hand, not the API), and Gitea keeps a draft as a ``WIP:`` title, not a state
a merge is refused by."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.github.api import DEFAULT_PAT, FakeGitHub
from tests.git_upstream import GitUpstream
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge.forge_review_rig import (
    SECRET,
    SLUG,
    TOKEN,
    approved_then_reviewed,
    merge_on_forge,
    status_comment,
)
from tests.integration.forge.forge_review_rig import github as github  # ann merges too
from tests.integration.forge_rig import (
    APP_ON_GITHUB,
    command_bot_on_github,
    ledger_rows,
)

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

# The coder: its first run writes the notes; the run a person's review continues adds who
# shipped them. Each commits, pushes through its git door, says done and exits.
WORK = """
if printf '%s' "$FLEETWARDEN_PROMPT" | grep -q 'Say who shipped it'; then
  printf 'shipped on Friday\\nby the fleet\\n' > NOTES.md
  git add NOTES.md && git commit -qm 'Say who shipped it'
else
  printf 'shipped on Friday\\n' > NOTES.md
  git add NOTES.md && git commit -qm 'Write the release notes'
fi
git push -q origin HEAD && fw-forge done ok 'Did what was asked.'
"""
CONFIG = (
    APP_ON_GITHUB
    + """\
    review: {{agent: reviewer, rounds: ROUNDS}}
agents:
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, {script}]
  - name: reviewer
    runtime: command
    role: reviews the app's changes before a human does
    argv: [sh, -c, 'fw-msg review approve "fine as it is"']
"""
)


@pytest.fixture(params=[1], ids=["rounds-1"])
def reviewing_bot(
    request: pytest.FixtureRequest, tmp_path: Path, upstream: GitUpstream, github: FakeGitHub
) -> Iterator[tuple[ConsoleBot, int]]:
    """The real ``fleetwarden run``, its review stage of ``request.param`` rounds."""
    tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": DEFAULT_PAT, "FORGE_HOOK_SECRET": SECRET.decode()}
    config = CONFIG.replace("ROUNDS", str(request.param))
    with command_bot_on_github(tmp_path, config, WORK, upstream, github, tokens) as running:
        yield running


def test_a_head_after_the_last_approval_is_held_from_a_forge_merge(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub, reviewing_bot: tuple[ConsoleBot, int]
) -> None:
    """Approved at A, its draft lifted; a person's review makes B its head: no round left,
    so the pull request is a draft again and a merge on the forge is refused; its status
    comment names A and B; chat says its approval does not cover B."""
    console, port = reviewing_bot
    issue, number, approved, head = approved_then_reviewed(github, upstream, console, port)
    assert wait_until(lambda: github.is_draft(str(SLUG), number), timeout=120), (
        console.stdout + console.stderr
    )
    status, said = merge_on_forge(github, number)
    assert status == 405 and "Pull Request is still a draft" in said, said
    assert not github.issue_of(str(SLUG), number).pull.merged_at  # type: ignore[union-attr]
    assert wait_until(
        lambda: (
            f"the head {head[:12]} changed since it was approved" in status_comment(github, issue)
        ),
        timeout=60,
    ), status_comment(github, issue)
    assert f"approved at {approved[:12]}" in status_comment(github, issue)
    told = re.compile(r"review refused: changed since it was approved: reviewer approved commit")
    assert wait_until(lambda: told.search(console.stdout), timeout=30), console.stdout
    assert "Something went wrong" not in console.stdout


@pytest.mark.parametrize("reviewing_bot", [2], ids=["rounds-2"], indirect=True)
def test_a_head_after_an_approval_is_reviewed_in_the_next_round_before_the_forge_merges(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub, reviewing_bot: tuple[ConsoleBot, int]
) -> None:
    """Rounds left: B, the head after the approval of A, is read in round 2 (the pull
    request a draft meanwhile); round 2's approval of B lifts the draft, the status comment
    names B, and a person's merge on the forge goes through."""
    console, port = reviewing_bot
    issue, number, approved, head = approved_then_reviewed(github, upstream, console, port)
    assert wait_until(
        lambda: f"approved at {head[:12]}" in status_comment(github, issue), timeout=120
    ), status_comment(github, issue) + console.stdout
    assert not github.is_draft(str(SLUG), number)
    held = ledger_rows(tmp_path, "SELECT detail FROM forge_audit WHERE op = 'review'")
    said_held = f"approved at {approved[:12]}; the head {head[:12]} changed since it was approved"
    assert [d for (d,) in held if said_held in d], held  # a draft while round 2 read B
    rows = [r for r in github.requests if r.path == "/graphql"]
    assert len(rows) >= 3  # lifted at A, a draft again at B, lifted at B's approval
    status, said = merge_on_forge(github, number)
    assert status == 200 and json.loads(said)["merged"] is True, said
    assert "Something went wrong" not in console.stdout
