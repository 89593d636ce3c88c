"""The real `fleetwarden run` on a real Synapse, as an operator in Element sees it: the
operator is matrix-js-sdk 37.5 with its Rust crypto (tests/matrix_js_user.py), cross-signed as
Element sets up at a first login, in an encrypted room with the bot."""

from __future__ import annotations

import pytest

from tests.integration.connectors.matrix.matrix_element import ElementWorld, bot, element
from tests.integration.connectors.matrix.test_matrix_bot import BotProcess

pytestmark = [pytest.mark.integration, pytest.mark.synapse]
__all__ = ["bot", "element"]  # fixtures


async def test_ps_is_answered_encrypted_and_element_shows_the_bots_device_signed_by_its_owner(
    element: ElementWorld, bot: BotProcess
) -> None:
    """`!ps` from Element's client stack gets a reply it decrypts; the bot cross-signs its
    own device, so the js-sdk sees it signed by its owner and the shield is not red."""
    op = element.operator
    sent = await op.send(element.room, "!ps")
    reply = await op.wait_message(element.room, sender=element.bot, reply_to=sent, timeout=40)
    assert reply["decrypted"] and reply["body"], reply
    # No shield at all: a device its owner signed, of a user the operator has not verified.
    assert (reply["shield_colour"], reply["shield_reason"]) == ("NONE", None), reply
    assert reply["sender_device"]
    status = await op.wait_device_status(element.bot, reply["sender_device"], signed_by_owner=True)
    assert status["signed_by_owner"]
    assert (await op.user_status(element.bot))["has_cross_signing_keys"]


async def test_with_only_signed_devices_isolation_ps_gets_an_answer(
    element: ElementWorld, bot: BotProcess
) -> None:
    """Element's "exclude insecure devices" (OnlySignedDevicesIsolationMode) shares the room
    key with the bot's cross-signed device: an encrypted `!ps` is answered, and the operator
    decrypts the answer."""
    op = element.operator
    await op.set_isolation(only_signed=True)
    sent = await op.send(element.room, "!ps")
    reply = await op.wait_message(element.room, sender=element.bot, reply_to=sent, timeout=40)
    assert reply["decrypted"] and reply["body"], reply
    assert reply["shield_colour"] != "RED", reply
