"""The Matrix connector against a real Synapse, with a real matrix-nio operator client."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import secrets
import stat
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    LogoutResponse,
    ProfileSetDisplayNameResponse,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomSendResponse,
    SyncResponse,
)

from connectors.base import EventId, InboundMessage, OutboundMessage, RoomId, ThreadId
from connectors.errors import ConnectorAuthError, RateLimited
from connectors.matrix.config import MatrixConfig
from connectors.matrix.connector import MatrixConnector
from connectors.matrix.inbound.sync import SyncLoop
from fleet.ledger.store import Ledger
from fleet.redaction.known import Secret
from fleet.redaction.redactor import Redactor
from fleet.timing.clock import SystemClock
from tests.counting_proxy import CountingProxy
from tests.synapse_server import Registered, SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

DEADLINE = 20.0
PASSWORD_ENV = "FW_TEST_MATRIX_PASSWORD"
TOKEN_ENV = "FW_TEST_MATRIX_TOKEN"
SYNC_PATH = "/_matrix/client/v3/sync"
SYNC_FILTER = {"room": {"timeline": {"limit": 100}}}
ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}


def unique(name: str) -> str:
    """A username no other test on the shared server uses."""
    return f"{name}-{secrets.token_hex(4)}"


async def wait_for(predicate: Callable[[], bool], deadline: float = DEADLINE) -> None:
    """Re-check ``predicate`` until it holds; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"not true within {deadline} s")
        await asyncio.sleep(0.02)


class Person:
    """Someone in Matrix using matrix-nio directly, the way an operator's client does."""

    def __init__(self, homeserver: str, user: Registered) -> None:
        self.user_id = user.user_id
        self.client = AsyncClient(
            homeserver, user.user_id, config=AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0)
        )
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.seen: list[dict[str, Any]] = []  # timeline events since watch(), with "room_id"
        self._since: str | None = None

    async def close(self) -> None:
        await self.client.close()

    async def create_room(
        self, invite: tuple[str, ...] = (), *, encrypted: bool = False, alias: str | None = None
    ) -> str:
        created = await self.client.room_create(
            invite=list(invite),
            alias=alias,
            initial_state=[ENCRYPTION] if encrypted else [],
        )
        assert isinstance(created, RoomCreateResponse), created
        return str(created.room_id)

    async def say(
        self,
        room: str,
        text: str,
        *,
        thread: str | None = None,
        mentions: list[str] | None = None,
        event_type: str = "m.room.message",
        content: dict[str, Any] | None = None,
    ) -> str:
        body: dict[str, Any] = content or {"msgtype": "m.text", "body": text}
        if thread is not None:
            body["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": thread},
            }
        if mentions is not None:
            body["m.mentions"] = {"user_ids": mentions}
        sent = await self.client.room_send(room, event_type, body)
        assert isinstance(sent, RoomSendResponse), sent
        return str(sent.event_id)

    async def watch(self) -> None:
        """Start recording timeline events from now on."""
        response = await self.client.sync(timeout=0, sync_filter=SYNC_FILTER)
        assert isinstance(response, SyncResponse), response
        self._since = response.next_batch

    async def wait_seen(
        self, predicate: Callable[[list[dict[str, Any]]], bool], deadline: float = DEADLINE
    ) -> list[dict[str, Any]]:
        """Sync until ``predicate(self.seen)`` holds; returns ``self.seen``."""
        end = time.monotonic() + deadline
        while not predicate(self.seen):
            if time.monotonic() > end:
                raise AssertionError(f"not seen within {deadline} s: {self.seen[-5:]}")
            response = await self.client.sync(
                timeout=200, since=self._since, sync_filter=SYNC_FILTER
            )
            assert isinstance(response, SyncResponse), response
            self._since = response.next_batch
            for room, info in response.rooms.join.items():
                self.seen.extend({**e.source, "room_id": room} for e in info.timeline.events)
        return self.seen

    async def membership_of(self, room: str, user: str) -> str | None:
        response = await self.client.room_get_state_event(room, "m.room.member", user)
        if not isinstance(response, RoomGetStateEventResponse):
            return None
        return str(response.content.get("membership"))


@dataclass
class World:
    """One test's bot account, operator, room and ledger on a homeserver."""

    homeserver: str
    bot: Registered
    password: str
    operator: Person
    room: str  # created by the operator, the bot invited
    ledger: Ledger
    state_dir: Path
    operators: set[str] = field(default_factory=set)

    def config(self, **overrides: Any) -> MatrixConfig:
        settings: dict[str, Any] = {
            "homeserver": self.homeserver,
            "user_id": self.bot.user_id,
            "password_env": PASSWORD_ENV,
            "rooms": (self.room,),
            "sync_timeout_seconds": 5,
        }
        settings.update(overrides)
        return MatrixConfig(**settings)

    def connector(
        self, config: MatrixConfig | None = None, environ: Mapping[str, str] | None = None
    ) -> MatrixConnector:
        return MatrixConnector(
            config or self.config(),
            state=self.ledger.chat,
            clock=SystemClock(),
            environ={PASSWORD_ENV: self.password} if environ is None else environ,
            state_dir=self.state_dir,
            role_of=lambda user: "operator" if user in self.operators else None,
        )


@asynccontextmanager
async def make_world(
    server: SynapseServer, tmp_path: Path, homeserver: str | None = None
) -> AsyncIterator[World]:
    password = secrets.token_urlsafe(12)
    bot = await server.register_async(unique("bot"), password)
    op = await server.register_async(unique("op"), "pw-op")
    operator = Person(homeserver or server.base_url, op)
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    try:
        room = await operator.create_room((bot.user_id,))
        yield World(
            homeserver or server.base_url,
            bot,
            password,
            operator,
            room,
            ledger,
            tmp_path / "state",
            {op.user_id},
        )
    finally:
        await operator.close()
        await ledger.close()


@dataclass
class Running:
    connector: MatrixConnector
    messages: list[InboundMessage]
    ended: asyncio.Event

    def texts(self) -> list[str]:
        return [message.text for message in self.messages]

    async def wait_text(self, text: str, deadline: float = DEADLINE) -> InboundMessage:
        await wait_for(lambda: text in self.texts(), deadline)
        return next(message for message in self.messages if message.text == text)


@asynccontextmanager
async def running(connector: MatrixConnector) -> AsyncIterator[Running]:
    """Start ``connector`` and collect its inbound messages until the block ends."""
    await connector.start()
    run = Running(connector, [], asyncio.Event())

    async def collect() -> None:
        async for message in connector.inbound():
            run.messages.append(message)
        run.ended.set()

    collector = asyncio.create_task(collect())
    try:
        yield run
    finally:
        await connector.stop()
        await asyncio.wait_for(collector, 10)


def png(width: int, height: int) -> bytes:
    """A small valid RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(b"\x00" + b"\x20\x80\xff" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# --- login -------------------------------------------------------------------------------


async def test_password_login_saves_the_session_and_reuses_it(
    world: World, synapse: SynapseServer
) -> None:
    """A password login saves session.json (0600); the next start reuses it without logging in."""
    async with running(world.connector()):
        pass
    path = world.state_dir / "matrix" / "session.json"
    saved = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert saved["user_id"] == world.bot.user_id
    assert saved["homeserver"] == world.homeserver
    logins = synapse.request_count("/_matrix/client/v3/login", "POST")

    async with running(world.connector()):
        pass
    assert json.loads(path.read_text()) == saved  # same device id and token
    assert synapse.request_count("/_matrix/client/v3/login", "POST") == logins


async def test_the_access_token_a_password_login_made_is_a_secret_to_redact(
    world: World,
) -> None:
    """The token a password login got (no variable holds it) is offered to the redactor."""
    connector = world.connector()
    assert connector.known_secrets() == []
    async with running(connector):
        saved = json.loads((world.state_dir / "matrix" / "session.json").read_text())
        assert connector.known_secrets() == [Secret(saved["access_token"], "Matrix access token")]
        text = f"token {saved['access_token']}"
        assert Redactor([connector]).redact(text) == "token [redacted: Matrix access token]"


async def test_a_wrong_password_is_an_auth_error(world: World) -> None:
    """A rejected password raises ConnectorAuthError naming the variable and the user."""
    connector = world.connector(environ={PASSWORD_ENV: "not-the-password"})
    with pytest.raises(ConnectorAuthError, match=f"{PASSWORD_ENV}.*{world.bot.user_id}"):
        await connector.start()
    await connector.stop()


async def test_a_missing_variable_is_an_auth_error(world: World) -> None:
    """An unset credential variable is reported by name and setting."""
    connector = world.connector(environ={})
    expected = f"environment variable {PASSWORD_ENV} (connectors.matrix.password_env) is not set"
    with pytest.raises(ConnectorAuthError, match=re.escape(expected)):
        await connector.start()
    await connector.stop()


async def test_token_login_checks_whose_token_it_is(world: World) -> None:
    """An access token logs in via whoami and joins a room by alias; a bad token or someone
    else's is refused, naming both users."""
    alias = unique("ops")
    room = await world.operator.create_room((world.bot.user_id,), alias=alias)
    config = world.config(
        password_env=None, access_token_env=TOKEN_ENV, rooms=(f"#{alias}:localhost",)
    )
    connector = world.connector(config, environ={TOKEN_ENV: world.bot.access_token})
    async with running(connector):
        health = await connector.health()
        assert health.ok, health.detail
        assert connector.home_room == room  # the alias resolved by joining
    assert not (await connector.health()).ok

    someone_else = world.connector(config, environ={TOKEN_ENV: "fake-wrong-matrix-token"})
    with pytest.raises(ConnectorAuthError, match=TOKEN_ENV):
        await someone_else.start()
    op_token = world.operator.client.access_token
    wrong_user = world.connector(config, environ={TOKEN_ENV: op_token})
    with pytest.raises(ConnectorAuthError) as raised:
        await wrong_user.start()
    assert world.operator.user_id in str(raised.value)
    assert world.bot.user_id in str(raised.value)


# --- inbound -----------------------------------------------------------------------------


async def test_messages_after_start_arrive_once_with_their_fields(world: World) -> None:
    """History before the first start is ignored; later messages arrive once, fully described."""
    op = world.operator
    await op.say(world.room, "before the bot started")
    bot = Person(world.homeserver, world.bot)
    try:
        assert isinstance(
            await bot.client.set_displayname("Fleet Warden"), ProfileSetDisplayNameResponse
        )
    finally:
        await bot.close()
    async with running(world.connector()) as run:
        event_id = await op.say(world.room, "hello bot")
        message = await run.wait_text("hello bot")
        assert message.connector == "matrix"
        assert message.sender == op.user_id
        assert message.room == world.room
        assert message.event_id == event_id
        assert message.thread_id is None
        assert not message.addressed
        assert message.timestamp.tzinfo is not None
        assert abs(time.time() - message.timestamp.timestamp()) < 60

        await op.say(world.room, "in the thread", thread=event_id)
        threaded = await run.wait_text("in the thread")
        assert threaded.thread_id == event_id

        localpart = world.bot.user_id[1:].split(":")[0]
        await op.say(world.room, f"{localpart}: !ps")
        assert (await run.wait_text("!ps")).addressed
        await op.say(world.room, f"{world.bot.user_id} status", mentions=[world.bot.user_id])
        assert (await run.wait_text("status")).addressed
        await op.say(world.room, "fleet warden, are you there?")
        assert (await run.wait_text("are you there?")).addressed
        await op.say(world.room, "a pill elsewhere", mentions=[world.bot.user_id])
        assert (await run.wait_text("a pill elsewhere")).addressed
        await op.say(world.room, "a notice", content={"msgtype": "m.notice", "body": "a notice"})

        await op.say(world.room, "marker")
        await run.wait_text("marker")
        assert run.texts().count("hello bot") == 1
        assert "before the bot started" not in run.texts()
        assert "a notice" not in run.texts()


async def test_a_restart_resumes_from_the_saved_token(world: World) -> None:
    """After a restart, messages already emitted are not emitted again; new ones are."""
    op = world.operator
    async with running(world.connector()) as run:
        await op.say(world.room, "first")
        await run.wait_text("first")
    await op.say(world.room, "while stopped")
    async with running(world.connector()) as run:
        await op.say(world.room, "after restart")
        await run.wait_text("after restart")
        assert run.texts() == ["while stopped", "after restart"]


async def test_the_token_is_saved_after_the_messages_are_handed_over(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync's token is saved in the background once its messages were handed over, without
    a stop; one never saved (the process died first) replays them at the next start: handed
    over at least once, never lost."""
    op = world.operator

    async def token() -> str | None:
        return await world.ledger.chat.get_connector_state("matrix", "next_batch")

    async with running(world.connector()) as run:
        await op.say(world.room, "first")
        await run.wait_text("first")
        seen = await token()
        await op.say(world.room, "second")
        await run.wait_text("second")
        end = time.monotonic() + DEADLINE
        while await token() == seen:  # saved by itself, the connector still running
            assert time.monotonic() < end, "the sync token was never saved"
            await asyncio.sleep(0.05)

    async def never(self: SyncLoop) -> None:
        """The process died before each save: the ledger never gets the token."""

    monkeypatch.setattr(SyncLoop, "_save_token", never)
    async with running(world.connector()) as run:
        await op.say(world.room, "before the crash")
        await run.wait_text("before the crash")
    monkeypatch.undo()
    async with running(world.connector()) as run:
        await op.say(world.room, "after it")
        await run.wait_text("after it")
        assert run.texts() == ["before the crash", "after it"]


async def test_bursts_while_stopped_all_arrive_in_order(
    world: World, synapse: SynapseServer
) -> None:
    """30 and then 120 messages sent while stopped all arrive, in order (the 120 via /messages).

    A stop that lands between queueing a sync's messages and saving its token replays
    them on the next start: the connector hands over at least once, and the router's
    processed-event claim in the ledger makes handling exactly once. So only this
    burst's messages are compared."""
    op = world.operator
    gap_path = f"/_matrix/client/v3/rooms/{world.room}/messages"

    async def burst(size: int) -> None:
        texts = [f"burst {size} #{n}" for n in range(size)]
        for text in texts:
            await op.say(world.room, text)
        async with running(world.connector()) as run:

            def this_burst() -> list[str]:
                return [t for t in run.texts() if t.startswith(f"burst {size} ")]

            await wait_for(lambda: len(this_burst()) >= size)
            assert this_burst() == texts

    async with running(world.connector()) as run:
        # One processed sync after the bot's join, so the saved token is past it.
        await op.say(world.room, "warm-up")
        await run.wait_text("warm-up")
    await burst(30)  # fits one sync's timeline (limit 100)
    assert synapse.request_count(gap_path) == 0  # nor did the first sync after the join
    await burst(120)  # the timeline is limited: the gap is read with /messages
    await wait_for(lambda: synapse.request_count(gap_path) >= 1)


async def test_with_encryption_off_encrypted_rooms_are_reported_and_not_served(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """With `encryption: off`, a configured encrypted room logs one plain error and is not
    served; undecryptable events in a served room are skipped (no key store, no requests)."""
    caplog.set_level(logging.INFO, logger="connectors.matrix")
    op = world.operator
    secret_room = await op.create_room((world.bot.user_id,), encrypted=True)
    config = world.config(rooms=(secret_room, world.room), encryption="off")
    async with running(world.connector(config)) as run:
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [
            f"matrix: room {secret_room} is end-to-end encrypted and this Fleetwarden is set "
            "to `encryption: off` — set `encryption: on` to serve encrypted rooms; not serving it"
        ]
        assert run.connector.home_room == world.room
        await op.say(secret_room, "in the encrypted room")
        ciphertext = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA", "sender_key": "k"}
        for _ in range(2):
            await op.say(world.room, "", event_type="m.room.encrypted", content=dict(ciphertext))
        await op.say(world.room, "marker")
        await run.wait_text("marker")
        assert run.texts() == ["marker"]
    assert not (world.state_dir / "matrix" / "crypto").exists()


# --- invites -----------------------------------------------------------------------------


async def test_an_operators_invite_is_accepted_and_kept(world: World) -> None:
    """The bot joins a room an operator invites it to, says hello, and serves it across restarts."""
    op = world.operator
    await op.watch()
    async with running(world.connector(world.config(rooms=()))) as run:
        assert run.connector.home_room is None
        room = await op.create_room((world.bot.user_id,))

        def said(e: dict[str, Any]) -> bool:
            return bool(e["room_id"] == room and e["type"] == "m.room.message")

        seen = await op.wait_seen(lambda events: any(said(e) for e in events))
        hello = next(e for e in seen if said(e))
        assert hello["sender"] == world.bot.user_id
        assert hello["content"]["body"] == "Hello — Fleetwarden is here. Type `!help`."
        assert hello["content"]["msgtype"] == "m.notice"
        await op.say(room, "in the invited room")
        assert (await run.wait_text("in the invited room")).room == room
    async with running(world.connector(world.config(rooms=()))) as run:
        await op.say(room, "after restart")
        await run.wait_text("after restart")


async def test_a_strangers_invite_is_declined(
    world: World, synapse: SynapseServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An invite from someone who is not an operator is rejected, and logged."""
    caplog.set_level(logging.INFO, logger="connectors.matrix")
    stranger = Person(synapse.base_url, await synapse.register_async(unique("eve"), "pw"))
    try:
        async with running(world.connector()):
            room = await stranger.create_room((world.bot.user_id,))
            for _ in range(200):
                if await stranger.membership_of(room, world.bot.user_id) == "leave":
                    break
                await asyncio.sleep(0.05)
            assert await stranger.membership_of(room, world.bot.user_id) == "leave"

            def declined() -> list[str]:
                return [r.getMessage() for r in caplog.records if "declined" in r.getMessage()]

            for _ in range(200):  # the leave is seen before the connector has said so
                if declined():
                    break
                await asyncio.sleep(0.05)
        assert declined() and stranger.user_id in declined()[0]
    finally:
        await stranger.close()


# --- outbound ----------------------------------------------------------------------------


async def test_a_long_code_block_reply_is_split_with_balanced_fences(world: World) -> None:
    """A 10,000-line code block arrives in several fence-balanced thread replies, nothing lost."""
    op = world.operator
    lines = [f"line {n:05d} of the build log: ok" for n in range(10_000)]
    markdown = "Build output:\n\n```text\n" + "\n".join(lines) + "\n```\n"
    async with running(world.connector()) as run:
        root = await op.say(world.room, "!build")
        await op.watch()
        result = await run.connector.send(
            OutboundMessage(
                room=RoomId(world.room),
                markdown=markdown,
                thread_id=ThreadId(root),
                in_reply_to=EventId(root),
            )
        )
        assert len(result.event_ids) > 1
        ids = set(result.event_ids)
        seen = await op.wait_seen(lambda events: ids <= {e["event_id"] for e in events})
    parts = [e for e in seen if e["event_id"] in ids]
    assert [e["event_id"] for e in parts] == list(result.event_ids)
    got: list[str] = []
    for event in parts:
        content = event["content"]
        assert content["msgtype"] == "m.notice"
        assert content["format"] == "org.matrix.custom.html"
        assert "<pre><code" in content["formatted_body"]
        relation = content["m.relates_to"]
        assert relation["rel_type"] == "m.thread" and relation["event_id"] == root
        assert len(json.dumps(content).encode()) < 65_536
        body_lines = content["body"].split("\n")
        fences = [line for line in body_lines if line.startswith("```")]
        assert len(fences) % 2 == 0, "a part leaves a code fence open"
        got.extend(line for line in body_lines if line.startswith("line "))
    assert got == lines
    assert parts[0]["content"]["m.relates_to"]["m.in_reply_to"] == {"event_id": root}


async def test_replies_and_thread_roots(world: World) -> None:
    """A plain reply carries m.in_reply_to; open_thread posts an unthreaded root."""
    op = world.operator
    async with running(world.connector()) as run:
        asked = await op.say(world.room, "!ps")
        await op.watch()
        answer = OutboundMessage(
            room=RoomId(world.room), markdown="**2** agents", in_reply_to=EventId(asked)
        )
        reply = await run.connector.send(answer)
        root = await run.connector.open_thread(RoomId(world.room), "agent a1", "a1 started")
        wanted = {reply.event_ids[0], root}
        seen = await op.wait_seen(lambda events: wanted <= {e["event_id"] for e in events})
    by_id = {e["event_id"]: e["content"] for e in seen}
    assert by_id[reply.event_ids[0]]["m.relates_to"] == {"m.in_reply_to": {"event_id": asked}}
    assert by_id[reply.event_ids[0]]["formatted_body"].strip() == "<p><strong>2</strong> agents</p>"
    assert by_id[root]["body"] == "a1 started"
    assert "m.relates_to" not in by_id[root]


async def test_images_are_uploaded_and_posted(world: World, tmp_path: Path) -> None:
    """send_image and OutboundMessage.images upload the PNG and post an m.image with its size."""
    picture = tmp_path / "chart.png"
    picture.write_bytes(png(7, 3))
    op = world.operator
    async with running(world.connector()) as run:
        thread = await op.say(world.room, "root")
        await op.watch()
        alone = await run.connector.send_image(RoomId(world.room), picture, ThreadId(thread))
        sent = await run.connector.send(
            OutboundMessage(room=RoomId(world.room), markdown="see:", images=(picture,))
        )
        wanted = {alone, *sent.event_ids}
        seen = await op.wait_seen(lambda events: wanted <= {e["event_id"] for e in events})
    by_id = {e["event_id"]: e["content"] for e in seen}
    image = by_id[alone]
    assert image["msgtype"] == "m.image"
    assert image["body"] == "chart.png"
    assert image["url"].startswith("mxc://")
    assert image["info"] == {"mimetype": "image/png", "size": len(png(7, 3)), "w": 7, "h": 3}
    assert image["m.relates_to"]["event_id"] == thread
    assert [by_id[e]["msgtype"] for e in sent.event_ids] == ["m.notice", "m.image"]


# --- failure -----------------------------------------------------------------------------


async def test_sends_are_retried_with_their_transaction_id(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    """Rate limits and lost responses are retried with the same transaction id, so each
    message is posted once; a rate limit that does not lift raises RateLimited."""
    limited = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": 50}
    async with (
        CountingProxy(synapse.base_url) as proxy,
        make_world(synapse, tmp_path, homeserver=proxy.url) as world,
        running(world.connector()) as run,
    ):
        send_prefix = f"/_matrix/client/v3/rooms/{world.room}/send/"

        def sends() -> list[str]:
            return [r.path for r in proxy.requests if r.path.startswith(send_prefix)]

        await world.operator.watch()
        room = RoomId(world.room)
        proxy.fail_next(send_prefix, method="PUT", status=429, body=limited, times=2)
        first = await run.connector.send(OutboundMessage(room=room, markdown="first"))
        assert len(sends()) == 3 and len(set(sends())) == 1

        # Synapse posts it, the answer is lost: the retry must not post it again.
        proxy.fail_next(send_prefix, method="PUT", status=502, forward=True)
        second = await run.connector.send(OutboundMessage(room=room, markdown="second"))
        assert len(sends()) == 5 and len(set(sends()[3:])) == 1

        proxy.fail_next(send_prefix, method="PUT", status=429, body=limited, times=5)
        with pytest.raises(RateLimited) as raised:
            await run.connector.send(OutboundMessage(room=room, markdown="third"))
        assert raised.value.retry_after == pytest.approx(0.05)

        await world.operator.say(world.room, "marker")
        seen = await world.operator.wait_seen(
            lambda events: any(e["content"].get("body") == "marker" for e in events)
        )
    bodies = [e["content"].get("body") for e in seen if e["sender"] == world.bot.user_id]
    assert bodies == ["first", "second"]
    ids = [e["event_id"] for e in seen if e["sender"] == world.bot.user_id]
    assert ids == [*first.event_ids, *second.event_ids]


async def test_a_rejected_token_ends_the_inbound_stream(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """When the homeserver stops accepting the bot's token, the inbound stream ends; the
    next start logs in with the password again, keeping the device id."""
    caplog.set_level(logging.INFO, logger="connectors.matrix")
    config = world.config(sync_timeout_seconds=1)
    async with running(world.connector(config)) as run:
        saved = json.loads((world.state_dir / "matrix" / "session.json").read_text())
        bot = AsyncClient(world.homeserver, world.bot.user_id)
        bot.restore_login(saved["user_id"], saved["device_id"], saved["access_token"])
        try:
            assert isinstance(await bot.logout(), LogoutResponse)
        finally:
            await bot.close()
        await asyncio.wait_for(run.ended.wait(), DEADLINE)
        assert any(
            r.levelno == logging.ERROR and "M_UNKNOWN_TOKEN" in r.getMessage()
            for r in caplog.records
        )
    async with running(world.connector(config)) as run:
        await world.operator.say(world.room, "logged in again")
        await run.wait_text("logged in again")
    renewed = json.loads((world.state_dir / "matrix" / "session.json").read_text())
    assert renewed["device_id"] == saved["device_id"]
    assert renewed["access_token"] != saved["access_token"]


async def test_sync_backs_off_while_the_homeserver_is_down(
    private_synapse: SynapseServer, tmp_path: Path
) -> None:
    """With the homeserver down the connector syncs at most once a second, then recovers."""
    async with (
        CountingProxy(private_synapse.base_url) as proxy,
        make_world(private_synapse, tmp_path, homeserver=proxy.url) as world,
        running(world.connector()) as run,
    ):
        await world.operator.say(world.room, "before the outage")
        await run.wait_text("before the outage")

        private_synapse.stop()
        down = time.monotonic()
        # The sync in flight fails at once, then retries come ~1, ~2.5, ~6, ~13 s later.
        # Down >= 8 s (~9.5 s with Synapse's start), so the ~13 s retry finds it up.
        await wait_for(
            lambda: (
                proxy.count(SYNC_PATH, since=down, status=502) >= 3 and time.monotonic() - down >= 8
            ),
            deadline=30,
        )
        outage = proxy.matching(SYNC_PATH, since=down)
        up = time.monotonic()
        assert len(outage) <= (up - down) + 1, [r.at - down for r in outage]
        arrivals = [r.at for r in outage]
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        assert min(gaps) >= 0.95, gaps
        assert not (await run.connector.health()).ok

        private_synapse.start()
        await world.operator.say(world.room, "after the outage")
        await run.wait_text("after the outage", deadline=45)
        health = await run.connector.health()
        assert health.ok, health.detail
        assert run.texts() == ["before the outage", "after the outage"]
