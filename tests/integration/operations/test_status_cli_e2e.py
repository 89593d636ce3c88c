"""``fleetwarden status`` against the real ``fleetwarden run`` with a forge run going (a
polled forge: the strict fake GitHub, an upstream served by ``git http-backend``), read
from a shell that holds none of the config's secrets: the fleet with its forge runs, one
agent in detail, the tasks and the cost per merged change as tables (and as JSON), and an
unknown name answered with the name it was likely meant to be.
The issue's title is hostile (an escape sequence, a bidi override): it is shown as text.
Without a config, `status` says none was read and how to pass it."""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env, wait_until
from tests.integration.forge_rig import APP_ON_GITHUB, ledger_rows, listening
from tests.integration.runtimes.test_readable_agents import agent_path
from tests.postgres_server import free_port

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_statusUpstreamTokenNoAgentHolds123456"
TITLE = "Fix \x1b[31mred\x1b[0m \u202eexe.txt login"
CONFIG = (
    APP_ON_GITHUB.replace("    login: {login}\n", "    login: {login}\n    poll_seconds: 30\n")
    + """\
agents:
  - name: sleeper
    runtime: command
    repo: app
    argv: [sh, -c, "sleep 600"]
"""
)


def _status(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``fleetwarden status ARGS`` from a shell with none of the config's secrets."""
    return subprocess.run(
        [str(FLEETWARDEN), "status", *args, "--config", str(config)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _hidden(text: str) -> list[str]:
    return [c for c in text if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf")]


def test_status_reads_the_fleet_its_forge_runs_and_one_agent_without_the_secrets(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub
) -> None:
    """With the repository's and the forge's token and the webhook secret unset in the
    reader's shell: `status` lists the agents and the forge run (issue, agent, state, the
    hostile title as code points); `status sleeper` shows the agent with its forge run;
    `status sleepr` and `status agent sleepr` say there is no such agent and name
    `sleeper`, not the API's path (exit 1)."""
    given = github.add_issue(str(SLUG), TITLE, author=WRITER)
    github.label(str(SLUG), given, "fleetwarden:sleeper", by=WRITER)
    port = free_port()
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        CONFIG.format(port=port, api=github.api_url, login=BOT_LOGIN, url=upstream.url("app"))
    )
    env = clean_env(
        PATH=agent_path(),
        APP_TOKEN=TOKEN,
        FORGE_TOKEN=DEFAULT_PAT,
        FORGE_HOOK_SECRET="hook-secret-0123456789abcdef",
    )
    bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
    try:
        assert wait_until(lambda: listening(port) or bot.proc.poll() is not None, timeout=60)
        assert bot.proc.poll() is None, bot.stderr
        working = "SELECT state FROM forge_runs WHERE issue = ?"
        assert wait_until(lambda: ledger_rows(tmp_path, working, given) == [("working",)], 60)

        fleet = _status(tmp_path, config)
        assert fleet.returncode == 0, fleet.stderr
        assert _hidden(fleet.stdout) == []
        [run] = [line for line in fleet.stdout.splitlines() if line.startswith(f"acme/app#{given}")]
        assert run.split()[1:3] == ["sleeper", "working"]
        assert "[U+001B][31mred[U+001B][0m [U+202E]exe.txt login" in run
        assert "1 forge run:" in fleet.stdout

        one = _status(tmp_path, config, "sleeper")
        assert one.returncode == 0, one.stderr
        assert one.stdout.startswith("sleeper on local\n"), one.stdout
        assert f"forge run  acme/app#{given} working" in one.stdout
        assert "branch" in one.stdout and _hidden(one.stdout) == []

        for asked in (["sleepr"], ["agent", "sleepr"]):
            typo = _status(tmp_path, config, *asked)
            assert typo.returncode == 1
            assert "no agent is called 'sleepr' — did you mean 'sleeper'?" in typo.stderr
            assert "/api/" not in typo.stderr and "404" not in typo.stderr

        as_json = _status(tmp_path, config, "agent", "sleeper", "--json")
        assert json.loads(as_json.stdout)["agent"]["name"] == "sleeper"

        tasks = _status(tmp_path, config, "tasks")  # a table, the forge issue's task in it
        assert tasks.returncode == 0, tasks.stderr
        assert tasks.stdout.startswith("1 tasks, 1 open (1 working)\n"), tasks.stdout
        [task] = [line for line in tasks.stdout.splitlines() if line.startswith("#1 ")]
        assert "working" in task and "sleeper" in task and _hidden(tasks.stdout) == []
        tasks_json = json.loads(_status(tmp_path, config, "tasks", "--json").stdout)
        assert [t["state"] for t in tasks_json["tasks"]] == ["working"]
        changes = _status(tmp_path, config, "changes")  # as `report changes` says it
        assert changes.returncode == 0, changes.stderr
        assert changes.stdout.startswith("Cost per merged change in the last 30d"), changes.stdout
        [row] = [line for line in changes.stdout.splitlines() if line.startswith("sleeper")]
        assert row.split()[:2] == ["sleeper", "command"]
        changes_json = json.loads(_status(tmp_path, config, "changes", "--json").stdout)
        assert changes_json["days"] == 30 and changes_json["rows"][0]["agent"] == "sleeper"
        bot.send("quit")
        assert bot.wait(timeout=60) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()


def test_status_without_a_config_says_none_was_read_and_how_to_pass_it(tmp_path: Path) -> None:
    """Run with no --config and no FLEETWARDEN_CONFIG: the fleet's status asks the control
    socket (nothing running: exit 3, saying no config was read); an agent's, which reads a
    dashboard, says none was read and how to pass one (exit 2)."""

    def status(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FLEETWARDEN), "status", *words],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    fleet = status()
    assert fleet.returncode == 3, fleet
    assert "no config was read, so status asked the control socket" in fleet.stderr
    done = status("agent", "demo")
    assert done.returncode == 2, done
    assert done.stderr.startswith("fleetwarden status: no config file was read"), done.stderr
    assert "fleetwarden status --config PATH" in done.stderr
    assert "FLEETWARDEN_CONFIG" in done.stderr
