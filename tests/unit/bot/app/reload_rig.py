"""What the tests of a ``roster reload`` share: the real fleet started on a config."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from bot.app.assembly import mcp_rules, roster_of
from bot.config import parse_config
from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores


@contextlib.asynccontextmanager
async def fleet_on(
    tmp_path: Path, ledger: Ledger, text: str, *, mcp: bool = False
) -> AsyncIterator[Fleet]:
    """The real fleet (subprocess backend, state in ``tmp_path/state``) on the config
    ``text``, written to ``tmp_path/fleetwarden.yaml``; with ``mcp``, the config's MCP rules
    too. Started, and stopped when the block ends."""
    file = tmp_path / "fleetwarden.yaml"
    file.write_text(text)
    started = parse_config(text, str(file), base_dir=tmp_path, source=file)
    made = real_fleet(
        stores=fleet_stores(ledger),
        roster=roster_of(started),
        mcp=mcp_rules(started) if mcp else None,
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=FleetSettings(
                state_dir=tmp_path / "state", strict=started.document.enforce == "strict"
            ),
            environ=os.environ,
        ),
    )
    await made.start()
    try:
        yield made
    finally:
        await made.stop()
