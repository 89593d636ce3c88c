"""The rig of the tests where a forge's pull request is approved at one commit and a later
one follows: the shared fake GitHub where a person (``ann``) may also merge, the webhook
deliveries, a person's merge as the forge's button makes it, and the run from an
issue to its approved pull request whose head a person's review then moves on."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import partial

import pytest

from tests.fakes.forge.webhook_sender import github_issue, github_review
from tests.fakes.github.api import BOT_LOGIN, FakeGitHub
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge_rig import bot_comments, deliver_as_github

TOKEN = "ghp_forgeApprovedCommitUpstreamTokenNone1"  # the git upstream's
SECRET = b"approved-commit-webhook-secret-0123456789"
ANN_PAT = "ghp_annMergesOnTheForgeAsAPersonWould0001"
BRANCH = "fw/coder/issue-1"


@pytest.fixture
def github(github: FakeGitHub) -> FakeGitHub:
    """The shared fake GitHub of ``app`` (its upstream served with :data:`TOKEN`), where
    ``ann`` also writes and merges with her own token; a fixture of the modules that import
    it."""
    github.add_pat(ANN_PAT, WRITER)
    return github


deliver = partial(deliver_as_github, secret=SECRET)
"""Post an event to the bot's webhook endpoint as GitHub does, signed with :data:`SECRET`."""


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


def approved_then_reviewed(
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
    answered = deliver(port, labelled)
    assert answered[0] == 202, (answered, console.stdout + console.stderr)
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
    answered = deliver(port, event)
    assert answered[0] == 202, (answered, console.stdout + console.stderr)
    assert wait_until(
        lambda: upstream.branches("app").get(ref) not in (None, approved), timeout=120
    ), console.stdout + console.stderr
    return issue, pull.number, approved, upstream.branches("app")[ref]
