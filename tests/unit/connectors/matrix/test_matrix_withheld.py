"""Withheld room keys: which to-device events are notices, how a notice finds its message
in either order, that each session is told once, and the words the room sees."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from connectors.matrix.encryption import withheld

ROOM = "!ops:localhost"
ANN = "@ann:localhost"


@dataclass
class Megolm:
    """The fields of an undecryptable message that a notice is matched on."""

    sender: str = ANN
    session_id: str = "S1"
    sender_key: str = "curveANN"
    device_id: str = "ANNPHONE"
    server_timestamp: int = 1_700_000_000_000


def notice(code: str = "m.unverified", **content: str) -> withheld.Withheld | None:
    body = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "code": code,
        "reason": "Device not verified",
        "room_id": ROOM,
        "session_id": "S1",
        "sender_key": "curveANN",
    }
    body.update(content)
    return withheld.parse("m.room_key.withheld", ANN, body)


@pytest.mark.parametrize("event_type", ["m.room_key.withheld", "org.matrix.room_key.withheld"])
def test_both_the_spec_and_the_older_event_type_are_notices(event_type: str) -> None:
    """`m.room_key.withheld` and the older `org.matrix.room_key.withheld` parse alike."""
    content = {"code": "m.blacklisted", "room_id": ROOM, "session_id": "S1", "sender_key": "k"}
    parsed = withheld.parse(event_type, ANN, content)
    assert parsed == withheld.Withheld(ANN, "m.blacklisted", ROOM, "S1", "k")


@pytest.mark.parametrize(
    ("event_type", "content"),
    [
        ("m.room_key", {"code": "m.unverified", "room_id": ROOM, "session_id": "S1"}),
        ("m.room_key.withheld", {"room_id": ROOM, "session_id": "S1"}),
        ("m.room_key.withheld", {"code": "m.unverified", "session_id": "S1"}),
        ("m.room_key.withheld", "not a dict"),
    ],
)
def test_other_or_malformed_events_are_not_notices(event_type: str, content: object) -> None:
    """Another type, no code, or a session notice without its room is ignored."""
    assert withheld.parse(event_type, ANN, content) is None


def test_a_notice_finds_a_message_seen_before_or_after_it() -> None:
    """A remembered notice matches a later message of that session; a waiting message
    matches a notice that comes after it; another sender's session does not."""
    keys = withheld.WithheldKeys()
    got = notice()
    assert got is not None
    assert keys.matches(got, ROOM, Megolm())
    assert not keys.matches(got, ROOM, Megolm(sender="@mallory:localhost"))
    assert not keys.matches(got, "!other:localhost", Megolm())
    assert keys.find(ROOM, Megolm()) is None
    keys.note(got)
    assert keys.find(ROOM, Megolm()) == got
    assert keys.find(ROOM, Megolm(session_id="S2")) is None
    assert keys.find(ROOM, Megolm(sender="@mallory:localhost")) is None


def test_no_olm_is_about_a_device_and_matches_its_messages() -> None:
    """`m.no_olm` has no session: it matches any message from that sender's device key."""
    keys = withheld.WithheldKeys()
    got = withheld.parse("m.room_key.withheld", ANN, {"code": "m.no_olm", "sender_key": "curveANN"})
    assert got is not None and got.session_id is None
    keys.note(got)
    assert keys.find(ROOM, Megolm(session_id="anything")) == got
    assert keys.matches(got, ROOM, Megolm(session_id="other"))
    assert "encrypted channel" in got.why()


def test_no_olm_without_a_sender_key_matches_by_the_device_it_names() -> None:
    """A newer client's `m.no_olm` may name only `from_device`: the message's device id
    finds it."""
    keys = withheld.WithheldKeys()
    got = withheld.parse("m.room_key.withheld", ANN, {"code": "m.no_olm", "from_device": "DEV"})
    assert got is not None
    keys.note(got)
    event = Megolm(sender_key="unknown", device_id="DEV")
    assert keys.find(ROOM, event) == got
    assert keys.matches(got, ROOM, event)
    assert not keys.matches(got, ROOM, Megolm(sender_key="unknown"))


def test_each_session_is_told_once_and_memory_is_bounded() -> None:
    """A sender's session is reported the first time only; remembered notices are capped."""
    keys = withheld.WithheldKeys()
    got = notice()
    assert got is not None
    assert keys.first_time(got) and not keys.first_time(got)
    for n in range(withheld.MAX_REMEMBERED + 10):
        more = notice(session_id=f"S{n + 2}")
        assert more is not None
        keys.note(more)
        keys.first_time(more)
    assert keys.find(ROOM, Megolm(session_id="S2")) is None  # the oldest were let go
    assert keys.find(ROOM, Megolm(session_id=f"S{withheld.MAX_REMEMBERED + 11}")) is not None
    assert keys.first_time(got)  # forgotten too: a notice again, never an unbounded set


@pytest.mark.parametrize("code", ["m.unavailable", "m.unauthorised"])
def test_a_key_request_answer_settles_only_from_the_sending_device(code: str) -> None:
    """`m.unavailable`/`m.unauthorised` from another of the sender's devices (an answer to
    the bot's key request) does not end the wait; from the device that sent it, it does;
    and it never replaces the sending device's own notice."""
    keys = withheld.WithheldKeys()
    other = notice(code, from_device="ANNLAPTOP")
    own = notice(code, from_device="ANNPHONE")
    assert other is not None and own is not None
    assert not keys.matches(other, ROOM, Megolm())
    assert keys.matches(own, ROOM, Megolm())
    keys.note(other)
    assert keys.find(ROOM, Megolm()) is None
    unverified = notice("m.unverified", from_device="ANNPHONE")
    assert unverified is not None
    keys.note(unverified)
    keys.note(other)
    assert keys.find(ROOM, Megolm()) == unverified


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("m.unverified", ["not verified", "Verify", "unverified sessions"]),
        ("m.blacklisted", ["blocked", "Unblock"]),
        ("m.unauthorised", ["may not have it"]),
        ("m.unavailable", ["no longer has"]),
        ("org.example.`odd`", ["a reason I do not know", "org.example.'odd'"]),
    ],
)
def test_the_line_names_who_why_and_the_fix(code: str, words: list[str]) -> None:
    """The room is told whose message, the reason in plain words, the code and the fix."""
    got = notice(code)
    assert got is not None
    text = withheld.line(got, Megolm().server_timestamp)
    assert text.startswith(f"I cannot read a message from {ANN} (sent 2023-11-14 22:13 UTC)")
    assert "withheld its key from my device" in text and text.endswith("Then send it again.")
    for word in words:
        assert word in text


def test_the_waited_line_does_not_blame_a_key_that_never_came_on_the_network() -> None:
    """After the wait the line says the client gave no reason and how to check its side."""
    text = withheld.waited_line(ANN, 0, 60.0)
    assert "within 60 s" in text and "did not say it was withheld" in text
    assert "never reached this device" not in text
