"""A head the review agent did not approve reaches a forge's branch only once its pull
request is a draft again, whichever push takes it there: a run's end with ``autopush``, the
end of a run that said ``done ok`` (before its pull request is published again), and an
operator's ``pr NAME``.

Through the real ``fleetwarden run`` with the strict fake GitHub (held to GitHub's OpenAPI
description; a pull request's head is its branch's tip, as on GitHub), a real git upstream
(``git http-backend``) and ``command`` agents: the review agent approves the pull request's
head A (its draft lifted); a person's review then continues the run, whose next commit B is
pushed — and a person's merge on the forge is refused (405, a draft).

GitHub only: each test ends in a person's merge through the forge's API, refused while the
pull request is a draft — the strict fake Gitea serves no merge route (its ``merge_pull`` is
the test's own hand, not the API), and Gitea keeps a draft as a ``WIP:`` title, not a state
a merge is refused by."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.forge.webhook_sender import github_issue, github_review
from tests.fakes.github.api import DEFAULT_PAT, FakeGitHub
from tests.git_upstream import GitUpstream
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge.forge_review_rig import (
    BRANCH,
    SECRET,
    SLUG,
    TOKEN,
    WRITER,
    approved_then_reviewed,
    deliver,
    merge_on_forge,
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
  git push -q origin HEAD
  DONE_AFTER fw-forge done ok 'Said who.'
  exit 0
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
    autopush: AUTOPUSH
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


@pytest.fixture(params=[(1, True, False)], ids=["autopush"])
def pushing_bot(
    request: pytest.FixtureRequest, tmp_path: Path, upstream: GitUpstream, github: FakeGitHub
) -> Iterator[tuple[ConsoleBot, int]]:
    """The real ``fleetwarden run``, its review stage of ``request.param`` rounds."""
    tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": DEFAULT_PAT, "FORGE_HOOK_SECRET": SECRET.decode()}
    rounds, autopush, done = request.param
    work = WORK.replace("DONE_AFTER ", "" if done else ": ")
    config = CONFIG.replace("ROUNDS", str(rounds)).replace("AUTOPUSH", str(autopush).lower())
    with command_bot_on_github(tmp_path, config, work, upstream, github, tokens) as running:
        yield running


def test_an_autopushed_head_after_the_approval_makes_the_pull_request_a_draft_first(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub, pushing_bot: tuple[ConsoleBot, int]
) -> None:
    """Approved at A; a run ending without done autopushes B only with its pull request a draft."""
    console, port = pushing_bot
    _issue, number, approved, head = approved_then_reviewed(github, upstream, console, port)
    assert head != approved
    draft = github.is_draft(str(SLUG), number)
    status, said = merge_on_forge(github, number)
    assert status == 405, (
        f"draft={draft}; merged B={head[:12]} (approved A={approved[:12]}): {status} {said}"
    )


@pytest.mark.parametrize("pushing_bot", [(1, False, False)], ids=["pr-verb"], indirect=True)
def test_pr_from_chat_after_the_approval_pushes_a_later_head_only_to_a_draft(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub, pushing_bot: tuple[ConsoleBot, int]
) -> None:
    """Approved at A; an operator's `pr coder` pushes the unpushed B only to a draft."""
    console, port = pushing_bot
    issue = github.add_issue(str(SLUG), "Write the release notes", "Say when.",
                             author=WRITER, labels=["fleetwarden:coder"])  # fmt: skip
    labelled = github_issue(
        "labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
        label="fleetwarden:coder",
    )  # fmt: skip
    assert deliver(port, labelled)[0] == 202
    assert wait_until(lambda: len(github.pulls(str(SLUG))) == 1, timeout=120), console.stdout
    [pull] = github.pulls(str(SLUG))
    ref = f"refs/heads/{BRANCH}"
    approved = upstream.branches("app")[ref]
    assert wait_until(lambda: not github.is_draft(str(SLUG), pull.number), timeout=120)
    github.submit_review(str(SLUG), pull.number, WRITER, "CHANGES_REQUESTED", "Say who shipped it.")
    event = github_review(
        repo=SLUG, number=pull.number, sender=WRITER, body="Say who shipped it.", head=BRANCH
    )
    assert deliver(port, event)[0] == 202

    def tip() -> str | None:
        rows = ledger_rows(tmp_path, "SELECT head_sha FROM branches ORDER BY id DESC LIMIT 1")
        return str(rows[0][0]) if rows and rows[0][0] else None

    assert wait_until(lambda: tip() not in (None, approved), timeout=120), console.stdout
    assert upstream.branches("app")[ref] == approved  # not on the forge yet
    console.command("pr coder", r"pull request #\d+|no pull request", timeout=120)
    head = upstream.branches("app")[ref]
    draft = github.is_draft(str(SLUG), pull.number)
    status, said = merge_on_forge(github, pull.number)
    assert head == approved or draft or status == 405, (
        f"pr pushed B={head[:12]} over approved A={approved[:12]}; draft={draft}; "
        f"merge {status} {said}"
    )


@pytest.mark.parametrize("pushing_bot", [(1, False, True)], ids=["done-window"], indirect=True)
def test_a_head_pushed_at_done_is_never_mergeable_before_a_round_reads_it(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub, pushing_bot: tuple[ConsoleBot, int]
) -> None:
    """Approved at A; a run saying done ok with B is pushed only to a draft pull request."""
    console, port = pushing_bot
    _issue, number, approved, head = approved_then_reviewed(github, upstream, console, port)
    draft = github.is_draft(str(SLUG), number)
    status, said = merge_on_forge(github, number)
    assert status == 405, (
        f"draft={draft}; merged with B={head[:12]} on the branch (approved A={approved[:12]}): "
        f"{status} {said}"
    )
