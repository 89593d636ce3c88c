"""The connector contract (:mod:`tests.connector_contract`) against the real connectors:
Matrix on a real Synapse, a person on matrix-nio; Discord's real client against the
project's fake Discord on loopback, whose REST answers are Discord's own."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from connectors.base import Connector, EventId, InboundMessage, RoomId, ThreadId
from connectors.discord.connector import DiscordConnector
from connectors.discord.outbound import MESSAGE_LIMIT
from connectors.matrix.messages.render import SPLIT_LIMIT
from tests.connector_contract import INBOUND_SECONDS, ConnectorContract, Harness, Posted
from tests.fakes.discord.server import FakeDiscord
from tests.integration.connectors.discord.test_discord_connector import TOKEN_ENV, Book, config
from tests.integration.connectors.matrix.test_matrix_connector import World, make_world
from tests.synapse_server import SynapseServer

pytestmark = pytest.mark.integration


class _Inbound:
    """The connector's stream read one message at a time, with a deadline."""

    def __init__(self, connector: Connector) -> None:
        self._stream = aiter(connector.inbound())

    async def next(self) -> InboundMessage:
        return await asyncio.wait_for(anext(self._stream), INBOUND_SECONDS)


class MatrixHarness:
    """The real Matrix connector serving a room on Synapse; the operator on matrix-nio."""

    limit = SPLIT_LIMIT

    def __init__(self, world: World, session: aiohttp.ClientSession) -> None:
        self.world = world
        self.connector = world.connector()
        self.room = RoomId(world.room)
        self.unknown_room = RoomId(f"!{secrets.token_hex(9)}:localhost")
        self.unknown_event = EventId(f"${secrets.token_urlsafe(32)}")
        self._http = session
        self._inbound = _Inbound(self.connector)

    async def _get(self, path: str) -> Any:
        token = self.world.operator.client.access_token
        async with self._http.get(
            self.world.homeserver + path, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def read(self, event_id: EventId) -> Posted:
        room = quote(self.room, safe="")
        event = quote(event_id, safe="")
        original = await self._get(f"/_matrix/client/v3/rooms/{room}/event/{event}")
        content = original["content"]
        edits = await self._get(
            f"/_matrix/client/v1/rooms/{room}/relations/{event}/m.replace?limit=1&dir=b"
        )
        text = str(content.get("body", ""))
        if edits["chunk"]:
            text = str(edits["chunk"][0]["content"]["m.new_content"]["body"])
        relation = content.get("m.relates_to") or {}
        thread = relation.get("event_id") if relation.get("rel_type") == "m.thread" else None
        return Posted(text, None if thread is None else ThreadId(thread))

    async def person_says(self, text: str, thread: ThreadId | None = None) -> EventId:
        return EventId(await self.world.operator.say(self.room, text, thread=thread))

    async def person_reacts(self, event_id: EventId, key: str) -> None:
        relation = {"rel_type": "m.annotation", "event_id": event_id, "key": key}
        await self.world.operator.say(
            self.room, "", event_type="m.reaction", content={"m.relates_to": relation}
        )

    async def person_takes_back(self, event_id: EventId) -> None:
        await self.world.operator.client.room_redact(self.room, event_id)

    async def inbound(self) -> InboundMessage:
        return await self._inbound.next()


class DiscordHarness:
    """The real Discord connector (discord.py) against the fake Discord on loopback."""

    limit = MESSAGE_LIMIT

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.connector = DiscordConnector(
            config(fake), threads=Book(), environ={TOKEN_ENV: fake.token}
        )
        self.room = RoomId(str(fake.control_channel_id))
        self.unknown_room = RoomId("1")  # a snowflake no channel has
        self.unknown_event = EventId("2")
        self._inbound = _Inbound(self.connector)
        fake.grant_role("ann", fake.add_role("operators"))

    def _find(self, event_id: EventId) -> tuple[int, str]:
        message = self.fake.stored(int(event_id))
        return message.channel_id, message.content

    async def read(self, event_id: EventId) -> Posted:
        channel, text = self._find(event_id)
        thread = None if channel == self.fake.control_channel_id else ThreadId(str(channel))
        return Posted(text, thread)

    async def person_says(self, text: str, thread: ThreadId | None = None) -> EventId:
        where = int(thread) if thread is not None else self.fake.control_channel_id
        posted = await self.fake.post_user_message(where, "ann", text)
        return EventId(str(posted.id))

    async def person_reacts(self, event_id: EventId, key: str) -> None:
        channel, _ = self._find(event_id)
        await self.fake.add_user_reaction(channel, int(event_id), "ann", key)

    async def person_takes_back(self, event_id: EventId) -> None:
        channel, _ = self._find(event_id)
        await self.fake.delete_user_message(channel, int(event_id))

    async def inbound(self) -> InboundMessage:
        return await self._inbound.next()


@pytest.fixture(
    params=[
        pytest.param("matrix-synapse", marks=pytest.mark.synapse),
        "discord-fake-server",
    ]
)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """Each real connector, started, serving its room."""
    if request.param == "matrix-synapse":
        synapse: SynapseServer = request.getfixturevalue("synapse")
        async with make_world(synapse, tmp_path) as world, aiohttp.ClientSession() as http:
            matrix = MatrixHarness(world, http)
            await matrix.connector.start()
            try:
                yield matrix
            finally:
                await matrix.connector.stop()
        return
    async with FakeDiscord() as fake:
        discord = DiscordHarness(fake)
        await discord.connector.start()
        try:
            yield discord
        finally:
            await discord.connector.stop()


class TestRealConnectors(ConnectorContract):
    """Every clause of the contract, on each real connector."""
