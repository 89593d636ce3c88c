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
def console_leaving_bot(tmp_path: Path) -> Iterator[ConsoleBot]:
    """A bot on the embedded defaults; its agents ended, and it killed, whatever happens."""
    started = ConsoleBot(tmp_path)
    try:
        started.command("whoami", r"You are console on console")
        yield started
    finally:
        if started.proc.poll() is None:
            started.kill()
        end_agents(tmp_path / ".fleetwarden")


def test_a_mistyped_name_gets_the_likeliest_agent(console_leaving_bot: ConsoleBot) -> None:
    """`logs`, `stop`, `send` and `restart` of a near miss name the agent meant and never
    suggest spawning the typo; a name near none still says `spawn NAME` starts one."""
    console_leaving_bot.command("spawn demo --prompt 'count to 3'", r"Agent demo started")
    for verb in ("logs demoo", "stop dmeo", "send deom hi", "restart dem"):
        match = console_leaving_bot.command(verb, r"no agent is called '\w+' — [^\n]*")
        assert "did you mean 'demo'? ps lists them" in match[0], match[0]
        assert "spawn" not in match[0]
    console_leaving_bot.command(
        "logs zzzzzz",
        r"no agent is called 'zzzzzz' — `?ps`? lists them, `?spawn zzzzzz`? starts one",
    )
    assert console_leaving_bot.quit() == 0


def test_leaving_with_an_agent_running_says_it_keeps_running(
    console_leaving_bot: ConsoleBot,
) -> None:
    """`quit` with an agent running: the console's last words name it and say the next
    start reattaches it; exit status 0. With none running, nothing is said of agents."""
    console_leaving_bot.command("spawn demo --prompt 'count to 3'", r"Agent demo started")
    workdir = console_leaving_bot.cwd / ".fleetwarden" / "agents" / "demo" / "work"
    assert wait_until(lambda: stub_processes_in(workdir) != []), console_leaving_bot.stdout
    assert console_leaving_bot.quit() == 0
    assert "this agent keeps running: demo (" in console_leaving_bot.stdout
    assert (
        "Until the next start reattaches it, what Fleetwarden serves is down"
        in console_leaving_bot.stdout
    )


def test_leaving_with_no_agent_running_says_nothing_of_agents(tmp_path: Path) -> None:
    """EOF with no agent running: exit 0, and no word of agents kept running."""
    console_leaving_bot = ConsoleBot(tmp_path)
    try:
        console_leaving_bot.command("whoami", r"You are console on console")
        assert console_leaving_bot.close() == 0
        assert (
            "keeps running" not in console_leaving_bot.stdout
            and "keep running" not in console_leaving_bot.stdout
        )
    finally:
        if console_leaving_bot.proc.poll() is None:
            console_leaving_bot.kill()
