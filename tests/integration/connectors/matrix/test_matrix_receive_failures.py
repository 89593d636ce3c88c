"""Events received and not handled, with the real Matrix connector on a real Synapse: each
failure is logged with its event id and counted in ``/metrics``, the next event is still
handled, and a receive path that keeps failing is a problem in ``ps`` and on the
dashboard's fleet view — both where the handling raised and where the sync loop could
not take an event."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.app.serving import Serving
from bot.commands.handlers.overview import OverviewCommands, Standing
from bot.commands.specs import COMMANDS
from bot.dashboard.pages.metrics import Metrics, Snapshot
from bot.dashboard.pages.places import Places
from bot.dashboard.pages.views import PageSettings, Views
from connectors.base import Connector, InboundMessage
from connectors.matrix.connector import MatrixConnector
from connectors.matrix.inbound import translate
from connectors.receiving import KEEPS_FAILING, ReceiveFailures
from fleet.hosts.service import Hosts
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.fleet import FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores, page_stores
from tests.integration.connectors.matrix.test_matrix_connector import (
    PASSWORD_ENV,
    World,
    make_world,
    wait_for,
)
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

BROKEN = "!broken"  # a message whose handling raises


class Handling:
    """Stands for the router: records what it handled, raises for :data:`BROKEN`."""

    def __init__(self) -> None:
        self.handled: list[InboundMessage] = []

    async def handle(
        self, connector: Connector, message: InboundMessage, *, stopping: bool = False
    ) -> None:
        if message.text.startswith(BROKEN):
            raise RuntimeError(f"the ledger is locked ({message.text})")
        self.handled.append(message)


class Rig:
    """A real connector served as the app serves it, with the app's metrics, ``ps`` and
    dashboard fleet view over the same record of failures."""

    def __init__(self, world: World, tmp_path: Path) -> None:
        self.world = world
        self.metrics = Metrics()
        self.failures = ReceiveFailures(on_failure=self.metrics.receive_failed)
        self.serving = Serving(on_closed=lambda: None, failures=self.failures)
        self.handling = Handling()
        self.connector = MatrixConnector(
            world.config(),
            state=world.ledger.chat,
            clock=SystemClock(),
            environ={PASSWORD_ENV: world.password},
            state_dir=world.state_dir,
            role_of=lambda user: "operator" if user in world.operators else None,
            failures=self.failures,
        )
        clock = SystemClock()
        fleet = real_fleet(
            stores=fleet_stores(world.ledger),
            clock=clock,
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={},
                settings=FleetSettings(state_dir=tmp_path / "fleet"),
                environ={},
            ),
        )
        self.handlers = OverviewCommands(
            fleet=fleet,
            specs=COMMANDS,
            clock=clock,
            prefix="!",
            standing=Standing(self.failures.problems),
        )
        self.views = Views(
            stores=page_stores(world.ledger),
            fleet=fleet,
            budgets=None,
            places=Places(None, Hosts((), env={}, clock=clock)),
            clock=clock,
            pages=PageSettings(
                timezone=ZoneInfo("UTC"),
                connector_named=lambda name: None,
                orchestrator=lambda: "here",
                problems=self.failures.problems,
            ),
        )

    async def say(self, text: str) -> str:
        return await self.world.operator.say(self.world.room, text)

    def texts(self) -> list[str]:
        return [message.text for message in self.handling.handled]

    async def counted(self) -> float:
        """``fleetwarden_chat_receive_failures_total{connector="matrix"}`` as scraped."""

        async def no_usage(after: int) -> tuple[list[Any], int]:
            return [], after

        text = (await self.metrics.render(Snapshot(), no_usage)).decode()
        found = re.search(
            r'^fleetwarden_chat_receive_failures_total\{connector="matrix"\} (\S+)$', text, re.M
        )
        return float(found.group(1)) if found else 0.0

    async def ps(self) -> str:
        reply = await self.handlers.ps(None)  # type: ignore[arg-type]  # ps reads no request
        return reply.markdown


@pytest.fixture
async def receiving_rig(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[Rig]:
    async with make_world(synapse, tmp_path) as world:
        made = Rig(world, tmp_path)
        await made.serving.start([made.connector], made.handling)
        try:
            yield made
        finally:
            await made.serving.close()
            await made.serving.stop_connectors()


async def test_a_handler_that_raises_is_logged_counted_and_the_next_event_handled(
    receiving_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The failing event's id is in the log and /metrics counts it; the next one runs."""
    await receiving_rig.say("!hello")  # served: the bot is in the room
    await wait_for(lambda: "!hello" in receiving_rig.texts())
    with caplog.at_level(logging.ERROR, logger="connectors.receiving"):
        broken = await receiving_rig.say(BROKEN)
        await receiving_rig.say("!after")
        await wait_for(lambda: "!after" in receiving_rig.texts())
    assert any(broken in record.getMessage() for record in caplog.records)
    assert await receiving_rig.counted() == 1
    assert receiving_rig.failures.problems() == []  # once is not a problem yet
    assert "Problem" not in await receiving_rig.ps()


async def test_a_receive_path_that_keeps_failing_is_a_problem_until_it_works(
    receiving_rig: Rig,
) -> None:
    """Failures in a row show in ps and the fleet view naming the last event; a handled
    event clears them."""
    ids = [await receiving_rig.say(f"{BROKEN} {n}") for n in range(KEEPS_FAILING)]
    await wait_for(lambda: receiving_rig.failures.total("matrix") == KEEPS_FAILING)
    assert await receiving_rig.counted() == KEEPS_FAILING
    ps = await receiving_rig.ps()
    assert f"Problem: matrix: the last {KEEPS_FAILING} events received were not handled" in ps
    assert ids[-1] in ps
    fleet = await receiving_rig.views.fleet()
    assert len(fleet["problems"]) == 1 and ids[-1] in fleet["problems"][0]

    await receiving_rig.say("!fine")
    await wait_for(lambda: "!fine" in receiving_rig.texts())
    assert "Problem" not in await receiving_rig.ps()
    assert (await receiving_rig.views.fleet())["problems"] == []


async def test_an_event_the_sync_loop_cannot_take_is_skipped_and_reported(
    receiving_rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A translation that raises for one event fails that event only: it is logged with
    its id and counted, the events after it in the same sync are taken, the loop runs on."""
    real = translate.to_inbound

    def choking(event: dict[str, Any], *args: Any, **kwargs: Any) -> InboundMessage | None:
        if event.get("content", {}).get("body") == "!poison":
            raise KeyError("m.relates_to")
        made: InboundMessage | None = real(event, *args, **kwargs)
        return made

    monkeypatch.setattr(translate, "to_inbound", choking)
    with caplog.at_level(logging.ERROR, logger="connectors.receiving"):
        poison = await receiving_rig.say("!poison")
        await receiving_rig.say("!next")
        await wait_for(lambda: "!next" in receiving_rig.texts())
    assert any(poison in record.getMessage() for record in caplog.records)
    assert "!poison" not in receiving_rig.texts()
    assert await receiving_rig.counted() == 1
    await receiving_rig.say("!still")  # a later sync is taken too
    await wait_for(lambda: "!still" in receiving_rig.texts())
    assert (await receiving_rig.connector.health()).ok
