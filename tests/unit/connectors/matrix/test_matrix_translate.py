"""Tests for connectors.matrix.inbound.translate: raw room events to inbound messages, event
predicates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.matrix.inbound.translate import (
    Identity,
    RecentIds,
    ThreadMemory,
    inviter,
    is_encrypted,
    is_own_join,
    strip_mention,
    to_inbound,
    turns_on_encryption,
)

BOT = "@fleetwarden:example.org"
ME = Identity.of(BOT, "Fleet Warden")
ANN = "@ann:example.org"
ROOM = "!control:example.org"
STAMP = 1_740_830_400_123  # 2025-03-01 12:00:00.123 UTC


def message(body: Any = "status", **changes: Any) -> dict[str, Any]:
    """An ``m.text`` room message from Ann as ``/sync`` delivers it, with ``changes`` applied."""
    event: dict[str, Any] = {
        "type": "m.room.message",
        "sender": ANN,
        "event_id": "$ev1",
        "origin_server_ts": STAMP,
        "room_id": ROOM,
        "content": {"msgtype": "m.text", "body": body},
    }
    content = changes.pop("content", {})
    event.update(changes)
    event["content"] = {**event["content"], **content}
    return event


# --- Identity and mention stripping ------------------------------------------------------


def test_identity_names_longest_first() -> None:
    """The bot answers to its user id, @localpart, localpart and display name, longest first."""
    assert ME.user_id == BOT
    assert set(ME.names) == {BOT, "@fleetwarden", "fleetwarden", "Fleet Warden"}
    assert [len(name) for name in ME.names] == sorted((len(n) for n in ME.names), reverse=True)


def test_identity_ignores_blank_display_name() -> None:
    """A missing or blank display name adds no name."""
    assert set(Identity.of(BOT, "  ").names) == {BOT, "@fleetwarden", "fleetwarden"}
    assert set(Identity.of(BOT).names) == {BOT, "@fleetwarden", "fleetwarden"}


def test_identity_strips_display_name() -> None:
    """Whitespace around the display name is not part of the name."""
    assert "Warden" in Identity.of(BOT, " Warden ").names


@pytest.mark.parametrize(
    ("body", "rest"),
    [
        (f"{BOT}: status", "status"),
        (f"{BOT} status", "status"),
        ("@fleetwarden: status", "status"),
        ("fleetwarden, status", "status"),
        ("fleetwarden:status", "status"),
        ("Fleet Warden: launch coder-1", "launch coder-1"),
        ("FLEETWARDEN status", "status"),
        ("fleet warden:  status  ", "status"),
        ("fleetwarden\tstatus", "status"),
        ("fleetwarden\nstatus", "status"),
        ("fleetwarden", ""),
        ("fleetwarden:", ""),
    ],
)
def test_strip_mention_forms(body: str, rest: str) -> None:
    """A leading name in any case, then ``:``, ``,``, whitespace or the end, is stripped."""
    assert strip_mention(body, ME.names) == rest


def test_strip_mention_prefers_full_user_id() -> None:
    """``@bot:server`` is stripped whole, not read as ``@bot`` followed by ``:server``."""
    assert strip_mention(f"{BOT}: status", ME.names) == "status"
    assert strip_mention(f"{BOT} status", ME.names) == "status"


@pytest.mark.parametrize(
    "body",
    [
        "status",
        "fleetwardens status",
        "fleetwarden-2 status",
        "hey fleetwarden status",
        "",
    ],
)
def test_strip_mention_requires_leading_whole_name(body: str) -> None:
    """A name that is only a prefix of a word, or not at the start, is no mention."""
    assert strip_mention(body, ME.names) is None


@given(st.text(max_size=40))
def test_strip_mention_never_raises(body: str) -> None:
    """Any body gives a string or None."""
    result = strip_mention(body, ME.names)
    assert result is None or isinstance(result, str)


# --- to_inbound --------------------------------------------------------------------------


def test_inbound_fields() -> None:
    """A plain message becomes an InboundMessage with sender, text, room, id and UTC time."""
    inbound = to_inbound(message("status"), ROOM, ME)
    assert inbound is not None
    assert inbound.connector == "matrix"
    assert inbound.sender == ANN
    assert inbound.text == "status"
    assert inbound.room == ROOM
    assert inbound.event_id == "$ev1"
    assert inbound.thread_id is None
    assert inbound.addressed is False


def test_inbound_timestamp_is_utc_from_origin_server_ts() -> None:
    """``origin_server_ts`` milliseconds become an aware UTC datetime."""
    inbound = to_inbound(message(), ROOM, ME)
    assert inbound is not None
    assert inbound.timestamp == datetime(2025, 3, 1, 12, 0, 0, 123_000, tzinfo=UTC)
    assert inbound.timestamp.utcoffset() is not None
    assert inbound.timestamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_inbound_room_comes_from_argument() -> None:
    """The room is the one the caller names (sync events need not carry ``room_id``)."""
    event = message()
    del event["room_id"]
    inbound = to_inbound(event, "!other:example.org", ME)
    assert inbound is not None
    assert inbound.room == "!other:example.org"


def test_inbound_thread_id_from_thread_relation() -> None:
    """A message in an ``m.thread`` carries the thread root as ``thread_id``."""
    relates = {
        "rel_type": "m.thread",
        "event_id": "$root",
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": "$root"},
    }
    inbound = to_inbound(message(content={"m.relates_to": relates}), ROOM, ME)
    assert inbound is not None
    assert inbound.thread_id == "$root"


def test_inbound_plain_reply_has_no_thread() -> None:
    """A reply outside a thread is not in a thread."""
    relates = {"m.in_reply_to": {"event_id": "$other"}}
    inbound = to_inbound(message(content={"m.relates_to": relates}), ROOM, ME)
    assert inbound is not None
    assert inbound.thread_id is None


def test_inbound_thread_relation_without_string_root_has_no_thread() -> None:
    """A thread relation whose root is not a string is ignored, not an error."""
    relates = {"rel_type": "m.thread", "event_id": 42}
    inbound = to_inbound(message(content={"m.relates_to": relates}), ROOM, ME)
    assert inbound is not None
    assert inbound.thread_id is None


@pytest.mark.parametrize(
    "body", [f"{BOT}: status", "@fleetwarden status", "fleetwarden, status", "Fleet Warden: status"]
)
def test_inbound_mention_addresses_and_is_stripped(body: str) -> None:
    """A leading mention by user id, localpart or display name addresses the bot and is removed."""
    inbound = to_inbound(message(body), ROOM, ME)
    assert inbound is not None
    assert inbound.addressed is True
    assert inbound.text == "status"


def test_inbound_intentional_mention_addresses_without_stripping() -> None:
    """``m.mentions.user_ids`` naming the bot addresses it; the body is kept as written."""
    event = message("please status", content={"m.mentions": {"user_ids": [ANN, BOT]}})
    inbound = to_inbound(event, ROOM, ME)
    assert inbound is not None
    assert inbound.addressed is True
    assert inbound.text == "please status"


@pytest.mark.parametrize(
    "mentions",
    [{"user_ids": [ANN]}, {"user_ids": BOT}, {"room": True}, [BOT], "nonsense"],
    ids=["other-user", "not-a-list", "room-mention", "mentions-is-list", "mentions-is-str"],
)
def test_inbound_other_mentions_do_not_address(mentions: Any) -> None:
    """Mentions of others, or malformed ``m.mentions``, leave the message unaddressed."""
    inbound = to_inbound(message("status", content={"m.mentions": mentions}), ROOM, ME)
    assert inbound is not None
    assert inbound.addressed is False


def test_inbound_replace_relation_without_new_content_is_ignored() -> None:
    """A ``m.replace`` relation with no ``m.new_content`` is no edit anyone can read: skipped."""
    relates = {"rel_type": "m.replace", "event_id": "$ev0"}
    assert to_inbound(message("* status", content={"m.relates_to": relates}), ROOM, ME) is None


def test_inbound_new_content_without_replace_relation_is_ignored() -> None:
    """An event carrying ``m.new_content`` but no ``m.replace`` relation is malformed: skipped."""
    event = message("* status", content={"m.new_content": {"msgtype": "m.text", "body": "s"}})
    assert to_inbound(event, ROOM, ME) is None


def edit(new_body: str, original: Any = "$ev0", **new: Any) -> dict[str, Any]:
    """An edit of ``original`` as Element sends it: ``* `` body, the text in ``m.new_content``."""
    return message(
        f"* {new_body}",
        event_id="$edit1",
        content={
            "m.new_content": {"msgtype": "m.text", "body": new_body, **new},
            "m.relates_to": {"rel_type": "m.replace", "event_id": original},
        },
    )


def test_inbound_edit_replaces_its_original_with_the_new_text() -> None:
    """An edit is a message with the new content's text, its own id, and ``replaces`` set."""
    inbound = to_inbound(edit("!ps"), ROOM, ME)
    assert inbound is not None
    assert (inbound.text, inbound.event_id, inbound.replaces) == ("!ps", "$edit1", "$ev0")


def test_inbound_edit_strips_the_mention_of_its_new_text() -> None:
    """A mention leading the new text addresses the bot, as in a new message."""
    inbound = to_inbound(edit(f"{BOT}: ps"), ROOM, ME)
    assert inbound is not None
    assert (inbound.text, inbound.addressed) == ("ps", True)


def test_inbound_edit_with_a_fallback_in_its_new_content_is_read_after_it() -> None:
    """A client that quotes in the new content too: the command is what follows the quote."""
    inbound = to_inbound(edit(f"> <{BOT}> Agent started\n\n!logs demo"), ROOM, ME)
    assert inbound is not None
    assert inbound.text == "!logs demo"


@pytest.mark.parametrize(
    "original", [None, 42, {"id": "$x"}, "$edit1"], ids=["none", "int", "object", "itself"]
)
def test_inbound_malformed_edit_is_skipped(original: Any) -> None:
    """An edit naming no original, a non-string one, or itself, is skipped, never an error."""
    assert to_inbound(edit("!ps", original=original), ROOM, ME) is None


def test_inbound_edit_of_a_notice_is_skipped() -> None:
    """An edit whose new content is not ``m.text`` is not a message to read."""
    assert to_inbound(edit("!ps", msgtype="m.notice"), ROOM, ME) is None


def test_inbound_edit_lands_in_its_originals_thread() -> None:
    """An edit carries no thread relation: the thread is the one its original was in."""
    threads = ThreadMemory()
    relates = {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": True}
    first = to_inbound(
        message("hello", event_id="$ev0", content={"m.relates_to": relates}), ROOM, ME, threads
    )
    assert first is not None and first.thread_id == "$root"
    again = to_inbound(edit("!logs demo"), ROOM, ME, threads)
    assert again is not None
    assert (again.thread_id, again.replaces) == ("$root", "$ev0")
    assert to_inbound(edit("!ps", original="$unseen"), ROOM, ME, threads) is not None


def test_thread_memory_forgets_the_oldest_beyond_capacity() -> None:
    """The memory is bounded: beyond capacity the oldest message's thread is forgotten."""
    threads = ThreadMemory(capacity=2)
    for number in range(3):
        threads.place(f"$m{number}", None, f"$root{number}")
    assert threads.place("$e", "$m0", None) is None
    assert threads.place("$e", "$m2", None) == "$root2"


@pytest.mark.parametrize("msgtype", ["m.notice", "m.emote", "m.image", "m.file", None])
def test_inbound_only_text_messages(msgtype: str | None) -> None:
    """Notices (other bots), emotes, media and typeless messages are not inbound."""
    assert to_inbound(message(content={"msgtype": msgtype}), ROOM, ME) is None


def test_inbound_own_messages_ignored() -> None:
    """The bot's own events are never inbound."""
    assert to_inbound(message(sender=BOT), ROOM, ME) is None


@pytest.mark.parametrize(
    "event_type", ["m.room.encrypted", "m.reaction", "m.sticker", "m.room.member", None]
)
def test_inbound_only_room_messages(event_type: str | None) -> None:
    """Other event types are not inbound."""
    assert to_inbound(message(type=event_type), ROOM, ME) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"content": {"body": None}},
        {"content": {"body": 7}},
        {"sender": None},
        {"sender": 5},
        {"event_id": None},
        {"origin_server_ts": None},
        {"origin_server_ts": "1740830400123"},
        {"origin_server_ts": 1.7e12},
        {"origin_server_ts": True},
    ],
    ids=[
        "no-body",
        "int-body",
        "no-sender",
        "int-sender",
        "no-event-id",
        "no-ts",
        "str-ts",
        "float-ts",
        "bool-ts",
    ],
)
def test_inbound_malformed_event_skipped(changes: dict[str, Any]) -> None:
    """A missing or mistyped field makes the event skipped, never an exception."""
    assert to_inbound(message(**changes), ROOM, ME) is None


@pytest.mark.parametrize(
    "stamp",
    [2**53 - 1, -(2**53) + 1, 253_402_300_800_000, 10**20, 10**400],
    ids=["max-canonical", "min-canonical", "year-10000", "huge", "beyond-float"],
)
def test_inbound_out_of_range_timestamp_skipped(stamp: int) -> None:
    """An ``origin_server_ts`` no datetime can hold (a hostile server's) is skipped, not raised."""
    assert to_inbound(message(origin_server_ts=stamp), ROOM, ME) is None


@given(st.integers())
def test_inbound_any_integer_timestamp_never_raises(stamp: int) -> None:
    """Every integer ``origin_server_ts`` gives a UTC message or a skip, never an exception."""
    inbound = to_inbound(message(origin_server_ts=stamp), ROOM, ME)
    assert inbound is None or inbound.timestamp.tzinfo is UTC


def test_inbound_early_timestamp_kept() -> None:
    """A timestamp of 0 is the Unix epoch in UTC, not a malformed event."""
    inbound = to_inbound(message(origin_server_ts=0), ROOM, ME)
    assert inbound is not None
    assert inbound.timestamp == datetime(1970, 1, 1, tzinfo=UTC)


def test_inbound_content_not_an_object_skipped() -> None:
    """Content that is not a JSON object is skipped."""
    event = message()
    event["content"] = ["status"]
    assert to_inbound(event, ROOM, ME) is None


def test_inbound_malformed_relation_is_ignored() -> None:
    """A non-object ``m.relates_to`` is treated as no relation."""
    inbound = to_inbound(message(content={"m.relates_to": "nonsense"}), ROOM, ME)
    assert inbound is not None
    assert inbound.thread_id is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
_KEYS = st.sampled_from(
    ["type", "sender", "event_id", "origin_server_ts", "content", "unsigned", "state_key"]
)


@given(
    st.dictionaries(_KEYS, _JSON),
    st.dictionaries(
        st.sampled_from(["msgtype", "body", "m.relates_to", "m.mentions", "m.new_content"]), _JSON
    ),
)
def test_inbound_never_raises_on_any_json(event: dict[str, Any], content: dict[str, Any]) -> None:
    """Arbitrary JSON events give an InboundMessage or None, never an exception."""
    for candidate in (event, {**event, "content": content}):
        inbound = to_inbound(candidate, ROOM, ME)
        assert inbound is None or inbound.timestamp.tzinfo is UTC
        assert not (is_encrypted(candidate) and turns_on_encryption(candidate))
        is_own_join(candidate, BOT)


# --- predicates --------------------------------------------------------------------------


def member(state_key: str, membership: str, previous: str | None = None) -> dict[str, Any]:
    """An ``m.room.member`` state event, with ``unsigned.prev_content`` when ``previous``."""
    event: dict[str, Any] = {
        "type": "m.room.member",
        "state_key": state_key,
        "sender": state_key,
        "content": {"membership": membership},
    }
    if previous is not None:
        event["unsigned"] = {"prev_content": {"membership": previous}}
    return event


@pytest.mark.parametrize("previous", [None, "invite", "leave"])
def test_own_join(previous: str | None) -> None:
    """The bot's membership becoming ``join`` is its own join."""
    assert is_own_join(member(BOT, "join", previous), BOT) is True


def test_own_profile_change_is_not_a_join() -> None:
    """A join after a join (a display name or avatar change) is not a new join."""
    assert is_own_join(member(BOT, "join", "join"), BOT) is False


@pytest.mark.parametrize(
    "event",
    [
        member(ANN, "join"),
        member(BOT, "leave", "join"),
        member(BOT, "invite"),
        {**member(BOT, "join"), "type": "m.room.message"},
        {"type": "m.room.member", "state_key": BOT},
        {"type": "m.room.member", "state_key": BOT, "content": "join"},
    ],
    ids=["other-user", "leave", "invite", "wrong-type", "no-content", "content-not-object"],
)
def test_not_own_join(event: dict[str, Any]) -> None:
    """Others' joins, other memberships and malformed events are not the bot's join."""
    assert is_own_join(event, BOT) is False


def test_own_join_with_malformed_unsigned_counts() -> None:
    """A malformed ``unsigned`` is treated as no previous membership."""
    event = {**member(BOT, "join"), "unsigned": {"prev_content": "join"}}
    assert is_own_join(event, BOT) is True


def test_is_encrypted() -> None:
    """Only ``m.room.encrypted`` events are encrypted messages."""
    assert is_encrypted({"type": "m.room.encrypted", "content": {}}) is True
    assert is_encrypted(message()) is False
    assert is_encrypted({}) is False


def test_turns_on_encryption() -> None:
    """The ``m.room.encryption`` state event (empty state key) turns encryption on."""
    event = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "x"}}
    assert turns_on_encryption(event) is True


@pytest.mark.parametrize(
    "event",
    [
        {"type": "m.room.encryption", "content": {"algorithm": "x"}},
        {"type": "m.room.encryption", "state_key": "x", "content": {}},
        {"type": "m.room.encrypted", "state_key": ""},
    ],
    ids=["not-state", "non-empty-state-key", "encrypted-message"],
)
def test_does_not_turn_on_encryption(event: dict[str, Any]) -> None:
    """Without an empty state key, or of another type, it is not the encryption state."""
    assert turns_on_encryption(event) is False


def invite_member(state_key: str, sender: Any, membership: str = "invite") -> dict[str, Any]:
    """A stripped ``m.room.member`` state event of an invited room."""
    return {
        "type": "m.room.member",
        "state_key": state_key,
        "sender": sender,
        "content": {"membership": membership},
    }


def test_inviter_found_in_stripped_state() -> None:
    """The sender of the bot's invite membership is the inviter."""
    state = [
        {"type": "m.room.name", "state_key": "", "sender": ANN, "content": {"name": "ops"}},
        invite_member(ANN, ANN, "join"),
        invite_member(BOT, ANN),
    ]
    assert inviter(state, BOT) == ANN


@pytest.mark.parametrize(
    "state",
    [
        [],
        [invite_member("@other:example.org", ANN)],
        [invite_member(BOT, ANN, "join")],
        [invite_member(BOT, None)],
        [{**invite_member(BOT, ANN), "type": "m.room.create"}],
        [{**invite_member(BOT, ANN), "content": "invite"}],
    ],
    ids=["empty", "other-user", "not-invite", "no-sender", "wrong-type", "content-not-object"],
)
def test_inviter_unknown(state: list[dict[str, Any]]) -> None:
    """Without a well-formed invite membership for the bot, the inviter is unknown."""
    assert inviter(state, BOT) is None


# --- RecentIds ---------------------------------------------------------------------------


def test_recent_ids_remembers_added() -> None:
    """An added id is contained; others are not."""
    recent = RecentIds()
    recent.add("$a")
    assert "$a" in recent
    assert "$b" not in recent


def test_recent_ids_forgets_oldest_beyond_capacity() -> None:
    """Past capacity, the oldest id is forgotten first."""
    recent = RecentIds(capacity=2)
    for event_id in ("$a", "$b", "$c"):
        recent.add(event_id)
    assert "$a" not in recent
    assert "$b" in recent
    assert "$c" in recent


def test_recent_ids_re_adding_refreshes() -> None:
    """Adding an id again makes it the newest, so it outlives older ones."""
    recent = RecentIds(capacity=2)
    for event_id in ("$a", "$b", "$a", "$c"):
        recent.add(event_id)
    assert "$a" in recent
    assert "$b" not in recent


def test_the_same_localpart_on_another_server_is_not_a_mention() -> None:
    """`@fleetwarden:other.org …` names someone else: not addressed to `@fleetwarden:hs`."""
    names = Identity.of("@fleetwarden:example.org").names
    assert strip_mention("@fleetwarden:other.org ps", names) is None
    assert strip_mention("fleetwarden: ps", names) == "ps"
    assert strip_mention("@fleetwarden:example.org: ps", names) == "ps"
