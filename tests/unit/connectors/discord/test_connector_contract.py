"""The connector contract (:mod:`tests.connector_contract`) against what runs without a
network: the fake connectors the router tests use (:mod:`tests.unit.chat_fakes`, with
threads and without) and the real Discord connector on simcord's in-process Discord."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import simcord

from connectors.base import EventId, InboundMessage, RoomId, ThreadId
from connectors.discord.config import DiscordConfig
from connectors.discord.connector import DiscordConnector
from connectors.discord.gateway import Gateway
from connectors.discord.outbound import MESSAGE_LIMIT
from fleet.ledger import Ledger
from tests.connector_contract import ConnectorContract, Harness, Posted
from tests.unit.chat_fakes import FakeConnector, ThreadedConnector
from tests.unit.discord_world import SETTLE_IDLE_SECONDS

ROOM = "!ops:example.org"
INBOUND_SECONDS = 2.0


class FakeHarness:
    """One of the router tests' fake connectors, in the one room it has."""

    def __init__(self, fake: FakeConnector) -> None:
        self.connector = self.fake = fake
        self.room = RoomId(ROOM)
        self.limit = fake.limit
        self.unknown_room = RoomId("!nowhere:example.org")
        self.unknown_event = EventId("$no-such-event")
        self._stream = aiter(fake.inbound())

    async def read(self, event_id: EventId) -> Posted:
        stored = self.fake.stored[event_id]
        return Posted(stored.text, stored.thread)

    async def person_says(self, text: str, thread: ThreadId | None = None) -> EventId:
        return self.fake.person_says(ROOM, text, thread=thread)

    async def person_reacts(self, event_id: EventId, key: str) -> None:
        self.fake.person_reacts(event_id, key)

    async def person_takes_back(self, event_id: EventId) -> None:
        self.fake.person_takes_back(event_id)

    async def inbound(self) -> InboundMessage:
        return await asyncio.wait_for(anext(self._stream), INBOUND_SECONDS)


class SimcordHarness:
    """The real Discord connector serving a discord.py client simcord connected."""

    limit = MESSAGE_LIMIT

    def __init__(
        self,
        env: simcord.Env,
        connector: DiscordConnector,
        control: simcord.ChannelHandle,
        ann: simcord.MemberActor,
    ) -> None:
        self.env = env
        self.connector = connector
        self.control = control
        self.ann = ann
        self.room = RoomId(str(control.id))
        self.unknown_room = RoomId("1")  # a snowflake no channel has
        self.unknown_event = EventId("2")
        self._stream = aiter(connector.inbound())
        self._sent: dict[EventId, Any] = {}  # the person's messages, as discord.py has them

    def _find(self, event_id: EventId) -> tuple[int, Any]:
        for channel, stored in self.env.backend.messages.items():  # simcord==3.2.1 internals
            if int(event_id) in stored:
                return channel, stored[int(event_id)]
        raise AssertionError(f"no message {event_id} in simcord's Discord")

    async def read(self, event_id: EventId) -> Posted:
        await self.env.settle(idle=SETTLE_IDLE_SECONDS)
        channel, message = self._find(event_id)
        thread = None if channel == self.control.id else ThreadId(str(channel))
        return Posted(str(message.content), thread)

    async def person_says(self, text: str, thread: ThreadId | None = None) -> EventId:
        assert thread is None, "the contract's person writes in the room"
        sent = await self.ann.send(self.control, text)
        self._sent[EventId(str(sent.id))] = sent
        return EventId(str(sent.id))

    async def person_reacts(self, event_id: EventId, key: str) -> None:
        [message] = [m for m in self.control.history() if m.id == int(event_id)]
        await self.ann.react(message, key)

    async def person_takes_back(self, event_id: EventId) -> None:
        await self.ann.delete(self._sent[event_id])

    async def inbound(self) -> InboundMessage:
        return await asyncio.wait_for(anext(self._stream), INBOUND_SECONDS)


class TestFakes(ConnectorContract):
    """Every clause of the contract, on the router tests' fakes."""

    @pytest.fixture(params=["fake", "fake-threads"])
    def harness(self, request: pytest.FixtureRequest) -> Harness:
        """Each fake, serving its one room."""
        if request.param == "fake":
            return FakeHarness(FakeConnector(rooms=[ROOM]))
        return FakeHarness(ThreadedConnector(rooms=[ROOM]))


class TestDiscordOnSimcord(ConnectorContract):
    """Every clause of the contract, on the real Discord connector over simcord."""

    @pytest.fixture
    async def harness(
        self, simcord_env: simcord.Env, simcord_bot: Gateway, ledger: Ledger
    ) -> SimcordHarness:
        """The connector serving the control channel of a fresh guild; ann writes there."""
        env = simcord_env
        guild = env.create_guild("Fleet")
        control = guild.create_text_channel("fleet-control")
        ann = guild.add_member(env.create_user("ann"))
        await env.settle(idle=SETTLE_IDLE_SECONDS)
        config = DiscordConfig(
            token_env="FLEETWARDEN_DISCORD_TOKEN", guild_id=guild.id, channel_id=control.id
        )
        connector = DiscordConnector(config, threads=ledger.chat, environ={})
        await connector.serve(simcord_bot)
        return SimcordHarness(env, connector, control, ann)
