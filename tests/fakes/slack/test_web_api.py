"""The fake Slack's Web API, driven by the real slack_sdk client: tokens, scopes, Slack's
schemas both ways, limits and the errors Slack answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import SlackServer, SlackWorld, judge
from tests.fakes.slack.client import need_schemas, web_client


@pytest.fixture
async def bot_client(server: SlackServer, world: SlackWorld) -> AsyncIterator[AsyncWebClient]:
    async with web_client(server, world.bot_token) as client:
        yield client


async def _refused(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


def _button(label: str, action_id: str) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label}}


async def test_tokens_refused_as_slack_refuses_them(server: SlackServer, world: SlackWorld) -> None:
    """No token: not_authed; an unknown one: invalid_auth; wrong kind: not_allowed_token_type."""
    async with web_client(server, None) as nobody:
        assert (await _refused(nobody.auth_test())).response["error"] == "not_authed"
    async with web_client(server, "xoxb-1-2-wrong") as stranger:
        assert (await _refused(stranger.auth_test())).response["error"] == "invalid_auth"
    async with web_client(server, world.app_token) as app:
        refused = await _refused(app.chat_postMessage(channel=world.add_channel("c"), text="x"))
        assert refused.response["error"] == "not_allowed_token_type"
    async with web_client(server, world.bot_token) as bot:
        refused = await _refused(bot.apps_connections_open(app_token=world.bot_token))
        assert refused.response["error"] == "not_allowed_token_type"
        assert (await bot.auth_test())["user_id"] == world.bot_user_id


async def test_token_taken_from_a_form_argument_too(server: SlackServer, world: SlackWorld) -> None:
    """A token sent as a form argument (not the header) is read, and a form's strings typed."""
    channel = world.add_channel("ops")
    async with aiohttp.ClientSession() as session:
        form = {"token": world.bot_token, "channel": channel, "text": "hi", "unfurl_links": "false"}
        async with session.post(f"{server.api_base}chat.postMessage", data=form) as answer:
            body = await answer.json()
    assert body["ok"] is True
    assert world.calls[-1].args["unfurl_links"] is False


async def test_missing_scope_names_needed_and_provided(
    bot_client: AsyncWebClient, world: SlackWorld
) -> None:
    """A call without its scope is missing_scope (needed, provided); x-oauth-scopes lists them."""
    world.bot_scopes.discard("reactions:write")
    channel = world.add_channel("ops")
    posted = await bot_client.chat_postMessage(channel=channel, text="hi")
    assert "chat:write" in posted.headers["x-oauth-scopes"].split(",")
    refused = await _refused(
        bot_client.reactions_add(channel=channel, timestamp=posted["ts"], name="eyes")
    )
    assert refused.response["error"] == "missing_scope"
    assert refused.response["needed"] == "reactions:write"
    assert "reactions:write" not in refused.response["provided"].split(",")


async def test_unknown_argument_refused_by_slack_schema(
    bot_client: AsyncWebClient, world: SlackWorld
) -> None:
    """An argument Slack's types do not have is invalid_arguments, naming it."""
    channel = world.add_channel("ops")
    refused = await _refused(bot_client.chat_postMessage(channel=channel, text="hi", colour="red"))
    assert refused.response["error"] == "invalid_arguments"
    assert "colour" in " ".join(refused.response["response_metadata"]["messages"])


def test_generated_schema_has_additional_properties_false() -> None:
    """The generated argument schemas refuse what they do not name, and take what they do."""
    need_schemas()
    assert (
        judge.argument_problems("ReactionsAdd", {"channel": "C1", "timestamp": "1.2", "name": "x"})
        == []
    )
    problems = judge.argument_problems(
        "ReactionsAdd", {"channel": "C1", "timestamp": "1.2", "name": "x", "emoji": "y"}
    )
    assert problems and "emoji" in problems[0]
    assert judge.argument_problems("ReactionsAdd", {"channel": "C1"})


def test_an_answer_breaking_slack_types_raises() -> None:
    """A fake answer that breaks Slack's response type is a SchemaBreach, not a silent pass."""
    need_schemas()
    judge.check_answer("ChatPostMessage", {"ok": True, "channel": "C1", "ts": "1.2"})
    with pytest.raises(judge.SchemaBreach, match="ChatPostMessageResponse"):
        judge.check_answer("ChatPostMessage", {"ok": True, "channel": 5})
    with pytest.raises(judge.SchemaBreach, match="AppMentionEvent"):
        judge.check_event({"type": "app_mention", "user": "U1"})


async def test_second_post_in_a_second_is_ratelimited(
    bot_client: AsyncWebClient, world: SlackWorld
) -> None:
    """Over one chat.postMessage per second per channel is HTTP 429 ratelimited with Retry-After."""
    ops, other = world.add_channel("ops"), world.add_channel("other")
    await bot_client.chat_postMessage(channel=ops, text="one")
    refused = await _refused(bot_client.chat_postMessage(channel=ops, text="two"))
    assert refused.response.status_code == 429
    assert refused.response["error"] == "ratelimited"
    assert int(refused.response.headers["Retry-After"]) >= 1
    await bot_client.chat_postMessage(channel=other, text="another channel has its own allowance")
    assert [m.text for m in world.messages(ops)] == ["one"]


async def test_message_limits(bot_client: AsyncWebClient, world: SlackWorld) -> None:
    """msg_too_long over 40,000 chars; invalid_blocks (bad, 51, long section); no_text."""
    world.limits.post_burst = 100
    ops = world.add_channel("ops")
    refused = await _refused(bot_client.chat_postMessage(channel=ops, text="x" * 40_001))
    assert refused.response["error"] == "msg_too_long"
    await bot_client.chat_postMessage(channel=ops, text="x" * 40_000)
    bad = [{"type": "section", "text": {"type": "mrkdwn"}}]
    assert (
        await _refused(bot_client.chat_postMessage(channel=ops, text="t", blocks=bad))
    ).response["error"] == "invalid_blocks"
    many = [{"type": "divider"}] * 51
    assert (
        await _refused(bot_client.chat_postMessage(channel=ops, text="t", blocks=many))
    ).response["error"] == "invalid_blocks"
    long = [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]
    assert (
        await _refused(bot_client.chat_postMessage(channel=ops, text="t", blocks=long))
    ).response["error"] == "invalid_blocks"
    with pytest.warns(UserWarning, match="text"):  # slack_sdk warns first, then Slack refuses
        refused = await _refused(bot_client.chat_postMessage(channel=ops, text=""))
    assert refused.response["error"] == "no_text"
    fine = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3000}},
        {"type": "actions", "block_id": "a", "elements": [_button("Approve", "approve")]},
    ]
    posted = await bot_client.chat_postMessage(channel=ops, text="t", blocks=fine)
    assert world.find(ops, posted["ts"]).blocks == fine  # type: ignore[union-attr]


async def test_channels_the_bot_is_not_in(bot_client: AsyncWebClient, world: SlackWorld) -> None:
    """A public channel without the bot: not_in_channel; private or unknown: channel_not_found."""
    public = world.add_channel("public", bot_member=False)
    private = world.add_channel("private", bot_member=False, private=True)
    assert (await _refused(bot_client.chat_postMessage(channel=public, text="x"))).response[
        "error"
    ] == "not_in_channel"
    assert (await _refused(bot_client.chat_postMessage(channel=private, text="x"))).response[
        "error"
    ] == "channel_not_found"
    assert (await _refused(bot_client.conversations_history(channel="C0NOSUCH00"))).response[
        "error"
    ] == "channel_not_found"


async def test_update_only_own_known_messages(
    bot_client: AsyncWebClient, world: SlackWorld
) -> None:
    """chat.update: unknown ts is message_not_found, another's message cant_update_message."""
    alice = world.add_user("alice")
    ops = world.add_channel("ops", [alice])
    theirs = await world.person_says(alice, ops, "mine")
    posted = await bot_client.chat_postMessage(channel=ops, text="before")
    assert (await _refused(bot_client.chat_update(channel=ops, ts="1.000001", text="x"))).response[
        "error"
    ] == "message_not_found"
    assert (await _refused(bot_client.chat_update(channel=ops, ts=theirs, text="x"))).response[
        "error"
    ] == "cant_update_message"
    await bot_client.chat_update(channel=ops, ts=posted["ts"], text="after")
    edited = world.find(ops, posted["ts"])
    assert edited is not None and edited.text == "after" and edited.edited is not None


async def test_threads_replies_and_reads(bot_client: AsyncWebClient, world: SlackWorld) -> None:
    """Replies land in their thread; the read methods give back what the world holds."""
    world.limits.post_burst = 10
    alice = world.add_user("alice")
    ops = world.add_channel("ops", [alice])
    group = world.add_usergroup("oncall", [alice])
    root = await bot_client.chat_postMessage(channel=ops, text="run started")
    await bot_client.chat_postMessage(channel=ops, text="working", thread_ts=root["ts"])
    await world.person_says(alice, ops, "thanks", thread_ts=root["ts"])
    replies = await bot_client.conversations_replies(channel=ops, ts=root["ts"])
    assert [m["text"] for m in replies["messages"]] == ["run started", "working", "thanks"]
    history = await bot_client.conversations_history(channel=ops)
    assert [m["text"] for m in history["messages"]] == ["run started"]
    assert history["messages"][0]["reply_count"] == 2
    assert (await bot_client.conversations_info(channel=ops))["channel"]["is_member"] is True
    assert (await bot_client.users_info(user=alice))["user"]["name"] == "alice"
    groups = (await bot_client.usergroups_list(include_users=True))["usergroups"]
    assert groups == [world.usergroups[group].as_slack(True)]
    refused = await _refused(
        bot_client.chat_postMessage(channel=ops, text="x", thread_ts="1.000002")
    )
    assert refused.response["error"] == "thread_not_found"


async def test_agent_session_status(bot_client: AsyncWebClient, world: SlackWorld) -> None:
    """setStatus keeps a session per thread with its history and title; bad ones are refused."""
    ops = world.add_channel("ops")
    root = (await bot_client.chat_postMessage(channel=ops, text="run"))["ts"]
    for status in ("processing", "suspended", "active", "closed"):
        await bot_client.agents_sessions_setStatus(
            channel_id=ops, thread_ts=root, status=status, title="Fix the login"
        )
    session = world.sessions[(ops, root)]
    assert (session.status, session.history, session.title) == (
        "closed",
        ["processing", "suspended", "active", "closed"],
        "Fix the login",
    )
    refused = await _refused(
        bot_client.agents_sessions_setStatus(channel_id=ops, thread_ts=root, status="busy")
    )
    assert refused.response["error"] == "invalid_arguments"
    refused = await _refused(
        bot_client.agents_sessions_setStatus(
            channel_id=ops, thread_ts=root, status="active", title="t" * 201
        )
    )
    assert refused.response["error"] == "invalid_arguments"
    refused = await _refused(
        bot_client.agents_sessions_setStatus(channel_id=ops, thread_ts="1.000003", status="active")
    )
    assert refused.response["error"] == "thread_not_found"
    world.sessions_allowed = False
    refused = await _refused(
        bot_client.agents_sessions_setStatus(channel_id=ops, thread_ts=root, status="active")
    )
    assert refused.response["error"] == "not_allowed"


async def test_calls_are_recorded_without_token(
    bot_client: AsyncWebClient, world: SlackWorld
) -> None:
    """world.calls keeps each call's method, arguments (never the token), token kind and answer."""
    ops = world.add_channel("ops")
    await bot_client.chat_postMessage(channel=ops, text="hi")
    call = world.calls[-1]
    assert (call.method, call.args, call.token_kind, call.error) == (
        "chat.postMessage",
        {"channel": ops, "text": "hi"},
        "bot",
        None,
    )
    assert world.bot_token not in repr(world.calls)
