"""The Synapse test fixture: a real homeserver that real Matrix clients can use."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinedRoomsResponse,
    JoinResponse,
    LoginResponse,
    RoomCreateResponse,
    RoomMessageText,
    RoomSendResponse,
    RoomVisibility,
    SyncResponse,
    WhoamiResponse,
)

from tests.synapse_server import Registered, SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

DEADLINE = 15.0
# The default sync returns 10 events per room and marks the timeline limited.
SYNC_FILTER = {"room": {"timeline": {"limit": 100}}}
# Fail on the first 429 instead of nio's silent, endless retrying.
CLIENT_CONFIG = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0)


def unique(name: str) -> str:
    """A username no other test on the shared server uses."""
    return f"{name}-{secrets.token_hex(4)}"


@asynccontextmanager
async def client_for(server: SynapseServer, user: Registered) -> AsyncIterator[AsyncClient]:
    """A matrix-nio client logged in as ``user``, closed on exit."""
    client = AsyncClient(server.base_url, config=CLIENT_CONFIG)
    client.restore_login(user.user_id, user.device_id, user.access_token)
    try:
        yield client
    finally:
        await client.close()


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Re-check ``predicate`` until it holds; fail after ``DEADLINE`` seconds."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true within {DEADLINE} s")


async def test_message_reaches_the_invited_user(synapse: SynapseServer) -> None:
    """A message sent in a private room reaches the invited, joined user's sync."""
    alice = await synapse.register_async(unique("alice"), "pw-alice")
    bob = await synapse.register_async(unique("bob"), "pw-bob")
    async with client_for(synapse, alice) as a, client_for(synapse, bob) as b:
        created = await a.room_create(visibility=RoomVisibility.private, invite=[bob.user_id])
        assert isinstance(created, RoomCreateResponse), created
        room_id = created.room_id
        assert isinstance(await b.join(room_id), JoinResponse)
        first = await b.sync(timeout=0, sync_filter=SYNC_FILTER)
        assert isinstance(first, SyncResponse), first

        sent = await a.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "hello bob"}
        )
        assert isinstance(sent, RoomSendResponse), sent

        received: list[RoomMessageText] = []
        deadline = time.monotonic() + DEADLINE
        while not received and time.monotonic() < deadline:
            response = await b.sync(timeout=1000, sync_filter=SYNC_FILTER)
            assert isinstance(response, SyncResponse), response
            room = response.rooms.join.get(room_id)
            events = room.timeline.events if room is not None else []
            received += [e for e in events if isinstance(e, RoomMessageText)]
        assert [(e.sender, e.body, e.event_id) for e in received] == [
            (alice.user_id, "hello bob", sent.event_id)
        ]


async def test_rate_limits_do_not_trip(synapse: SynapseServer) -> None:
    """Thirty sends and eight password logins in a row all succeed (Synapse allows 10 and 5)."""
    name = unique("busy")
    user = await synapse.register_async(name, "pw-busy")
    login_path = "/_matrix/client/v3/login"
    logins_before = synapse.request_count(login_path, "POST")
    async with client_for(synapse, user) as client:
        created = await client.room_create(visibility=RoomVisibility.private)
        assert isinstance(created, RoomCreateResponse), created
        for n in range(30):
            content = {"msgtype": "m.text", "body": f"message {n}"}
            sent = await client.room_send(created.room_id, "m.room.message", content)
            assert isinstance(sent, RoomSendResponse), (n, sent)
    for n in range(8):
        fresh = AsyncClient(synapse.base_url, f"@{name}:localhost", config=CLIENT_CONFIG)
        try:
            assert isinstance(await fresh.login("pw-busy"), LoginResponse), n
        finally:
            await fresh.close()
    await wait_for(lambda: synapse.request_count(login_path, "POST") == logins_before + 8)


async def test_restart_keeps_users_and_tokens(private_synapse: SynapseServer) -> None:
    """After stop() and start() the same access token still works and rooms are kept."""
    server = private_synapse
    carol = server.register(unique("carol"), "pw-carol")
    async with client_for(server, carol) as client:
        created = await client.room_create(visibility=RoomVisibility.private)
        assert isinstance(created, RoomCreateResponse), created
    port = server.port

    server.stop()
    assert not server.running
    server.start()

    assert server.port == port
    async with client_for(server, carol) as client:
        whoami = await client.whoami()
        assert isinstance(whoami, WhoamiResponse), whoami
        assert whoami.user_id == carol.user_id
        rooms = await client.joined_rooms()
        assert isinstance(rooms, JoinedRoomsResponse), rooms
        assert rooms.rooms == [created.room_id]
