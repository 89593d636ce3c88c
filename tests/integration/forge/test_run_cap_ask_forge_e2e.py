"""A forge run's ask at its cap answered by a comment on its issue, end to end: the real
``fleetwarden run`` with the strict fake GitHub (held to GitHub's OpenAPI description), a
real git upstream, a stub agent asking a model through the real metering proxy and the fake
provider. At its cap the run is paused and asked; its status comment says so; a comment by
someone allowed mentioning the bot, ``raise +$1``, raises the cap and thaws the run,
answered on the issue and never sent to the agent; a stranger's ``stop`` does nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.background import fake_provider_thread
from tests.fakes.github_api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.fakes.provider import FAKE_KEY, FakeProvider, Turn, Usage
from tests.fakes.webhook_sender import github_comment, github_delivery, github_issue
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge_rig import (
    APP_ON_GITHUB,
    bot_comments,
    command_bot_on_github,
    ledger_rows,
    post,
)

pytestmark = pytest.mark.integration

TOKEN = "ghp_capAskUpstreamTokenNoAgentHolds1234567"  # the git upstream's
SECRET = b"cap-ask-webhook-secret-0123456789abcdef"
WRITER, STRANGER = "ann", "mallory"
MODEL = "claude-sonnet-4-5"
CONFIG = (
    APP_ON_GITHUB
    + f"""\
providers:
  anthropic:
    upstream: {{provider}}
prices:
  {MODEL}: {{{{input: 3.0, output: 15.0}}}}
agents:
  - name: coder
    runtime: stub
    model: {MODEL}
    repo: app
    secret_env: [ANTHROPIC_API_KEY]
    run_budget: {{{{max_usd: 0.30, cutoff: ask, ask_within: 30m, offer_usd: 1}}}}
"""
)
# 30 000 tokens and $0.21 a request (20 000 in at $3/M, 10 000 out at $15/M).
USAGE = Usage(input=20_000, output=10_000)


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with fake_provider_thread(default=Turn(text="spent", usage=USAGE)) as fake:
        yield fake


@pytest.fixture
def bot(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub, provider: FakeProvider
) -> Iterator[tuple[ConsoleBot, int]]:
    """The real ``fleetwarden run`` on :data:`CONFIG`, listening; killed if a test failed."""
    tokens = {
        "APP_TOKEN": TOKEN,
        "FORGE_TOKEN": DEFAULT_PAT,
        "FORGE_HOOK_SECRET": SECRET.decode(),
        "ANTHROPIC_API_KEY": FAKE_KEY,
    }
    config = CONFIG.replace("{provider}", provider.base_url)
    with command_bot_on_github(tmp_path, config, "", upstream, github, tokens) as running:
        yield running


def status_comment(github: FakeGitHub, issue: int) -> str:
    comments = bot_comments(github, SLUG, issue, BOT_LOGIN)
    return comments[0] if comments else ""


def test_a_comment_on_the_issue_raises_a_forge_runs_cap_and_thaws_it(
    tmp_path: Path,
    github: FakeGitHub,
    provider: FakeProvider,
    bot: tuple[ConsoleBot, int],
) -> None:
    """Two requests served, the third held: paused and asked, the status comment says
    so, and a comment says how to answer; a stranger's `@bot stop` is ignored; the writer's
    `@bot raise +$1` raises the cap to $1.30, is answered on the issue, and the run is
    served past its old cap."""
    console, port = bot
    issue = github.add_issue(str(SLUG), "Write the release notes", "Say when.",
                             author=WRITER, labels=["fleetwarden:coder"])  # fmt: skip
    labelled = github_issue(
        "labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
        label="fleetwarden:coder",
    )  # fmt: skip
    assert post(port, "gh", *github_delivery(*labelled, secret=SECRET))[0] == 202
    console.expect(r"stub: waiting for input", timeout=60)
    console.command("send coder ask 3", r"💸 Spend (\w+) — coder reached its \$0\.30 cap", 60)
    asking = "💸 Paused at its cap, asking for more."
    assert wait_until(lambda: asking in status_comment(github, issue), timeout=60), status_comment(
        github, issue
    )

    def said(words: str) -> bool:
        return any(words in c for c in bot_comments(github, SLUG, issue, BOT_LOGIN))

    assert wait_until(lambda: said("**coder** reached its run's cap and is paused"), timeout=30)
    assert f"mentioning @{BOT_LOGIN} that says only `raise`" in "".join(
        bot_comments(github, SLUG, issue, BOT_LOGIN)
    )

    def comment(sender: str, body: str) -> int:
        made = github.add_comment(str(SLUG), issue, body, author=sender)
        said = github_comment(repo=SLUG, number=issue, sender=sender, body=body, comment_id=made)
        return post(port, "gh", *github_delivery(*said, secret=SECRET))[0]

    assert comment(STRANGER, f"@{BOT_LOGIN} stop") == 202
    assert comment(WRITER, f"@{BOT_LOGIN} raise +$1") == 202
    raised = "Raised **coder**'s cap by $1.00"
    assert wait_until(lambda: said(raised), timeout=60), bot_comments(
        github, SLUG, issue, BOT_LOGIN
    )
    rows = ledger_rows(tmp_path, "SELECT outcome, amount, settled_by FROM spend_asks")
    assert rows == [("raised", 1.0, f"@{WRITER} on gh")]
    console.command("ps", r"coder\s+stub / \S+\s+running")
    console.command("send coder ask 1", r"answer 1/1: spent", timeout=30)
    assert len(provider.requests) == 4  # the request held at the cap, then one more
    assert "raise +$1" not in console.stdout  # never sent to the agent
    outcomes = ledger_rows(tmp_path, "SELECT outcome FROM forge_deliveries ORDER BY rowid")
    assert any(f"@{STRANGER}" in str(row[0]) for row in outcomes), outcomes
    assert console.close() == 0
