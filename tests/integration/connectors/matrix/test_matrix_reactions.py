"""Reactions in and edits out, through the Matrix connector on a real Synapse: an operator's
real matrix-nio client reacts to the bot's messages and sees its edits, in a plain and in an
end-to-end encrypted room."""

from __future__ import annotations

from typing import Any

import pytest
from nio import AsyncClient, RoomSendResponse

from connectors.base import EventId, InboundMessage, OutboundMessage, RoomId, ThreadId
from tests.integration.connectors.matrix.test_matrix_connector import (
    Person,
    World,
    running,
    wait_for,
)
from tests.matrix_e2ee_user import EncryptedUser
from tests.matrix_user import Event

pytestmark = [pytest.mark.integration, pytest.mark.synapse]


async def react(client: AsyncClient, room: str, target: str, key: str) -> str:
    """Annotate ``target`` with ``key`` as Element does (encrypted where the room is)."""
    content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}
    sent = await client.room_send(room, "m.reaction", content, ignore_unverified_devices=True)
    assert isinstance(sent, RoomSendResponse), sent
    return str(sent.event_id)


def reactions(messages: list[InboundMessage]) -> list[InboundMessage]:
    return [message for message in messages if message.reacts_to is not None]


async def test_an_operators_reaction_arrives_once_in_the_thread_and_the_bots_own_do_not(
    world: World,
) -> None:
    """A reaction to the bot's threaded message is inbound with its key, target and thread,
    once (not again after a restart); the bot's own reactions are not inbound."""
    op = world.operator
    async with running(world.connector()) as run:
        root = await run.connector.open_thread(RoomId(world.room), "a1", "a1 started")
        asked = await run.connector.send(
            OutboundMessage(RoomId(world.room), "may a1 run `ls`?", thread_id=ThreadId(root))
        )
        target = asked.event_ids[0]
        await op.say(world.room, "seen", thread=root)  # the bot's message is synced by now
        await run.wait_text("seen")
        reaction = await react(op.client, world.room, target, "✅")
        await wait_for(lambda: bool(reactions(run.messages)))
        [got] = reactions(run.messages)
        assert got.text == "✅"
        assert got.reacts_to == target
        assert got.event_id == reaction
        assert got.sender == op.user_id
        assert got.thread_id == root
        assert got.room == world.room

        bot = Person(world.homeserver, world.bot)  # the bot's account on another device
        try:
            await react(bot.client, world.room, target, "❌")
        finally:
            await bot.close()
        await op.say(world.room, "marker")
        await run.wait_text("marker")
        assert [m.text for m in reactions(run.messages)] == ["✅"]
    async with running(world.connector()) as again:
        await op.say(world.room, "after the restart")
        await again.wait_text("after the restart")
        assert reactions(again.messages) == []


async def test_a_malformed_reaction_is_not_inbound(world: World) -> None:
    """An m.reaction that is no annotation, or whose key is blank, is skipped quietly (Synapse
    itself refuses an annotation without a key)."""
    op = world.operator
    async with running(world.connector()) as run:
        sent = await run.connector.send(OutboundMessage(RoomId(world.room), "hello"))
        target = sent.event_ids[0]
        for relation in (
            {"rel_type": "m.annotation", "event_id": target, "key": " "},
            {"rel_type": "m.reference", "event_id": target, "key": "✅"},
        ):
            await op.say(
                world.room, "", event_type="m.reaction", content={"m.relates_to": relation}
            )
        await op.say(world.room, "marker")
        await run.wait_text("marker")
        assert reactions(run.messages) == []


async def test_an_edit_replaces_the_text_the_operator_sees(world: World) -> None:
    """edit() posts an m.replace of the bot's message whose new content is the new text,
    formatted like a send, without notifying anyone again."""
    op = world.operator
    async with running(world.connector()) as run:
        root = await run.connector.open_thread(RoomId(world.room), "a1", "a1 started")
        sent = await run.connector.send(
            OutboundMessage(
                RoomId(world.room), "approve `rm -rf build`?", thread_id=ThreadId(root), alert=True
            )
        )
        await op.watch()
        await run.connector.edit(
            RoomId(world.room), sent.event_ids[0], "**allowed** by @ann at 12:00"
        )
        seen = await op.wait_seen(lambda events: any(_edits(e, sent.event_ids[0]) for e in events))
    [edit] = [e["content"] for e in seen if _edits(e, sent.event_ids[0])]
    new = edit["m.new_content"]
    assert new["body"] == "**allowed** by @ann at 12:00"
    assert "<strong>allowed</strong>" in new["formatted_body"]
    assert "m.relates_to" not in new
    assert edit["body"].startswith("* ")
    assert edit["m.mentions"] == {} and new["m.mentions"] == {}


def _edits(event: dict[str, Any], original: str) -> bool:
    relates_to = event.get("content", {}).get("m.relates_to", {})
    return relates_to.get("rel_type") == "m.replace" and relates_to.get("event_id") == original


# --- end-to-end encrypted --------------------------------------------------------------


async def bot_joined(op: EncryptedUser, room: str, bot: str) -> None:
    await op.wait_for(
        lambda events: any(
            e.room == room and e.sender == bot and e.content.get("membership") == "join"
            for e in events
        ),
        within=40,
    )


async def test_a_reaction_in_an_encrypted_room_arrives_and_edits_are_encrypted(
    encrypted: World,
) -> None:
    """In an encrypted room, the operator's encrypted reaction reaches inbound() with its key
    and target (one sent in clear does not), and the bot's edit arrives encrypted with the
    new text."""
    op: EncryptedUser = encrypted.operator  # type: ignore[assignment]
    room = encrypted.room
    async with running(encrypted.connector()) as run:
        await bot_joined(op, room, encrypted.bot.user_id)
        await op.sync_once(0)  # learns the bot's device keys
        hello = await op.say(room, "hello")
        await run.wait_text("hello", deadline=40)
        sent = await run.connector.send(
            OutboundMessage(RoomId(room), "may a1 run `ls`?", in_reply_to=EventId(hello))
        )
        target = sent.event_ids[0]
        await op.wait_for(lambda events: [e for e in events if e.event_id == target])
        assert target in op.decrypted
        await react(op.client, room, target, "❌")  # in clear: not trusted in this room
        reaction = await op.react(room, target, "🔁")
        await wait_for(lambda: bool(reactions(run.messages)), 40)
        [got] = reactions(run.messages)
        assert (got.text, got.reacts_to, got.event_id, got.sender) == (
            "🔁",
            target,
            reaction,
            op.user_id,
        )

        await run.connector.edit(RoomId(room), EventId(target), "allowed always by ann")

        def edited(events: list[Event]) -> list[Event]:
            return [
                e
                for e in events
                if e.content.get("m.relates_to", {}).get("rel_type") == "m.replace"
                and e.content.get("m.relates_to", {}).get("event_id") == target
            ]

        [edit] = await op.wait_for(edited)
    assert edit.event_id in op.decrypted
    assert edit.content["m.new_content"]["body"] == "allowed always by ann"
