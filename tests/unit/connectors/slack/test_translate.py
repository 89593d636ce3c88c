"""Which Slack events are for us and what they become: messages, edits, reactions, button
clicks and an agent session's Stop (pure, over the Events API's payloads)."""

from __future__ import annotations

from typing import Any

from connectors.base import Choice
from connectors.slack.blocks import buttons, click, message_blocks
from connectors.slack.translate import Translator, emoji

CHANNEL = "C0CONTROL1"
BOT = "U0BOT0001"
ANN = "U0ANN0001"
ME = Translator(CHANNEL, BOT)


def said(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": CHANNEL,
        "user": ANN,
        "text": text,
        "ts": "1700000000.000100",
        **extra,
    }


def test_a_person_s_message_with_a_mention_is_addressed() -> None:
    """A leading mention of the bot is cut off and makes the message addressed."""
    got = ME.message(said(f"<@{BOT}> spawn coder"), ("usergroup:S1",))
    assert got is not None
    assert (got.text, got.addressed, got.event_id, got.groups) == (
        "spawn coder",
        True,
        "1700000000.000100",
        ("usergroup:S1",),
    )
    assert got.thread_id is None


def test_a_thread_reply_names_its_thread_and_text_is_unescaped() -> None:
    """A reply in a thread carries the root's ts; Slack's escapes are undone."""
    got = ME.message(said("!send a &lt;b&gt; &amp; c", thread_ts="1699999999.000001"))
    assert got is not None and got.thread_id == "1699999999.000001"
    assert got.text == "!send a <b> & c" and not got.addressed


def test_not_ours_are_ignored() -> None:
    """The bot's own messages, other apps', system subtypes and other channels are not
    commands."""
    assert ME.message(said("x", user=BOT)) is None
    assert ME.message(said("x", bot_id="B123")) is None
    assert ME.message(said("x", subtype="bot_message")) is None
    assert ME.message(said("x", subtype="channel_join")) is None
    assert ME.message(said("x", subtype="message_deleted")) is None
    assert ME.message(said("x", channel="C0OTHER01")) is None
    assert ME.message(said("x", subtype="thread_broadcast")) is not None


def test_a_real_edit_replaces_the_message() -> None:
    """message_changed with an ``edited`` mark and new words is an edit of the first ts."""
    event = {
        "type": "message",
        "subtype": "message_changed",
        "channel": CHANNEL,
        "message": {
            "type": "message",
            "user": ANN,
            "text": "!ps",
            "ts": "1700000000.000100",
            "edited": {"user": ANN, "ts": "1700000005.0"},
        },
        "previous_message": {
            "type": "message",
            "user": ANN,
            "text": "!pss",
            "ts": "1700000000.000100",
        },
    }
    got = ME.edit(event)
    assert got is not None
    assert (got.replaces, got.event_id, got.text) == (
        "1700000000.000100",
        "1700000000.000100:edit:1700000005.0",
        "!ps",
    )


def test_an_unfurl_is_no_edit() -> None:
    """A change without ``edited`` (a link preview added) or with the same words is none."""
    message = {"type": "message", "user": ANN, "text": "!ps", "ts": "1.1"}
    base = {"type": "message", "subtype": "message_changed", "channel": CHANNEL}
    assert ME.edit({**base, "message": message}) is None
    same = {**message, "edited": {"ts": "2.0"}}
    assert ME.edit({**base, "message": same, "previous_message": message}) is None


def test_a_reaction_is_its_emoji_on_the_message() -> None:
    """reaction_added becomes the emoji the approval code reads, reacting to the ts."""
    event = {
        "type": "reaction_added",
        "user": ANN,
        "reaction": "white_check_mark",
        "item": {"type": "message", "channel": CHANNEL, "ts": "1700000000.000200"},
        "event_ts": "1700000001.0",
    }
    got = ME.reaction(event, "Ev01", "1700000000.000001")
    assert got is not None
    assert (got.text, got.reacts_to, got.event_id, got.thread_id) == (
        "✅",
        "1700000000.000200",
        "Ev01",
        "1700000000.000001",
    )
    assert ME.reaction({**event, "user": BOT}, "Ev02", None) is None


def test_slack_shortcodes_become_the_approval_emoji() -> None:
    """Slack's names for ✅ ❌ 🔁 and their variants (skin tones dropped) map to the emoji;
    other names stay :name:."""
    assert [emoji(n) for n in ("white_check_mark", "x", "repeat", "+1::skin-tone-3")] == [
        "✅",
        "❌",
        "🔁",
        "👍",
    ]
    assert emoji("tada") == ":tada:"


def test_session_stop_is_a_stop_command_in_the_thread() -> None:
    """Slack's Stop on a thread's session is ``stop <agent>``, addressed, by the clicker."""
    event = {
        "type": "agent_session_stopped",
        "channel": CHANNEL,
        "user": ANN,
        "thread_ts": "1700000000.000001",
        "event_ts": "1700000009.0",
    }
    got = ME.session_stopped(event, "Ev9", "coder")
    assert got is not None
    assert (got.text, got.addressed, got.thread_id, got.sender, got.event_id) == (
        "stop coder",
        True,
        "1700000000.000001",
        ANN,
        "Ev9",
    )


def clicked(value_of: int, choices: tuple[Choice, ...], **container: Any) -> dict[str, Any]:
    [_, actions] = message_blocks("approve?", choices)
    button = actions["elements"][value_of]
    return {
        "type": "block_actions",
        "user": {"id": ANN},
        "container": {
            "type": "message",
            "channel_id": CHANNEL,
            "message_ts": "1700000000.000300",
            **container,
        },
        "actions": [{**button, "block_id": actions["block_id"], "action_ts": "1700000010.5"}],
    }


CHOICES = (Choice("Approve", "✅", style="primary"), Choice("Yes", "yes", as_reply=True))


def test_a_click_on_a_reaction_choice_is_that_reaction() -> None:
    """A button answered by a reaction key comes in as that reaction to the message."""
    got = click(clicked(0, CHOICES, thread_ts="1700000000.000001"), CHANNEL)
    assert got is not None
    assert (got.text, got.reacts_to, got.event_id, got.thread_id) == (
        "✅",
        "1700000000.000300",
        f"action:1700000010.5:{ANN}",
        "1700000000.000001",
    )


def test_a_click_on_a_reply_choice_is_that_reply() -> None:
    """A button answered by a reply comes in as that reply, addressed, in the thread."""
    got = click(clicked(1, CHOICES, thread_ts="1700000000.000001"), CHANNEL)
    assert got is not None
    assert (got.text, got.addressed, got.reacts_to, got.thread_id) == (
        "yes",
        True,
        None,
        "1700000000.000001",
    )


def test_clicks_elsewhere_are_not_ours() -> None:
    """A click in another channel, or on another app's button, is nothing."""
    assert click(clicked(0, CHOICES), "C0ELSEWHERE") is None
    other = clicked(0, CHOICES)
    other["actions"][0]["action_id"] = "someone-else"
    assert click(other, CHANNEL) is None


def test_buttons_carry_label_style_and_answer() -> None:
    """Each choice is a button with its label, its style and what it answers."""
    block = buttons(CHOICES)
    assert [b["text"]["text"] for b in block["elements"]] == ["Approve", "Yes"]
    assert block["elements"][0]["style"] == "primary" and "style" not in block["elements"][1]
