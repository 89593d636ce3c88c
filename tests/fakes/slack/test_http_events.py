"""The fake Slack in HTTP mode: signed Events API requests, verified by the real slack_bolt."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import SlackServer, SlackWorld
from tests.polling import eventually


@pytest.fixture(autouse=True)
def quick_retries(world: SlackWorld) -> None:
    """The room's world, retrying an unanswered event at once (the server reads the delays
    when it retries)."""
    world.http_retry_delays = (0.0, 0.0, 0.0)


async def _serve(app: AsyncApp) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"


async def test_signed_events_pass_bolt_check(server: SlackServer, world: SlackWorld) -> None:
    """An event and a click posted signed are taken by bolt's own signature check."""
    alice = world.add_user("alice")
    ops = world.add_channel("ops", [alice])
    client = AsyncWebClient(token=world.bot_token, base_url=server.api_base)
    app = AsyncApp(client=client, signing_secret=world.signing_secret)
    seen: list[Any] = []

    @app.event("message")
    async def message(event: dict[str, Any]) -> None:
        seen.append(event["text"])

    @app.action("go")
    async def go(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        seen.append(body["actions"][0]["action_id"])

    runner, url = await _serve(app)
    try:
        world.post_events_to(url)
        button = {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}
        world.echo_bot_messages = False
        posted = await client.chat_postMessage(
            channel=ops,
            text="go?",
            blocks=[{"type": "actions", "block_id": "b", "elements": [button]}],
        )
        await world.person_says(alice, ops, "hello over http")
        await world.person_clicks(alice, ops, posted["ts"], label="Go")
        await eventually(lambda: len(seen) == 2, "the event and the click")
    finally:
        await runner.cleanup()
    assert sorted(seen) == ["go", "hello over http"]
    assert {a.status for a in server.poster.attempts} == {200}


async def test_bad_signature_refused_and_retried(server: SlackServer, world: SlackWorld) -> None:
    """Signed with another secret, bolt answers 401; Slack's retries follow, numbered, then stop."""
    alice = world.add_user("alice")
    ops = world.add_channel("ops", [alice])
    client = AsyncWebClient(token=world.bot_token, base_url=server.api_base)
    app = AsyncApp(client=client, signing_secret="not-the-" + world.signing_secret)
    seen: list[str] = []

    @app.event("message")
    async def message(event: dict[str, Any]) -> None:
        seen.append(event["text"])

    runner, url = await _serve(app)
    try:
        world.post_events_to(url)
        await world.person_says(alice, ops, "forged?")
        await eventually(lambda: world.dropped, "the event given up")
    finally:
        await runner.cleanup()
    assert [(a.retry, a.status) for a in server.poster.attempts] == [
        (0, 401),
        (1, 401),
        (2, 401),
        (3, 401),
    ]
    assert seen == []


def test_only_loopback_targets(world: SlackWorld) -> None:
    """The fake posts events only to a loopback address."""
    with pytest.raises(ValueError, match="loopback"):
        world.post_events_to("http://example.com/slack/events")
