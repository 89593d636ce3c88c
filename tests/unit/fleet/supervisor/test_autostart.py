"""Tests for fleet.supervisor.autostart: a roster agent that cannot start at boot becomes a
`refused` fleet event naming why and the fix (the real supervisor, ledger and runtimes)."""

from __future__ import annotations

from pathlib import Path

from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.model import AgentSpec, AgentState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.fleet import EventKind, FleetEvent, FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores


async def test_an_autostart_agent_whose_cli_is_missing_is_a_refused_event(
    tmp_path: Path,
) -> None:
    """The event names the agent, the reason (autostart) and the install command; the
    other autostart agent still starts."""
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    coder, stub = AgentName("coder"), AgentName("helper")
    roster = {
        coder: AgentSpec(coder, "claude", prompt="fix it", autostart=True, sandbox="none"),
        stub: AgentSpec(stub, "stub", autostart=True, sandbox="none"),
    }
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=FleetSettings(state_dir=tmp_path, stop_grace=2.0),
            environ={"PATH": "/nonexistent"},
        ),
        roster=roster,
    )
    events: list[FleetEvent] = []

    async def record(event: FleetEvent) -> None:
        events.append(event)

    fleet.subscribe(record)
    try:
        await fleet.start()
        refused = [e for e in events if e.kind is EventKind.REFUSED]
        assert [(e.agent, e.state) for e in refused] == [(coder, AgentState.FAILED)]
        assert refused[0].message.startswith("autostart: coder cannot start: claude is not")
        assert "npm install -g @anthropic-ai/claude-code" in refused[0].message
        assert (await fleet.status("helper")).state.is_live
    finally:
        if await fleet.knows("helper"):
            await fleet.stop_agent("helper", force=True)
        await fleet.stop()
        await ledger.close()
