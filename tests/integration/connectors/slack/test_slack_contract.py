"""The connector contract (:mod:`tests.connector_contract`) on the real Slack connector —
slack-bolt over Socket Mode, slack-sdk's Web API client — against the fake Slack, whose
requests and answers are held to Slack's own types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.base import EventId, InboundMessage, RoomId, ThreadId
from connectors.slack.connector import SlackConnector
from connectors.slack.mrkdwn import PART_LIMIT
from connectors.slack.translate import SHORTCODES
from tests.connector_contract import ConnectorContract, Posted
from tests.fakes.slack import payloads
from tests.integration.connectors.slack.rig import Rig, slack_rig

pytestmark = pytest.mark.integration

NAMES = {emoji: name for name, emoji in reversed(list(SHORTCODES.items()))}
"""Slack's reaction name for each emoji the contract reacts with (the first one listed)."""


class SlackHarness:
    """The real Slack connector serving the fake's control channel; ann writes there."""

    limit = PART_LIMIT
    unknown_room = RoomId("C0NOSUCHROOM")
    unknown_event = EventId("1234567890.000001")

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.connector: SlackConnector = rig.connector
        self.room = RoomId(rig.channel)

    async def read(self, event_id: EventId) -> Posted:
        message = self.rig.world.find(self.rig.channel, event_id)
        assert message is not None, f"no message {event_id} in the fake Slack"
        thread = message.thread_ts if message.thread_ts != message.ts else None
        return Posted(message.text, None if thread is None else ThreadId(thread))

    async def person_says(self, text: str, thread: ThreadId | None = None) -> EventId:
        rig = self.rig
        return EventId(await rig.world.person_says(rig.ann, rig.channel, text, thread_ts=thread))

    async def person_reacts(self, event_id: EventId, key: str) -> None:
        await self.rig.world.person_reacts(self.rig.ann, self.rig.channel, event_id, NAMES[key])

    async def person_takes_back(self, event_id: EventId) -> None:
        """ann deletes the message: it leaves the channel and Slack sends
        ``message_deleted``. The fake has no schema for that event (@slack/types has no
        type for it), so its documented shape is sent here, in an envelope the fake built."""
        world, channel = self.rig.world, self.rig.channel
        message = world.find(channel, event_id)
        assert message is not None
        world.store[channel].remove(message)
        deleted = {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": channel,
            "ts": world.clock.next_ts(),
            "deleted_ts": event_id,
            "event_ts": world.clock.next_ts(),
            "previous_message": {
                "type": "message",
                "user": message.user,
                "text": message.text,
                "ts": event_id,
            },
        }
        probe = {
            "type": "reaction_added",
            "user": self.rig.ann,
            "reaction": "eyes",
            "item_user": message.user,
            "item": {"type": "message", "channel": channel, "ts": event_id},
            "event_ts": deleted["event_ts"],
        }
        body = {**payloads.event_callback(world, probe), "event": deleted}
        await world._outlet().deliver("events_api", body)

    async def inbound(self) -> InboundMessage:
        return await self.rig.next()


class TestSlackOnTheFake(ConnectorContract):
    """Every clause of the contract, on the real Slack connector over the fake Slack."""

    @pytest.fixture
    async def harness(self, tmp_path: Path) -> AsyncIterator[SlackHarness]:
        """The connector serving the fake's control channel, stopped after the test."""
        async with slack_rig(tmp_path) as rig:
            yield SlackHarness(rig)
