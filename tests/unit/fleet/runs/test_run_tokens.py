"""Tests for fleet.runs.launch.run_tokens: a run's token revoked as it ends, a failed launch's token
revoked unless a run goes on, and the sweep at start keeping only the runs still going —
over a real ledger and the tokens' real store (``AgentSecrets``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from fleet.connections.loopback import AgentSecrets
from fleet.errors import AgentNotRunning
from fleet.ledger import Ledger
from fleet.model import DesiredState, ExitInfo
from fleet.names import AgentName
from fleet.runs.launch.run_tokens import RunTokens
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet
from fleet.timing.clock import SystemClock
from fleet.watchdog.heartbeat import HeartbeatServer
from tests.unit.fleet.ledger.test_ledger import handle, spec
from tests.unit.fleet.runs.test_supervisor_logs import beating_fleet

__all__ = ["beating_fleet"]


class Tokens:
    """The heartbeat endpoint's tokens as a launch sees them, over a real store."""

    def __init__(self, path: Path) -> None:
        self.secrets = AgentSecrets(path, "heartbeat")
        self.secrets.load()

    def url_for(self, agent: str) -> str:
        return f"http://127.0.0.1:1/heartbeat/{agent}"

    def token_for(self, agent: str) -> str:
        return self.secrets.issue(agent)

    def revoke(self, agent: str) -> bool:
        return self.secrets.revoke(agent)

    def keep_only(
        self, agents: Iterable[str], *, known: Iterable[str] | None = None
    ) -> list[AgentName]:
        return self.secrets.keep_only(agents, known=known)


@pytest.fixture
async def wall_clock_ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    try:
        yield opened
    finally:
        await opened.close()


async def started(ledger: Ledger, name: str) -> int:
    await ledger.agents.upsert_agent(spec(name), DesiredState.RUNNING)
    return (await ledger.runs.start_run(name, handle())).id


async def test_a_run_over_takes_its_token_and_the_next_launch_gets_a_new_one(
    tmp_path: Path, wall_clock_ledger: Ledger
) -> None:
    """over() revokes the token (published to the ledger's copy); the next token differs."""
    tokens, published = Tokens(tmp_path / "heartbeat.json"), []

    async def publish() -> None:
        published.append(tokens.secrets.changes())

    runs = RunTokens(tokens, publish, wall_clock_ledger.runs)
    first = tokens.token_for("coder-1")
    await runs.over(AgentName("coder-1"))
    assert tokens.secrets.matches("coder-1", first) is None
    assert published[-1][-1] == ("coder-1", None)
    assert tokens.token_for("coder-1") != first


async def test_a_failed_launch_revokes_its_token_unless_a_run_goes_on(
    tmp_path: Path, wall_clock_ledger: Ledger
) -> None:
    """A launch that raises takes the token made for it, but never a running run's."""
    tokens = Tokens(tmp_path / "heartbeat.json")
    runs = RunTokens(tokens, None, wall_clock_ledger.runs)
    made = tokens.token_for("coder-1")
    with pytest.raises(RuntimeError):
        async with runs.launching(AgentName("coder-1")):
            raise RuntimeError("no such program")
    assert tokens.secrets.matches("coder-1", made) is None

    await started(wall_clock_ledger, "coder-2")
    live = tokens.token_for("coder-2")
    with pytest.raises(RuntimeError):
        async with runs.launching(AgentName("coder-2")):
            raise RuntimeError("already running")
    assert tokens.secrets.matches("coder-2", live) == "coder-2"


async def test_the_sweep_keeps_only_the_tokens_of_runs_still_going(
    tmp_path: Path, wall_clock_ledger: Ledger
) -> None:
    """At start, a run ended while nobody revoked its token loses it; an open run keeps its."""
    tokens = Tokens(tmp_path / "heartbeat.json")
    runs = RunTokens(tokens, None, wall_clock_ledger.runs)
    await started(wall_clock_ledger, "going")
    ended = await started(wall_clock_ledger, "ended")
    await wall_clock_ledger.runs.end_run(ended, ExitInfo(exit_code=0, reason="exited"))
    going, over = tokens.token_for("going"), tokens.token_for("ended")
    stale = tokens.token_for("never-ran")
    await runs.sweep()
    assert tokens.secrets.matches("going", going) == "going"
    assert tokens.secrets.matches("ended", over) is None
    assert tokens.secrets.matches("never-ran", stale) is None


async def test_a_fleets_stop_revokes_and_a_refused_send_leaves_no_token(
    beating_fleet: tuple[Fleet, HeartbeatServer],
) -> None:
    """Through a Fleet on a real endpoint: a spawned stub's token is live, a stop revokes it,
    and a ``send`` to the stopped agent (refused: it reads its input) leaves no token."""
    fleet, server = beating_fleet
    await fleet.spawn(LaunchRequest("coder-1"))
    token = server.secrets.get(AgentName("coder-1"))
    assert token is not None
    await fleet.stop_agent("coder-1")
    assert server.secrets.get(AgentName("coder-1")) is None
    with pytest.raises(AgentNotRunning):
        await fleet.send("coder-1", "more work")
    assert server.secrets.get(AgentName("coder-1")) is None
    await fleet.spawn(LaunchRequest("coder-1"))
    again = server.secrets.get(AgentName("coder-1"))
    assert again is not None and again != token
