"""A forge issue given to an agent is a task, end to end through the real ``fleetwarden
run``, the real Claude Code against the strict fake provider and a real git upstream, on
every forge kind — GitHub and Gitea, each a strict fake held to its own published API
description: the issue labelled ``fleetwarden:coder`` makes one task (its source the
forge, its reference the issue's address, its projection stored as it is made) whose run is
bound to it through the admission; the status comment, the pull request's footer and the
run's summary in chat show the task's projection beside its actual; the same delivery sent
again, and the same event under a new delivery, make no second task; the pull request merged
ends the task ``done``, its actual the metered usage of its runs to the token, and the next
issue's task is projected from it. The issue's title is hostile: nothing Fleetwarden posts
carries it live (on GitHub's page, or Gitea's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, Turn
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge.kinds import Forge
from tests.integration.forge_rig import (
    E2E_KEY,
    bash,
    bot_comments,
    ledger_rows,
    listening,
    post,
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
"""What of the title would be live on the forge's page, were it posted as written."""
_TOKENS = "input_tokens + output_tokens + cache_read_tokens + cache_write_tokens"
LABEL = "fleetwarden:coder"


def tasks(tmp_path: Path) -> list[tuple[object, ...]]:
    return ledger_rows(
        tmp_path,
        "SELECT id, title, body, source, source_ref, forge_run, state, basis,"
        " projected_median_tokens, actual_tokens, pull_url, agent, repo FROM tasks ORDER BY id",
    )


def test_a_forge_issue_is_one_task_whose_spend_shows_on_its_artifacts(
    tmp_path: Path, upstream: GitUpstream, forge_kind: Forge
) -> None:
    """On each forge kind an issue is one task, projected and then actual on its status
    comment, its pull request and in chat, and the next issue's is projected from it."""
    cli("claude")
    checkout = tmp_path / "state" / "checkouts" / "app" / "coder-1"
    turns = (
        write(checkout / "NOTES.md", "shipped on Friday\n"),
        bash('fw-forge done ok "Wrote the notes."'),
        Turn(text="Done: the notes are written."),
    )
    forge = forge_kind
    issue = forge.fake.add_issue(str(SLUG), TITLE, BODY, author=WRITER, labels=[LABEL])
    tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": forge.pat, "FORGE_HOOK_SECRET": SECRET.decode()}
    accept = Accepted(api_keys=frozenset({E2E_KEY}))
    with fake_provider_thread(*turns, default=Turn(text="(no more turns)"), accept=accept) as llm:
        bot, port = start_e2e_bot(
            tmp_path, forge=forge.name, kind=forge.kind, api=forge.fake.api_url,
            provider=llm.base_url, login=forge.login, url=upstream.url("app"), tokens=tokens,
        )  # fmt: skip
        try:
            run_the_issue(tmp_path, bot, port, forge, issue)
        finally:
            if bot.proc.poll() is None:
                bot.kill()


def run_the_issue(tmp_path: Path, bot: ConsoleBot, port: int, forge: Forge, issue: int) -> None:
    fake, login = forge.fake, forge.login

    def deliver(headers_and_body: tuple[dict[str, str], bytes]) -> tuple[int, str]:
        return post(port, forge.name, *headers_and_body)

    assert wait_until(lambda: listening(port), timeout=60), bot.stderr
    labeled = forge.labelled(issue, LABEL, SECRET, delivery="task-1", title=TITLE, body=BODY)
    assert deliver(labeled)[0] == 202
    assert deliver(labeled) == (200, "already had it")
    assert wait_until(lambda: len(fake.pulls(str(SLUG))) == 1, timeout=180), bot.stdout + bot.stderr
    [made] = tasks(tmp_path)
    task_id, title, body, source, ref, forge_run, _, basis, projected, *_ = made
    assert (title, body, source) == (TITLE, BODY, "forge")
    assert ref == forge.issue_url(issue)
    assert (basis, projected) == ("no finished task yet", None)  # stored: none finished before
    [(run_key,)] = ledger_rows(tmp_path, "SELECT id FROM forge_runs")
    assert forge_run == run_key
    bound = ledger_rows(tmp_path, "SELECT run_id FROM task_runs WHERE task_id = ?", task_id)
    assert len(bound) == 1  # its run, bound through the admission as it started

    # The same label again under a new delivery (a poll, a replay): no second task.
    later = datetime.now(UTC) + timedelta(seconds=1)
    again = forge.labelled(
        issue, LABEL, SECRET, delivery="task-2", title=TITLE, body=BODY, at=later
    )
    assert deliver(again)[0] == 202
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
    [status] = bot_comments(fake, SLUG, issue, login)
    [pull] = fake.pulls(str(SLUG))
    assert line in status and f"**Task** `#{task_id}`: no projection" in (pull.body or "")
    # (The pull request's title is the issue's, plain text on the forge's page.)
    posted = [status, pull.body or "", *bot_comments(fake, SLUG, pull.number, login)]
    for text in posted:
        for live in LIVE:
            assert live not in text, (live, text)
    assert wait_until(lambda: f"Task #{task_id}: no projection" in bot.stdout, timeout=30), (
        bot.stdout
    )  # the run's summary in chat

    # Merged: the task is done, its actual the usage metered while its runs went.
    assert deliver(forge.merged(pull.number, "fw/coder/issue-1", SECRET))[0] == 202
    assert wait_until(lambda: tasks(tmp_path)[0][6] == "done", timeout=60), tasks(tmp_path)
    done = tasks(tmp_path)[0]
    [(metered,)] = ledger_rows(tmp_path, f"SELECT SUM({_TOKENS}) FROM usage WHERE agent = 'coder'")
    assert metered > 0 and done[9] == metered
    assert done[10] == forge.pull_url(pull.number)
    assert wait_until(
        lambda: (
            f"actual {metered:,} tokens" in bot_comments(fake, SLUG, issue, login)[0]
            or f"({metered:,} tokens)" in bot_comments(fake, SLUG, issue, login)[0]
        ),
        timeout=30,
    )

    # The next issue's task is projected from this one, and says so on its issue.
    second = fake.add_issue(str(SLUG), "More notes", "", author=WRITER, labels=[LABEL])
    more = forge.labelled(second, LABEL, SECRET, delivery="task-4", title="More notes", body="")
    assert deliver(more)[0] == 202
    assert wait_until(lambda: len(tasks(tmp_path)) == 2, timeout=60), bot.stdout + bot.stderr
    projected = tasks(tmp_path)[1]
    assert projected[7] == "agent coder · runtime claude · repository app"
    assert projected[8] == float(metered)
    said = (
        f"Task `#{projected[0]}`: projected {metered:,} tokens (p90 {metered:,}) from 1 past "
        "task (agent coder · runtime claude · repository app) · actual so far"
    )
    assert wait_until(
        lambda: any(said in c for c in bot_comments(fake, SLUG, second, login)), timeout=30
    ), bot_comments(fake, SLUG, second, login)
    bot.close()
