"""Chat's commands from a shell, through the real ``fleetwarden run`` and the real CLI: an
operator's bash script spawns a ``command`` agent, waits for it by ``ps --json``, reads it,
spawns it only if absent, stops it; the control socket answers only the state dir's owner;
a refused command is audited with its source; nothing running is exit status 3."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.ledger.records.approvals import ApprovalState
from tests.integration.approvals.test_approvals_console import _ask as open_request
from tests.integration.approvals.test_approvals_console import _read as read_request
from tests.integration.console_bot import (
    FLEETWARDEN,
    ROSTER_HEAD,
    ConsoleBot,
    killed_on_failure,
    wait_until,
)

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("fleet_script.sh")
OPERATOR = "@ops:example.org"
CONFIG = (
    ROSTER_HEAD.format()
    + """\
  - name: sleeper
    runtime: command
    argv: [sleep, "600"]
operators:
  - {id: "@ops:example.org", role: operator}
"""
)
SHELL_AS = 'shell: {as: "@ops:example.org"}\n'


def fleetwarden(
    config: Path, *words: str, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, str(FLEETWARDEN), *words, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.parent,
    )


def start(tmp_path: Path, text: str) -> tuple[ConsoleBot, Path]:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(text)
    bot = ConsoleBot(tmp_path, "--config", str(config))
    with killed_on_failure(bot):
        listens = wait_until(lambda: (tmp_path / "state" / "control.sock").exists(), 60)
        assert listens, bot.stderr
    return bot, config


@pytest.fixture
def shell_bot(tmp_path: Path) -> Iterator[tuple[ConsoleBot, Path]]:
    bot, config = start(tmp_path, CONFIG + SHELL_AS)
    with bot:
        yield bot, config


def audited(config: Path) -> list[tuple[str, str, str | None, str, str]]:
    with sqlite3.connect(config.parent / "state" / "ledger.db") as db:
        return db.execute(
            "SELECT connector, sender, command, outcome, source FROM audit ORDER BY id"
        ).fetchall()


def test_a_script_spawns_waits_reads_and_stops_an_agent(shell_bot: tuple[ConsoleBot, Path]) -> None:
    """The bash script's every exit status and JSON answer is as documented, and each
    command it sent is audited as the shell's operator, the refused one denied."""
    _, config = shell_bot
    done = subprocess.run(
        ["bash", str(SCRIPT), str(FLEETWARDEN), str(config), sys.executable, "sleeper"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=config.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = audited(config)
    assert ("shell", OPERATOR, "spawn", "ok", "shell") in rows
    assert ("shell", OPERATOR, "stop", "ok", "shell") in rows
    assert ("shell", OPERATOR, "budget set", "denied", "shell") in rows
    assert all(row[0] == "shell" and row[4] == "shell" for row in rows)  # the console typed none


def test_a_spawn_of_a_running_agent_is_refused_whole_and_makes_no_task(
    shell_bot: tuple[ConsoleBot, Path],
) -> None:
    """`spawn sleeper --prompt … --json` while sleeper runs: exit 1, `outcome` `error` beside
    `ok` false, the reason on stderr too, and no task opened for a run that never starts."""
    _, config = shell_bot
    assert fleetwarden(config, "spawn", "sleeper").returncode == 0
    done = fleetwarden(config, "spawn", "sleeper", "--prompt", "do it again", "--json")
    assert done.returncode == 1, done
    body = json.loads(done.stdout)
    assert (body["ok"], body["outcome"]) == (False, "error")
    assert "sleeper is already running" in body["error"] and body["error"] in done.stderr
    with sqlite3.connect(config.parent / "state" / "ledger.db") as db:
        assert db.execute("SELECT count(*) FROM tasks").fetchone() == (0,)
    assert fleetwarden(config, "stop", "sleeper").returncode == 0


def test_another_user_is_refused_and_nothing_runs(shell_bot: tuple[ConsoleBot, Path]) -> None:
    """A user other than the state dir's owner cannot command the fleet: exit status 1,
    saying who may, and no command reaches the router."""
    _, config = shell_bot
    state = config.parent / "state"
    with tempfile.TemporaryDirectory() as readable:  # a copy of the config they may read
        os.chmod(readable, 0o755)
        theirs = Path(readable) / "fleetwarden.yaml"
        theirs.write_text(config.read_text().replace("./state", str(state)))
        theirs.chmod(0o644)
        nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
        done = fleetwarden(theirs, "spawn", "sleeper", "--json", prefix=nobody)
    assert done.returncode == 1, done.stderr
    assert "only the user who runs Fleetwarden" in done.stderr
    assert audited(config) == []


def test_nothing_running_is_exit_status_3(tmp_path: Path) -> None:
    """With no orchestrator — never started, stopped, or a stale socket left behind —
    every verb exits 3 saying how to start one."""
    bot, config = start(tmp_path, CONFIG + SHELL_AS)
    with bot:
        assert fleetwarden(config, "ps").returncode == 0
        assert bot.quit() == 0
    done = fleetwarden(config, "ps", "--json")
    assert done.returncode == 3 and "fleetwarden run" in done.stderr
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "state" / "control.sock"))
    stale.close()
    done = fleetwarden(config, "stop", "sleeper")
    assert done.returncode == 3 and "not running" in done.stderr


def test_with_json_every_failure_answers_one_object(tmp_path: Path) -> None:
    """``--json`` answers on stdout whatever stops the command before the orchestrator does:
    words that do not parse (``command`` null), a config that cannot be read, nothing
    running; ``--json`` before the verb is the shell's too, and a misspelt ``--json`` is
    named."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG + SHELL_AS)

    def answer(*words: str, code: int) -> dict[str, object]:
        done = fleetwarden(config, *words)
        assert done.returncode == code, done
        body = json.loads(done.stdout)
        assert isinstance(body, dict) and body["ok"] is False and body["exit"] == code
        assert set(body) == {"command", "ok", "exit", "outcome", "error"}, body
        assert isinstance(body["error"], str) and body["error"] in done.stderr
        return body

    usage = answer("spawn", "--json", "--bogus", code=2)
    assert usage["command"] is None and "--bogus" in str(usage["error"])
    nothing = answer("ps", "--json", code=3)
    assert nothing["command"] == "ps" and "fleetwarden run" in str(nothing["error"])
    assert answer("--json", "ps", code=3)["command"] == "ps"
    config.write_text("agents: [\n")
    broken = answer("stop", "sleeper", "--json", code=2)
    assert broken["command"] == "stop" and "configuration error" in str(broken["error"])
    config.write_text(CONFIG + SHELL_AS)
    verb = answer("--json", "spwan", "x", code=2)  # the command word itself misspelt
    assert verb["command"] is None and "did you mean 'spawn'?" in str(verb["error"])
    assert answer("spwan", "x", "--json", code=2)["command"] is None
    assert "--bogus" in str(answer("status", "--json", "--bogus", code=2)["error"])
    assert answer("--json", "status", code=3)["command"] == "status"
    typo = fleetwarden(config, "ps", "--jsn")
    assert typo.returncode == 2 and "did you mean --json?" in typo.stderr


def test_without_a_shell_operator_the_answer_says_how_to_name_one(tmp_path: Path) -> None:
    """A config without ``shell: {as: ID}`` refuses every shell command with the line to
    add to that file, naming its operator listed for every connector."""
    bot, config = start(tmp_path, CONFIG)
    with bot:
        done = fleetwarden(config, "ps", "--json")
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert f"Add to {config}:\n{SHELL_AS}then restart" in error


def test_a_queued_spawn_answers_at_once_and_starts_when_a_slot_frees(tmp_path: Path) -> None:
    """Past ``limits.max_running`` a shell's spawn answers at once that it is queued (exit
    0); once a slot frees it starts, as the shell's operator, with no shell waiting."""
    second = '  - name: waiter\n    runtime: command\n    argv: [sleep, "600"]\n'
    text = CONFIG.replace("operators:", second + "operators:") + SHELL_AS
    bot, config = start(tmp_path, text + "limits: {max_running: 1}\n")
    with bot:
        assert fleetwarden(config, "spawn", "sleeper").returncode == 0
        done = fleetwarden(config, "spawn", "waiter", "--json")
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)["data"]
        assert answer["queued"] is True and answer["state"] == "queued"
        assert isinstance(answer["queue_id"], int) and answer["run"] is None
        assert fleetwarden(config, "stop", "sleeper").returncode == 0

        def waiter_runs() -> bool:
            listed = json.loads(fleetwarden(config, "ps", "--json").stdout)["data"]["agents"]
            return any(a["name"] == "waiter" and a["state"] == "running" for a in listed)

        assert wait_until(waiter_runs, 60), bot.stderr
        started = ("shell", OPERATOR, "spawn", "ok", f"queue:{answer['queue_id']}")
        assert wait_until(lambda: started in audited(config), 30), audited(config)  # once answered


def test_an_agents_request_is_approved_and_denied_from_a_shell(
    shell_bot: tuple[ConsoleBot, Path],
) -> None:
    """``approve ID`` and ``deny ID REASON`` answer an agent's open requests from a shell,
    as the shell's operator, with the request as data; a second answer is refused (1)."""
    _, config = shell_bot
    db = config.parent / "state" / "ledger.db"
    assert fleetwarden(config, "spawn", "sleeper").returncode == 0
    first = asyncio.run(open_request(db, "n1", "rm -rf build"))
    second = asyncio.run(open_request(db, "n2", "git push --force"))

    done = fleetwarden(config, "approve", first.id, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)["data"]
    assert (data["id"], data["agent"], data["decision"]) == (first.id, "sleeper", "allow")
    assert data["answered_by"] == f"{OPERATOR} on shell"

    done = fleetwarden(config, "deny", second.id, "use a branch", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)["data"]
    assert (data["state"], data["decision"], data["reason"]) == ("denied", "deny", "use a branch")
    denied = asyncio.run(read_request(db, second.id))
    assert denied.state is ApprovalState.DENIED and denied.answered_by == f"{OPERATOR} on shell"

    again = fleetwarden(config, "approve", second.id)
    assert again.returncode == 1 and "already answered" in again.stderr
    assert fleetwarden(config, "stop", "sleeper").returncode == 0
