"""A forge run's later turns, end to end on every forge kind — GitHub, Gitea and GitLab, each a
strict fake held to its own published API description — through the real ``fleetwarden
run`` and a real git upstream (``git http-backend``): a ``command`` agent, sandboxed, given
an issue by a writer, each review starting its next run on the same branch. The issue's
title names another issue: its pull request's title (a squash merge's subject on the forge)
does not.

Answering a review, its commit naming its own pull request as its prompt does
(``Address the review on #N``)
is taken and reaches the pull request, and its ``done`` is told the pull request takes the
new commits. A commit naming another issue is refused by the git door: the run's summary
in chat says so once, with the door's words, and claims nothing reached the upstream; the
pull request is told nothing new came, and that run's ``done`` is told its push was refused
and the way on. While the pull request is open, ``merge coder`` in chat is refused and
changes nothing. The next run, whose commit is taken, tells none of
the earlier refusals. Once the pull request is merged, ``diff`` and ``merge`` say the branch
ended with it, when, and that ``spawn coder`` cuts a new one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge.gitlab_kind import GitLabForge
from tests.integration.forge.kinds import Forge
from tests.integration.forge_rig import CODER_ON_APP, bot_comments, ledger_rows, post

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_ownPullUpstreamTokenNoAgentHolds12345"  # the git upstream's
SECRET = b"own-pull-webhook-secret-0123456789abcdef"
BRANCH = "fw/coder/issue-1"
# The agent: each run commits what its prompt asks for, pushes through its git door, says
# done (printing the door's answer) and exits: it keeps no session a review could continue.
WORK = """
if printf '%s' "$FLEETWARDEN_PROMPT" | grep -q 'Say who shipped it'; then
  printf 'shipped on Friday\\nby the fleet\\n' > NOTES.md
  pull=$(printf '%s' "$FLEETWARDEN_PROMPT" | grep -o 'pull request #[0-9]*' | head -n 1)
  git add NOTES.md && git commit -qm "Address the review on #${pull##*#}"
elif printf '%s' "$FLEETWARDEN_PROMPT" | grep -q 'Close the other issue'; then
  printf 'see the tracker\\n' > OTHER.md
  git add OTHER.md && git commit -qm 'Fixes #7 as well'
elif printf '%s' "$FLEETWARDEN_PROMPT" | grep -q 'Tidy it up'; then
  git reset -q --hard HEAD~1
  printf 'shipped on Friday by the fleet\\n' > NOTES.md
  git add NOTES.md && git commit -qm 'Tidy the notes'
else
  printf 'shipped on Friday\\n' > NOTES.md
  git add NOTES.md && git commit -qm 'Write the release notes'
fi
git push -q origin HEAD
fw-forge done ok 'Did what was asked.'
"""
CONFIG = CODER_ON_APP


LABEL = "fleetwarden:coder"


def summaries(console: ConsoleBot) -> list[str]:
    """The run summaries chat was told, in order: each from its headline to its footer."""
    found = re.findall(r"(?:✅|⚠|❌) coder \w+ after .*?\ncoder · command · run \d+",
                       console.stdout, re.DOTALL)  # fmt: skip
    return list(found)


def done_posts(forge: Forge, number: int) -> list[str]:
    on_pull = bot_comments(forge.fake, SLUG, number, forge.login, pull=True)
    return [c for c in on_pull if "is done" in c]


def review(forge: Forge, port: int, number: int, words: str) -> None:
    """``ann`` asks for changes on pull request ``number`` with ``words``."""
    assert post(port, forge.name, *forge.changes_asked(number, BRANCH, words, SECRET))[0] == 202


def test_later_turns_name_their_pull_request_and_a_refused_push_is_told_truthfully(
    tmp_path: Path, upstream: GitUpstream, forge_kind: Forge, forge_bot: tuple[ConsoleBot, int]
) -> None:
    """A commit naming the run's own pull request is taken; one naming another issue is
    refused, told once in that run's summary (not as pushed) and on the pull request, and
    never again in a later run's; after the merge, `diff` and `merge` say what ended the
    branch and that `spawn coder` cuts a new one."""
    (console, port), forge = forge_bot, forge_kind
    github = forge.fake  # GitHub's or Gitea's: the same verbs
    issue = github.add_issue(str(SLUG), "Write the release notes (closes #7)", "Say when.",
                             author=WRITER, labels=[LABEL])  # fmt: skip
    assert post(port, forge.name, *forge.labelled(issue, LABEL, SECRET))[0] == 202
    assert wait_until(lambda: len(github.pulls(str(SLUG))) == 1, timeout=120), (
        console.stdout + console.stderr
    )
    [pull] = github.pulls(str(SLUG))
    # A squash merge on the forge makes the title its subject: it closes no other issue.
    assert pull.title == forge.draft_title("Write the release notes (closes 7)")
    assert wait_until(lambda: len(done_posts(forge, pull.number)) == 1, timeout=30)
    ref = f"refs/heads/{BRANCH}"

    # A review: the next run's commit names the pull request, and is taken.
    first = upstream.branches("app")[ref]
    review(forge, port, pull.number, "Say who shipped it.")
    assert wait_until(
        lambda: upstream.branches("app").get(ref) not in (None, first), timeout=120
    ), console.stdout + console.stderr
    answered = upstream.branches("app")[ref]
    assert upstream.show("app", "log", "-1", "--format=%s", answered) == (
        f"Address the review on #{pull.number}"
    )
    assert wait_until(lambda: len(done_posts(forge, pull.number)) == 2, timeout=60)
    assert done_posts(forge, pull.number)[1].startswith("**coder is done:**")
    assert wait_until(lambda: len(summaries(console)) == 2, timeout=30), console.stdout
    assert "The git door refused" not in summaries(console)[1]

    # Another review: its commit names another issue, and the door refuses it.
    review(forge, port, pull.number, "Close the other issue too.")
    assert wait_until(lambda: len(summaries(console)) == 3, timeout=120), console.stdout
    refused = summaries(console)[2]
    headline = refused.split("\n", 1)[0]
    assert headline.startswith("⚠") and "but the git door refused its push" in headline, refused
    assert "names #7" in headline
    assert refused.count("The git door refused") == 1, refused
    assert "Nothing of this run reached the branch" in refused
    assert "Pushed to the upstream." not in refused
    assert "The upstream has the branch as it was before this run." in refused
    assert upstream.branches("app")[ref] == answered
    assert wait_until(lambda: len(done_posts(forge, pull.number)) == 3, timeout=60)
    post_ = done_posts(forge, pull.number)[2]
    assert "is done, but the git door refused its push" in post_, post_
    said = post_.split("<details>")[0]
    assert "names `#7`" in said and "#7" not in re.sub(r"`[^`]*`", "", said)  # never linked

    # A third: the run takes the refused commit out, and its own is taken.
    review(forge, port, pull.number, "Tidy it up.")
    assert wait_until(lambda: len(summaries(console)) == 4, timeout=120), console.stdout
    tidy = summaries(console)[3]
    assert tidy.startswith("✅") and "The git door refused" not in tidy, tidy
    assert "Pushed to the upstream." in tidy
    assert wait_until(lambda: len(done_posts(forge, pull.number)) == 4, timeout=60)
    # Each done was told where its commits go: a pull request opened once, then the same —
    # but the one after the door's refusal was told that, and the way on.
    assert console.stdout.count("your branch is pushed and its pull request opened") == 1
    assert console.stdout.count(f"the pull request #{pull.number} takes the new commits") == 2
    assert console.stdout.count("done noted, but the git door refused your last push") == 1
    assert "push again, then run `fw-forge done` again" in console.stdout

    if isinstance(forge, GitLabForge):  # `merge` from chat: GitLab merges the pushed head
        console.command("merge coder", r"merged coder's merge request")
        news = forge.merge_news(pull.number, BRANCH, SECRET)
    else:  # While the pull request is open, `merge` from chat is refused: the forge lands it.
        before = upstream.branches("app")
        console.command("merge coder", rf"pull request #{pull.number} on {SLUG}.*open for review")
        assert upstream.branches("app") == before  # nothing merged, nothing pushed
        assert ledger_rows(tmp_path, "SELECT state FROM forge_runs WHERE issue = ?", issue) == [
            ("waiting",)
        ]
        news = forge.merged(pull.number, BRANCH, SECRET)

    # Merged: the branch ends with its pull request, and the verbs say so.
    assert post(port, forge.name, *news)[0] == 202
    assert wait_until(lambda: ref not in upstream.branches("app"), timeout=60)
    gone = (
        rf"coder has no branch now: its last one, {BRANCH} of app, ended on [0-9-]+ [0-9:]+ "
        rf"UTC when its pull request #{pull.number} was merged\. `?spawn coder`? cuts a new one "
        r"on app\."
    )
    sql = "SELECT state FROM forge_runs WHERE issue = ?"
    assert wait_until(lambda: ledger_rows(tmp_path, sql, issue) == [("ended",)], timeout=60)
    console.command("diff coder", gone)
    console.command("merge coder", gone)
    assert "--repo" not in console.output_since_command
    assert console.close() == 0
