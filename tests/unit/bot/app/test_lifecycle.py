"""Tests for bot.app.lifecycle: the app before it starts, the order it stops in, and a start
cut short stopping what it had started."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.app import lifecycle
from bot.app.lifecycle import App
from bot.commands.errors import CommandError
from bot.config import Config
from connectors.errors import ConnectorError
from fleet.metering.proxy import MeteringProxy
from fleet.timing.clock import SystemClock
from scheduler.jobs import SchedulerState
from tests.unit.chat_fakes import FakeConnector


class Watching(FakeConnector):
    """A connector that notes, as it stops, whether the app's scheduler still runs."""

    def __init__(self) -> None:
        super().__init__("matrix")
        self.app: App | None = None
        self.scheduler_at_stop: SchedulerState | None = None

    async def stop(self) -> None:
        assert self.app is not None
        self.scheduler_at_stop = self.app.scheduler.state
        await super().stop()


class Refusing(FakeConnector):
    """A connector whose service turns it away at start."""

    async def start(self) -> None:
        raise ConnectorError("the homeserver refused the login")


async def test_what_the_app_runs_is_there_only_once_it_starts(tmp_path: Path) -> None:
    """Before start the fleet, the approvals, the scheduler and the queue are refused, and
    so is a reload; stopping an app never started does nothing."""
    app = App(Config.default(tmp_path), clock=SystemClock(), environ={})
    for part in ("fleet", "approvals", "scheduler", "queue"):
        with pytest.raises(RuntimeError, match="the app has not started"):
            getattr(app, part)
    with pytest.raises(CommandError, match="there is no config file to reload"):
        await app.reload_config()
    await app.stop()


async def test_the_scheduler_stops_before_the_connectors(tmp_path: Path) -> None:
    """A job that fires while the app stops never answers through a stopped connector."""
    watching = Watching()
    app = App(Config.default(tmp_path), clock=SystemClock(), environ={}, connectors=[watching])
    watching.app = app
    await app.start()
    assert app.scheduler.state is SchedulerState.RUNNING
    await app.stop()
    assert watching.scheduler_at_stop is SchedulerState.STOPPED


async def test_a_start_cut_short_stops_what_it_started(tmp_path: Path) -> None:
    """A connector refused at start: the error comes out, the app stops what it had
    started, and the state dir is free for the next start."""
    config = Config.default(tmp_path)
    app = App(config, clock=SystemClock(), environ={}, connectors=[Refusing()])
    with pytest.raises(ConnectorError, match="refused the login"):
        await app.run()
    again = App(config, clock=SystemClock(), environ={}, connectors=[FakeConnector()])
    await again.start()
    try:
        assert await again.fleet.ps() == []
    finally:
        await again.stop()


async def test_a_metering_proxy_that_cannot_listen_leaves_nothing_of_the_spend_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy refused its port: the start fails, and the account book it had started is
    stopped with the budgets before the ledger closes — no writer of it outlives the app."""

    async def refused(self: MeteringProxy) -> None:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(MeteringProxy, "start", refused)
    config = Config.default(tmp_path)
    app = App(config, clock=SystemClock(), environ={}, connectors=[FakeConnector()])
    with pytest.raises(OSError, match="Address already in use"):
        await app.start()
    await app.stop()
    left = [t for t in asyncio.all_tasks() if t.get_name() == "account-book"]
    assert all(t.done() for t in left), left
    monkeypatch.undo()
    again = App(config, clock=SystemClock(), environ={}, connectors=[FakeConnector()])
    await again.start()  # the state dir and the ledger were let go
    await again.stop()


async def test_a_reload_while_the_app_starts_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGHUP while the fleet is being started is refused as too early, not as a missing
    config file."""
    app = App(Config.default(tmp_path), clock=SystemClock(), environ={})
    said: list[str] = []
    fleet_phase = lifecycle.start_fleet

    async def starting(*args: Any, **kwargs: Any) -> Any:
        try:
            await app.reload_config()
        except CommandError as exc:
            said.append(str(exc))
        return await fleet_phase(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "start_fleet", starting)
    await app.start()
    await app.stop()
    assert said == ["Fleetwarden is still starting: reload the config once it runs"]
