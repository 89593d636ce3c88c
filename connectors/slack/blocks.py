"""Block Kit: a message as Slack shows it, with its choices as buttons, and a click back.

Every message is one ``section`` of mrkdwn (:data:`connectors.slack.mrkdwn.PART_LIMIT`
characters at most), its ``text`` the same (what notifications show). A message offering
:class:`Choice` s ends with an ``actions`` block of buttons, one per choice, in the last
part of the message; the block's id names the message's first part, the one the bot
core knows the message by. Editing the message (the question answered) posts it again
without them.

A click is one :class:`InboundMessage` (pure, :func:`click`): a choice answered by a
reaction key comes in as that reaction to the message; one answered by a reply as that
reply, addressed, in the message's thread. Its id, ``action:<action_ts>:<user>``, is the
same on a redelivery, so the ledger's claim makes it count once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from connectors.base import Choice, EventId, InboundMessage, RoomId, ThreadId, UserId
from connectors.slack.mrkdwn import escape
from connectors.slack.translate import CONNECTOR, slack_time

ACTION_PREFIX: Final = "fleetwarden-choice-"
"""Every button's ``action_id`` starts so (then its index): the app listens for these."""
BLOCK_PREFIX: Final = "fleetwarden:"
"""An actions block's ``block_id``: this, then the ts of the message's first part."""
_REACT: Final = "react:"
_REPLY: Final = "reply:"
_LABEL_LIMIT: Final = 75  # Slack's limit on a button's text
_VALUE_LIMIT: Final = 2000  # ... and on its value

Block = dict[str, Any]


def section(text: str) -> Block:
    """One mrkdwn section holding ``text`` (already mrkdwn, within the limit)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def buttons(choices: Sequence[Choice], first: str | None) -> Block:
    """The choices as an ``actions`` block of buttons; ``first``: the ts of the message's
    first part, when the buttons are in a later one."""
    elements: list[Block] = []
    for index, choice in enumerate(choices):
        value = (_REPLY if choice.as_reply else _REACT) + choice.answer
        button: Block = {
            "type": "button",
            "text": {"type": "plain_text", "text": choice.label[:_LABEL_LIMIT] or "?"},
            "action_id": f"{ACTION_PREFIX}{index}",
            "value": value[:_VALUE_LIMIT],
        }
        if choice.style is not None:
            button["style"] = choice.style
        elements.append(button)
    block: Block = {"type": "actions", "elements": elements}
    if first is not None:
        block["block_id"] = f"{BLOCK_PREFIX}{first}"
    return block


def message_blocks(
    text: str, choices: Sequence[Choice] = (), first: str | None = None
) -> list[Block]:
    """A message's blocks: its section, then its buttons if it offers choices."""
    blocks = [section(text)]
    if choices:
        blocks.append(buttons(choices, first))
    return blocks


def plain(text: str) -> str:
    """``text`` (anybody's words) made safe to show in a section: escaped."""
    return escape(text)


def click(
    payload: Mapping[str, Any], channel: str, groups: tuple[str, ...] = ()
) -> InboundMessage | None:
    """A ``block_actions`` payload — a person clicked one of our buttons in the control
    channel — as the reaction or reply it stands for; ``None`` for anything else."""
    actions = payload.get("actions")
    user = payload.get("user")
    container = payload.get("container")
    message = payload.get("message")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(user, Mapping):
        return None
    action = actions[0]
    if not isinstance(action, Mapping) or not isinstance(container, Mapping):
        return None
    action_id, value = action.get("action_id"), action.get("value")
    if not isinstance(action_id, str) or not action_id.startswith(ACTION_PREFIX):
        return None
    if not isinstance(value, str) or container.get("channel_id") != channel:
        return None
    sender, ts = user.get("id"), container.get("message_ts")
    if not isinstance(sender, str) or not isinstance(ts, str):
        return None
    block_id = action.get("block_id")
    first = (
        block_id.removeprefix(BLOCK_PREFIX)
        if isinstance(block_id, str) and block_id.startswith(BLOCK_PREFIX)
        else ts
    )
    thread = container.get("thread_ts")
    if thread is None and isinstance(message, Mapping):
        thread = message.get("thread_ts")
    thread_id = ThreadId(thread) if isinstance(thread, str) and thread != first else None
    action_ts = str(action.get("action_ts", ""))
    common: dict[str, Any] = {
        "connector": CONNECTOR,
        "sender": UserId(sender),
        "room": RoomId(channel),
        "timestamp": slack_time(action_ts),
        "event_id": EventId(f"action:{action_ts}:{sender}"),
        "thread_id": thread_id,
        "groups": groups,
    }
    if value.startswith(_REACT):
        return InboundMessage(text=value.removeprefix(_REACT), reacts_to=EventId(first), **common)
    if value.startswith(_REPLY):
        return InboundMessage(text=value.removeprefix(_REPLY), addressed=True, **common)
    return None
