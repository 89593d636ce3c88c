"""Every launch is checked against the config as it is now, whatever spec it starts from:
an agent the roster dropped (or an ad hoc one that ran before) launches with the
`defaults`' MCP grants and skills of the last reload, never with those stored in the
ledger; a grant to a server the config no longer has, or a server's credential variable in
an agent's own environment, is refused with its reason and fix. A real Fleet on a real
ledger with stub agents; the rules made from a config the real loader read."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app.assembly import mcp_rules
from bot.config import parse_config
from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.mcp.config.rules import McpRefused, McpRules
from fleet.model import AgentSpec, McpGrant
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet, reap_open_runs
from tests.fakes.doubles.stores import fleet_stores

GONE = AgentName("gone")
TRACKER = """\
mcp:
  tracker:
    url: https://mcp.example.com/mcp
    headers_env: {Authorization: OLD_TOKEN}
"""


def rules(text: str) -> McpRules:
    """The rules of the config ``text``, as the real loader reads it."""
    return mcp_rules(parse_config(text, "fleetwarden.yaml", base_dir=Path("/srv/fw")))


@pytest.fixture
async def mcp_launch_fleet(tmp_path: Path) -> AsyncIterator[tuple[Fleet, Ledger]]:
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    backend = SubprocessBackend()
    made = real_fleet(
        stores=fleet_stores(ledger),
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": backend},
            settings=FleetSettings(state_dir=tmp_path, stop_grace=2.0, reply_wait=0.2),
            environ={**os.environ, "OLD_TOKEN": "Bearer x"},
        ),
        roster={
            GONE: AgentSpec(
                GONE,
                "stub",
                backend="subprocess",
                mcp=(McpGrant("tracker"),),
                secret_env=("OLD_TOKEN",),
            )
        },
        mcp=McpRules(),
    )
    await made.start()
    try:
        yield made, ledger
    finally:
        await made.stop()
        await reap_open_runs(ledger, backend)
        await ledger.close()


async def stored(ledger: Ledger, name: str) -> AgentSpec:
    record = await ledger.agents.get_agent(AgentName(name))
    assert record is not None
    return record.spec


async def test_a_grant_to_a_server_the_config_lacks_is_refused_at_launch(
    mcp_launch_fleet: tuple[Fleet, Ledger],
) -> None:
    """A roster agent's grant to a server the current config does not define never
    launches: the refusal names the server and both fixes."""
    supervisor, ledger = mcp_launch_fleet
    with pytest.raises(McpRefused) as refused:
        await supervisor.spawn(LaunchRequest(GONE, collect=False))
    said = str(refused.value)
    assert "MCP server 'tracker'" in said and "no longer defines" in said
    assert "roster reload" in said and await ledger.agents.get_agent(GONE) is None


async def test_a_dropped_agent_relaunches_with_the_current_defaults_not_its_stored_grants(
    mcp_launch_fleet: tuple[Fleet, Ledger],
) -> None:
    """An agent that ran with a grant, then dropped from the roster, launches again with
    the defaults of the last reload: its stored grant is gone, a new default grant is
    given (to an ad hoc agent too)."""
    supervisor, ledger = mcp_launch_fleet
    await supervisor.apply_roster(
        {GONE: AgentSpec(GONE, "stub", backend="subprocess", mcp=(McpGrant("tracker"),))},
        rules(TRACKER),
    )
    await supervisor.spawn(LaunchRequest(GONE, collect=False))
    assert (await stored(ledger, GONE)).mcp == (McpGrant("tracker"),)
    await supervisor.stop_agent(GONE)
    await supervisor.apply_roster({}, rules("mcp:\n  docs: {url: 'https://d.example.com/mcp'}\n"))
    await supervisor.spawn(LaunchRequest(GONE, collect=False))
    assert (await stored(ledger, GONE)).mcp == ()
    await supervisor.apply_roster(
        {}, rules("mcp:\n  docs: {url: 'https://d.example.com/mcp'}\ndefaults:\n  mcp: [docs]\n")
    )
    await supervisor.spawn(LaunchRequest("scratch", collect=False))
    assert (await stored(ledger, "scratch")).mcp == (McpGrant("docs"),)


async def test_a_stored_secret_env_holding_a_servers_credential_is_refused(
    mcp_launch_fleet: tuple[Fleet, Ledger],
) -> None:
    """An agent dropped from the roster whose stored `secret_env` names a variable a
    server's credential is read from now is refused at launch, naming the variable."""
    supervisor, _ = mcp_launch_fleet
    await supervisor.apply_roster(
        {GONE: AgentSpec(GONE, "stub", backend="subprocess", secret_env=("OLD_TOKEN",))},
        McpRules(),
    )
    await supervisor.spawn(LaunchRequest(GONE, collect=False))
    await supervisor.stop_agent(GONE)
    await supervisor.apply_roster({}, rules(TRACKER))
    with pytest.raises(McpRefused, match=r"would hold OLD_TOKEN \(its secret_env\)"):
        await supervisor.spawn(LaunchRequest(GONE, collect=False))
    with pytest.raises(McpRefused, match="OLD_TOKEN"):
        await supervisor.restart(GONE)


async def test_a_spawn_workdir_at_a_skill_or_a_servers_place_is_refused(
    mcp_launch_fleet: tuple[Fleet, Ledger], tmp_path: Path
) -> None:
    """`spawn x --workdir DIR` with DIR a skill directory, inside one or holding one, or
    holding a stdio server's program: refused before it launches, naming the place."""
    supervisor, ledger = mcp_launch_fleet
    notes = tmp_path / "ops" / "skills" / "notes"
    notes.mkdir(parents=True)
    (notes / "SKILL.md").write_text("---\nname: notes\ndescription: d\n---\n")
    (tmp_path / "ops" / "bin").mkdir()
    (tmp_path / "ops" / "bin" / "srv").write_text("#!/bin/sh\n")
    (tmp_path / "ops" / "bin" / "srv").chmod(0o755)
    text = (
        f"mcp:\n  s: {{command: {tmp_path / 'ops' / 'bin' / 'srv'}}}\n"
        f"agents:\n  - name: a\n    skills: [{notes}]\n"
    )
    await supervisor.apply_roster({}, rules(text))
    for workdir, said in [
        (notes, f"skill directory '{notes}'"),
        (tmp_path / "ops", f"skill directory '{notes}'"),
        (tmp_path / "ops" / "bin", "MCP server s's command"),
    ]:
        with pytest.raises(McpRefused, match="workdir") as refused:
            await supervisor.spawn(LaunchRequest("x", workdir=workdir, collect=False))
        assert said in str(refused.value)
    (notes / "inner").mkdir()
    with pytest.raises(McpRefused, match="overlaps skill directory"):
        await supervisor.spawn(LaunchRequest("x", workdir=notes / "inner", collect=False))
    assert await ledger.agents.get_agent(AgentName("x")) is None
