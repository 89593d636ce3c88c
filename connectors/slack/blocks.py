"""Block Kit: a message as Slack shows it, with its choices as buttons, and a click back.

Every message is one ``section`` of mrkdwn (:data:`connectors.slack.mrkdwn.PART_LIMIT`
characters at most), its ``text`` the same (what notifications show). A message offering
:class:`Choice` s has an ``actions`` block of buttons under its first part (the one the
bot core knows the message by), one per choice. Editing the message (the question
answered) shows it again without them.

A click is one :class:`InboundMessage` (pure, :func:`click`): a choice answered by a
reaction key comes in as that reaction to the message; one answered by a reply as that
reply, addressed, in the message's thread. Its id, ``action:<action_ts>:<user>``, is the
same on a redelivery, so the ledger's claim makes it count once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from connectors.base import Choice, EventId, InboundMessage, RoomId, ThreadId, UserId
from connectors.slack.translate import CONNECTOR, slack_time

ACTION_PREFIX: Final = "fleetwarden-choice-"
"""Every button's ``action_id`` starts so (then its index): the app listens for these."""
CHOICES_BLOCK: Final = "fleetwarden-choices"
"""The ``block_id`` of a message's buttons."""
_REACT: Final = "react:"
_REPLY: Final = "reply:"
_LABEL_LIMIT: Final = 75  # Slack's limit on a button's text
_VALUE_LIMIT: Final = 2000  # ... and on its value

Block = dict[str, Any]


def section(text: str) -> Block:
    """One mrkdwn section holding ``text`` (already mrkdwn, within the limit)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def buttons(choices: Sequence[Choice]) -> Block:
    """The choices as an ``actions`` block of buttons."""
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
    return {"type": "actions", "block_id": CHOICES_BLOCK, "elements": elements}


def message_blocks(text: str, choices: Sequence[Choice] = ()) -> list[Block]:
    """A message's blocks: its section, then its buttons if it offers choices."""
    blocks = [section(text)]
    if choices:
        blocks.append(buttons(choices))
    return blocks


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
    thread = container.get("thread_ts")
    if thread is None and isinstance(message, Mapping):
        thread = message.get("thread_ts")
    thread_id = ThreadId(thread) if isinstance(thread, str) and thread != ts else None
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
        return InboundMessage(text=value.removeprefix(_REACT), reacts_to=EventId(ts), **common)
    if value.startswith(_REPLY):
        return InboundMessage(text=value.removeprefix(_REPLY), addressed=True, **common)
    return None
