"""Room keys an operator's client withholds from the bot on purpose: the real `fleetwarden
run` on a real Synapse says at once whose message it could not read and why, whether the
`m.room_key.withheld` notice comes after the message or before it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nio import ToDeviceMessage, ToDeviceResponse

from tests.integration.connectors.matrix.matrix_element import ElementWorld
from tests.integration.connectors.matrix.test_matrix_bot import (
    PASSWORD,
    BotProcess,
    _stop_stray_agents,
)
from tests.integration.connectors.matrix.test_matrix_e2ee import (
    Encrypted,
    ask,
    encrypted_room,
    joined,
)
from tests.matrix_e2ee_user import EncryptedUser
from tests.matrix_js_user import JsOperator
from tests.matrix_user import Event
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

KEY_WAIT = 120  # far longer than any report here may take: a withheld key is not waited for


class Withholding(Encrypted):
    """The encrypted world with nio operators, with the longer key wait."""

    def config(self) -> Path:
        return longer_wait(super().config())


class ElementWithholding(ElementWorld):
    """An operator in Element's client stack and the bot, with the longer key wait."""

    def config(self) -> Path:
        return longer_wait(super().config())


def longer_wait(path: Path) -> Path:
    """The config at ``path`` with a key wait far longer than any report here may take."""
    text = path.read_text().replace("key_wait_seconds: 4", f"key_wait_seconds: {KEY_WAIT}")
    path.write_text(text)
    return path


@pytest.fixture
async def withholding_world(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[Withholding]:
    async with encrypted_room(synapse, tmp_path, Withholding) as made:
        yield made


@pytest.fixture
def bots() -> Iterator[list[BotProcess]]:
    """The `fleetwarden run` processes a test started; each is stopped at its end."""
    started: list[BotProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()


async def start(world: Encrypted, bots: list[BotProcess]) -> None:
    """Start the bot and wait until it answered the operator (so each knows the other's
    device). A bot that failed to start says why."""
    process = BotProcess(world)
    bots.append(process)
    try:
        await joined(world.operator, world.room, world.bot)
    except AssertionError:
        if process.proc.poll() is not None and process.proc.stderr is not None:
            raise AssertionError(process.proc.stderr.read().decode()[-2000:]) from None
        raise
    await ask(world.operator, world.room, "!whoami", world.bot)


def leave_the_bot_out(op: EncryptedUser, room: str, bot: str) -> None:
    """The operator's client stops sharing room keys with the bot's device, and starts a new
    session for the room, as a client does when a device is left out."""
    for device in op.client.device_store.active_user_devices(bot):
        op.client.blacklist_device(device)
    olm = op.client.olm
    assert olm is not None
    olm.outbound_group_sessions.pop(room, None)


async def withhold(op: EncryptedUser, room: str, bot: str, code: str) -> None:
    """Send ``m.room_key.withheld`` for the room's current session to the bot's devices over
    `/sendToDevice`, in the wire format of the spec (as Element's crypto sends it)."""
    olm = op.client.olm
    assert olm is not None
    session = olm.outbound_group_sessions[room]
    content = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "code": code,
        "reason": "The sender disabled encrypting to unverified devices.",
        "room_id": room,
        "session_id": session.id,
        "sender_key": olm.account.identity_keys["curve25519"],
        "from_device": op.client.device_id,
    }
    for device in op.client.device_store.active_user_devices(bot):
        message = ToDeviceMessage("m.room_key.withheld", bot, device.id, content)
        sent = await op.client.to_device(message, str(uuid.uuid4()))
        assert isinstance(sent, ToDeviceResponse), sent


def notices(op: EncryptedUser, bot: str, words: str) -> list[Event]:
    return [e for e in op.events if e.sender == bot and words in e.body]


async def test_a_key_withheld_after_the_message_is_reported_at_once_in_clear(
    withholding_world: Encrypted, bots: list[BotProcess]
) -> None:
    """`m.unverified` after an unreadable `!ps`: the room is told within seconds (not after
    `key_wait_seconds`), in clear by default, naming the sender, the reason and the fix;
    a second message of that session adds no second notice."""
    op = withholding_world.operator
    await start(withholding_world, bots)
    leave_the_bot_out(op, withholding_world.room, withholding_world.bot)
    await op.say(withholding_world.room, "!ps")
    began = time.monotonic()
    await withhold(op, withholding_world.room, withholding_world.bot, "m.unverified")
    said = await op.wait_for(
        lambda _: notices(op, withholding_world.bot, "withheld its key"), within=30
    )
    took = time.monotonic() - began
    assert took < KEY_WAIT / 4, took
    text = said[0].body
    assert op.user_id in text and "not verified" in text and "Verify" in text, text
    assert "m.unverified" in text
    assert said[0].event_id not in op.decrypted and said[0].event_id not in op.unreadable
    # The same session again: no second notice. The bot's answer to a readable command
    # after it shows it read on meanwhile.
    await op.say(withholding_world.room, "!ps")
    for device in op.client.device_store.active_user_devices(withholding_world.bot):
        op.client.unblacklist_device(device)
    olm = op.client.olm
    assert olm is not None
    olm.outbound_group_sessions.pop(withholding_world.room, None)
    await ask(op, withholding_world.room, "!whoami", withholding_world.bot)
    assert len(notices(op, withholding_world.bot, "withheld its key")) == 1
    assert not notices(op, withholding_world.bot, "could not read")


async def test_a_key_withheld_before_the_message_is_reported_encrypted_when_set(
    withholding_world: Encrypted, bots: list[BotProcess]
) -> None:
    """`m.blacklisted` sent before its message (the order Element's crypto uses): the bot
    reports the message as soon as it sees it; `key_notices: encrypted` keeps the notice
    encrypted, and the operator's device reads it."""
    withholding_world.extra.append("key_notices: encrypted")
    op = withholding_world.operator
    await start(withholding_world, bots)
    leave_the_bot_out(op, withholding_world.room, withholding_world.bot)
    await op.client.share_group_session(withholding_world.room, ignore_unverified_devices=True)
    await withhold(op, withholding_world.room, withholding_world.bot, "m.blacklisted")
    began = time.monotonic()
    await op.say(withholding_world.room, "!ps")
    said = await op.wait_for(
        lambda _: notices(op, withholding_world.bot, "withheld its key"), within=30
    )
    assert time.monotonic() - began < KEY_WAIT / 4
    assert op.user_id in said[0].body and "blocked" in said[0].body, said[0].body
    assert said[0].event_id in op.decrypted


@pytest.fixture
async def element(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[ElementWorld]:
    """A bot account and an operator in Element's client stack (matrix-js-sdk, Rust crypto)
    with "Never send encrypted messages to unverified sessions" on, in an encrypted room."""
    bot = await synapse.register_async(f"bot{uuid.uuid4().hex[:8]}", PASSWORD)
    ann = await synapse.register_async(f"ann{uuid.uuid4().hex[:8]}", PASSWORD)
    try:
        async with JsOperator.start(
            synapse.base_url, ann.user_id, PASSWORD, workdir=tmp_path / "ann"
        ) as operator:
            await operator.set_blacklist_unverified(True)
            room = await operator.create_room(invite=[bot.user_id])
            world = ElementWithholding(synapse.base_url, bot.user_id, room, operator, tmp_path)
            yield world
    finally:
        _stop_stray_agents(tmp_path)


@pytest.mark.parametrize("encrypted", [False, True], ids=["clear", "encrypted"])
async def test_elements_withheld_key_is_reported_at_once_and_element_reads_it(
    element: ElementWorld, bots: list[BotProcess], encrypted: bool
) -> None:
    """Element's crypto withholds the key of `!ps` from the unverified bot (`m.unverified`):
    the bot says so within seconds, not after `key_wait_seconds`, and Element reads the
    notice — in clear by default (Element marks it "Not encrypted"), or decrypted with
    `key_notices: encrypted` — naming the operator, the reason and the fix."""
    if encrypted:
        element.extra.append("key_notices: encrypted")
    op = element.operator
    process = BotProcess(element)
    bots.append(process)
    await op.wait_member(element.room, element.bot, timeout=60)
    began = time.monotonic()
    sent = await op.send(element.room, "!ps")
    said = await op.wait_message(
        element.room, sender=element.bot, contains="withheld its key", timeout=40
    )
    assert time.monotonic() - began < KEY_WAIT / 4
    body = said["body"]
    assert op.user_id in body and "not verified" in body and "Verify" in body, body
    assert "m.unverified" in body
    assert said["encrypted"] is encrypted and said["decrypted"] is encrypted, said
    if not encrypted:
        assert (said["shield_colour"], said["shield_reason"]) == ("RED", "SENT_IN_CLEAR")
    mine = await op.messages(element.room)
    assert not any(m["reply_to"] == sent for m in mine if m["sender"] == element.bot)
