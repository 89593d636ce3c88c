"""A repository's ``copy`` through the real ``fleetwarden run`` and its console, with real
git: what is in ``copy_from`` is copied into the run's checkout, and a path of ``copy``
that is not there is said in the run's summary, never skipped in silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import served_app
from tests.integration.components import app_head
from tests.integration.console_bot import ConsoleBot, clean_env

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_copyUpstreamTokenNoAgentHolds0123456789"
CONFIG = (
    app_head("{app}")
    + """\
    copy_from: ./fixtures
    copy: [.env.example, .env.local]
agents:
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, "cat .env.example > seen.txt"]
"""
)


def test_a_copy_path_missing_from_copy_from_is_said_in_the_summary(tmp_path: Path) -> None:
    """`.env.example` is copied in (the agent reads it); `.env.local`, not in copy_from,
    is named in the run's summary as not copied."""
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / ".env.example").write_text("A=1\n")
    with served_app(tmp_path / "upstream", TOKEN) as upstream:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(CONFIG.format(app=upstream.url("app")))
        env = clean_env(APP_TOKEN=TOKEN)
        with ConsoleBot(tmp_path, "--config", str(config), env=env) as bot:
            bot.command("spawn coder", r"Agent coder started")
            bot.expect(r"Branch\W+fw/coder/\d+ of \W*app\W*: 1 commit", timeout=60)
            bot.expect(r"Copied into the checkout: \S*\.env\.example")
            bot.expect(r"Not copied into the checkout: \S*\.env\.local not found in copy\S*from")
            bot.command("diff coder", r"\+A=1")
            assert bot.close() == 0
