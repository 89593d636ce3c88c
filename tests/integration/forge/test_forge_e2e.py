"""Work from the forge, end to end, through the real ``fleetwarden run``: an issue labelled
``fleetwarden:coder`` by a writer on the strict fake GitHub (every request and answer held
to GitHub's own OpenAPI description) becomes a run of the real Claude Code, sandboxed,
against the strict fake provider; it edits a file and says ``fw-forge done`` through its
forge door; Fleetwarden pushes the branch to a real git upstream (``git http-backend``,
which takes only its own token) and opens one pull request with the provenance footer;
a "request changes" review continues the same session and a second commit lands on the
same pull request; the pull request merged ends the run, deletes the branch and removes
the checkout, and the issue's one task is done, its actual the usage of both its runs.
Signed as GitHub signs them, a replayed, a mis-signed and a stranger's
delivery start nothing. No token reaches the agent, the state dir or the output."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.background import fake_provider_thread
from tests.fakes.github_api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.fakes.provider import Accepted, Turn
from tests.fakes.webhook_sender import (
    github_issue,
    github_pull,
    github_review,
)
from tests.git_upstream import GitUpstream, token_anywhere
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge_rig import (
    E2E_KEY,
    bash,
    bot_comments,
    deliver_as_github,
    ledger_rows,
    listening,
    start_e2e_bot,
    write,
)
from tests.integration.runtimes.test_real_clis import cli

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_e2eUpstreamTokenNoAgentHolds9876543210"  # the git upstream's
SECRET = b"forge-webhook-secret-0123456789abcdef"
STRANGER = "eve"


def start_bot(
    tmp_path: Path, upstream: GitUpstream, api: str, provider: str
) -> tuple[ConsoleBot, int]:
    tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": DEFAULT_PAT, "FORGE_HOOK_SECRET": SECRET.decode()}
    return start_e2e_bot(
        tmp_path,
        forge="gh",
        kind="github",
        api=api,
        provider=provider,
        login=BOT_LOGIN,
        url=upstream.url("app"),
        tokens=tokens,
    )


deliver = partial(deliver_as_github, secret=SECRET)
"""Post an event to the bot's webhook endpoint as GitHub does, signed with :data:`SECRET`."""


def test_a_labelled_issue_becomes_a_pull_request_that_a_review_continues(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub
) -> None:
    cli("claude")
    checkout = tmp_path / "state" / "checkouts" / "app" / "coder-1"
    turns = (
        write(checkout / "NOTES.md", "shipped on Friday\n"),
        bash('fw-forge done ok "Wrote the release notes."'),
        Turn(text="Done: the notes are written."),
        write(checkout / "NOTES.md", "shipped on Friday\nby the fleet\n"),
        bash('fw-forge done ok "Added who shipped it, as asked."'),
        Turn(text="Done again."),
    )
    issue = github.add_issue(
        str(SLUG), "Write the release notes", "Say when we shipped.", author=WRITER,
        labels=["fleetwarden:coder"],
    )  # fmt: skip
    with fake_provider_thread(
        *turns, default=Turn(text="(no more turns)"), accept=Accepted(api_keys=frozenset({E2E_KEY}))
    ) as provider:
        bot, port = start_bot(tmp_path, upstream, github.api_url, provider.base_url)
        try:
            assert wait_until(lambda: listening(port), timeout=60), bot.stderr
            assert issue == 1
            labeled = github_issue(
                "labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
                title="Write the release notes", body="Say when we shipped.",
                label="fleetwarden:coder",
            )  # fmt: skip
            # Mis-signed and a stranger's: nothing starts.
            assert deliver(port, labeled, secret=b"not-the-secret")[0] == 401
            stranger = github_issue(
                "labeled", repo=SLUG, number=issue, sender=STRANGER, label="fleetwarden:coder"
            )
            assert deliver(port, stranger)[0] == 202
            status, _ = deliver(port, labeled, delivery="delivery-1")
            assert status == 202
            assert deliver(port, labeled, delivery="delivery-1") == (200, "already had it")

            def pulls() -> list[object]:
                return list(github.pulls(str(SLUG)))

            assert wait_until(lambda: len(pulls()) == 1, timeout=180), bot.stdout + bot.stderr
            [pull] = github.pulls(str(SLUG))
            assert pull.pull is not None
            branch = "refs/heads/fw/coder/issue-1"
            first = upstream.branches("app").get(branch)
            assert first is not None
            assert upstream.show("app", "show", f"{first}:NOTES.md") == "shipped on Friday"
            # Whoever gave the agent the issue is its work's co-author, at GitHub's no-reply.
            writer = github.accounts.find(WRITER)
            assert writer is not None
            noreply = f"{writer.id}+{WRITER}@users.noreply.github.com"
            message = upstream.show("app", "log", "-1", "--format=%B", first)
            assert f"Co-authored-by: {WRITER} <{noreply}>" in message, message
            assert "<details>" in (pull.body or "")
            assert wait_until(
                lambda: any(
                    "is done" in c for c in bot_comments(github, SLUG, pull.number, BOT_LOGIN)
                ),
                timeout=30,
            )
            status_comments = bot_comments(github, SLUG, issue, BOT_LOGIN)
            assert len(status_comments) == 1  # one status comment, edited as the run goes
            assert len(github.comments_on(str(SLUG), issue)) == 1  # the stranger got nothing

            # A "request changes" review continues the same session, on the same PR.
            github.submit_review(
                str(SLUG), pull.number, WRITER, "CHANGES_REQUESTED", "Say who shipped it."
            )
            review = github_review(
                repo=SLUG, number=pull.number, sender=WRITER, body="Say who shipped it.",
                head="fw/coder/issue-1",
            )  # fmt: skip
            assert deliver(port, review)[0] == 202
            assert wait_until(
                lambda: upstream.branches("app").get(branch) not in (None, first), timeout=180
            ), bot.stdout + bot.stderr
            second = upstream.branches("app")[branch]
            assert upstream.show("app", "show", f"{second}:NOTES.md").endswith("by the fleet")
            assert len(pulls()) == 1
            assert wait_until(
                lambda: (
                    sum("is done" in c for c in bot_comments(github, SLUG, pull.number, BOT_LOGIN))
                    == 2
                ),
                timeout=60,
            )
            bot.command("forge", r"fw|acme/app#1")
            assert re.search(r"waiting|working", bot.output_since_command)

            # Merged and closed: the run ends, the branch is deleted, the checkout removed.
            github.merge_pull(str(SLUG), pull.number, by=WRITER)
            closed = github_pull(
                "closed", repo=SLUG, number=pull.number, sender=WRITER, head="fw/coder/issue-1",
                merged=True,
            )  # fmt: skip
            assert deliver(port, closed)[0] == 202
            assert wait_until(lambda: branch not in upstream.branches("app"), timeout=60)
            assert wait_until(lambda: not checkout.exists(), timeout=60)
            bot.command("forge all", r"ended")
            # The issue was one task: both runs bound to it, done, its actual their usage.
            # (The run is shown ended as soon as it is; its task follows a moment later.)
            assert wait_until(
                lambda: (
                    ledger_rows(tmp_path, "SELECT state FROM tasks WHERE source = 'forge'")
                    == [("done",)]
                ),
                timeout=30,
            )
            [(task, state, actual)] = ledger_rows(
                tmp_path, "SELECT id, state, actual_tokens FROM tasks WHERE source = 'forge'"
            )
            bound = ledger_rows(tmp_path, "SELECT run_id FROM task_runs WHERE task_id = ?", task)
            runs = ledger_rows(tmp_path, "SELECT id FROM runs WHERE agent = 'coder'")
            assert state == "done" and sorted(bound) == sorted(runs) and len(runs) == 2
            [(metered,)] = ledger_rows(
                tmp_path,
                "SELECT SUM(input_tokens + output_tokens + cache_read_tokens"
                " + cache_write_tokens) FROM usage WHERE agent = 'coder'",
            )
            assert actual == metered > 0
            assert token_anywhere(DEFAULT_PAT, tmp_path / "state") == []
            assert token_anywhere(TOKEN, tmp_path / "state") == []
            assert DEFAULT_PAT not in bot.stdout + bot.stderr
            bot.close()
        finally:
            if bot.proc.poll() is None:
                bot.kill()
