"""An approval is of one commit on a forge too, through the real ``fleetwarden run`` with the
strict fake GitHub (held to GitHub's OpenAPI description), a real git upstream (``git
http-backend``) and ``command`` agents: the review agent approves the pull request's head A
(its draft lifted); a person's review then continues the run, whose next commit B is its
new head. With no round left, the pull request is made a draft again — a person's merge on
the forge is refused — its status comment names the commit approved and the head that
changed since, and chat is told."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.ledger.records.forge import Slug
from tests import sandbox_need
from tests.fakes.github_api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.fakes.webhook_sender import Event, github_delivery, github_issue, github_review
from tests.git_upstream import GitUpstream, served_app
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge_rig import (
    APP_ON_GITHUB,
    app_on_github,
    bot_comments,
    command_bot_on_github,
    ledger_rows,
    post,
)

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_forgeApprovedCommitUpstreamTokenNone1"  # the git upstream's
SECRET = b"approved-commit-webhook-secret-0123456789"
ANN_PAT = "ghp_annMergesOnTheForgeAsAPersonWould0001"
SLUG = Slug("acme", "app")
WRITER = "ann"
BRANCH = "fw/coder/issue-1"
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


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[GitUpstream]:
    with served_app(tmp_path / "upstream", TOKEN) as served:
        yield served


@pytest.fixture
def github(upstream: GitUpstream) -> Iterator[FakeGitHub]:
    with app_on_github(upstream, SLUG, WRITER) as fake:
        fake.add_pat(ANN_PAT, WRITER)
        yield fake


@pytest.fixture(params=[1], ids=["rounds-1"])
def bot(
    request: pytest.FixtureRequest, tmp_path: Path, upstream: GitUpstream, github: FakeGitHub
) -> Iterator[tuple[ConsoleBot, int]]:
    """The real ``fleetwarden run``, its review stage of ``request.param`` rounds."""
    tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": DEFAULT_PAT, "FORGE_HOOK_SECRET": SECRET.decode()}
    config = CONFIG.replace("ROUNDS", str(request.param))
    with command_bot_on_github(tmp_path, config, WORK, upstream, github, tokens) as running:
        yield running


def deliver(port: int, event: Event) -> int:
    name, payload = event
    headers, body = github_delivery(name, payload, secret=SECRET)
    return post(port, "gh", headers, body)[0]


def merge_on_forge(github: FakeGitHub, number: int) -> tuple[int, str]:
    """``ann`` merges pull request ``number`` on the forge, as its merge button does; the
    status and GitHub's words."""
    request = urllib.request.Request(
        f"{github.api_url}/repos/{SLUG}/pulls/{number}/merge",
        data=json.dumps({"merge_method": "squash"}).encode(),
        method="PUT",
        headers={
            "Authorization": f"Bearer {ANN_PAT}",
            "Accept": "application/vnd.github+json",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def status_comment(github: FakeGitHub, issue: int) -> str:
    return bot_comments(github, SLUG, issue, BOT_LOGIN)[0]


def _approved_then_reviewed(
    github: FakeGitHub, upstream: GitUpstream, console: ConsoleBot, port: int
) -> tuple[int, int, str, str]:
    """The issue given to coder, its pull request approved by reviewer at A (its draft
    lifted), then Ann's review makes B its head: the issue, the pull, A and B."""
    issue = github.add_issue(str(SLUG), "Write the release notes", "Say when.",
                             author=WRITER, labels=["fleetwarden:coder"])  # fmt: skip
    labelled = github_issue(
        "labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
        label="fleetwarden:coder",
    )  # fmt: skip
    assert deliver(port, labelled) == 202
    assert wait_until(lambda: len(github.pulls(str(SLUG))) == 1, timeout=120), (
        console.stdout + console.stderr
    )
    [pull] = github.pulls(str(SLUG))
    ref = f"refs/heads/{BRANCH}"
    approved = upstream.branches("app")[ref]
    assert wait_until(lambda: not github.is_draft(str(SLUG), pull.number), timeout=120), (
        console.stdout + console.stderr
    )
    assert wait_until(  # the status comment says so once the review is posted
        lambda: f"approved at {approved[:12]}" in status_comment(github, issue), timeout=60
    ), status_comment(github, issue)
    github.submit_review(str(SLUG), pull.number, WRITER, "CHANGES_REQUESTED", "Say who shipped it.")
    event = github_review(
        repo=SLUG, number=pull.number, sender=WRITER, body="Say who shipped it.", head=BRANCH
    )
    assert deliver(port, event) == 202
    assert wait_until(
        lambda: upstream.branches("app").get(ref) not in (None, approved), timeout=120
    ), console.stdout + console.stderr
    return issue, pull.number, approved, upstream.branches("app")[ref]


def test_a_head_after_the_last_approval_is_held_from_a_forge_merge(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub, bot: tuple[ConsoleBot, int]
) -> None:
    """Approved at A, its draft lifted; a person's review makes B its head: no round left,
    so the pull request is a draft again and a merge on the forge is refused; its status
    comment names A and B; chat says its approval does not cover B."""
    console, port = bot
    issue, number, approved, head = _approved_then_reviewed(github, upstream, console, port)
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


@pytest.mark.parametrize("bot", [2], ids=["rounds-2"], indirect=True)
def test_a_head_after_an_approval_is_reviewed_in_the_next_round_before_the_forge_merges(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub, bot: tuple[ConsoleBot, int]
) -> None:
    """Rounds left: B, the head after the approval of A, is read in round 2 (the pull
    request a draft meanwhile); round 2's approval of B lifts the draft, the status comment
    names B, and a person's merge on the forge goes through."""
    console, port = bot
    issue, number, approved, head = _approved_then_reviewed(github, upstream, console, port)
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
