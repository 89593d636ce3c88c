"""SIGINT, SIGTERM and the end of input end the real ``fleetwarden run`` reading commands
from a pipe cleanly: exit status 0, nothing on stderr, no process of its own left."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.connectors.console.console_stops import (
    ROUNDS,
    bad_end,
    end_agents,
    fleetwardens_in,
)
from tests.integration.console_bot import ConsoleBot, stub_processes_in, wait_until

pytestmark = pytest.mark.integration

SPAWN = "spawn demo --prompt 'count to 3'"


@pytest.fixture
def bots() -> Iterator[list[ConsoleBot]]:
    """Every bot a test starts, killed if the test ended before it did."""
    started: list[ConsoleBot] = []
    yield started
    for bot in started:
        if bot.proc.poll() is None:
            bot.kill()


def _start(cwd: Path, bots: list[ConsoleBot]) -> ConsoleBot:
    """A bot in ``cwd`` on the embedded defaults, once it answers."""
    cwd.mkdir(exist_ok=True)
    bot = ConsoleBot(cwd)
    bots.append(bot)
    bot.command("whoami", r"You are console on console")
    return bot


def _ended_cleanly(bot: ConsoleBot, what: str) -> None:
    status = bot.wait()
    assert status == 0, f"{what}: exit status {status}\n{bot.stderr}"
    assert bad_end(bot.stderr + bot.stdout) is None, f"{what}:\n{bot.stderr}"
    assert bot.stderr == "", f"{what}:\n{bot.stderr}"
    assert fleetwardens_in(bot.cwd) == [], what


def test_sigint_while_idle_exits_zero_every_time(tmp_path: Path, bots: list[ConsoleBot]) -> None:
    """SIGINT while waiting for the next line, in six fresh processes: each exits 0 with
    nothing on stderr and leaves no process."""
    for round_ in range(ROUNDS):
        bot = _start(tmp_path / f"round-{round_}", bots)
        bot.proc.send_signal(signal.SIGINT)
        _ended_cleanly(bot, f"round {round_}")


def test_sigint_during_a_command_exits_zero_every_time(
    tmp_path: Path, bots: list[ConsoleBot]
) -> None:
    """SIGINT while a spawn is being handled (at once after the line, or once the agent's
    process is there), in six fresh processes: each exits 0 with nothing on stderr and
    leaves no process of its own (the agent is left to be reattached)."""
    for round_ in range(ROUNDS):
        cwd = tmp_path / f"round-{round_}"
        try:
            bot = _start(cwd, bots)
            bot.send(SPAWN)
            if round_ % 2:
                workdir = cwd / ".fleetwarden" / "agents" / "demo" / "work"
                assert wait_until(lambda w=workdir: stub_processes_in(w) != []), bot.stdout
            bot.proc.send_signal(signal.SIGINT)
            _ended_cleanly(bot, f"round {round_}")
        finally:
            end_agents(cwd / ".fleetwarden")


def test_sigterm_while_idle_and_during_a_command_exits_zero(
    tmp_path: Path, bots: list[ConsoleBot]
) -> None:
    """SIGTERM, as systemd or kill sends it, while idle and while a spawn is handled:
    exit 0, nothing on stderr, no process of its own left."""
    idle = _start(tmp_path / "idle", bots)
    idle.proc.send_signal(signal.SIGTERM)
    _ended_cleanly(idle, "idle")
    busy = _start(tmp_path / "busy", bots)
    try:
        busy.send(SPAWN)
        workdir = tmp_path / "busy" / ".fleetwarden" / "agents" / "demo" / "work"
        assert wait_until(lambda: stub_processes_in(workdir) != []), busy.stdout  # under way
        busy.proc.send_signal(signal.SIGTERM)
        _ended_cleanly(busy, "during a spawn")
    finally:
        end_agents(tmp_path / "busy" / ".fleetwarden")


def test_end_of_input_during_a_command_answers_it_then_exits_zero(
    tmp_path: Path, bots: list[ConsoleBot]
) -> None:
    """Input closed right after a spawn: the spawn is answered, then the bot exits 0 with
    nothing on stderr."""
    bot = _start(tmp_path / "eof", bots)
    try:
        bot.send(SPAWN)
        assert bot.close() == 0, bot.stderr
        assert "Agent demo started (stub)" in bot.stdout
        _ended_cleanly(bot, "end of input")
    finally:
        end_agents(tmp_path / "eof" / ".fleetwarden")
