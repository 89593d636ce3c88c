"""The real Slack connector through what Slack does to a connection: an event sent again,
a socket refresh (``disconnect``), a socket lost without a word; and HTTP events that are
not signed by Slack."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.slack.http_events import sign
from tests.integration.connectors.slack.rig import Rig, settle, slack_rig
from tests.polling import eventually

pytestmark = pytest.mark.integration


def delivered(rig: Rig, ts: str) -> dict[str, Any]:
    """The Events API body the fake sent over a socket for the message ``ts``."""
    hub: Any = rig.world.sockets
    for link in hub.links:
        for frame in link.sent:
            event = frame["payload"].get("event", {})
            if event.get("ts") == ts and event.get("type") == "message":
                return dict(frame["payload"])
    raise AssertionError(f"no envelope for {ts}")


async def test_an_event_sent_again_is_handed_over_once(tmp_path: Path) -> None:
    """Slack sends an event again (its ack lost): the connector hands it over once, and
    after a restart the ledger's claim of its id tells the router it was handled."""
    async with slack_rig(tmp_path) as rig:
        ts = await rig.world.person_says(rig.ann, rig.channel, "!spawn coder")
        first = await rig.next()
        assert first.event_id == ts
        claim = rig.ledger.chat.claim_message
        assert await claim("slack", ts, sender=rig.ann, room=rig.channel, thread=None)
        body = delivered(rig, ts)
        await rig.world.sockets.deliver("events_api", body)  # type: ignore[union-attr]
        await rig.nothing_more()
        assert not await claim("slack", ts, sender=rig.ann, room=rig.channel, thread=None)


async def test_a_command_during_a_socket_refresh_is_neither_lost_nor_repeated(
    tmp_path: Path,
) -> None:
    """Slack asks for a new socket (``disconnect`` refresh_requested) as a person writes:
    the command arrives once, on whichever socket, and the next one too."""
    async with slack_rig(tmp_path) as rig:
        rig.world.refresh_grace = 0.5
        await rig.world.refresh_sockets()
        ts = await rig.world.person_says(rig.ann, rig.channel, "!ps")
        got = await rig.next()
        assert (got.event_id, got.text) == (ts, "!ps")
        hub: Any = rig.world.sockets
        await eventually(lambda: len(hub.open_links) == 1, "one socket again")
        await rig.nothing_more()
        assert rig.world.dropped == []


async def test_a_socket_lost_without_a_word_is_replaced(tmp_path: Path) -> None:
    """A socket closed with no ``disconnect``: the connector opens another, and what a
    person wrote meanwhile arrives once; the link says it was down."""
    async with slack_rig(tmp_path) as rig:
        await rig.world.drop_sockets()
        ts = await rig.world.person_says(rig.ann, rig.channel, "!ps")
        got = await rig.next(within=20)
        assert got.event_id == ts
        assert rig.connector.link.report().last_error is not None
        await eventually(lambda: rig.connector.link.report().up, "the link up again")
        await rig.nothing_more()


async def test_http_mode_refuses_what_slack_did_not_sign(tmp_path: Path) -> None:
    """An event POSTed with a wrong signature, or an old timestamp, is refused (401) and
    never handed over; a signed one is taken."""
    async with slack_rig(tmp_path, mode="http") as rig:
        url = rig.world.http_url
        assert url is not None
        ts = await rig.world.person_says(rig.ann, rig.channel, "!ps")
        got = await rig.next()
        assert got.event_id == ts
        forged = {
            "type": "event_callback",
            "team_id": rig.world.team_id,
            "api_app_id": rig.world.app_id,
            "event_id": "EvFORGED001",
            "event_time": int(time.time()),
            "event": {
                "type": "message",
                "channel": rig.channel,
                "user": rig.ann,
                "text": "!stop all",
                "ts": "1700000000.000900",
            },
        }
        body = json.dumps(forged).encode()
        now = str(int(time.time()))
        stale = str(int(time.time()) - 600)
        attempts = [
            {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "0" * 64},
            {
                "X-Slack-Request-Timestamp": stale,
                "X-Slack-Signature": sign(rig.world.signing_secret, stale, body),
            },
            {},
        ]
        async with aiohttp.ClientSession() as session:
            for headers in attempts:
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json", **headers}
                ) as response:
                    assert response.status == 401
        await settle(rig.world)
        await rig.nothing_more()
