"""The real agent CLIs (Claude Code, Codex: node and their npm install) run in a locked
sandbox: they see their install read-only, write only their HOME and workdir, and reach
the provider's URL only through its door."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.model import AgentSpec, AgentState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit, RunPlace
from fleet.runtimes import default_registry
from fleet.sandbox.service import Sandboxes, SandboxSettings
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import FleetSettings
from fleet.timing.clock import SystemClock
from tests import sandbox_need
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.provider.server import FakeProvider
from tests.integration.runtimes.test_fleet_real_clis import (
    KEY,
    REPLY,
    SECRET,
    fleet_provider,
    settled,
    stop_live,
)
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.agent_cli,
    sandbox_need.BWRAP,
]

__all__ = ["fleet_provider"]  # the fixture, shared


@pytest.mark.parametrize("runtime", ["claude", "codex"])
async def test_a_real_cli_answers_from_a_locked_sandbox(
    runtime: str, fleet_provider: FakeProvider, tmp_path: Path
) -> None:
    """spawn → the CLI, sandboxed with egress locked, reaches the provider through its
    door, answers and exits 0 (a live session: waits for its next turn), its sandbox
    recorded in the run directory."""
    cli(runtime)
    name = AgentName(f"{runtime}-1")
    state = tmp_path / "state"
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    sandboxes = Sandboxes(SandboxSettings(state_dir=state, hidden=(tmp_path,)))
    assert await sandboxes.start() is None
    path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=FleetSettings(
                state_dir=state,
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
            place=RunPlace(sandboxes=sandboxes),
        ),
        roster={
            name: AgentSpec(
                name=name,
                runtime=runtime,
                secret_env=(SECRET.get(runtime, "OPENAI_API_KEY"),),
                egress="locked",
            )
        },
    )
    await fleet.start()
    try:
        await fleet.spawn(LaunchRequest(name, prompt="say hi"))
        settled_as = await settled(fleet, ledger, name)
        assert settled_as in (AgentState.EXITED, AgentState.RUNNING), await fleet.logs(name, 100)
        assert any(REPLY in line for line in await fleet.logs(name, 400))
        assert any(
            r.path.startswith(f"/a/{name}") for r in fleet_provider.requests if r.method == "POST"
        )
        run = await ledger.runs.last_run(name)
        assert run is not None and (run.handle.run_dir / "sandbox.json").exists()
    finally:
        await stop_live(fleet, ledger, name)
        await fleet.stop()
        await sandboxes.stop()
        await ledger.close()
