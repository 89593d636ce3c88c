"""Nothing fails silently at start: a roster agent that cannot start at boot is posted to
chat with why and the fix, through the real `fleetwarden run` console."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.console_bot import ROSTER_HEAD, ConsoleBot, clean_env

pytestmark = pytest.mark.integration

SYSTEM_PATH = "/usr/bin:/bin"
ROSTER = (
    ROSTER_HEAD.format()
    + "  - name: coder\n    runtime: claude\n    prompt: fix the tests\n    autostart: true\n"
    + "    sandbox: none\n"
)


@pytest.mark.skipif(shutil.which("claude", path=SYSTEM_PATH) is not None, reason="claude here")
def test_autostart_agent_with_missing_cli_is_posted_with_its_fix(tmp_path: Path) -> None:
    """An autostart agent whose CLI is not installed: the console gets a line naming the
    agent, why it did not start, and the command that installs the CLI."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(ROSTER)
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(PATH=SYSTEM_PATH))
    try:
        said = bot.expect(r"Agent coder could not start at autostart: .*").group(0)
        assert "claude is not installed" in said
        assert "npm install -g @anthropic-ai/claude-code" in said
        assert bot.close() == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
