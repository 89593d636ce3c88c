"""The SAS state machine, two instances talking to each other over vodozemac."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.matrix.verification.sas import SasVerification, State
from connectors.matrix.verification.wire import (
    MAC_LEGACY,
    PREFIX,
    TIMEOUT_SECONDS,
    Outgoing,
    Party,
)

ALICE = Party(
    "@alice:hs", "ALICEDEV", {"ed25519:ALICEDEV": "a" * 43, "ed25519:" + "m" * 43: "m" * 43}
)
BOT = Party("@bot:hs", "BOTDEV", {"ed25519:BOTDEV": "b" * 43, "ed25519:" + "n" * 43: "n" * 43})


def deliver(to: SasVerification, events: list[Outgoing], now: float = 1.0) -> list[Outgoing]:
    out: list[Outgoing] = []
    for event in events:
        out += to.receive(event.type.removeprefix(PREFIX), event.content, now)
    return out


def pair(transport: Any = "to_device") -> tuple[SasVerification, SasVerification]:
    """Alice requests, the bot answers ready, Alice starts; both then hold the short code."""
    alice = SasVerification.request("txn1", ALICE, BOT, 0.0)
    alice.transport = transport
    request = alice.request_event(0)
    bot, ready = SasVerification.answer_request("txn1", transport, BOT, ALICE, request.content)
    assert deliver(alice, ready) == []
    accept = deliver(bot, alice.start())
    key = deliver(alice, accept)
    key_back = deliver(bot, key)
    assert deliver(alice, key_back) == []
    return alice, bot


@pytest.mark.parametrize("transport", ["to_device", "room"])
def test_both_sides_show_the_same_code_and_finish(transport: Any) -> None:
    """Both see the same emojis and decimals; confirmed MACs cover device and master keys."""
    alice, bot = pair(transport)
    assert alice.code is not None and alice.code == bot.code
    assert len(alice.code.emojis) == 7 and all(0 <= d < 10000 for d in alice.code.decimals)
    mac = bot.confirm()
    if transport == "room":
        assert mac[0].content["m.relates_to"]["event_id"] == "txn1"
    assert deliver(alice, mac) == []
    done = deliver(bot, alice.confirm())
    assert [e.type for e in done] == [PREFIX + "done"]
    assert bot.state is State.DONE and alice.state is State.DONE
    assert bot.verified_keys == dict(ALICE.keys)
    assert alice.verified_keys == dict(BOT.keys)


def test_both_starting_keeps_the_smaller_users_start() -> None:
    """When both sides start, the start of the lexicographically smaller user wins."""
    alice = SasVerification.request("t", ALICE, BOT, 0.0)
    bot, ready = SasVerification.answer_request(
        "t", "to_device", BOT, ALICE, {"methods": ["m.sas.v1"]}
    )
    deliver(alice, ready)
    alice_start, bot_start = alice.start(), bot.start()
    assert deliver(alice, bot_start) == []  # alice's own start stands
    accept = deliver(bot, alice_start)
    assert [e.type for e in accept] == [PREFIX + "accept"]


def test_a_wrong_commitment_cancels() -> None:
    """A key that does not match the accept's commitment cancels with m.mismatched_commitment."""
    alice = SasVerification.request("t", ALICE, BOT, 0.0)
    bot, ready = SasVerification.answer_request(
        "t", "to_device", BOT, ALICE, {"methods": ["m.sas.v1"]}
    )
    deliver(alice, ready)
    accept = deliver(bot, alice.start())
    accept[0].content["commitment"] = "x" * 43
    key = deliver(alice, accept)
    out = deliver(alice, deliver(bot, key))
    assert alice.state is State.CANCELLED and out[0].content["code"] == "m.mismatched_commitment"
    assert alice.code is None


def test_a_forged_mac_cancels_and_verifies_nothing() -> None:
    """A MAC that does not check out cancels with m.key_mismatch and verifies no key."""
    alice, bot = pair()
    mac = alice.confirm()
    first = next(iter(mac[0].content["mac"]))
    mac[0].content["mac"][first] = "A" * 43
    out = deliver(bot, mac)
    assert out[0].content["code"] == "m.key_mismatch" and bot.verified_keys == {}


def test_a_mac_for_other_keys_than_the_device_cancels() -> None:
    """A MAC that leaves out the device key the request came from cancels."""
    alice, bot = pair()
    other = Party(ALICE.user_id, ALICE.device_id, {"ed25519:" + "m" * 43: "m" * 43})
    alice.us = other
    out = deliver(bot, alice.confirm())
    assert out[0].content["code"] == "m.key_mismatch"


def test_a_mac_for_a_different_key_cancels() -> None:
    """The other side vouching for a key other than the one we know cancels."""
    alice, bot = pair()
    alice.us = Party(ALICE.user_id, ALICE.device_id, {"ed25519:ALICEDEV": "z" * 43})
    out = deliver(bot, alice.confirm())
    assert out[0].content["code"] == "m.key_mismatch" and bot.state is State.CANCELLED


def test_mismatch_cancels_with_mismatched_sas() -> None:
    """An admin's "no" sends m.mismatched_sas and ends the verification unverified."""
    alice, bot = pair()
    out = bot.mismatch()
    assert out[0].content["code"] == "m.mismatched_sas"
    deliver(alice, out)
    assert alice.state is State.CANCELLED and alice.cancel_code == "m.mismatched_sas"
    with pytest.raises(ValueError):
        bot.confirm()


def test_legacy_mac_method_works_both_ways() -> None:
    """A start offering only the legacy hkdf-hmac-sha256 still verifies."""
    alice = SasVerification.request("t", ALICE, BOT, 0.0)
    bot, ready = SasVerification.answer_request(
        "t", "to_device", BOT, ALICE, {"methods": ["m.sas.v1"]}
    )
    deliver(alice, ready)
    start = alice.start()
    start[0].content["message_authentication_codes"] = [MAC_LEGACY]
    alice._start = start[0].content
    deliver(alice, deliver(bot, deliver(alice, deliver(bot, start))))
    deliver(alice, bot.confirm())
    deliver(bot, alice.confirm())
    assert bot.state is State.DONE and alice.state is State.DONE


def test_no_common_method_and_unexpected_events_cancel() -> None:
    """A request without SAS, or an event out of order, cancels with the spec's code."""
    _, out = SasVerification.answer_request(
        "t", "to_device", BOT, ALICE, {"methods": ["m.qr_code.show.v1"]}
    )
    assert out[0].content["code"] == "m.unknown_method"
    bot, _ = SasVerification.answer_request("t", "to_device", BOT, ALICE, {"methods": ["m.sas.v1"]})
    out = bot.receive("key", {"key": "k", "transaction_id": "t"}, 1.0)
    assert out[0].content["code"] == "m.unexpected_message"


def test_start_from_another_device_cancels() -> None:
    """A start naming another device than the request's cancels with m.user_mismatch."""
    bot, _ = SasVerification.answer_request("t", "to_device", BOT, ALICE, {"methods": ["m.sas.v1"]})
    start = {"from_device": "OTHER", "method": "m.sas.v1"}
    assert bot.receive("start", start, 1.0)[0].content["code"] == "m.user_mismatch"


def test_idle_verification_times_out() -> None:
    """Ten minutes without an event cancels with m.timeout."""
    bot, _ = SasVerification.answer_request("t", "to_device", BOT, ALICE, {"methods": ["m.sas.v1"]})
    bot.now = 100.0
    assert bot.expired(100.0 + TIMEOUT_SECONDS - 1) == []
    assert bot.expired(100.0 + TIMEOUT_SECONDS)[0].content["code"] == "m.timeout"


def test_their_cancel_ends_it() -> None:
    """The other side's cancel ends the verification with its code, nothing sent back."""
    alice, bot = pair()
    assert deliver(bot, alice.cancel()) == []
    assert bot.state is State.CANCELLED and bot.cancel_code == "m.user"


def test_their_mac_before_our_confirmation_waits_for_it() -> None:
    """A MAC that arrives before the admin confirms is checked, and the verification ends
    only when the admin confirms: then our MAC and done go out together."""
    alice, bot = pair()
    assert deliver(bot, alice.confirm()) == []
    assert bot.state is State.COMPARING and bot.verified_keys == dict(ALICE.keys)
    out = bot.confirm()
    assert [e.type for e in out] == [PREFIX + "mac", PREFIX + "done"]
    assert bot.state is State.DONE
    assert [e.type for e in deliver(alice, out)] == [PREFIX + "done"]
    assert alice.state is State.DONE
