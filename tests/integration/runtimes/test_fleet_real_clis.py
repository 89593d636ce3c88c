"""The real agent CLIs launched by Fleetwarden's own supervisor, end to end: `spawn` plans
through the runtime, the subprocess backend runs it, the output lands in the agent's log,
the exit is recorded, and `send` resumes the session in a new run."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.model import AgentSpec, AgentState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.provider.server import Accepted, FakeProvider, Turn
from tests.integration.runtimes.test_real_clis import bin_dir, clean_env, cli, node_dir, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

REPLY = "fleetwarden-supervised-reply-3d9e"
KEY = "test-key-supervised"
KEY_VAR = "ANTHROPIC_API_KEY"
SECRET = {"claude": "ANTHROPIC_API_KEY", "pi": "ANTHROPIC_API_KEY", "opencode": "ANTHROPIC_API_KEY"}


@pytest.fixture
async def fleet_provider() -> AsyncIterator[FakeProvider]:
    accept = Accepted(api_keys=frozenset({KEY}))
    async with FakeProvider(default=Turn(text=REPLY), accept=accept) as provider:
        yield provider


async def ended(ledger: Ledger, name: str, deadline: float = 60.0) -> AgentState:
    """Poll until the agent's run has ended; its final state."""
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        record = await ledger.agents.get_agent(name)
        if record is not None and not record.state.is_live:
            return record.state
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} still running after {deadline} s")


async def settled(fleet: Fleet, ledger: Ledger, name: str, deadline: float = 60.0) -> AgentState:
    """Poll until the agent's run has ended (a live session that ends its process once its
    work is done: Claude Code's), or its live session has done its turns and waits for
    the next (Codex's: it then stays running)."""
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        record = await ledger.agents.get_agent(name)
        driver = fleet.sessions.driver(AgentName(name))
        waits = driver is not None and not driver.busy and not driver.closing
        if record is not None and (not record.state.is_live or waits):
            return record.state
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} still busy after {deadline} s")


async def stop_live(fleet: Fleet, ledger: Ledger, name: str) -> None:
    """Stop the agent if it still runs (a live session waits for turns until stopped)."""
    record = await ledger.agents.get_agent(name)
    if record is not None and record.state.is_live:
        await fleet.stop_agent(name, force=True)


@pytest.mark.parametrize("runtime", ["claude", "codex", "pi", "opencode"])
async def test_spawn_runs_the_real_cli_and_send_resumes_it(
    runtime: str, fleet_provider: FakeProvider, tmp_path: Path
) -> None:
    """spawn → the CLI answers through the provider URL, exits 0 (a live session: waits
    for its next turn), output in its log; send → a new run resumes the session (a live
    session: a turn of the same run) and answers again."""
    cli(runtime)  # fails with "run bash tests/run.sh" when the CLIs are not installed
    name = AgentName(f"{runtime}-1")
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=FleetSettings(
                state_dir=tmp_path / "state",
                reply_wait=0.1,
                provider_urls={
                    "anthropic": f"{fleet_provider.base_url}/a/{name}",
                    "openai": f"{fleet_provider.base_url}/a/{name}",
                },
            ),
            environ={
                "PATH": ":".join(dict.fromkeys(path)),
                "LANG": "C.UTF-8",
                "ANTHROPIC_API_KEY": KEY,
                "OPENAI_API_KEY": KEY,
            },
        ),
        roster={
            name: AgentSpec(
                name=name, runtime=runtime, secret_env=(SECRET.get(runtime, "OPENAI_API_KEY"),)
            )
        },
    )
    await fleet.start()
    try:
        await fleet.spawn(LaunchRequest(name, prompt="say hi"))
        state = await settled(fleet, ledger, name)
        stays = state is AgentState.RUNNING  # a live session that waits for the next turn
        assert stays or state is AgentState.EXITED
        run = await ledger.runs.last_run(name)
        assert run is not None and run.exit_code == (None if stays else 0)
        assert any(REPLY in line for line in await fleet.logs(name, 400))
        first_requests = len([r for r in fleet_provider.requests if r.method == "POST"])
        assert first_requests >= 1
        assert all(
            r.path.startswith(f"/a/{name}") for r in fleet_provider.requests if r.method == "POST"
        )

        await fleet.send(name, "say more")
        assert await settled(fleet, ledger, name) is state
        again = await ledger.runs.last_run(name)
        assert again is not None and (again.id == run.id) is stays
        runs_text = "\n".join(await fleet.logs(name, 800))
        assert runs_text.count(REPLY) >= 2
        assert len([r for r in fleet_provider.requests if r.method == "POST"]) > first_requests
    finally:
        await stop_live(fleet, ledger, name)
        await fleet.stop()
        await ledger.close()


async def test_claude_is_not_asked_to_credit_itself_in_commits(
    fleet_provider: FakeProvider, tmp_path: Path
) -> None:
    """Claude Code run bare asks its model for a `Co-Authored-By: … <noreply@anthropic.com>`
    line in each commit (which the git door refuses: it credits only the requester); run by
    Fleetwarden, its settings leave that out, so an agent's own commits go through."""
    bare_home = tmp_path / "bare"
    (bare_home / "tmp").mkdir(parents=True)
    env = clean_env(
        bare_home,
        {"ANTHROPIC_BASE_URL": f"{fleet_provider.base_url}/bare", "ANTHROPIC_API_KEY": KEY},
    )
    bare = await run_cli([cli("claude"), "-p", "say hi", "--output-format", "json"], tmp_path, env)
    assert bare.returncode == 0, bare.stderr[-2000:]
    asked = [json.dumps(r.body) for r in fleet_provider.requests if r.path.startswith("/bare/")]
    assert any("noreply@anthropic.com" in body for body in asked)  # the control

    name = AgentName("claude-1")
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=FleetSettings(
                state_dir=tmp_path / "state",
                reply_wait=0.1,
                provider_urls={"anthropic": f"{fleet_provider.base_url}/a/{name}"},
            ),
            environ={"PATH": ":".join(dict.fromkeys(path)), "LANG": "C.UTF-8", KEY_VAR: KEY},
        ),
        roster={name: AgentSpec(name=name, runtime="claude", secret_env=(KEY_VAR,))},
    )
    await fleet.start()
    try:
        await fleet.spawn(LaunchRequest(name, prompt="say hi"))
        await settled(fleet, ledger, name)
        mine = [
            json.dumps(r.body) for r in fleet_provider.requests if r.path.startswith(f"/a/{name}/")
        ]
        assert mine
        assert not any("noreply@anthropic.com" in body for body in mine)
    finally:
        await stop_live(fleet, ledger, name)
        await fleet.stop()
        await ledger.close()


async def test_a_spawn_that_resumes_continues_the_ended_claude_session(
    fleet_provider: FakeProvider, tmp_path: Path
) -> None:
    """spawn with ``resume`` after a headless Claude run ended: the new run continues that
    session (``--resume``), so its request carries the first turn's words; without
    ``resume`` the next run starts a session of its own."""
    cli("claude")
    name = AgentName("claude-1")
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=FleetSettings(
                state_dir=tmp_path / "state",
                reply_wait=0.1,
                provider_urls={"anthropic": f"{fleet_provider.base_url}/a/{name}"},
            ),
            environ={"PATH": ":".join(dict.fromkeys(path)), "LANG": "C.UTF-8", KEY_VAR: KEY},
        ),
        roster={name: AgentSpec(name=name, runtime="claude", secret_env=(KEY_VAR,))},
    )
    await fleet.start()
    try:
        await fleet.spawn(LaunchRequest(name, prompt="first-turn-words-7c1e"))
        assert await ended(ledger, name) is AgentState.EXITED
        await fleet.spawn(LaunchRequest(name, prompt="second-turn-words-9a4f", resume=True))
        assert await ended(ledger, name) is AgentState.EXITED
        posts = [r for r in fleet_provider.requests if r.method == "POST"]
        assert b"second-turn-words-9a4f" in posts[-1].raw
        assert b"first-turn-words-7c1e" in posts[-1].raw  # the session's history
        await fleet.spawn(LaunchRequest(name, prompt="third-turn-words-5b2d"))
        assert await ended(ledger, name) is AgentState.EXITED
        posts = [r for r in fleet_provider.requests if r.method == "POST"]
        assert b"third-turn-words-5b2d" in posts[-1].raw
        assert b"second-turn-words-9a4f" not in posts[-1].raw  # a session of its own
    finally:
        await stop_live(fleet, ledger, name)
        await fleet.stop()
        await ledger.close()
