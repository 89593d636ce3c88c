"""Tests for reactions in (connectors.matrix.inbound.translate) and edits out
(connectors.matrix.messages.render)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.matrix.inbound.translate import Identity, ThreadMemory, to_inbound
from connectors.matrix.messages import render

BOT = "@fleetwarden:example.org"
ME = Identity.of(BOT)
ANN = "@ann:example.org"
ROOM = "!control:example.org"
STAMP = 1_740_830_400_123


def reaction(relates_to: Any, sender: str = ANN, event_id: str = "$r1") -> dict[str, Any]:
    return {
        "type": "m.reaction",
        "sender": sender,
        "event_id": event_id,
        "origin_server_ts": STAMP,
        "content": {"m.relates_to": relates_to},
    }


def annotation(key: Any = "✅", target: Any = "$ask") -> dict[str, Any]:
    return {"rel_type": "m.annotation", "event_id": target, "key": key}


def bots_message(event_id: str, thread: str | None) -> dict[str, Any]:
    content: dict[str, Any] = {"msgtype": "m.notice", "body": "may a1 run ls?"}
    if thread is not None:
        content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread}
    return {
        "type": "m.room.message",
        "sender": BOT,
        "event_id": event_id,
        "origin_server_ts": STAMP,
        "content": content,
    }


def test_a_reaction_is_inbound_with_its_key_and_target() -> None:
    """An annotation becomes a message whose text is the key and reacts_to its target."""
    message = to_inbound(reaction(annotation(" ✅ ")), ROOM, ME)
    assert message is not None
    assert (message.text, message.reacts_to, message.event_id) == ("✅", "$ask", "$r1")
    assert message.sender == ANN and message.thread_id is None and message.replaces is None


def test_a_reaction_lands_in_the_thread_of_the_bots_message() -> None:
    """The bot's own messages are remembered (not inbound), so a reaction to one is in its
    thread."""
    threads = ThreadMemory()
    assert to_inbound(bots_message("$ask", "$root"), ROOM, ME, threads) is None
    message = to_inbound(reaction(annotation()), ROOM, ME, threads)
    assert message is not None and message.thread_id == "$root"


def test_the_bots_own_reaction_is_not_inbound() -> None:
    """A reaction the bot's account made is never inbound."""
    assert to_inbound(reaction(annotation(), sender=BOT), ROOM, ME) is None


@pytest.mark.parametrize(
    "relates_to",
    [
        annotation(key=""),
        annotation(key=7),
        annotation(target=None),
        annotation(target="$r1"),  # names itself
        {"rel_type": "m.reference", "event_id": "$ask", "key": "✅"},
        "not an object",
    ],
)
def test_a_malformed_reaction_is_skipped(relates_to: Any) -> None:
    """A reaction without a usable annotation is skipped, never an exception."""
    assert to_inbound(reaction(relates_to), ROOM, ME) is None


def test_an_edit_is_an_m_replace_with_formatted_new_content() -> None:
    """The replacement carries the new text as a formatted notice, no relation inside it, and
    empty mentions so an edited alert does not notify again."""
    content = render.replacement("$ask", "**allowed** by ann")
    assert content["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$ask"}
    new = content["m.new_content"]
    assert new["msgtype"] == "m.notice" and new["body"] == "**allowed** by ann"
    assert new["formatted_body"] == render.notice("**allowed** by ann", None)["formatted_body"]
    assert "m.relates_to" not in new and new["m.mentions"] == {} == content["m.mentions"]
    assert content["body"] == "* **allowed** by ann"


def test_a_long_edit_is_cut_to_fit_one_event() -> None:
    """An edit longer than one event holds is cut to its first part, within the event limit."""
    content = render.replacement("$ask", "<&>" * 40_000)
    assert render.content_size(content) <= render.MAX_CONTENT_BYTES
