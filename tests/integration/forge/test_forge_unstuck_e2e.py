"""No forge run stuck, end to end, through the real ``fleetwarden run`` with the strict fake
GitHub (every request and answer held to GitHub's own OpenAPI description) and a real git
upstream (``git http-backend``): a ``command`` agent, sandboxed, given an issue by a writer.

Its work done, the forge refuses the pull request (a token without pull requests write):
chat, the issue and its status comment say so in Fleetwarden's words with ``pr coder`` as
the fix, the run is ``unpublished`` (its summary says the branch was pushed), and a second
issue given to it waits in ``queue``; the refusal lifted, ``pr coder`` opens the pull
request and the run and its status comment follow. A review then — the agent has no
session to continue — starts its next run on the same branch with the review as its
prompt, and the same pull request takes its commit.

On every forge kind — GitHub and Gitea, the strict fake Gitea held to its own published
API description — a label naming no agent, or an agent on no repository, is answered on
the issue once (a redelivery says nothing more), a stale delivery is refused with its age
and the setting that bounds it, and a forge whose token is refused at start is held.

The refused pull request stays on GitHub only: the refusal is a fine-grained token's
missing ``pull_requests: write``, which the strict fake Gitea cannot show — its tokens name
a user and carry no scopes, so a pull request its user may open is never refused for the
token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests import sandbox_need
from tests.fakes.forge.webhook_sender import Event, github_issue, github_review
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge.kinds import Forge, on_github
from tests.integration.forge_rig import (
    CODER_ON_APP,
    bot_comments,
    command_bot_on_github,
    deliver_as_github,
    ledger_rows,
    post,
)

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_unstuckUpstreamTokenNoAgentHolds12345"  # the git upstream's
SECRET = b"unstuck-webhook-secret-0123456789abcdef"
STRANGER = "eve"
PULLS = "/repos/{owner}/{repo}/pulls"
NO_SCOPE = "Resource not accessible by personal access token"
# The agent: its first run writes the notes; a run asked (by a review) for who shipped
# them adds that. Each commits, pushes through its git door and says done, then exits:
# it keeps no session a review could continue.
WORK = """
if printf '%s' "$FLEETWARDEN_PROMPT" | grep -q 'Say who shipped it'; then
  printf 'shipped on Friday\\nby the fleet\\n' > NOTES.md
  git add NOTES.md && git commit -qm 'Say who shipped it'
  git push -q origin HEAD && fw-forge done ok 'Added who shipped it, as asked.'
else
  printf 'shipped on Friday\\n' > NOTES.md
  git add NOTES.md && git commit -qm 'Write the release notes'
  git push -q origin HEAD && fw-forge done ok 'Wrote the release notes.'
fi
"""
CONFIG = (
    CODER_ON_APP
    + """\
  - name: helper
    runtime: command
    argv: [sh, -c, "true"]
"""
)


@pytest.fixture
def forge_unstuck_e2e_bot(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub
) -> Iterator[tuple[ConsoleBot, int]]:
    """The real ``fleetwarden run`` on :data:`CONFIG`, listening; killed if a test failed."""
    with started(tmp_path, upstream, on_github(github), DEFAULT_PAT) as running:
        yield running


@contextmanager
def started(
    tmp_path: Path, upstream: GitUpstream, forge: Forge, forge_token: str
) -> Iterator[tuple[ConsoleBot, int]]:
    """``fleetwarden run`` on :data:`CONFIG` with ``forge`` and ``forge_token`` as its
    token, listening; the bot and its port."""
    tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": forge_token, "FORGE_HOOK_SECRET": SECRET.decode()}
    config, fake = forge.config(CONFIG), forge.fake
    with command_bot_on_github(
        tmp_path, config, WORK, upstream, fake, tokens, login=forge.login
    ) as running:
        yield running


deliver = partial(deliver_as_github, secret=SECRET)
"""Post an event to the bot's webhook endpoint as GitHub does, signed with :data:`SECRET`."""


def labelled(number: int, label: str, *, sender: str = WRITER, **extra: object) -> Event:
    return github_issue(
        "labeled", repo=SLUG, number=number, sender=sender, author=WRITER, label=label,
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def state_of(tmp_path: Path, issue: int) -> str | None:
    rows = ledger_rows(
        tmp_path, "SELECT state FROM forge_runs WHERE issue = ? ORDER BY id DESC", issue
    )
    return str(rows[0][0]) if rows else None


def status_comment(github: FakeGitHub, issue: int) -> str:
    """The run's status comment as it reads now (the bot's first comment on the issue)."""
    return bot_comments(github, SLUG, issue, BOT_LOGIN)[0]


def test_a_pull_request_refused_is_told_truthfully_and_opens_once_fixed(
    tmp_path: Path,
    upstream: GitUpstream,
    github: FakeGitHub,
    forge_unstuck_e2e_bot: tuple[ConsoleBot, int],
) -> None:
    """The PR refused: said in chat, on the issue and in the status comment, the run
    unpublished, its summary saying the branch was pushed; a second issue waits in
    `queue`; `pr coder` opens the PR once the refusal lifts; a review then starts the next
    run on the same branch, and the same PR takes its commit."""
    console, port = forge_unstuck_e2e_bot
    github.refuse_route("POST", PULLS, 403, NO_SCOPE)
    first = github.add_issue(str(SLUG), "Write the release notes", "Say when.", author=WRITER,
                             labels=["fleetwarden:coder"])  # fmt: skip
    second = github.add_issue(str(SLUG), "Tidy the README", "", author=WRITER,
                              labels=["fleetwarden:coder"])  # fmt: skip
    assert deliver(port, labelled(first, "fleetwarden:coder"))[0] == 202
    assert wait_until(lambda: state_of(tmp_path, first) == "unpublished", timeout=120), (
        console.stdout + console.stderr
    )
    branch = "refs/heads/fw/coder/issue-1"
    pushed = upstream.branches("app").get(branch)
    assert pushed is not None
    assert github.pulls(str(SLUG)) == []

    # Chat: the work finished, the PR could not be opened, why and what opens it.
    said = re.compile(r"coder finished its work on acme/app#1.*, but its pull request could not")
    assert wait_until(lambda: said.search(console.stdout) is not None, timeout=30), console.stdout
    chat = console.stdout[said.search(console.stdout).start() :]  # type: ignore[union-attr]
    assert "does not let Fleetwarden's credential (the token in FORGE_TOKEN)" in chat
    assert "pr coder" in chat
    # The run's summary says where its branch is: pushed, not "Not pushed".
    assert "Pushed to the upstream." in console.stdout and "Not pushed" not in console.stdout

    # The issue: one comment saying so, and the status comment in the same words — the
    # kind of refusal only: the variable and the forge's own words are the operator's.
    [told] = [c for c in bot_comments(github, SLUG, first, BOT_LOGIN) if "is done, but" in c]
    assert "could not be opened" in told and "`pr coder`" in told
    assert "the operator has the details" in told
    unpublished = "⚠ Done, but its pull request could not be opened."
    assert wait_until(lambda: unpublished in status_comment(github, first), timeout=30)
    status = status_comment(github, first)
    assert "Why: the forge does not let Fleetwarden's credential open" in status
    assert "Next: `pr coder`" in status
    assert "still running" not in status and "Failed" not in status
    for text in bot_comments(github, SLUG, first, BOT_LOGIN):
        assert "FORGE_TOKEN" not in text and NO_SCOPE not in text
    console.command("forge", r"unpublished(.|\n)*was not opened: forge gh does not let")
    assert "FORGE_TOKEN" in console.output_since_command

    # A second issue for the same agent waits, and `queue` says so.
    assert deliver(port, labelled(second, "fleetwarden:coder"))[0] == 202

    def waits() -> bool:
        sql = "SELECT state, summary FROM forge_runs WHERE issue = ?"
        return [(str(a), str(b)) for a, b in ledger_rows(tmp_path, sql, second)] == [
            ("queued", "coder works on acme/app#1 until its PR closes")
        ]

    assert wait_until(waits, timeout=30)
    console.command("queue", r"acme/app#2.*coder.*coder works on acme/app#1")

    # The token fixed: `pr coder` opens it, and the run and its status comment follow.
    github.allow_route("POST", PULLS)
    console.command("pr coder", r"pull request #\d+ on acme/app")
    [pull] = github.pulls(str(SLUG))
    assert wait_until(lambda: state_of(tmp_path, first) == "waiting", timeout=30)
    assert wait_until(
        lambda: "✅ Done: the pull request waits for review." in status_comment(github, first),
        timeout=30,
    ), status_comment(github, first)
    summaries = [c for c in bot_comments(github, SLUG, pull.number, BOT_LOGIN) if "is done" in c]
    assert len(summaries) == 1 and "Wrote the release notes." in summaries[0]

    # A review: no session to continue, so the next run starts on the same branch.
    github.submit_review(str(SLUG), pull.number, WRITER, "CHANGES_REQUESTED", "Say who shipped it.")
    review = github_review(
        repo=SLUG, number=pull.number, sender=WRITER, body="Say who shipped it.",
        head="fw/coder/issue-1",
    )  # fmt: skip
    assert deliver(port, review)[0] == 202
    assert wait_until(
        lambda: upstream.branches("app").get(branch) not in (None, pushed), timeout=120
    ), console.stdout + console.stderr
    tip = upstream.branches("app")[branch]
    assert upstream.show("app", "show", f"{tip}:NOTES.md").endswith("by the fleet")
    assert len(github.pulls(str(SLUG))) == 1
    assert wait_until(
        lambda: (
            sum("is done" in c for c in bot_comments(github, SLUG, pull.number, BOT_LOGIN)) == 2
        ),
        timeout=60,
    )
    continued = ledger_rows(
        tmp_path, "SELECT detail FROM forge_audit WHERE op = 'continue' AND allowed = 1"
    )
    assert any("no session to continue" in str(d) for (d,) in continued), continued
    assert "spawn it first" not in console.stderr
    assert console.close() == 0


def test_a_label_naming_no_agent_is_answered_on_the_issue_once(
    tmp_path: Path, forge_kind: Forge, forge_bot: tuple[ConsoleBot, int]
) -> None:
    """A label naming no agent, or an agent on no repository: one answer on the issue
    naming the labels that work (a redelivery adds nothing); a stranger's gets nothing; a
    stale delivery is refused with its age and the setting."""
    (console, port), forge, fake = forge_bot, forge_kind, forge_kind.fake
    forge.meets(STRANGER)
    nobody = fake.add_issue(str(SLUG), "Fix it", "", author=WRITER, labels=["fleetwarden:nobody"])
    helper = fake.add_issue(str(SLUG), "Help", "", author=WRITER, labels=["fleetwarden:helper"])
    stranger = fake.add_issue(str(SLUG), "Mine", "", author=STRANGER,
                              labels=["fleetwarden:ghost"])  # fmt: skip

    def give(number: int, label: str, **more: Any) -> tuple[int, str]:
        return post(port, forge.name, *forge.labelled(number, label, SECRET, **more))

    assert give(nobody, "fleetwarden:nobody", delivery="d-nobody")[0] == 202
    assert give(helper, "fleetwarden:helper")[0] == 202
    assert give(stranger, "fleetwarden:ghost", sender=STRANGER)[0] == 202

    def answers(number: int) -> list[str]:
        return bot_comments(fake, SLUG, number, forge.login)

    assert wait_until(lambda: bool(answers(nobody) and answers(helper)), timeout=30), console.stderr
    [said] = answers(nobody)
    assert "no agent of that name is in Fleetwarden's roster" in said
    assert "`fleetwarden:coder`" in said and "</details>" in said
    [on_helper] = answers(helper)
    assert "**helper** works on no repository" in on_helper
    redelivered = give(nobody, "fleetwarden:nobody", delivery="d-nobody")
    assert redelivered == (200, "already had it")
    outcomes = ledger_rows(tmp_path, "SELECT delivery, outcome FROM forge_deliveries")
    assert ("d-nobody", "answered: no agent is named nobody") in outcomes
    assert len(answers(nobody)) == 1 and answers(stranger) == []

    old = datetime.now(UTC) - timedelta(hours=2)
    status, text = give(nobody, "fleetwarden:coder", at=old)
    assert status == forge.stale_status
    setting = rf"older than forges\.{forge.name}\.max_event_age_seconds \(3600 s\) allows"
    assert re.search(r"stale: the event is 2h0\dm old, " + setting, text), text
    assert ledger_rows(tmp_path, "SELECT id FROM forge_runs") == []
    assert console.close() == 0


def test_a_run_whose_branch_was_discarded_ends_and_pushes_no_other_work(
    tmp_path: Path,
    upstream: GitUpstream,
    github: FakeGitHub,
    forge_unstuck_e2e_bot: tuple[ConsoleBot, int],
) -> None:
    """coder has a branch of an operator's run (never pushed); an issue's run of it is
    unpublished, and its branch is discarded from chat: `pr coder` — the forge fixed —
    pushes neither branch and opens nothing; the run ends, said once on the issue and in
    chat, its status comment saying so."""
    console, port = forge_unstuck_e2e_bot
    console.send('spawn coder --prompt "Tidy up"')  # it commits, and exits at once

    def cut() -> bool:
        sql = "SELECT head_sha FROM branches WHERE branch = 'fw/coder/1'"
        return [h for (h,) in ledger_rows(tmp_path, sql) if h] != []

    assert wait_until(cut, timeout=120), console.stdout + console.stderr
    github.refuse_route("POST", PULLS, 403, NO_SCOPE)
    first = github.add_issue(str(SLUG), "Write the release notes", "", author=WRITER,
                             labels=["fleetwarden:coder"])  # fmt: skip
    assert deliver(port, labelled(first, "fleetwarden:coder"))[0] == 202
    assert wait_until(lambda: state_of(tmp_path, first) == "unpublished", timeout=120), (
        console.stdout + console.stderr
    )
    branch = "fw/coder/issue-1"
    assert f"refs/heads/{branch}" in upstream.branches("app")
    console.command(f"discard {branch}", rf"Discarded coder's branch {branch}")
    github.allow_route("POST", PULLS)
    console.command(
        "pr coder",
        rf"no pull request for coder: its branch {branch} was discarded from chat before its "
        r"pull request was opened \(its run has ended\)",
    )
    assert state_of(tmp_path, first) == "ended"
    assert github.pulls(str(SLUG)) == []
    assert "refs/heads/fw/coder/1" not in upstream.branches("app")  # the operator's work
    [said] = [c for c in bot_comments(github, SLUG, first, BOT_LOGIN) if "will not be" in c]
    assert f"its branch {branch} was discarded from chat" in said
    ended = "🏁 Ended: its branch ended before its pull request was opened."
    assert wait_until(lambda: ended in status_comment(github, first), timeout=30)
    news = rf"pull request could not be opened: its branch {branch} was discarded from chat"
    assert wait_until(lambda: re.search(news, console.stdout) is not None, timeout=30), (
        console.stdout
    )
    assert console.close() == 0


def test_a_forge_held_at_start_is_said_once_and_its_deliveries_can_be_redelivered(
    tmp_path: Path, upstream: GitUpstream, forge_kind: Forge
) -> None:
    """A wrong forge token: said once on the console, with the variable and the fix; a
    delivery meanwhile is answered 503 with why in a few words and kept nowhere (the forge
    may redeliver it; GitLab, which turns off a failing hook, gets 202 and the delivery is
    kept, to be acted on at the next start); `forge` says the forge is held, why and the
    fix; `pr codr` guesses the agent meant."""
    wrong = "ghp_wrongForgeTokenNobodyIssued000000000000"
    forge, name = forge_kind, forge_kind.name
    with started(tmp_path, upstream, forge, wrong) as (console, port):
        said = "refused Fleetwarden's credential"
        assert wait_until(lambda: said in console.stdout + console.stderr, timeout=60)
        issue = forge.fake.add_issue(str(SLUG), "Fix it", "", author=WRITER,
                                     labels=["fleetwarden:coder"])  # fmt: skip
        status, text = post(port, name, *forge.labelled(issue, "fleetwarden:coder", SECRET))
        assert "FORGE_TOKEN" not in text and wrong not in text
        kept = ledger_rows(tmp_path, "SELECT delivery FROM forge_deliveries")
        if forge.kind == "gitlab":  # never failed (GitLab turns off a failing hook): kept
            assert status == 202 and text.startswith(f"kept: forge {name} is held"), text
            assert kept != []  # its id and its body's digest: acted on at the next start
        else:
            assert status == 503 and text.startswith(f"refused: forge {name} is held"), text
            assert kept == []
        console.command("pr codr", r"no agent is called 'codr' — did you mean 'coder'\?")
        assert (console.stdout + console.stderr).count(said) == 1, console.stdout + console.stderr
        console.command("forge", rf"Forge {name} is held(.|\n)*No forge runs yet")
        assert "FORGE_TOKEN" in console.output_since_command
        assert "restart Fleetwarden" in console.output_since_command
        assert wrong not in console.stdout + console.stderr
        assert console.close() == 0
