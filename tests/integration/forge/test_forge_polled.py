"""A forge that cannot reach Fleetwarden is read instead, end to end, through the real
``fleetwarden run`` on every forge kind — GitHub and Gitea, each a strict fake held to its
own published API description: no webhook secret, ``poll_seconds: 30`` (its least). An
issue a writer labels ``fleetwarden:sleeper`` becomes a run in its sandbox on its own
branch, with one status comment; the same label given by a stranger starts nothing; the issue closed
stops the run. No webhook route is served for the forge: a delivery gets 404."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, clean_env, wait_until
from tests.integration.forge.kinds import Forge
from tests.integration.forge_rig import bot_comments, ledger_rows, listening, post
from tests.integration.operations.test_build_e2e import checkout_build
from tests.integration.runtimes.test_readable_agents import agent_path
from tests.postgres_server import free_port

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_polledUpstreamTokenNoAgentHolds12345"  # the git upstream's
SECRET = b"never-configured-secret-0123456789"
STRANGER = "eve"
LABEL = "fleetwarden:sleeper"
CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
dashboard:
  listen: 127.0.0.1:{port}
forges:
  gh:
    kind: github
    api_url: {api}
    token_env: FORGE_TOKEN
    login: {login}
    poll_seconds: 30
repos:
  app:
    url: {url}
    token_env: APP_TOKEN
    forge: gh
    forge_repo: acme/app
agents:
  - name: sleeper
    runtime: command
    repo: app
    argv: [sh, -c, "sleep 600"]
"""


def runs(tmp_path: Path) -> list[tuple[int, str, str | None]]:
    """(issue, state, ended_at) of every forge run, oldest first."""
    rows = ledger_rows(tmp_path, "SELECT issue, state, ended_at FROM forge_runs ORDER BY id")
    return [(int(issue), str(state), ended) for issue, state, ended in rows]


# A GitLab's events come by webhook only: its config refuses poll_seconds.
@pytest.mark.parametrize("forge_kind", ["github", "gitea"], indirect=True)
def test_a_polled_forge_starts_a_run_for_a_labelled_issue_and_stops_it_when_closed(
    tmp_path: Path, upstream: GitUpstream, forge_kind: Forge
) -> None:
    """Polled, each forge kind starts a writer's labelled issue (not a stranger's), takes
    no webhook, and stops the run when the issue is closed."""
    forge, fake = forge_kind, forge_kind.fake
    forge.meets(STRANGER)
    by_stranger = fake.add_issue(str(SLUG), "Not theirs to give", author=STRANGER)
    forge.label(by_stranger, LABEL, by=STRANGER)
    given = fake.add_issue(str(SLUG), "Make it sleep", author=WRITER)
    forge.label(given, LABEL, by=WRITER)
    port = free_port()
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        forge.config(CONFIG).format(
            port=port, api=fake.api_url, login=forge.login, url=upstream.url("app")
        )
    )
    env = clean_env(PATH=agent_path(), APP_TOKEN=TOKEN, FORGE_TOKEN=forge.pat)
    bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
    checkout = tmp_path / "state" / "checkouts" / "app" / "sleeper-1"
    try:
        assert wait_until(lambda: listening(port) or bot.proc.poll() is not None, timeout=60)
        assert bot.proc.poll() is None, bot.stderr
        assert wait_until(lambda: runs(tmp_path)[:1] == [(given, "working", None)], timeout=60), (
            runs(tmp_path),
            bot.stderr,
        )
        assert wait_until(checkout.is_dir, timeout=30)
        assert wait_until(lambda: bot_comments(fake, SLUG, given, forge.login), timeout=30)
        [status] = bot_comments(fake, SLUG, given, forge.login)
        assert "sleeper" in status
        assert f"- **Fleetwarden** {checkout_build()}\n" in status  # its footer names the build
        assert bot_comments(fake, SLUG, by_stranger, forge.login) == []
        # No secret: the forge takes no webhooks, whatever a sender signs.
        headers, body = forge.labelled(given, LABEL, SECRET)
        assert post(port, forge.name, headers, body)[0] == 404

        fake.close_issue(str(SLUG), given)  # seen at the next round, 30 s on
        assert wait_until(lambda: runs(tmp_path)[0][2] is not None, timeout=90), runs(tmp_path)
        assert [(issue, state) for issue, state, _ in runs(tmp_path)] == [(given, "stopped")]
        bot.command("ps", r"(?m)^sleeper +\S+ +stopped", timeout=60)
        bot.send("quit")
        assert bot.wait(timeout=60) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
