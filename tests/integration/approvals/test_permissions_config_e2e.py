"""The permission policy's configuration through the real `fleetwarden` command:
`check-config` refuses `full` without a sandbox and a bad rule, naming the agent and the
fix, and shows each agent's mode; the console refuses `spawn --permissions full` of an
unsandboxed agent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, ROSTER_HEAD, ConsoleBot, clean_env

pytestmark = pytest.mark.integration


def check_config(tmp_path: Path, agents: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(ROSTER_HEAD.format() + agents)
    return subprocess.run(
        [str(FLEETWARDEN), "check-config", "--config", str(config)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_refuses_full_without_a_sandbox_and_bad_rules(tmp_path: Path) -> None:
    """Exit 2, the problem on its line, naming the agent and what to do instead."""
    done = check_config(tmp_path, "  - name: loose\n    sandbox: none\n    permissions: full\n")
    assert done.returncode == 2, done
    said = done.stderr
    assert "fleetwarden.yaml:7: agents[0]: agent 'loose' has permissions `full` but no " in said
    assert "Give it `sandbox: bwrap`, or a mode that asks (`edits` or `ask`)" in said
    done = check_config(tmp_path, "  - name: picky\n    allow: ['Bash(git *']\n")
    assert done.returncode == 2, done
    assert "fleetwarden.yaml:8: agents[0].allow[0]: 'Bash(git *' is not a rule" in done.stderr


def test_check_config_shows_each_agents_mode(tmp_path: Path) -> None:
    """A good policy passes; the summary shows the modes, defaults included."""
    done = check_config(
        tmp_path,
        "  - name: coder\n    allow: ['Bash(npm test)']\n    approval_timeout: 45m\n"
        "  - name: loose\n    sandbox: none\n  - name: boss\n    permissions: full\n",
    )
    assert done.returncode == 0, done
    assert "permissions: coder edits, loose ask, boss full" in done.stdout


def test_spawn_full_of_an_unsandboxed_agent_is_refused_at_the_console(tmp_path: Path) -> None:
    """`spawn loose --permissions full` starts nothing and says why; without the flag the
    agent starts in its default mode, `ask`."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(ROSTER_HEAD.format() + "  - name: loose\n    sandbox: none\n")
    bot = ConsoleBot(tmp_path, "--config", str(config))
    try:
        bot.command(
            "spawn loose --permissions full",
            r"loose has permissions `?full`? but no sandbox .*a mode that asks",
        )
        bot.command("ps", r"No agents yet")
        bot.command("spawn loose --permissions yolo", r"must be one of ask, edits, full")
        bot.command("spawn loose", r"Agent loose started")
        bot.command("stop loose", r"Stopped loose")
        assert bot.close() == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
