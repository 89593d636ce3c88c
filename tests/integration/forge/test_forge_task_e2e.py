"""A forge issue given to an agent is a task, end to end through the real ``fleetwarden
run``, the real Claude Code against the strict fake provider, the strict fake GitHub and a
real git upstream: the issue labelled ``fleetwarden:coder`` makes one task (its source the
forge, its reference the issue's address, its projection stored as it is made) whose run is
bound to it through the admission; the status comment, the pull request's footer and the
run's summary in chat show the task's projection beside its actual; the same delivery sent
again, and the same event under a new delivery, make no second task; the pull request merged
ends the task ``done``, its actual the metered usage of its runs to the token, and the next
issue's task is projected from it. The issue's title is hostile: nothing Fleetwarden posts
carries it live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.background import fake_provider_thread
from tests.fakes.github_api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.fakes.provider import Accepted, Turn
from tests.fakes.webhook_sender import github_issue, github_pull
from tests.git_upstream import GitUpstream
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

TOKEN = "ghp_taskUpstreamTokenNoAgentHolds01234567"  # the git upstream's
SECRET = b"task-webhook-secret-0123456789abcdef"
TITLE = "<img src=x onerror=alert(1)> @everyone [win](https://evil.example) ```sh"
BODY = "Write the notes.\n```\n@everyone\n```"
LIVE = ("<img", "@everyone", "](https://evil.example)", "```sh")
"""What of the title would be live on GitHub's page, were it posted as written."""
_TOKENS = "input_tokens + output_tokens + cache_read_tokens + cache_write_tokens"


deliver = partial(deliver_as_github, secret=SECRET)
"""Post an event to the bot's webhook endpoint as GitHub does, signed with :data:`SECRET`."""


def tasks(tmp_path: Path) -> list[tuple[object, ...]]:
    return ledger_rows(
        tmp_path,
        "SELECT id, title, body, source, source_ref, forge_run, state, basis,"
        " projected_median_tokens, actual_tokens, pull_url, agent, repo FROM tasks ORDER BY id",
    )


def test_a_forge_issue_is_one_task_whose_spend_shows_on_its_artifacts(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub
) -> None:
    cli("claude")
    checkout = tmp_path / "state" / "checkouts" / "app" / "coder-1"
    turns = (
        write(checkout / "NOTES.md", "shipped on Friday\n"),
        bash('fw-forge done ok "Wrote the notes."'),
        Turn(text="Done: the notes are written."),
    )
    issue = github.add_issue(str(SLUG), TITLE, BODY, author=WRITER, labels=["fleetwarden:coder"])
    tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": DEFAULT_PAT, "FORGE_HOOK_SECRET": SECRET.decode()}
    accept = Accepted(api_keys=frozenset({E2E_KEY}))
    with fake_provider_thread(*turns, default=Turn(text="(no more turns)"), accept=accept) as llm:
        bot, port = start_e2e_bot(
            tmp_path, forge="gh", kind="github", api=github.api_url, provider=llm.base_url,
            login=BOT_LOGIN, url=upstream.url("app"), tokens=tokens,
        )  # fmt: skip
        try:
            run_the_issue(tmp_path, bot, port, github, issue)
        finally:
            if bot.proc.poll() is None:
                bot.kill()


def run_the_issue(
    tmp_path: Path, bot: ConsoleBot, port: int, github: FakeGitHub, issue: int
) -> None:
    assert wait_until(lambda: listening(port), timeout=60), bot.stderr
    labeled = github_issue(
        "labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER, title=TITLE,
        body=BODY, label="fleetwarden:coder",
    )  # fmt: skip
    assert deliver(port, labeled, "task-1")[0] == 202
    assert deliver(port, labeled, "task-1") == (200, "already had it")
    assert wait_until(lambda: len(github.pulls(str(SLUG))) == 1, timeout=180), (
        bot.stdout + bot.stderr
    )
    [made] = tasks(tmp_path)
    task_id, title, body, source, ref, forge_run, _, basis, projected, *_ = made
    assert (title, body, source) == (TITLE, BODY, "forge")
    assert ref == f"https://github.com/{SLUG}/issues/{issue}"
    assert (basis, projected) == ("no finished task yet", None)  # stored: none finished before
    [(run_key,)] = ledger_rows(tmp_path, "SELECT id FROM forge_runs")
    assert forge_run == run_key
    bound = ledger_rows(tmp_path, "SELECT run_id FROM task_runs WHERE task_id = ?", task_id)
    assert len(bound) == 1  # its run, bound through the admission as it started

    # The same label again under a new delivery (a poll, a replay): no second task.
    again = github_issue(
        "labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER, title=TITLE,
        body=BODY, label="fleetwarden:coder", at=datetime.now(UTC) + timedelta(seconds=1),
    )  # fmt: skip
    assert deliver(port, again, "task-2")[0] == 202
    assert wait_until(
        lambda: (
            ledger_rows(tmp_path, "SELECT outcome FROM forge_deliveries WHERE delivery = 'task-2'")
            not in ([], [("",)])
        ),  # acted on: "ignored: #1 already has a run"
        timeout=30,
    )
    assert len(tasks(tmp_path)) == 1

    line = f"Task `#{task_id}`: no projection: no finished task of its kind yet · actual"
    assert wait_until(lambda: tasks(tmp_path)[0][6] == "review", timeout=60), tasks(tmp_path)
    [status] = bot_comments(github, SLUG, issue, BOT_LOGIN)
    [pull] = github.pulls(str(SLUG))
    assert line in status and f"**Task** `#{task_id}`: no projection" in (pull.body or "")
    # (The pull request's title is the issue's, plain text on GitHub's page.)
    posted = [status, pull.body or "", *bot_comments(github, SLUG, pull.number, BOT_LOGIN)]
    for text in posted:
        for live in LIVE:
            assert live not in text, (live, text)
    assert wait_until(lambda: f"Task #{task_id}: no projection" in bot.stdout, timeout=30), (
        bot.stdout
    )  # the run's summary in chat

    # Merged: the task is done, its actual the usage metered while its runs went.
    github.merge_pull(str(SLUG), pull.number, by=WRITER)
    closed = github_pull(
        "closed", repo=SLUG, number=pull.number, sender=WRITER, head="fw/coder/issue-1",
        merged=True,
    )  # fmt: skip
    assert deliver(port, closed, "task-3")[0] == 202
    assert wait_until(lambda: tasks(tmp_path)[0][6] == "done", timeout=60), tasks(tmp_path)
    done = tasks(tmp_path)[0]
    [(metered,)] = ledger_rows(tmp_path, f"SELECT SUM({_TOKENS}) FROM usage WHERE agent = 'coder'")
    assert metered > 0 and done[9] == metered
    assert done[10] == f"https://github.com/{SLUG}/pull/{pull.number}"
    assert wait_until(
        lambda: (
            f"actual {metered:,} tokens" in bot_comments(github, SLUG, issue, BOT_LOGIN)[0]
            or f"({metered:,} tokens)" in bot_comments(github, SLUG, issue, BOT_LOGIN)[0]
        ),
        timeout=30,
    )

    # The next issue's task is projected from this one, and says so on its issue.
    second = github.add_issue(
        str(SLUG), "More notes", "", author=WRITER, labels=["fleetwarden:coder"]
    )
    more = github_issue(
        "labeled", repo=SLUG, number=second, sender=WRITER, author=WRITER, title="More notes",
        body="", label="fleetwarden:coder",
    )  # fmt: skip
    assert deliver(port, more, "task-4")[0] == 202
    assert wait_until(lambda: len(tasks(tmp_path)) == 2, timeout=60), bot.stdout + bot.stderr
    projected = tasks(tmp_path)[1]
    assert projected[7] == "agent coder · runtime claude · repository app"
    assert projected[8] == float(metered)
    said = (
        f"Task `#{projected[0]}`: projected {metered:,} tokens (p90 {metered:,}) from 1 past "
        "task (agent coder · runtime claude · repository app) · actual so far"
    )
    assert wait_until(
        lambda: any(said in c for c in bot_comments(github, SLUG, second, BOT_LOGIN)), timeout=30
    ), bot_comments(github, SLUG, second, BOT_LOGIN)
    bot.close()
