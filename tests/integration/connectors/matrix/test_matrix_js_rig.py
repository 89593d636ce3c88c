"""The matrix-js-sdk operator (Element's client stack, tests/matrix_js_user.py) against the real
Synapse: what it reports — shields, cross-signing, emoji verification — is what Element shows."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.matrix_js_user import REPO_ROOT, JsOperator, JsOperatorError, JsOperators
from tests.matrix_user import MatrixUser
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def js(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[JsOperators]:
    """``await js.new("ann")``: a fresh user's first js-sdk device; all stopped at the end."""
    async with JsOperators(synapse, tmp_path, PASSWORD) as operators:
        yield operators


async def test_two_operators_exchange_encrypted_messages_and_see_each_others_shield(
    js: JsOperators,
) -> None:
    """Two cross-signed js-sdk devices that never verified each other read each other's
    encrypted messages, threads too, with no shield (a device its owner signed), and are not
    verified."""
    ann = await js.new("ann")
    bob = await js.new("bob")
    assert ann.device_id and ann.user_id.startswith("@ann")
    assert await ann.master_key()
    room = await ann.create_room(invite=[bob.user_id])
    await bob.join(room)
    await ann.wait_member(room, bob.user_id)
    sent = await ann.send(room, "hello bob")
    pushed = await bob.wait_event("timeline", event_id=sent)
    assert (pushed["type"], pushed["sender"]) == ("m.room.encrypted", ann.user_id)
    seen = await bob.wait_message(room, sender=ann.user_id, contains="hello bob")
    assert seen["event_id"] == sent and seen["decrypted"] and seen["body"] == "hello bob"
    assert seen["sender_device"] == ann.device_id
    assert (seen["shield_colour"], seen["shield_reason"]) == ("NONE", None)
    reply = await bob.send(room, "hi ann", thread_root=sent)
    back = await ann.wait_message(room, sender=bob.user_id, thread_root=sent)
    assert back["event_id"] == reply and back["decrypted"] and back["body"] == "hi ann"
    assert back["shield_colour"] == "NONE"
    assert await ann.device_status(bob.user_id, bob.device_id) == {
        "signed_by_owner": True,
        "cross_signing_verified": False,
        "locally_verified": False,
        "verified": False,
    }
    status = await ann.user_status(bob.user_id)
    assert status["has_cross_signing_keys"] and not status["cross_signing_verified"]


async def test_a_device_its_owner_never_signed_shows_red_and_is_excluded_when_asked(
    js: JsOperators,
) -> None:
    """A device without cross-signing gets a red shield ("not verified by its owner"), which
    marking it verified by hand does not clear; with "exclude insecure devices" the other side
    withholds its key and drops its messages."""
    ann = await js.new("ann")
    bob = await js.new("bob", cross_sign=False)
    assert await bob.master_key() is None
    room = await ann.create_room(invite=[bob.user_id])
    await bob.join(room)
    await ann.wait_member(room, bob.user_id)
    await bob.send(room, "unsigned hello")
    seen = await ann.wait_message(room, sender=bob.user_id, contains="unsigned hello")
    assert (seen["shield_colour"], seen["shield_reason"]) == ("RED", "UNSIGNED_DEVICE")
    status = await ann.device_status(bob.user_id, bob.device_id)
    assert status is not None and not status["signed_by_owner"]
    await ann.set_device_verified(bob.user_id, bob.device_id)
    status = await ann.device_status(bob.user_id, bob.device_id)
    assert status is not None and status["locally_verified"] and not status["signed_by_owner"]
    await bob.send(room, "verified by hand")
    still = await ann.wait_message(room, sender=bob.user_id, contains="verified by hand")
    assert (still["shield_colour"], still["shield_reason"]) == ("RED", "UNSIGNED_DEVICE")
    await ann.set_isolation(only_signed=True)
    withheld = await ann.send(room, "not for unsigned devices")
    got = await bob.wait_message(room, sender=ann.user_id, include_undecryptable=True)
    assert got["event_id"] == withheld and not got["decrypted"]
    assert got["decryption_error"] == "MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE"
    late = await bob.send(room, "still unsigned")
    dropped = await ann.wait_message(
        room,
        sender=bob.user_id,
        exclude=[seen["event_id"], still["event_id"]],
        include_undecryptable=True,
    )
    assert dropped["event_id"] == late and dropped["decryption_error"] == "UNSIGNED_SENDER_DEVICE"


async def test_emoji_verification_between_two_people_verifies_them_by_cross_signing(
    js: JsOperators,
) -> None:
    """In-room SAS between two js-sdk users, both confirming the same seven emojis, ends done
    on both sides; each then sees the other, and the other's device, cross-signing verified, and
    "never send to unverified sessions" withholds the key only before it."""
    ann = await js.new("ann")
    bob = await js.new("bob")
    room = await ann.create_room(invite=[bob.user_id])
    await bob.join(room)
    await ann.wait_member(room, bob.user_id)
    # "Never send encrypted messages to unverified sessions": bob's device is not verified yet.
    await ann.set_blacklist_unverified(True)
    before = await ann.send(room, "before verifying")
    got = await bob.wait_message(room, sender=ann.user_id, include_undecryptable=True)
    assert got["event_id"] == before
    assert got["decryption_error"] == "MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE"
    await bob.wait_device_status(ann.user_id, ann.device_id)  # see the mismatch test
    vid = await ann.request_user_verification(bob.user_id, room)
    incoming = await bob.wait_verification_request(sender=ann.user_id)
    assert incoming["room_id"] == room and incoming["other_user"] == ann.user_id
    await bob.accept_verification(incoming["vid"])
    theirs = await ann.wait_sas(vid)
    mine = await bob.wait_sas(incoming["vid"])
    assert len(theirs) == 7 and theirs == mine
    await ann.sas_confirm(vid)
    await bob.sas_confirm(incoming["vid"])
    assert (await ann.wait_verification(vid))["phase"] == "done"
    assert (await bob.wait_verification(incoming["vid"]))["phase"] == "done"
    for me, other in ((ann, bob), (bob, ann)):
        await me.wait_user_status(other.user_id, cross_signing_verified=True)
    device = await ann.device_status(bob.user_id, bob.device_id)
    assert device is not None and device["cross_signing_verified"], device
    await bob.send(room, "verified now")
    seen = await ann.wait_message(room, sender=bob.user_id, contains="verified now")
    assert seen["shield_colour"] == "NONE", seen
    after = await ann.send(room, "after verifying")
    read = await bob.wait_message(room, sender=ann.user_id, contains="after verifying")
    assert read["event_id"] == after and read["decrypted"]


async def test_mismatched_emojis_cancel_the_verification(js: JsOperators) -> None:
    """ "They don't match" on one side cancels a to-device verification on both."""
    ann = await js.new("ann")
    bob = await js.new("bob")
    room = await ann.create_room(invite=[bob.user_id])
    await bob.join(room)
    await ann.wait_member(room, bob.user_id)
    # The Rust crypto drops a verification request (to-device, or in a room) from a device it
    # does not know yet, without a word: the receiver has to have fetched the sender's keys
    # first, as here.
    await bob.wait_device_status(ann.user_id, ann.device_id)
    vid = await ann.request_device_verification(bob.user_id, bob.device_id)
    incoming = await bob.wait_verification_request(sender=ann.user_id)
    assert incoming["other_device"] == ann.device_id and incoming["room_id"] is None
    await bob.accept_verification(incoming["vid"])
    assert await ann.wait_sas(vid) == await bob.wait_sas(incoming["vid"])
    await bob.sas_mismatch(incoming["vid"])
    done = await ann.wait_verification(vid)
    assert done["phase"] == "cancelled" and done["cancellation_code"] == "m.mismatched_sas"
    assert not (await ann.user_status(bob.user_id))["cross_signing_verified"]


async def test_a_new_device_signed_by_its_owner_is_trusted_by_who_verified_the_owner(
    js: JsOperators,
) -> None:
    """After ann verified bob, bob's second device is red until bob's first device signs it,
    then ann sees it cross-signing verified without verifying it herself."""
    ann = await js.new("ann")
    bob = await js.new("bob")
    room = await ann.create_room(invite=[bob.user_id])
    await bob.join(room)
    await ann.wait_member(room, bob.user_id)
    await bob.wait_device_status(ann.user_id, ann.device_id)  # see the mismatch test
    vid = await ann.request_user_verification(bob.user_id, room)
    incoming = await bob.wait_verification_request(sender=ann.user_id)
    await bob.accept_verification(incoming["vid"])
    await ann.wait_sas(vid)
    await bob.wait_sas(incoming["vid"])
    await ann.sas_confirm(vid)
    await bob.sas_confirm(incoming["vid"])
    await ann.wait_verification(vid)
    phone = await js.new(user_id=bob.user_id, cross_sign=False)
    assert phone.device_id != bob.device_id
    # ann learns of the new device through a sync: waited for, not read at once
    status = await ann.wait_device_status(bob.user_id, phone.device_id, signed_by_owner=False)
    assert status is not None and not status["signed_by_owner"]
    await bob.cross_sign_device(phone.device_id)
    status = await ann.wait_device_status(bob.user_id, phone.device_id, signed_by_owner=True)
    assert status == {
        "signed_by_owner": True,
        "cross_signing_verified": True,
        "locally_verified": False,
        "verified": True,
    }, status


async def test_a_new_session_verified_from_the_first_is_signed_by_its_owner(
    js: JsOperators,
) -> None:
    """A second device of bob asks to be verified, as a new Element login does; bob's first
    device accepts and both confirm the emojis; ann then sees the new device signed by bob."""
    ann = await js.new("ann")
    bob = await js.new("bob")
    room = await ann.create_room(invite=[bob.user_id])
    await bob.join(room)
    await ann.wait_member(room, bob.user_id)
    laptop = await js.new(user_id=bob.user_id)  # as a new Element login: the identity is kept
    assert (bob.cross_signing, laptop.cross_signing) == ("new", "existing")
    assert await laptop.master_key() == await bob.master_key()
    status = await ann.device_status(bob.user_id, laptop.device_id)
    assert status is not None and not status["signed_by_owner"]
    await bob.wait_device_status(bob.user_id, laptop.device_id)  # see the mismatch test
    vid = await laptop.request_own_verification()
    incoming = await bob.wait_verification_request(sender=bob.user_id)
    assert incoming["other_device"] == laptop.device_id
    await bob.accept_verification(incoming["vid"])
    emojis = await laptop.wait_sas(vid)
    assert emojis == await bob.wait_sas(incoming["vid"])
    await laptop.sas_confirm(vid)
    await bob.sas_confirm(incoming["vid"])
    assert (await laptop.wait_verification(vid))["phase"] == "done"
    await ann.wait_device_status(bob.user_id, laptop.device_id, signed_by_owner=True)
    assert await laptop.master_key() == await bob.master_key()


async def test_a_reset_identity_is_a_change_element_asks_to_approve(js: JsOperators) -> None:
    """bob logs in anew and resets his cross-signing identity: ann's client sees a new master
    key that needs her approval (Element's "identity was reset" warning) until she accepts it."""
    ann = await js.new("ann")
    bob = await js.new("bob")
    room = await ann.create_room(invite=[bob.user_id])
    await bob.join(room)
    await ann.wait_member(room, bob.user_id)
    first = await ann.master_key(bob.user_id)
    assert first == await bob.master_key()
    assert not (await ann.user_status(bob.user_id))["needs_user_approval"]
    again = await js.new(user_id=bob.user_id, reset_cross_signing=True)
    assert again.cross_signing == "reset"
    assert await again.master_key() not in (None, first)
    await ann.wait_user_status(bob.user_id, needs_user_approval=True)
    await ann.pin_identity(bob.user_id)
    await ann.wait_user_status(bob.user_id, needs_user_approval=False)


async def test_a_message_in_clear_in_an_encrypted_room_shows_not_encrypted(
    js: JsOperators, synapse: SynapseServer
) -> None:
    """A client without encryption posting in an encrypted room: the js-sdk operator reads
    it with Element's red "Not encrypted" padlock."""
    ann = await js.new("ann")
    made = await synapse.register_async(f"old{uuid.uuid4().hex[:8]}", PASSWORD)
    old = MatrixUser(synapse.base_url, made.user_id, made.device_id, made.access_token)
    try:
        room = await ann.create_room(invite=[old.user_id])
        await old.join(room)
        sent = await old.say(room, "hello in clear")
        seen = await ann.wait_message(room, sender=old.user_id, contains="in clear")
    finally:
        await old.close()
    assert seen["event_id"] == sent and not seen["encrypted"] and not seen["decrypted"]
    assert (seen["shield_colour"], seen["shield_reason"]) == ("RED", "SENT_IN_CLEAR")


async def test_a_wrong_password_fails_the_start_and_leaves_no_process(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    """The homeserver's refusal is the error, and the Node process is gone."""
    made = await synapse.register_async(f"ann{uuid.uuid4().hex[:8]}", PASSWORD)
    with pytest.raises(JsOperatorError, match="login: Invalid username or password"):
        await JsOperator.start(synapse.base_url, made.user_id, "wrong", workdir=tmp_path / "w")
    assert not _node_processes_under(tmp_path)


_ORPHAN_SCRIPT = """
import asyncio, sys
from pathlib import Path
from tests.matrix_js_user import JsOperator

async def main():
    home, user, password, workdir = sys.argv[1:]
    operator = await JsOperator.start(home, user, password, workdir=Path(workdir))
    print(operator.device_id, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_the_node_process_dies_with_the_process_that_started_it(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    """A test run killed with SIGKILL leaves no js-sdk operator running."""
    made = await synapse.register_async(f"ann{uuid.uuid4().hex[:8]}", PASSWORD)
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _ORPHAN_SCRIPT,
        synapse.base_url,
        made.user_id,
        PASSWORD,
        str(tmp_path / "orphan"),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None
        device = await asyncio.wait_for(parent.stdout.readline(), 60)
        assert device.strip(), "the operator never logged in"
        assert _node_processes_under(tmp_path)
    finally:
        parent.kill()
        await parent.wait()
    deadline = time.monotonic() + 10
    while _node_processes_under(tmp_path):
        assert time.monotonic() < deadline, "the node process outlived its parent"
        await asyncio.sleep(0.05)


def _node_processes_under(directory: Path) -> list[int]:
    """Live Node operator processes whose command line names ``directory``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (
            state != "Z"
            and any(str(directory).encode() in arg for arg in cmdline)
            and any(arg.endswith(b"operator.mjs") for arg in cmdline)
        ):
            found.append(int(entry.name))
    return found
