"""Emoji verification of the real `fleetwarden run` from Element's own client stack
(matrix-js-sdk 37.5, Rust crypto, cross-signed as Element sets up at a first login) on a real
Synapse, the emojis compared through `fleetwarden matrix verify`."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from connectors.matrix.encryption.signing import cross_signing_public, identities, verified
from tests.integration.connectors.matrix.matrix_element import ElementWorld, bot, element
from tests.integration.connectors.matrix.test_matrix_bot import PASSWORD, BotProcess
from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.matrix_js_user import JsOperator
from tests.matrix_sas_user import keys_of
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]
__all__ = ["bot", "element"]  # fixtures


def verify_cli(world: ElementWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), "matrix", "verify", *args, "--config", str(world.config())],
        cwd=world.workdir,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def listed(world: ElementWorld, within: float = 30.0) -> tuple[str, list[str]]:
    """`fleetwarden matrix verify` once it lists emojis: (id, their names)."""
    deadline = time.monotonic() + within
    while True:
        shown = verify_cli(world)
        assert shown.returncode == 0, shown.stderr
        found = re.search(r"^(\w{6}) .*\n  emojis: +(.*)$", shown.stdout, re.M)
        if found:
            return found.group(1), re.findall(r"\S+ (\w[\w ]*?)(?=   |$)", found.group(2))
        assert time.monotonic() < deadline, shown.stdout
        time.sleep(0.2)  # polling a file another process writes; bounded by the deadline


async def signed_by_bot(world: ElementWorld) -> bool:
    """Whether the operator's master key carries the bot's user-signing signature (only
    the signer is shown it: the bot's account asks)."""
    answer = await keys_of(world.homeserver, world.bot_token, world.operator.user_id)
    identity = identities(answer).get(world.operator.user_id)
    bots = await keys_of(world.homeserver, world.bot_token, world.bot)
    usk = cross_signing_public(bots["user_signing_keys"][world.bot])
    assert usk is not None
    return identity is not None and verified(identity.master, world.bot, usk)


async def confirmed(world: ElementWorld, vid: str) -> None:
    """The same emojis on both sides; the admin's yes, then the operator's."""
    op = world.operator
    emojis = await op.wait_sas(vid)
    sid, names = listed(world)
    assert names == [name for _, name in emojis]
    answered = verify_cli(world, sid, "yes")
    assert answered.returncode == 0, answered.stderr
    await op.sas_confirm(vid)
    done = await op.wait_verification(vid)
    assert done["phase"] == "done", done


async def test_verify_user_in_a_dm_confirmed_through_the_cli(
    element: ElementWorld, bot: BotProcess
) -> None:
    """Element's "Verify" on the bot's profile (a request in a DM): the emojis the CLI shows
    are Element's, and after the admin's yes Element shows the bot verified and the bot
    has signed the operator's master key."""
    op = element.operator
    dm = await op.create_room(invite=[element.bot])
    vid = await op.request_user_verification(element.bot, dm)
    await confirmed(element, vid)
    status = await op.wait_user_status(element.bot, cross_signing_verified=True)
    assert status["verified"], status
    deadline = time.monotonic() + 20
    while not await signed_by_bot(element):
        assert time.monotonic() < deadline, "the bot never signed the operator's master key"
    trust = json.loads((element.workdir / "state/matrix/crypto/trust.json").read_text())
    assert trust["identities"][op.user_id]["master"] == await op.master_key()


async def test_verify_session_by_to_device_events(element: ElementWorld, bot: BotProcess) -> None:
    """Element's "Verify session" on the bot's device (to-device events) ends the same way."""
    op = element.operator
    devices = await op.user_devices(element.bot)
    assert len(devices) == 1
    vid = await op.request_device_verification(element.bot, devices[0]["device_id"])
    await confirmed(element, vid)
    await op.wait_user_status(element.bot, cross_signing_verified=True)
    deadline = time.monotonic() + 20
    while not await signed_by_bot(element):
        assert time.monotonic() < deadline


async def test_the_admins_no_cancels_and_signs_nothing(
    element: ElementWorld, bot: BotProcess
) -> None:
    """A mismatch answered through the CLI cancels with m.mismatched_sas; nothing signed."""
    op = element.operator
    vid = await op.request_user_verification(element.bot, element.room)
    await op.wait_sas(vid)
    sid, _ = listed(element)
    assert verify_cli(element, sid, "no").returncode == 0
    done = await op.wait_verification(vid)
    assert done["phase"] == "cancelled" and done["cancellation_code"] == "m.mismatched_sas", done
    assert not (await op.user_status(element.bot))["cross_signing_verified"]
    assert not await signed_by_bot(element)


async def test_a_strangers_request_is_refused(
    element: ElementWorld, bot: BotProcess, synapse: SynapseServer
) -> None:
    """A user without a role, in the bot's room, gets m.user before any emoji exists; the
    CLI lists nothing."""
    async with JsOperator.start(
        synapse.base_url, element.stranger, PASSWORD, workdir=element.workdir / "mallory"
    ) as stranger:
        await element.operator.invite(element.room, element.stranger)
        await stranger.join(element.room)
        vid = await stranger.request_user_verification(element.bot, element.room)
        done = await stranger.wait_verification(vid)
    assert done["phase"] == "cancelled" and done["cancellation_code"] == "m.user", done
    assert verify_cli(element).stdout.startswith("No verification is waiting")


async def test_after_sas_a_new_cross_signed_device_is_obeyed_under_trust_verified(
    element: ElementWorld, synapse: SynapseServer
) -> None:
    """Under `trust: verified`, the operator's device is not obeyed until they verify the
    bot by emojis; then a new device they sign themselves is obeyed with no shell step."""
    element.extra = ["trust: verified"]
    op = element.operator
    process = BotProcess(element)
    try:
        await op.wait_member(element.room, element.bot, timeout=60)
        # Until then its device gets none of the bot's room keys: what the bot says is unreadable.
        said = await op.wait_message(
            element.room, sender=element.bot, include_undecryptable=True, timeout=40
        )
        assert not said["decrypted"], said
        vid = await op.request_user_verification(element.bot, element.room)
        await confirmed(element, vid)
        sent = await op.send(element.room, "!whoami")
        reply = await op.wait_message(element.room, sender=element.bot, reply_to=sent, timeout=40)
        assert "operator" in reply["body"] and reply["decrypted"], reply
        async with JsOperator.start(
            synapse.base_url,
            op.user_id,
            PASSWORD,
            workdir=element.workdir / "ann2",
            cross_sign=False,
            device_name="Element on a new laptop",
        ) as laptop:
            # Element's existing session learns of the new one, then signs it.
            await op.wait_device_status(op.user_id, laptop.device_id, signed_by_owner=False)
            await op.cross_sign_device(laptop.device_id)
            await laptop.wait_member(element.room, element.bot)
            sent = await laptop.send(element.room, "!whoami")
            reply = await laptop.wait_message(
                element.room, sender=element.bot, reply_to=sent, timeout=60
            )
            assert "operator" in reply["body"] and reply["decrypted"], reply
    finally:
        process.stop()
