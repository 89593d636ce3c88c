"""What people do in the fake Slack reaches the real Slack connector (slack-bolt over
Socket Mode, and signed HTTP events) as the bot core expects it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.connectors.slack.rig import slack_rig
from tests.polling import eventually

pytestmark = pytest.mark.integration


async def test_a_mention_is_handed_over_once_addressed(tmp_path: Path) -> None:
    """A mention arrives as ``message`` and ``app_mention``: one message, addressed, the
    mention cut off, known by its ts; every envelope acknowledged, none sent again."""
    async with slack_rig(tmp_path) as rig:
        ts = await rig.world.person_says(rig.ann, rig.channel, "ps", mention=True)
        got = await rig.next()
        assert (got.text, got.addressed, got.event_id, got.sender) == ("ps", True, ts, rig.ann)
        assert got.room == rig.channel and got.thread_id is None
        await rig.nothing_more()
        hub: Any = rig.world.sockets
        await eventually(lambda: hub.pending == {}, "every envelope acknowledged")
        assert len(rig.world.acks) >= 3  # the message, its app_mention, the marker
        assert rig.world.dropped == []


async def test_a_prefixed_command_and_a_thread_reply(tmp_path: Path) -> None:
    """A prefixed message is not addressed; a reply in a thread names the thread."""
    async with slack_rig(tmp_path) as rig:
        root = await rig.world.person_says(rig.ann, rig.channel, "!ps")
        assert (await rig.next()).addressed is False
        reply = await rig.world.person_says(rig.ann, rig.channel, "go on", thread_ts=root)
        got = await rig.next()
        assert (got.text, got.thread_id, got.event_id) == ("go on", root, reply)


async def test_the_bot_s_own_posts_are_not_handed_over(tmp_path: Path) -> None:
    """The fake echoes the bot's messages as Slack does; none comes back as a command."""
    from connectors.base import OutboundMessage, RoomId

    async with slack_rig(tmp_path) as rig:
        await rig.connector.send(OutboundMessage(room=RoomId(rig.channel), markdown="!ps"))
        await rig.nothing_more()


async def test_user_groups_come_with_the_sender(tmp_path: Path) -> None:
    """The sender's user groups are the ACL's ``usergroup:S…`` groups."""
    from tests.fakes.slack import SlackWorld

    world = SlackWorld()
    bob = world.add_user("bob")
    group = world.add_usergroup("oncall", [bob])
    async with slack_rig(tmp_path, world=world) as rig:
        world.channels[rig.channel].members.add(bob)
        await world.person_says(bob, rig.channel, "!whoami")
        got = await rig.next()
        assert (got.sender, got.groups) == (bob, (f"usergroup:{group}",))


async def test_a_reaction_is_the_emoji_on_the_message(tmp_path: Path) -> None:
    """A reaction by its Slack name comes in as the emoji the approvals read."""
    from connectors.base import OutboundMessage, RoomId

    async with slack_rig(tmp_path) as rig:
        [ts] = (
            await rig.connector.send(OutboundMessage(room=RoomId(rig.channel), markdown="ok?"))
        ).event_ids
        await rig.world.person_reacts(rig.ann, rig.channel, ts, "white_check_mark")
        got = await rig.next()
        assert (got.text, got.reacts_to, got.sender) == ("✅", ts, rig.ann)


async def test_http_mode_takes_signed_events(tmp_path: Path) -> None:
    """In http mode Slack's signed POSTs reach the connector through bolt's check."""
    async with slack_rig(tmp_path, mode="http") as rig:
        ts = await rig.world.person_says(rig.ann, rig.channel, "ps", mention=True)
        got = await rig.next()
        assert (got.text, got.event_id, got.addressed) == ("ps", ts, True)


async def test_http_mode_takes_signed_clicks(tmp_path: Path) -> None:
    """In http mode a click (a signed form post) is the answer it stands for."""
    from connectors.base import Choice, OutboundMessage, RoomId

    async with slack_rig(tmp_path, mode="http") as rig:
        ask = OutboundMessage(
            room=RoomId(rig.channel), markdown="ok?", choices=(Choice("Deny", "❌"),)
        )
        [ts] = (await rig.connector.send(ask)).event_ids
        await rig.world.person_clicks(rig.ann, rig.channel, ts, label="Deny")
        got = await rig.next()
        assert (got.text, got.reacts_to, got.sender) == ("❌", ts, rig.ann)


async def test_a_yes_answers_only_the_question_it_is_on(tmp_path: Path) -> None:
    """ann asks twice in one place: her older question's Yes comes off; bob's Yes on her
    latest is refused (said there) and hands over nothing; her own Yes on it is her `yes`,
    and that Yes comes off too, the question's text kept."""
    from connectors.base import Choice, OutboundMessage, RoomId

    async with slack_rig(tmp_path) as rig:
        bob = rig.world.add_user("bob")
        rig.world.channels[rig.channel].members.add(bob)
        asked: list[str] = []
        for command in ("!stop all", "!freeze all"):
            await rig.world.person_says(rig.ann, rig.channel, command)
            heard = await rig.next()
            question = OutboundMessage(
                room=RoomId(rig.channel),
                markdown=f"{command}? Reply yes",
                in_reply_to=heard.event_id,
                choices=(Choice("Yes", "yes", as_reply=True),),
            )
            asked += (await rig.connector.send(question)).event_ids
        older, latest = asked

        def buttons(ts: str) -> list[str]:
            (message,) = [m for m in rig.world.messages(rig.channel) if m.ts == ts]
            blocks = [b for b in message.blocks if b.get("type") == "actions"]
            return [e["text"]["text"] for b in blocks for e in b.get("elements", [])]

        def text(ts: str) -> str:
            (message,) = [m for m in rig.world.messages(rig.channel) if m.ts == ts]
            return message.text

        await eventually(lambda: buttons(older) == [], "the replaced question's Yes off")
        assert "!stop all? Reply yes" in text(older)
        with pytest.raises(ValueError, match="has no button 'Yes'"):
            await rig.world.person_clicks(rig.ann, rig.channel, older, label="Yes")
        await rig.world.person_clicks(bob, rig.channel, latest, label="Yes")
        await rig.world.person_clicks(rig.ann, rig.channel, latest, label="Yes")
        got = await rig.next()
        assert (got.text, got.sender, got.addressed) == ("yes", rig.ann, True)
        await rig.nothing_more()

        def said(words: str) -> bool:
            return any(words in m.text for m in rig.world.messages(rig.channel) if m.bot_id)

        await eventually(lambda: said(f"that question is {rig.ann}'s"), "bob's Yes refused")
        await eventually(lambda: buttons(latest) == [], "the answered question's Yes off")
        assert "!freeze all? Reply yes" in text(latest)
