"""The Discord connector with the real discord.py client against the fake Discord on
loopback: starting and its refusals, what counts as a message for us, and posting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.chat.redacting import RedactingConnector
from connectors.base import Attachment, InboundMessage, OutboundMessage, RoomId, ThreadId
from connectors.discord.config import DiscordConfig
from connectors.discord.connector import DiscordConnector
from connectors.discord.gateway import Gateway
from connectors.errors import ConnectorAuthError, ConnectorError, ConnectorSetupError
from fleet.redaction.known import Secret
from fleet.redaction.redactor import Redactor
from tests.fakes.discord.server import FakeDiscord
from tests.polling import eventually

pytestmark = pytest.mark.integration

TOKEN_ENV = "FW_DISCORD_TOKEN"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


class Holder:
    """A secret the app knows, as the redactor's source."""

    def __init__(self, value: str) -> None:
        self.value = value

    def known_secrets(self) -> list[Secret]:
        return [Secret(self.value, "DEPLOY_TOKEN")]


class Book:
    """The ledger's thread mapping, in memory."""

    def __init__(self) -> None:
        self.topics: dict[str, str] = {}

    async def topic_for_thread(self, connector: str, room: str, thread_id: str) -> str | None:
        return self.topics.get(thread_id)

    async def bind_thread(self, connector: str, room: str, topic: str, thread_id: str) -> None:
        self.topics = {t: name for t, name in self.topics.items() if name != topic}
        self.topics[thread_id] = topic


def config(fake: FakeDiscord, **overrides: object) -> DiscordConfig:
    fields: dict[str, object] = {
        "token_env": TOKEN_ENV,
        "guild_id": str(fake.guild_id),
        "channel_id": str(fake.control_channel_id),
        "api_base": fake.api_base,
        "gateway_url": fake.gateway_url,
        "guild_ready_timeout_seconds": 0.05,
    }
    fields.update(overrides)
    return DiscordConfig.model_validate(fields)


@pytest.fixture
async def connector(fake: FakeDiscord) -> AsyncIterator[tuple[DiscordConnector, Book]]:
    book = Book()
    made = DiscordConnector(config(fake), threads=book, environ={TOKEN_ENV: fake.token})
    await made.start()
    yield made, book
    await made.stop()


async def next_message(connector: DiscordConnector) -> InboundMessage:
    return await asyncio.wait_for(anext(aiter(connector.inbound())), 5)


def room(fake: FakeDiscord) -> RoomId:
    return RoomId(str(fake.control_channel_id))


# --- starting ---------------------------------------------------------------------------


async def test_without_a_token_it_names_the_variable(fake: FakeDiscord) -> None:
    made = DiscordConnector(config(fake), threads=Book(), environ={})
    with pytest.raises(ConnectorSetupError, match=f"{TOKEN_ENV} .*is not set"):
        await made.start()


async def test_a_wrong_token_is_an_auth_error(fake: FakeDiscord) -> None:
    made = DiscordConnector(config(fake), threads=Book(), environ={TOKEN_ENV: "not-it"})
    with pytest.raises(ConnectorAuthError, match="Reset Token"):
        await made.start()


async def test_a_server_the_bot_is_not_in_gives_the_invite_url(fake: FakeDiscord) -> None:
    made = DiscordConnector(
        config(fake, guild_id="123456789012345678"),
        threads=Book(),
        environ={TOKEN_ENV: fake.token},
    )
    with pytest.raises(ConnectorSetupError, match=r"not a member .*oauth2/authorize\?client_id="):
        await made.start()


async def test_a_channel_it_cannot_see_is_named(fake: FakeDiscord) -> None:
    made = DiscordConnector(
        config(fake, channel_id="123456789012345678"),
        threads=Book(),
        environ={TOKEN_ENV: fake.token},
    )
    with pytest.raises(ConnectorSetupError, match="123456789012345678"):
        await made.start()


async def test_a_refused_message_content_intent_says_how_to_enable_it(fake: FakeDiscord) -> None:
    fake.deny_message_content_intent = True
    made = DiscordConnector(config(fake), threads=Book(), environ={TOKEN_ENV: fake.token})
    with pytest.raises(ConnectorSetupError) as caught:
        await made.start()
    text = str(caught.value)
    assert "4014" in text and "MESSAGE CONTENT INTENT" in text
    assert f"applications/{fake.application_id}" in text


async def test_health_follows_the_connection(
    connector: tuple[DiscordConnector, Book],
) -> None:
    made, _ = connector
    assert (await made.health()).ok
    await made.stop()
    health = await made.health()
    assert not health.ok and "stopped" in health.detail


# --- inbound ----------------------------------------------------------------------------


async def test_messages_in_the_channel_and_its_threads_only(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book]
) -> None:
    made, _ = connector
    thread = ThreadId(await made.open_thread(room(fake), "demo", "agent demo started"))
    role = fake.add_role("ops")
    fake.grant_role("ann", role)
    bot_id = fake.bot_user["id"]

    await fake.post_user_message(fake.control_channel_id, "ann", f"<@{bot_id}> ps")
    first = await next_message(made)
    assert (first.text, first.addressed, first.thread_id) == ("ps", True, None)
    assert first.sender == str(fake.user_id("ann"))
    assert first.groups == (f"role:{role}",)

    await fake.post_user_message(int(thread), "ann", "hello agent")
    second = await next_message(made)
    assert (second.text, second.thread_id, second.room) == ("hello agent", thread, room(fake))
    assert second.event_id is not None and second.event_id.isdigit()


async def test_an_edit_is_a_message_that_replaces_its_original(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book]
) -> None:
    """MESSAGE_UPDATE of a person's message: the text as it reads now, ``replaces`` naming
    the message, an event id of its own for each edit, in the original's thread."""
    made, _ = connector
    thread = ThreadId(await made.open_thread(room(fake), "demo", "agent demo started"))
    posted = await fake.post_user_message(int(thread), "ann", "ps")
    original = await next_message(made)
    await fake.edit_user_message(int(thread), posted.id, "!ps")
    first = await next_message(made)
    assert (first.text, first.replaces, first.thread_id) == ("!ps", original.event_id, thread)
    await fake.edit_user_message(int(thread), posted.id, "!status")
    second = await next_message(made)
    assert (second.text, second.replaces) == ("!status", original.event_id)
    assert len({original.event_id, first.event_id, second.event_id}) == 3


async def test_a_new_session_reads_back_what_the_gap_missed(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book], monkeypatch: pytest.MonkeyPatch
) -> None:
    made, _ = connector

    async def at_once(self: Gateway, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before identifying again; not here."""

    monkeypatch.setattr(Gateway, "before_identify_hook", at_once)
    history = ("GET", f"/channels/{fake.control_channel_id}/messages")
    reads = fake.requests.count(history)
    await fake.invalidate_session()  # not resumable: the next session starts afresh
    missed = await fake.post_user_message(fake.control_channel_id, "ann", "!ps meanwhile")
    got = await next_message(made)  # read back over REST once the new session is ready
    assert (got.text, got.event_id) == ("!ps meanwhile", str(missed.id))
    assert fake.identifies == 2
    assert fake.requests.count(history) == reads + 1


async def test_a_slash_command_runs_like_typed_text(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book]
) -> None:
    made, _ = connector
    (registered,) = fake.guild_commands
    assert registered["name"] == "fleet"
    assert [(o["name"], o["type"], o["required"]) for o in registered["options"]] == [
        ("command", 3, True)
    ]
    thread = ThreadId(await made.open_thread(room(fake), "demo", "agent demo started"))
    interaction = await fake.post_interaction(int(thread), "ann", "fleet", {"command": "logs demo"})
    got = await next_message(made)
    assert (got.text, got.addressed, got.thread_id) == ("logs demo", True, thread)
    assert got.event_id == f"interaction-{interaction}"
    (ack,) = fake.interaction_responses[interaction]
    assert (ack["type"], ack["data"]["content"]) == (4, "`logs demo`")
    assert not ack["data"].get("flags")  # in the thread for everyone: the record of the ask


async def test_a_strangers_slash_command_gets_nothing(fake: FakeDiscord) -> None:
    made = DiscordConnector(
        config(fake),
        threads=Book(),
        environ={TOKEN_ENV: fake.token},
        is_operator=lambda user, groups: False,
    )
    await made.start()
    try:
        interaction = await fake.post_interaction(
            fake.control_channel_id, "mallory", "fleet", {"command": "ps"}
        )
        await asyncio.sleep(0.3)
        assert fake.interaction_responses[interaction] == []
        assert fake.messages(fake.control_channel_id) == []
    finally:
        await made.stop()


async def test_no_slash_command_when_turned_off(fake: FakeDiscord) -> None:
    made = DiscordConnector(
        config(fake, slash_command=None), threads=Book(), environ={TOKEN_ENV: fake.token}
    )
    await made.start()
    await made.stop()
    assert fake.guild_commands == []


# --- outbound ---------------------------------------------------------------------------


async def test_long_markdown_is_cut_into_balanced_parts(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book]
) -> None:
    made, _ = connector
    body = "\n".join(f"line {i:04d} " + "x" * 40 for i in range(200))
    markdown = f"**logs**\n\n```text\n{body}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    sent = await made.send(OutboundMessage(room=room(fake), markdown=markdown))
    posted = fake.messages(fake.control_channel_id)
    assert len(posted) == len(sent.event_ids) >= 5
    for message in posted:
        assert len(message.content) <= 2000
        assert message.content.count("```") % 2 == 0
    joined = "".join(m.content for m in posted)
    assert all(f"line {i:04d}" in joined for i in range(200))
    assert "| a | b |" not in joined  # the table is shown as aligned columns
    assert posted[-1].content.endswith("a  b\n-  -\n1  2\n```")


async def test_a_notice_with_a_tone_is_a_coloured_embed(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book]
) -> None:
    made, _ = connector
    await made.send(
        OutboundMessage(room=room(fake), markdown="Agent **demo** failed: status 3.", tone="error")
    )
    long = "x" * 5000  # too long for an embed: text parts instead
    await made.send(OutboundMessage(room=room(fake), markdown=long, tone="warning"))
    notice, *parts = fake.messages(fake.control_channel_id)
    assert notice.content == ""
    (embed,) = notice.payload["embeds"]
    assert (embed["description"], embed["color"]) == ("Agent **demo** failed: status 3.", 0xED4245)
    assert len(parts) == 3 and not any(p.payload["embeds"] for p in parts)


async def test_mentions_never_ping(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book]
) -> None:
    made, _ = connector
    await made.send(OutboundMessage(room=room(fake), markdown="@everyone look <@&123>"))
    (posted,) = fake.messages(fake.control_channel_id)
    assert posted.request["allowed_mentions"]["parse"] == []
    assert "@everyone" in posted.content


async def test_images_go_as_attachments(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book], tmp_path: Path
) -> None:
    made, _ = connector
    chart = tmp_path / "pacing.png"
    chart.write_bytes(PNG)
    await made.send(OutboundMessage(room=room(fake), markdown="pacing", images=(chart,)))
    await made.send(OutboundMessage(room=room(fake), markdown="", images=(chart,)))
    first, second = fake.messages(fake.control_channel_id)
    assert first.content == "pacing" and second.content == ""
    for message in (first, second):
        (attachment,) = message.attachments
        assert (attachment.filename, attachment.data) == ("pacing.png", PNG)


async def test_files_go_as_attachments_under_their_names_redacted(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book], tmp_path: Path
) -> None:
    """A file goes with the message's last part as a multipart ``files[n]`` upload the
    strict fake reads as Discord does, under its own name and with its bytes — a secret in
    it redacted by the wrapper every connector is in; a notice with a tone and a file is
    not an embed (an embed cannot carry it); past ten attachments, the rest follow in a
    message of their own."""
    made, _ = connector
    secret = "deploy-" + "Qx7bN2vLk9TzR4wE"
    chat = RedactingConnector(made, Redactor([Holder(secret)]))
    diff = "diff --git a/x b/x\n+" + secret + "\n" + "+line\n" * 5000
    file = Attachment.of_text("diff-coder-1.diff", diff, "text/x-diff")
    await chat.send(OutboundMessage(room=room(fake), markdown="the diff", files=(file,), tone="ok"))
    (posted,) = fake.messages(fake.control_channel_id)
    assert posted.content == "the diff" and posted.payload["embeds"] == []
    (attachment,) = posted.attachments
    redacted = diff.replace(secret, "[redacted: DEPLOY_TOKEN]").encode()
    assert (attachment.filename, attachment.data) == ("diff-coder-1.diff", redacted)
    assert posted.request["attachments"] == [{"id": 0, "filename": "diff-coder-1.diff"}]

    chart = tmp_path / "pacing.png"
    chart.write_bytes(PNG)
    many = tuple(Attachment.of_text(f"f{i}.txt", f"file {i}\n") for i in range(10))
    await made.send(
        OutboundMessage(room=room(fake), markdown="x" * 2500, images=(chart,), files=many)
    )
    first, second, third = fake.messages(fake.control_channel_id)[1:]
    assert [len(m.attachments) for m in (first, second, third)] == [0, 10, 1]
    names = [a.filename for m in (second, third) for a in m.attachments]
    assert names == ["pacing.png", *(f"f{i}.txt" for i in range(10))]
    assert third.attachments[0].data == b"file 9\n" and third.content == ""


async def test_a_429_is_waited_out(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book]
) -> None:
    made, _ = connector
    path = f"/channels/{fake.control_channel_id}/messages"
    fake.rate_limit_next("POST", path, retry_after=0.2)
    await made.send(OutboundMessage(room=room(fake), markdown="after the wait"))
    assert ("POST", path) in fake.rate_limited
    assert [m.content for m in fake.messages(fake.control_channel_id)] == ["after the wait"]


async def test_an_archived_thread_is_fetched_and_unarchived(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book]
) -> None:
    made, _ = connector
    thread = await made.open_thread(room(fake), "demo", "agent demo started")
    await fake.archive_thread(int(thread))
    client = made._client
    assert client is not None
    await eventually(  # discord.py drops it from its cache on THREAD_UPDATE
        lambda: client.get_channel(int(thread)) is None, "the archived thread leaving the cache"
    )
    await made.send(OutboundMessage(room=room(fake), markdown="back", thread_id=thread))
    assert ("GET", f"/channels/{thread}") in fake.requests
    (live,) = fake.threads
    assert live["thread_metadata"]["archived"] is False
    assert [m.content for m in fake.messages(int(thread))][-1] == "back"


async def test_a_deleted_thread_is_made_again_for_its_topic(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book]
) -> None:
    made, book = connector
    old = await made.open_thread(room(fake), "demo", "agent demo started")
    await book.bind_thread("discord", room(fake), "demo", old)
    await fake.delete_thread(int(old))
    await made.send(OutboundMessage(room=room(fake), markdown="still working", thread_id=old))
    (new,) = [t for t in book.topics if book.topics[t] == "demo"]
    assert new != old
    (thread,) = fake.threads
    assert (thread["id"], thread["name"]) == (new, "demo")
    assert [m.content for m in fake.messages(int(new))] == ["still working"]


async def test_a_deleted_thread_with_no_topic_is_an_error(
    fake: FakeDiscord, connector: tuple[DiscordConnector, Book]
) -> None:
    made, _ = connector
    old = await made.open_thread(room(fake), "demo", "agent demo started")
    await fake.delete_thread(int(old))
    with pytest.raises(ConnectorError, match="deleted"):
        await made.send(OutboundMessage(room=room(fake), markdown="x", thread_id=old))
