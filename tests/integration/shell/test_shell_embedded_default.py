"""The shell on the Quick start: `bash run.sh` runs `fleetwarden run` on its embedded
default (no config), and a second process of the state dir's owner commands it with
`fleetwarden ps --json`, `status`, `spawn` and `stop` as its local admin; a config that
names no `shell:` is answered with the lines to add to that very file."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.console_bot import (
    FLEETWARDEN,
    ROSTER_HEAD,
    ConsoleBot,
    clean_env,
    wait_until,
)
from tests.integration.operations.test_quick_start import RUN_SH, made_venv

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]


def shell(cwd: Path, *words: str) -> subprocess.CompletedProcess[str]:
    """``fleetwarden WORDS`` typed in another shell in ``cwd``, no config named."""
    return subprocess.run(
        [str(FLEETWARDEN), *words],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def answer(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """The one JSON object ``--json`` printed, after a zero exit status."""
    assert done.returncode == 0, done.stdout + done.stderr
    parsed = json.loads(done.stdout)
    assert isinstance(parsed, dict)
    return parsed


def agents(cwd: Path) -> dict[str, str]:
    """Each agent's state, as `fleetwarden ps --json` says it."""
    data = answer(shell(cwd, "ps", "--json"))["data"]
    assert isinstance(data, dict)
    return {row["name"]: row["state"] for row in data["agents"]}


@pytest.fixture
def quick_start(tmp_path: Path) -> Iterator[ConsoleBot]:
    """`bash run.sh` in ``tmp_path`` (its venv made beforehand), its control socket up."""
    env = clean_env(FLEETWARDEN_VENV=str(made_venv(tmp_path)))
    prefix = ["/bin/bash", "-c", 'exec bash "$0"', str(RUN_SH)]
    with ConsoleBot(tmp_path, env=env, prefix=prefix) as bot:
        socket = tmp_path / ".fleetwarden" / "control.sock"
        assert wait_until(socket.exists, 60), bot.stderr
        yield bot


def test_the_quick_start_is_commanded_from_a_second_shell(
    tmp_path: Path, quick_start: ConsoleBot
) -> None:
    """ps --json, status, spawn and stop from another process answer on run.sh's default."""
    first = answer(shell(tmp_path, "ps", "--json"))
    assert (first["command"], first["ok"], first["outcome"]) == ("ps", True, "ok")
    assert agents(tmp_path) == {}

    status = shell(tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert "console up" in status.stdout
    assert "No agents yet" in status.stdout

    spawned = answer(shell(tmp_path, "spawn", "demo", "--prompt", "count to 3", "--json"))
    data = spawned["data"]
    assert isinstance(data, dict)
    assert (data["agent"], data["started"]) == ("demo", True)
    assert agents(tmp_path)["demo"] in ("running", "idle")  # idle once it said "done"

    stopped = answer(shell(tmp_path, "stop", "demo", "--json"))
    assert (stopped["command"], stopped["ok"]) == ("stop", True)
    assert agents(tmp_path)["demo"] == "stopped"
    quick_start.command("ps", r"demo\s+stub\s+stopped")
    assert quick_start.quit() == 0


def test_a_config_without_shell_says_what_to_add_to_which_file(tmp_path: Path) -> None:
    """A config naming no `shell:` is answered with its own path, the exact YAML to add
    (an operator for the shell, `shell: {as: ID}`) and to restart; nothing runs."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        ROSTER_HEAD.format()
        + "  - name: sleeper\n    runtime: command\n    argv: [sleep, '600']\n"
        + "operators:\n  - {id: '@ops:example.org', role: operator, connector: console}\n"
    )
    with ConsoleBot(tmp_path, "--config", str(config)) as bot:
        assert wait_until((tmp_path / "state" / "control.sock").exists, 60), bot.stderr
        done = shell(tmp_path, "spawn", "sleeper", "--json", "--config", str(config))
        assert done.returncode == 1, done.stdout + done.stderr
        said = json.loads(done.stdout)
        assert said["outcome"] == "denied"
        error = str(said["error"])
        assert str(config) in error
        assert "  - {id: local, role: admin, connector: shell}" in error
        assert "shell: {as: local}" in error
        assert "restart" in error
        bot.command("ps", r"No agents yet")
        assert bot.quit() == 0
