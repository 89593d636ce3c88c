"""What Slack sends an app, built as Slack builds it: the Events API's ``event_callback``
around an event, the ``block_actions`` payload of a button click, the Socket Mode
envelope around either, and ``hello``/``disconnect``. Shapes read from Slack's docs and
its SDKs' recorded fixtures (python-slack-sdk ``tests/slack_sdk_fixture``, bolt-python's
tests); every event is held to ``@slack/types`` by :func:`judge.check_event`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from tests.fakes.slack import judge

if TYPE_CHECKING:
    from tests.fakes.slack.state import Message
    from tests.fakes.slack.world import SlackWorld

__all__ = ["block_actions", "disconnect", "envelope", "event_callback", "hello"]


def event_callback(world: SlackWorld, event: dict[str, Any]) -> dict[str, Any]:
    """The Events API request body around ``event`` (checked against its schema first)."""
    judge.check_event(event)
    event_time = int(float(str(event.get("event_ts") or event.get("ts") or world.clock.next_ts())))
    return {
        "token": world.verification_token,
        "team_id": world.team_id,
        "context_team_id": world.team_id,
        "context_enterprise_id": None,
        "api_app_id": world.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": world.team_id,
                "user_id": world.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def block_actions(
    world: SlackWorld, user: str, message: Message, button: dict[str, Any], block_id: str
) -> dict[str, Any]:
    """The ``block_actions`` payload of ``user`` clicking ``button`` on ``message``."""
    person = world.users[user]
    action_ts = world.clock.next_ts()
    action: dict[str, Any] = {
        "action_id": button["action_id"],
        "block_id": block_id,
        "text": button["text"],
        "type": "button",
        "action_ts": action_ts,
    }
    if "value" in button:
        action["value"] = button["value"]
    if "style" in button:
        action["style"] = button["style"]
    shown = message.as_slack(world.team_id)
    shown.pop("reactions", None)
    return {
        "type": "block_actions",
        "user": {
            "id": user,
            "username": person.name,
            "name": person.name,
            "team_id": world.team_id,
        },
        "api_app_id": world.app_id,
        "token": world.verification_token,
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": message.channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"{uuid.uuid4().int % 10**13}.{uuid.uuid4().int % 10**13}.{uuid.uuid4().hex}",
        "team": {"id": world.team_id, "domain": world.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": message.channel, "name": world.channels[message.channel].name},
        "message": shown,
        "state": {"values": {}},
        "response_url": f"{world.base_url}/actions/{world.team_id}/{uuid.uuid4().hex}",
        "actions": [action],
    }


def envelope(
    kind: str, payload: dict[str, Any], envelope_id: str, attempt: int, reason: str
) -> dict[str, Any]:
    """A Socket Mode envelope (``events_api`` or ``interactive``)."""
    return {
        "envelope_id": envelope_id,
        "payload": payload,
        "type": kind,
        "accepts_response_payload": False,
        "retry_attempt": attempt,
        "retry_reason": reason,
    }


def hello(world: SlackWorld, connections: int, host: str) -> dict[str, Any]:
    """The first frame on a new socket."""
    return {
        "type": "hello",
        "num_connections": connections,
        "debug_info": {"host": host, "build_number": 106, "approximate_connection_time": 18060},
        "connection_info": {"app_id": world.app_id},
    }


def disconnect(world: SlackWorld, reason: str, host: str, connections: int) -> dict[str, Any]:
    """``refresh_requested``, ``warning`` or ``too_many_websockets``."""
    return {
        "type": "disconnect",
        "reason": reason,
        "num_connections": connections,
        "debug_info": {"host": host},
        "connection_info": {"app_id": world.app_id},
    }
