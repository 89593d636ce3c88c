"""End-to-end encrypted rooms, as Element makes them by default: the real `fleetwarden run`
on a real Synapse, used by operators whose matrix-nio clients have encryption on."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from tests.integration.connectors.matrix.test_matrix_bot import (
    PASSWORD,
    BotProcess,
    _stop_stray_agents,
    serving,
)
from tests.integration.connectors.matrix.test_matrix_bot import joined as joined_once
from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.matrix_e2ee_user import EncryptedUser
from tests.matrix_user import Event
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]


@dataclass
class Encrypted:
    """A bot account, an operator and a stranger (both with encryption on), a viewer, and an
    encrypted control room the three people are in."""

    homeserver: str
    bot: str
    room: str
    operator: EncryptedUser
    stranger: EncryptedUser
    viewer: EncryptedUser
    workdir: Path
    extra: list[str] = field(default_factory=list)

    def head(self) -> str:
        """A config's head: the operator and the viewer, and the bot in the encrypted room
        (its password in ``FW_BOT_PASSWORD``); the rest of ``connectors.matrix`` may follow."""
        return (
            "state_dir: ./state\n"
            "operators:\n"
            f"  - {{id: '{self.operator.user_id}', role: operator}}\n"
            f"  - {{id: '{self.viewer.user_id}', role: viewer}}\n"
            "connectors:\n"
            "  matrix:\n"
            f"    homeserver: {self.homeserver}\n"
            f"    user_id: '{self.bot}'\n"
            "    password_env: FW_BOT_PASSWORD\n"
            f"    rooms: ['{self.room}']\n"
            "    sync_timeout_seconds: 5\n"
            "    key_wait_seconds: 4\n"
        )

    def config(self) -> Path:
        path = self.workdir / "fleetwarden.yaml"
        path.write_text(self.head() + "".join(f"    {line}\n" for line in self.extra))
        return path

    def crypto_dir(self) -> Path:
        return self.workdir / "state" / "matrix" / "crypto"


World = TypeVar("World", bound=Encrypted)


async def person(synapse: SynapseServer, name: str, store: Path) -> EncryptedUser:
    made = await synapse.register_async(f"{name}{uuid.uuid4().hex[:8]}", PASSWORD)
    user = EncryptedUser(synapse.base_url, made.user_id, made.device_id, made.access_token, store)
    await user.sync_once(0)  # uploads its device keys
    return user


@contextlib.asynccontextmanager
async def encrypted_room(
    synapse: SynapseServer, workdir: Path, make: type[World] = Encrypted
) -> AsyncIterator[World]:
    """A bot account and three people in a new encrypted room (see :class:`Encrypted`);
    their clients are closed and stray agents stopped at the end, whatever happened."""
    bot = await synapse.register_async(f"bot{uuid.uuid4().hex[:8]}", PASSWORD)
    operator = await person(synapse, "ann", workdir / "ann")
    stranger = await person(synapse, "mallory", workdir / "mallory")
    viewer = await person(synapse, "vic", workdir / "vic")
    try:
        room = await operator.create_room(invite=(bot.user_id, stranger.user_id, viewer.user_id))
        await stranger.join(room)
        await viewer.join(room)
        yield make(synapse.base_url, bot.user_id, room, operator, stranger, viewer, workdir)
    finally:
        for user in (operator, stranger, viewer):
            await user.close()
        _stop_stray_agents(workdir)


@pytest.fixture
async def encrypted_world(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[Encrypted]:
    async with encrypted_room(synapse, tmp_path) as made:
        yield made


@pytest.fixture
async def e2ee_bot(encrypted_world: Encrypted) -> AsyncIterator[BotProcess]:
    async with serving(encrypted_world) as process:
        yield process


async def joined(user: EncryptedUser, room: str, bot: str) -> None:
    """Wait until ``bot`` has joined ``room`` (a fresh start makes its device keys first:
    up to a minute)."""
    await joined_once(user, room, bot, within=60)


def bots_reply(user: EncryptedUser, sent: str, bot: str) -> list[Event]:
    return [e for e in user.events if e.sender == bot and e.reply_to == sent]


async def ask(user: EncryptedUser, room: str, text: str, bot: str, **kw: str) -> Event:
    sent = await user.say(room, text, **kw)
    replies = await user.wait_for(lambda _: bots_reply(user, sent, bot), within=40)
    return replies[0]  # type: ignore[no-any-return]


def cli(world: Encrypted, *args: str) -> subprocess.CompletedProcess[str]:
    """`fleetwarden ARGS --config …` on the world's config, to its end (at most a minute)."""
    return subprocess.run(
        [str(FLEETWARDEN), *args, "--config", str(world.config())],
        cwd=world.workdir,
        env=clean_env(FW_BOT_PASSWORD=PASSWORD),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_commands_and_threads_are_answered_encrypted_and_readable(
    encrypted_world: Encrypted, e2ee_bot: BotProcess
) -> None:
    op = encrypted_world.operator
    reply = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
    assert reply.event_id in op.decrypted  # sent encrypted, and the operator could read it
    assert "operator" in reply.body
    await op.say(encrypted_world.room, "!spawn e1 --runtime stub --prompt hi")
    root: Event = (
        await op.wait_for(lambda evs: [e for e in evs if "Agent **e1** started" in e.body])
    )[0]
    assert root.event_id in op.decrypted
    # The agent's thread: what is asked and answered there is encrypted too.
    answer = await ask(
        op, encrypted_world.room, "!logs e1", encrypted_world.bot, thread=root.event_id
    )
    assert answer.thread_root == root.event_id
    assert answer.event_id in op.decrypted
    assert "stub: working on: hi" in answer.body
    await op.say(encrypted_world.room, "still there?", thread=root.event_id)
    fed = await op.wait_for(
        lambda evs: [e for e in evs if "stub: received: still there?" in e.body], within=40
    )
    assert fed[0].event_id in op.decrypted and fed[0].thread_root == root.event_id
    # Nothing the bot sent in the room went in clear.
    mine = [
        e for e in op.events if e.sender == encrypted_world.bot and e.room == encrypted_world.room
    ]
    assert mine and all(e.event_id in op.decrypted for e in mine if e.type == "m.room.message"), [
        e.body[:60] for e in mine if e.event_id not in op.decrypted
    ]


async def test_a_strangers_device_never_gets_a_room_key(
    encrypted_world: Encrypted, e2ee_bot: BotProcess
) -> None:
    op, stranger = encrypted_world.operator, encrypted_world.stranger
    reply = await ask(op, encrypted_world.room, "!help", encrypted_world.bot)
    await stranger.wait_for(lambda evs: any(e.event_id == reply.event_id for e in evs))
    assert reply.event_id in stranger.unreadable
    assert stranger.room_keys_from(encrypted_world.bot) == 0
    # The viewer may read the room: their device got the key.
    await encrypted_world.viewer.wait_for(
        lambda evs: any(e.event_id == reply.event_id for e in evs)
    )
    assert reply.event_id in encrypted_world.viewer.decrypted


async def test_after_a_restart_the_same_device_answers_encrypted(
    encrypted_world: Encrypted, e2ee_bot: BotProcess
) -> None:
    op = encrypted_world.operator
    await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
    e2ee_bot.terminate()
    store = sorted(encrypted_world.crypto_dir().glob("*.db"))
    assert len(store) == 1 and store[0].stat().st_mode & 0o777 == 0o600
    assert encrypted_world.crypto_dir().stat().st_mode & 0o777 == 0o700
    again = BotProcess(encrypted_world)
    try:
        reply = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
        assert reply.event_id in op.decrypted
        assert sorted(encrypted_world.crypto_dir().glob("*.db")) == store  # no new device
    finally:
        again.kill()


async def test_a_message_the_bot_cannot_decrypt_is_asked_for_then_reported(
    encrypted_world: Encrypted, e2ee_bot: BotProcess
) -> None:
    """The operator's client withholds its room key from the bot's device: the bot asks
    for it, and when it never comes says whose message it could not read."""
    op = encrypted_world.operator
    await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
    for device in op.client.device_store.active_user_devices(encrypted_world.bot):
        op.client.blacklist_device(device)
    await op.say(encrypted_world.room, "!ps")
    said = await op.wait_for(
        lambda evs: [
            e for e in evs if e.sender == encrypted_world.bot and "could not read" in e.body
        ],
        within=60,
    )
    assert op.user_id in said[0].body


async def test_a_corrupt_crypto_store_stops_the_start_with_how_to_reset(
    encrypted_world: Encrypted, e2ee_bot: BotProcess
) -> None:
    op = encrypted_world.operator
    await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
    e2ee_bot.terminate()
    (store,) = encrypted_world.crypto_dir().glob("*.db")
    store.write_bytes(b"this is not a database" * 100)
    done = await asyncio.to_thread(cli, encrypted_world, "run")
    assert done.returncode != 0
    assert "crypto store" in done.stderr and "move" in done.stderr, done.stderr
    assert PASSWORD not in done.stderr


async def test_a_lost_store_means_a_new_device_announced_in_the_room(
    encrypted_world: Encrypted, e2ee_bot: BotProcess
) -> None:
    op = encrypted_world.operator
    await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
    e2ee_bot.terminate()
    (old,) = encrypted_world.crypto_dir().glob("*.db")
    old.unlink()
    again = BotProcess(encrypted_world)
    try:
        said = await op.wait_for(
            lambda evs: [
                e for e in evs if e.sender == encrypted_world.bot and "new device" in e.body
            ],
            within=60,
        )
        assert said[0].event_id in op.decrypted
        reply = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
        assert reply.event_id in op.decrypted
        (new,) = encrypted_world.crypto_dir().glob("*.db")
        assert new.name != old.name
    finally:
        again.kill()


async def test_a_viewers_invite_is_declined_an_operators_is_judged_after_joining(
    encrypted_world: Encrypted, e2ee_bot: BotProcess
) -> None:
    viewer, op = encrypted_world.viewer, encrypted_world.operator
    theirs = await viewer.create_room(invite=(encrypted_world.bot,))
    await viewer.wait_for(lambda _: viewer.left.get(theirs) == encrypted_world.bot, within=30)
    ours = await op.create_room(invite=(encrypted_world.bot,))
    hello = await op.wait_for(
        lambda evs: [
            e
            for e in evs
            if e.room == ours and e.sender == encrypted_world.bot and "Hello" in e.body
        ],
        within=30,
    )
    assert hello[0].event_id in op.decrypted


async def test_with_trust_verified_only_a_device_an_admin_verified_gets_keys(
    encrypted_world: Encrypted,
) -> None:
    """`trust: verified`: the operator's device gets no room key and its command is not
    taken — the bot says why in clear, so that this very device can read it;
    `fleetwarden matrix trust` with its key lets it read what the bot says next. `fleetwarden
    matrix device` shows the session key the operator's client sees for the bot."""
    encrypted_world.extra.append("trust: verified")
    op = encrypted_world.operator
    process = BotProcess(encrypted_world)
    try:
        await joined(op, encrypted_world.room, encrypted_world.bot)
        await op.say(encrypted_world.room, "!whoami")
        device = str(op.client.device_id)
        refused = await op.wait_for(
            lambda evs: [
                e
                for e in evs
                if e.sender == encrypted_world.bot
                and e.body.startswith("Not taken")
                and device in e.body
            ],
            within=40,
        )
        assert refused[0].event_id not in op.decrypted  # in clear: this device reads it
        olm = op.client.olm
        assert olm is not None
        key = str(olm.account.identity_keys["ed25519"])
        done = await asyncio.to_thread(
            cli, encrypted_world, "matrix", "trust", op.user_id, op.client.device_id, key
        )
        assert done.returncode == 0, done.stderr
        reply = await ask(op, encrypted_world.room, "!whoami", encrypted_world.bot)
        assert reply.event_id in op.decrypted
        shown = await asyncio.to_thread(cli, encrypted_world, "matrix", "device")
        assert shown.returncode == 0, shown.stderr
        (device,) = op.client.device_store.active_user_devices(encrypted_world.bot)
        assert device.id in shown.stdout
        assert device.ed25519 == shown.stdout.split("session key:")[1].split("\n")[0].replace(
            " ", ""
        )
    finally:
        process.kill()
