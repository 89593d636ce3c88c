"""Answers where the command was asked, against the real `fleetwarden run` on a real Synapse
with a matrix-nio operator: a command typed in the room's timeline is answered there, as a
reply, with a link to the agent's thread; a re-spawn opens a new thread and the old one
points to it; a stop leaves its line in the thread; an answer comes before the news it
causes."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.integration.connectors.matrix.test_matrix_bot import (
    BotProcess,
    Deployment,
)
from tests.matrix_user import Event

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

# An agent of the roster whose every run fails at once (from the config: nothing typed in
# chat ever reaches a shell).
CRASHER = (
    "agents:\n"
    "  - name: crasher\n"
    "    runtime: command\n"
    f"    argv: [{sys.executable}, -I, -c, 'import sys; print(\"crashing\"); sys.exit(3)']\n"
    "    workdir: ./crasher-work\n"
)


class CrasherDeployment(Deployment):
    def config(self) -> Path:
        path = super().config()
        path.write_text(path.read_text() + CRASHER)
        (self.workdir / "crasher-work").mkdir(exist_ok=True)
        return path


DEPLOYMENT = CrasherDeployment  # the room conftest's `deployment` is one of these


def link_to(deployment: Deployment, root: str) -> str:
    """The permalink the bot gives a thread: matrix.to, via the bot's own server."""
    server = deployment.bot.partition(":")[2]
    return (
        f"https://matrix.to/#/{quote(deployment.room, safe='!')}/{quote(root, safe='')}"
        f"?via={server}"
    )


async def root_of(deployment: Deployment, started: str, after: int = 0) -> Event:
    """The bot's thread root whose text starts with ``started``, posted after event
    ``after``."""
    op, me = deployment.operator, deployment.bot
    found = await op.wait_for(
        lambda evs: [
            e
            for e in evs[after:]
            if e.sender == me and e.body.startswith(started) and e.thread_root is None
        ]
    )
    return found[0]  # type: ignore[no-any-return]


async def test_watch_in_the_room_is_answered_there_with_a_link_to_the_thread(
    deployment: Deployment, bot: BotProcess
) -> None:
    """`!watch demo` typed in the timeline: the answer replies to it in the timeline (not
    in the thread) and links to demo's thread."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    await op.say(room, "!spawn demo --runtime stub --prompt hi")
    root = await root_of(deployment, "Agent **demo** started")
    watch = await op.reply(room, "!watch demo", me)
    assert watch.thread_root is None and watch.reply_to is not None
    link = link_to(deployment, root.event_id)
    assert link in watch.body
    assert f'href="{link}"' in watch.content["formatted_body"]
    assert not [e for e in op.events if e.thread_root == root.event_id and "lately" in e.body]
    await op.reply(room, "!stop demo", me)


async def test_a_respawn_opens_a_new_thread_and_the_old_one_points_to_it(
    deployment: Deployment, bot: BotProcess
) -> None:
    """demo stopped and spawned again: a new root in the timeline, the old thread's last
    line links to it, and what demo does now shows in the new thread only."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    await op.say(room, "!spawn demo --runtime stub --prompt hi")
    old = await root_of(deployment, "Agent **demo** started")
    await op.reply(room, "!stop demo", me)
    before = len(op.events)
    await op.say(room, "!spawn demo --runtime stub --prompt again")
    new = await root_of(deployment, "Agent **demo** started", after=before)
    assert new.event_id != old.event_id
    pointer = await op.wait_for(
        lambda evs: [e for e in evs if e.thread_root == old.event_id and "started again" in e.body]
    )
    assert link_to(deployment, new.event_id) in pointer[0].body
    await op.say(room, "how are you?", thread=new.event_id)
    said = await op.wait_for(
        lambda evs: [e for e in evs if "stub: received: how are you?" in e.body]
    )
    assert {e.thread_root for e in said} == {new.event_id}
    await op.reply(room, "!stop demo", me)


async def test_a_stop_in_the_room_leaves_a_line_in_the_thread_before_the_summary(
    deployment: Deployment, bot: BotProcess
) -> None:
    """`!stop demo` typed in the timeline: answered there, then "Stopped by" in demo's
    thread, then the run's summary there — in that order."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    await op.say(room, "!spawn demo --runtime stub --prompt hi")
    root = await root_of(deployment, "Agent **demo** started")
    answer = await op.reply(room, "!stop demo", me)
    assert answer.thread_root is None and answer.body.startswith("Stopped **demo**")
    assert link_to(deployment, root.event_id) in answer.body

    def in_thread(events: list[Event]) -> tuple[int, int] | None:
        ids = [e.event_id for e in events]
        line = [e for e in events if e.thread_root == root.event_id and "Stopped by" in e.body]
        summary = [e for e in events if e.thread_root == root.event_id and "run 1" in e.body]
        if not line or not summary:
            return None
        return ids.index(line[0].event_id), ids.index(summary[0].event_id)

    line_at, summary_at = await op.wait_for(in_thread)
    assert f"Stopped by {op.user_id}" in op.events[line_at].body
    assert [e.event_id for e in op.events].index(answer.event_id) < line_at < summary_at


async def test_a_spawn_that_fails_at_once_is_answered_before_its_summary(
    deployment: Deployment, bot: BotProcess
) -> None:
    """The crasher exits at once: the spawn's answer (the thread's root, saying why)
    comes first, the run's summary follows in that thread."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    await op.say(room, "!spawn crasher")
    root = await root_of(deployment, "❌ **crasher** failed")
    summary = await op.wait_for(
        lambda evs: [e for e in evs if e.sender == me and "crasher · command · run" in e.body]
    )
    ids = [e.event_id for e in op.events]
    assert ids.index(root.event_id) < ids.index(summary[0].event_id)
    assert summary[0].thread_root == root.event_id
