"""``enforce: strict`` over the agents the ledger remembers: an agent the roster no longer
names, launched before with no sandbox, is refused at spawn and restart, and a live run of
it is stopped when Fleetwarden starts strict (the real fleet, on a shared ledger)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.errors import LaunchFailed
from fleet.ledger import Ledger
from fleet.supervisor.admission.request import LaunchRequest
from tests.unit.bot.app.reload_rig import fleet_on

WARN = "state_dir: ./state\nagents: roster.yaml\n"
STRICT = "enforce: strict\nstate_dir: ./state\nagents: roster.yaml\n"
UNRULED = "- name: x\n  runtime: stub\n  sandbox: none\n  egress: open\n"
RULED = "- name: one\n  runtime: stub\n"


async def launched_unruled(tmp_path: Path, ledger: Ledger, *, leave_running: bool) -> None:
    """Under ``enforce: warn``, spawn the roster's ``x`` (no sandbox, open egress); stop it
    unless ``leave_running``; then drop ``x`` from the roster."""
    (tmp_path / "roster.yaml").write_text(UNRULED)
    async with fleet_on(tmp_path, ledger, WARN) as fleet:
        await fleet.spawn(LaunchRequest("x", collect=False))
        if not leave_running:
            await fleet.stop_agent("x")
    (tmp_path / "roster.yaml").write_text(RULED)


async def test_strict_refuses_a_spawn_with_the_ledgers_unsandboxed_settings(
    tmp_path: Path, ledger: Ledger
) -> None:
    """Under strict, spawning an agent the roster no longer names, last launched with no
    sandbox and open egress, is refused naming the agent and the fix; it does not run."""
    await launched_unruled(tmp_path, ledger, leave_running=False)
    async with fleet_on(tmp_path, ledger, STRICT) as fleet:
        with pytest.raises(LaunchFailed) as refused:
            await fleet.spawn(LaunchRequest("x", collect=False))
        said = str(refused.value)
        assert "agent x" in said and "sandbox: none" in said and "egress: open" in said
        assert "add it to the roster with a sandbox" in said and "enforce: warn" in said
        assert not (await fleet._launcher.runs.record("x")).state.is_live


async def test_strict_refuses_a_restart_with_the_ledgers_unsandboxed_settings(
    tmp_path: Path, ledger: Ledger
) -> None:
    """Under strict, `restart x` of such an agent is refused the same way."""
    await launched_unruled(tmp_path, ledger, leave_running=False)
    async with fleet_on(tmp_path, ledger, STRICT) as fleet:
        with pytest.raises(LaunchFailed, match="enforce: strict"):
            await fleet.spawn(LaunchRequest("x", origin="restart", collect=False))
        assert not (await fleet._launcher.runs.record("x")).state.is_live


async def test_strict_start_stops_a_live_unsandboxed_run_it_would_reattach(
    tmp_path: Path, ledger: Ledger
) -> None:
    """A run left going under warn with no sandbox is stopped, not reattached, when
    Fleetwarden starts strict; its ending says why."""
    await launched_unruled(tmp_path, ledger, leave_running=True)
    async with fleet_on(tmp_path, ledger, STRICT) as fleet:
        record = await fleet._launcher.runs.record("x")
        assert not record.state.is_live
        assert "enforce: strict" in record.state_reason


async def test_warn_still_launches_the_ledgers_settings(tmp_path: Path, ledger: Ledger) -> None:
    """Under warn (the default), the same agent spawns again with its remembered settings."""
    await launched_unruled(tmp_path, ledger, leave_running=False)
    async with fleet_on(tmp_path, ledger, WARN) as fleet:
        await fleet.spawn(LaunchRequest("x", collect=False))
        record = await fleet._launcher.runs.record("x")
        assert record.state.is_live and record.spec.sandbox == "none"
        await fleet.stop_agent("x")
