"""The fake Slack's Socket Mode, with bare websockets and the real slack_bolt app: hello,
envelopes and acks, redelivery, refresh, the socket limit."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.fakes.slack import SlackServer, SlackWorld
from tests.fakes.slack.client import bolt_app, next_frame, raw_socket, web_client
from tests.polling import eventually


async def test_hello_first(server: SlackServer, world: SlackWorld) -> None:
    """A new socket's first frame is hello, shaped as Slack's, naming the app."""
    async with raw_socket(server, world.app_token) as ws:
        hello = await next_frame(ws)
    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": world.app_id}
    assert set(hello["debug_info"]) == {"host", "build_number", "approximate_connection_time"}


async def test_ticket_single_use(server: SlackServer, world: SlackWorld) -> None:
    """A Socket Mode URL opens one socket; used again, the upgrade is refused."""
    async with web_client(server, None) as client:
        url = (await client.apps_connections_open(app_token=world.app_token))["url"]
    assert url.startswith("ws://127.0.0.1:")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            assert (await next_frame(ws))["type"] == "hello"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url)
        assert refused.value.status == 401


async def test_mention_reaches_bolt_handler(server: SlackServer, world: SlackWorld) -> None:
    """A mention of the bot reaches a real bolt app_mention handler, which answers in thread."""
    alice = world.add_user("alice")
    ops = world.add_channel("ops", [alice])
    heard: list[dict[str, Any]] = []
    async with bolt_app(server, world) as (app, handler):

        @app.event("app_mention")
        async def mentioned(event: dict[str, Any], say: Any) -> None:
            heard.append(event)
            await say(text="on it", thread_ts=event["ts"])

        @app.event("message")
        async def message(event: dict[str, Any]) -> None:
            pass

        await handler.connect_async()
        ts = await world.person_says(alice, ops, "spawn fix-login", mention=True)
        reply = await eventually(lambda: world.messages(ops, thread_ts=ts)[1:], "bolt's reply")
    assert heard[0]["text"] == f"<@{world.bot_user_id}> spawn fix-login"
    assert heard[0]["user"] == alice
    assert reply[0].text == "on it" and reply[0].bot_id == world.bot_id
    assert not [p for p in world.dropped]


async def test_not_acked_is_redelivered(server: SlackServer, world: SlackWorld) -> None:
    """Not acked in time, an envelope comes again (retry_attempt 1, timeout); acked, it stops."""
    world.ack_timeout = 0.3
    alice = world.add_user("alice")
    ops = world.add_channel("ops", [alice])
    async with raw_socket(server, world.app_token) as ws:
        await next_frame(ws)  # hello
        ts = await world.person_says(alice, ops, "hello")
        first = await next_frame(ws)
        assert (first["type"], first["retry_attempt"], first["retry_reason"]) == (
            "events_api",
            0,
            "",
        )
        assert first["payload"]["event"]["ts"] == ts
        again = await next_frame(ws)
        assert again["envelope_id"] == first["envelope_id"]
        assert (again["retry_attempt"], again["retry_reason"]) == (1, "timeout")
        assert again["payload"]["event_id"] == first["payload"]["event_id"]
        await ws.send_json({"envelope_id": first["envelope_id"]})
        await eventually(lambda: first["envelope_id"] in world.acks, "the ack")
        with pytest.raises(TimeoutError):
            await next_frame(ws, within=4 * world.ack_timeout)


async def test_unacked_of_a_closed_socket_go_to_the_next(
    server: SlackServer, world: SlackWorld
) -> None:
    """What a socket was sent and never acked goes to the socket opened after it closed."""
    alice = world.add_user("alice")
    ops = world.add_channel("ops", [alice])
    async with raw_socket(server, world.app_token) as ws:
        await next_frame(ws)
        await world.person_says(alice, ops, "lost?")
        first = await next_frame(ws)
    async with raw_socket(server, world.app_token) as ws:
        await next_frame(ws)
        again = await next_frame(ws)
    assert again["envelope_id"] == first["envelope_id"]
    assert again["retry_attempt"] == 1


async def test_refresh_loses_nothing_with_real_client(
    server: SlackServer, world: SlackWorld
) -> None:
    """refresh_requested mid-stream: the real slack_sdk client reconnects, losing no message."""
    world.refresh_grace = 0.5
    alice = world.add_user("alice")
    ops = world.add_channel("ops", [alice])
    heard: list[str] = []
    async with bolt_app(server, world) as (app, handler):

        @app.event("message")
        async def message(event: dict[str, Any]) -> None:
            heard.append(event["text"])

        await handler.connect_async()
        await eventually(lambda: server.hub.open_links, "the first socket")
        first = server.hub.open_links[0]
        await world.person_says(alice, ops, "before")
        await world.refresh_sockets()
        for n in range(5):
            await world.person_says(alice, ops, f"during {n}")
        await eventually(lambda: first.ws.closed, "the old socket closed")
        await world.person_says(alice, ops, "after")
        expected = ["before", *(f"during {n}" for n in range(5)), "after"]
        await eventually(lambda: sorted(set(heard)) == sorted(expected), "every message")
        await eventually(lambda: not server.hub.pending, "every envelope acked")
    assert first not in server.hub.links
    assert not world.dropped


async def test_eleventh_socket_refused(server: SlackServer, world: SlackWorld) -> None:
    """Ten sockets are served; the eleventh gets disconnect too_many_websockets and is closed."""
    async with web_client(server, None) as client:
        urls = [
            (await client.apps_connections_open(app_token=world.app_token))["url"]
            for _ in range(11)
        ]
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(url) for url in urls[:10]]
        try:
            hellos = [await next_frame(ws) for ws in sockets]
            assert [h["num_connections"] for h in hellos] == list(range(1, 11))
            async with session.ws_connect(urls[10]) as eleventh:
                refusal = await next_frame(eleventh)
                assert (refusal["type"], refusal["reason"]) == ("disconnect", "too_many_websockets")
                closing = await asyncio.wait_for(eleventh.receive(), timeout=10)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert len(server.hub.open_links) == 10
        finally:
            for ws in sockets:
                await ws.close()


async def test_click_reaches_bolt_action(server: SlackServer, world: SlackWorld) -> None:
    """A button click is block_actions as Slack sends it, handled by bolt's action listener."""
    alice = world.add_user("alice")
    ops = world.add_channel("ops", [alice])
    button = {
        "type": "button",
        "action_id": "approve",
        "value": "ok",
        "text": {"type": "plain_text", "text": "Approve"},
    }
    clicks: list[dict[str, Any]] = []
    async with bolt_app(server, world) as (app, handler):

        @app.action("approve")
        async def approve(ack: Any, body: dict[str, Any]) -> None:
            await ack()
            clicks.append(body)

        @app.event("message")
        async def message(event: dict[str, Any]) -> None:
            pass

        posted = await app.client.chat_postMessage(
            channel=ops,
            text="Approve?",
            blocks=[{"type": "actions", "block_id": "ask", "elements": [button]}],
        )
        with pytest.raises(ValueError, match="Deny"):
            await world.person_clicks(alice, ops, posted["ts"], label="Deny")
        await handler.connect_async()
        await world.person_clicks(alice, ops, posted["ts"], label="Approve")
        body = (await eventually(lambda: clicks, "the click"))[0]
    assert body["type"] == "block_actions"
    assert body["user"]["id"] == alice and body["user"]["username"] == "alice"
    assert body["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": ops,
        "is_ephemeral": False,
    }
    assert body["message"]["ts"] == posted["ts"]
    action = body["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "approve",
        "ask",
        "ok",
        "button",
    )


async def test_reaction_and_stop_reach_bolt(server: SlackServer, world: SlackWorld) -> None:
    """reaction_added and agent_session_stopped reach bolt's event listeners."""
    alice = world.add_user("alice")
    ops = world.add_channel("ops", [alice])
    events: list[dict[str, Any]] = []
    async with bolt_app(server, world) as (app, handler):
        for name in ("reaction_added", "agent_session_stopped"):
            app.event(name)(_recorder(events))

        @app.event("message")
        async def message(event: dict[str, Any]) -> None:
            pass

        root = (await app.client.chat_postMessage(channel=ops, text="run"))["ts"]
        await app.client.agents_sessions_setStatus(
            channel_id=ops, thread_ts=root, status="processing"
        )
        await handler.connect_async()
        await world.person_reacts(alice, ops, root, "white_check_mark")
        await world.person_stops_session(alice, ops, root)
        await eventually(lambda: len(events) == 2, "both events")
    by_type = {e["type"]: e for e in events}
    assert by_type["reaction_added"]["item"] == {"type": "message", "channel": ops, "ts": root}
    stopped = by_type["agent_session_stopped"]
    assert (
        stopped["user"],
        stopped["channel"],
        stopped["thread_ts"],
        stopped["streaming_message_ts"],
    ) == (alice, ops, root, [])


def _recorder(into: list[dict[str, Any]]) -> Any:
    async def record(event: dict[str, Any]) -> None:
        into.append(event)

    return record
