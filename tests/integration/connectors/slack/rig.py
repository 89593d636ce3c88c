"""The real Slack connector (slack-bolt, slack-sdk) serving a channel of the fake Slack.

:func:`slack_rig` builds a fake workspace (:mod:`tests.fakes.slack`) with a control
channel and ann in it, serves it on loopback, starts the connector against it — Socket
Mode, or signed HTTP events on a free loopback port — and stops both on the way out,
pass or fail. The connector's ledger is a real one (its ChatStore holds the threads'
topics and claims events), opened in the test's directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.base import InboundMessage
from connectors.slack.config import API_BASE_ENV, SlackConfig
from connectors.slack.connector import SlackConnector
from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.timing.clock import Clock, SystemClock
from tests.fakes.slack import SlackServer, SlackWorld, slack_server
from tests.fakes.slack.client import need_schemas
from tests.postgres_server import free_port

INBOUND_SECONDS = 10.0
BOT_ENV = "FW_SLACK_BOT"
APP_ENV = "FW_SLACK_APP"
SECRET_ENV = "FW_SLACK_SECRET"


@dataclass
class Rig:
    """The world, its server, the connector serving its control channel, and ann."""

    world: SlackWorld
    server: SlackServer
    connector: SlackConnector
    ledger: Ledger
    channel: str
    ann: str
    stream: AsyncIterator[InboundMessage]

    async def next(self, within: float = INBOUND_SECONDS) -> InboundMessage:
        """The next message the connector hands over (failing after ``within`` seconds)."""
        message: InboundMessage = await asyncio.wait_for(anext(self.stream), within)
        return message

    async def nothing_more(self) -> None:
        """Nothing else was handed over: once the fake has nothing in flight, a marker
        ann writes is the next message."""
        await settle(self.world)
        marker = await self.world.person_says(self.ann, self.channel, "!marker")
        got = await self.next()
        assert (got.event_id, got.text) == (marker, "!marker"), f"handed over too: {got}"


async def settle(world: SlackWorld) -> None:
    """Wait until the fake has nothing in flight (deliveries, echoes, retries)."""
    for _ in range(200):
        pending = [task for task in world.tasks if not task.done()]
        if not pending:
            await asyncio.sleep(0)
            return
        await asyncio.wait(pending, timeout=5)
    raise AssertionError("the fake Slack never settled")


@asynccontextmanager
async def slack_rig(
    tmp_path: Path,
    *,
    mode: str = "socket",
    world: SlackWorld | None = None,
    clock: Clock | None = None,
    is_operator: Callable[[str, tuple[str, ...]], bool] | None = None,
    **settings: Any,
) -> AsyncIterator[Rig]:
    """The connector serving the fake's control channel; ``settings`` go to its config,
    ``clock`` and ``is_operator`` to the connector."""
    need_schemas()
    world = world or SlackWorld()
    ann = world.add_user("ann")
    channel = world.add_channel("fleet-control", members=[ann])
    ledger = await Ledger.connect(LedgerLocation(tmp_path / "ledger.db"), SystemClock())
    try:
        async with slack_server(world) as server:
            env = {
                BOT_ENV: world.bot_token,
                APP_ENV: world.app_token,
                SECRET_ENV: world.signing_secret,
                API_BASE_ENV: server.api_base,
            }
            fields: dict[str, Any] = {
                "bot_token_env": BOT_ENV,
                "app_token_env": APP_ENV,
                "channel_id": channel,
                "mode": mode,
                **settings,
            }
            if mode == "http":
                port = free_port()
                fields |= {"signing_secret_env": SECRET_ENV, "listen": f"127.0.0.1:{port}"}
                world.post_events_to(f"http://127.0.0.1:{port}/slack/events")
            connector = SlackConnector(
                SlackConfig.model_validate(fields),
                threads=ledger.chat,
                environ=env,
                is_operator=is_operator,
                clock=clock,
            )
            await connector.start()
            try:
                yield Rig(
                    world, server, connector, ledger, channel, ann, aiter(connector.inbound())
                )
            finally:
                await connector.stop()
    finally:
        await ledger.close()
