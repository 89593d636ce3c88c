"""At the real ``fleetwarden run`` console: a mistyped agent name is answered with the
likeliest one meant, and leaving with an agent running says which keeps running and that
the next start reattaches it (exit status 0, as ever)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.connectors.console.console_stops import end_agents
from tests.integration.console_bot import ConsoleBot, stub_processes_in, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[ConsoleBot]:
    """A bot on the embedded defaults; its agents ended, and it killed, whatever happens."""
    started = ConsoleBot(tmp_path)
    try:
        started.command("whoami", r"You are console on console")
        yield started
    finally:
        if started.proc.poll() is None:
            started.kill()
        end_agents(tmp_path / ".fleetwarden")


def test_a_mistyped_name_gets_the_likeliest_agent(bot: ConsoleBot) -> None:
    """`logs`, `stop`, `send` and `restart` of a near miss name the agent meant and never
    suggest spawning the typo; a name near none still says `spawn NAME` starts one."""
    bot.command("spawn demo --prompt 'count to 3'", r"Agent demo started")
    for verb in ("logs demoo", "stop dmeo", "send deom hi", "restart dem"):
        match = bot.command(verb, r"no agent is called '\w+' — [^\n]*")
        assert "did you mean 'demo'? ps lists them" in match[0], match[0]
        assert "spawn" not in match[0]
    bot.command(
        "logs zzzzzz",
        r"no agent is called 'zzzzzz' — `?ps`? lists them, `?spawn zzzzzz`? starts one",
    )
    assert bot.quit() == 0


def test_leaving_with_an_agent_running_says_it_keeps_running(bot: ConsoleBot) -> None:
    """`quit` with an agent running: the console's last words name it and say the next
    start reattaches it; exit status 0. With none running, nothing is said of agents."""
    bot.command("spawn demo --prompt 'count to 3'", r"Agent demo started")
    workdir = bot.cwd / ".fleetwarden" / "agents" / "demo" / "work"
    assert wait_until(lambda: stub_processes_in(workdir) != []), bot.stdout
    assert bot.quit() == 0
    assert "this agent keeps running: demo (" in bot.stdout
    assert "Until the next start reattaches it, what Fleetwarden serves is down" in bot.stdout


def test_leaving_with_no_agent_running_says_nothing_of_agents(tmp_path: Path) -> None:
    """EOF with no agent running: exit 0, and no word of agents kept running."""
    bot = ConsoleBot(tmp_path)
    try:
        bot.command("whoami", r"You are console on console")
        assert bot.close() == 0
        assert "keeps running" not in bot.stdout and "keep running" not in bot.stdout
    finally:
        if bot.proc.poll() is None:
            bot.kill()
