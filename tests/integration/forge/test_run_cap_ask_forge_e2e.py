"""A forge run's ask at its cap answered by a comment on its issue, end to end on every forge
kind — GitHub and Gitea, each a strict fake held to its own published API description —
through the real ``fleetwarden run``, a real git upstream, a stub agent asking a model
through the real metering proxy and the fake provider. At its cap the run is paused and
asked; its status comment says so; a comment by someone allowed mentioning the bot,
``raise +$1``, raises the cap and thaws the run, answered on the issue and never sent to the
agent; a stranger's ``stop`` does nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import FAKE_KEY, FakeProvider, Turn, Usage
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge.kinds import Forge
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
LABEL = "fleetwarden:coder"
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
def run_cap_ask_forge_e2e_provider() -> Iterator[FakeProvider]:
    with fake_provider_thread(default=Turn(text="spent", usage=USAGE)) as fake:
        yield fake


@pytest.fixture
def run_cap_ask_forge_e2e_bot(
    tmp_path: Path,
    upstream: GitUpstream,
    forge_kind: Forge,
    run_cap_ask_forge_e2e_provider: FakeProvider,
) -> Iterator[tuple[ConsoleBot, int]]:
    """The real ``fleetwarden run`` on :data:`CONFIG` with ``forge_kind``, listening; killed
    if a test failed."""
    tokens = {
        "APP_TOKEN": TOKEN,
        "FORGE_TOKEN": forge_kind.pat,
        "FORGE_HOOK_SECRET": SECRET.decode(),
        "ANTHROPIC_API_KEY": FAKE_KEY,
    }
    config = forge_kind.config(
        CONFIG.replace("{provider}", run_cap_ask_forge_e2e_provider.base_url)
    )
    with command_bot_on_github(
        tmp_path, config, "", upstream, forge_kind.fake, tokens, login=forge_kind.login
    ) as running:
        yield running


def status_comment(forge: Forge, issue: int) -> str:
    comments = bot_comments(forge.fake, SLUG, issue, forge.login)
    return comments[0] if comments else ""


def test_a_comment_on_the_issue_raises_a_forge_runs_cap_and_thaws_it(
    tmp_path: Path,
    forge_kind: Forge,
    run_cap_ask_forge_e2e_provider: FakeProvider,
    run_cap_ask_forge_e2e_bot: tuple[ConsoleBot, int],
) -> None:
    """Two requests served, the third held: paused and asked, the status comment says
    so, and a comment says how to answer; a stranger's `@bot stop` is ignored; the writer's
    `@bot raise +$1` raises the cap to $1.30, is answered on the issue, and the run is
    served past its old cap."""
    (console, port), forge = run_cap_ask_forge_e2e_bot, forge_kind
    login = forge.login
    forge.meets(STRANGER)
    issue = forge.fake.add_issue(str(SLUG), "Write the release notes", "Say when.",
                                 author=WRITER, labels=[LABEL])  # fmt: skip
    assert post(port, forge.name, *forge.labelled(issue, LABEL, SECRET))[0] == 202
    console.expect(r"stub: waiting for input", timeout=60)
    console.command("send coder ask 3", r"💸 Spend (\w+) — coder reached its \$0\.30 cap", 60)
    asking = "💸 Paused at its cap, asking for more."
    assert wait_until(lambda: asking in status_comment(forge, issue), timeout=60), status_comment(
        forge, issue
    )

    def said(words: str) -> bool:
        return any(words in c for c in bot_comments(forge.fake, SLUG, issue, login))

    assert wait_until(lambda: said("**coder** reached its run's cap and is paused"), timeout=30)
    assert f"mentioning @{login} that says only `raise`" in "".join(
        bot_comments(forge.fake, SLUG, issue, login)
    )

    def comment(sender: str, body: str) -> int:
        return post(port, forge.name, *forge.commented(issue, sender, body, SECRET))[0]

    assert comment(STRANGER, f"@{login} stop") == 202
    assert comment(WRITER, f"@{login} raise +$1") == 202
    raised = "Raised **coder**'s cap by $1.00"
    assert wait_until(lambda: said(raised), timeout=60), bot_comments(
        forge.fake, SLUG, issue, login
    )
    rows = ledger_rows(tmp_path, "SELECT outcome, amount, settled_by FROM spend_asks")
    assert rows == [("raised", 1.0, f"@{WRITER} on {forge.name}")]
    console.command("ps", r"coder\s+stub / \S+\s+running")
    console.command("send coder ask 1", r"answer 1/1: spent", timeout=30)
    assert (
        len(run_cap_ask_forge_e2e_provider.requests) == 4
    )  # the request held at the cap, then one more
    assert "raise +$1" not in console.stdout  # never sent to the agent
    outcomes = ledger_rows(tmp_path, "SELECT outcome FROM forge_deliveries ORDER BY rowid")
    assert any(f"@{STRANGER}" in str(row[0]) for row in outcomes), outcomes
    assert console.close() == 0
