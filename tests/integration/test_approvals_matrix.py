"""Approvals in an end-to-end encrypted Matrix room on a real Synapse: Fleetwarden's app
(in this process, so the test can open a request as an agent's CLI would) shows the
request in the agent's thread; a viewer's ✅ from a real client changes nothing; the
operator's ✅ answers it, the CLI is told, and the message is edited to say who."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.config import load_config
from fleet.approvals.model import ApprovalRequest, ApprovalState, Ask, Decision
from fleet.clock import SystemClock
from fleet.runtimes import default_registry
from tests.integration.test_matrix_bot import PASSWORD, _stop_stray_agents
from tests.integration.test_matrix_e2ee import Encrypted, joined, person
from tests.matrix_user import Event
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

CHANNEL = "test-cli"


@pytest.fixture
async def world(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[Encrypted]:
    bot = await synapse.register_async(f"bot{uuid.uuid4().hex[:8]}", PASSWORD)
    operator = await person(synapse, "ann", tmp_path / "ann")
    stranger = await person(synapse, "mallory", tmp_path / "mallory")
    viewer = await person(synapse, "vic", tmp_path / "vic")
    room = await operator.create_room(invite=(bot.user_id, stranger.user_id, viewer.user_id))
    await stranger.join(room)
    await viewer.join(room)
    made = Encrypted(synapse.base_url, bot.user_id, room, operator, stranger, viewer, tmp_path)
    try:
        yield made
    finally:
        for user in (operator, stranger, viewer):
            await user.close()
        _stop_stray_agents(tmp_path)


@pytest.fixture
async def app(world: Encrypted) -> AsyncIterator[App]:
    environ = {"FW_BOT_PASSWORD": PASSWORD}
    config = load_config(
        world.config(),
        environ,
        runtimes=default_registry().names(),
        backends=("subprocess", "tmux"),
    )
    running = App(config, clock=SystemClock(), environ=environ)
    try:
        await running.start()
        await joined(world.operator, world.room, world.bot)
        yield running
    finally:
        with contextlib.suppress(RuntimeError):  # the app did not get as far as its fleet
            for status in await running.fleet.ps():
                if status.state.is_live:
                    await running.fleet.stop_agent(status.name, force=True)
        await running.stop()


async def until(check: Callable[[], Any], within: float = 30.0) -> Any:
    """Poll ``check`` until it is truthy (a deadline, no fixed sleep)."""
    deadline = time.monotonic() + within
    while not (found := check()):
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.05)
    return found


def edits_of(events: list[Event], target: str) -> list[Event]:
    return [
        e
        for e in events
        if (e.content.get("m.relates_to") or {}).get("rel_type") == "m.replace"
        and e.content["m.relates_to"].get("event_id") == target
    ]


async def test_an_approval_in_an_encrypted_thread_is_answered_by_the_operators_reaction(
    world: Encrypted, app: App
) -> None:
    """The request shows in c1's encrypted thread mentioning its starter; a viewer's ✅ is
    refused once and changes nothing; the operator's ✅ allows it and edits the message."""
    op, viewer = world.operator, world.viewer
    await op.say(world.room, "!spawn c1 --runtime stub --prompt wait")
    roots = await op.wait_for(lambda evs: [e for e in evs if "Agent **c1** started" in e.body])
    root = roots[0].event_id
    [(agent, run_id)] = await app.fleet.outputs.open_runs()
    told: list[ApprovalRequest] = []

    async def deliver(request: ApprovalRequest) -> None:
        told.append(request)

    await app.approvals.register(CHANNEL, deliver)
    request = await app.approvals.open(
        agent=agent,
        run_id=run_id,
        channel=CHANNEL,
        ask=Ask("toolu_1", "Bash", "rm -rf build @room", pattern="Bash(rm -rf build @room)"),
        wait_seconds=600,
        max_open=5,
        starter=None,  # found from the run: the operator spawned it
    )

    def shown(evs: list[Event]) -> list[Event]:
        return [
            e
            for e in evs
            if e.sender == world.bot and e.thread_root == root and f"`{request.id}`" in e.body
        ]

    [message] = await op.wait_for(shown, within=30)
    assert message.event_id in op.decrypted  # sent encrypted, and readable
    assert "rm -rf build @room" in message.body
    assert message.content.get("m.mentions") == {"user_ids": [op.user_id]}

    await viewer.wait_for(shown, within=30)
    await viewer.client.joined_members(world.room)  # as Element knows who it encrypts to
    await viewer.react(world.room, message.event_id, "✅")
    refusal = await op.wait_for(
        lambda evs: [e for e in evs if e.sender == world.bot and "is not an answer" in e.body]
    )
    assert refusal[0].thread_root == root
    assert (await app.approvals.get(request.id)).state is ApprovalState.OPEN and told == []

    await op.react(world.room, message.event_id, "✅")
    await until(lambda: told)
    assert told[0].decision is Decision.ALLOW and told[0].how == "reaction"
    assert told[0].answered_by == f"{op.user_id} on matrix"
    [edit] = await op.wait_for(lambda evs: edits_of(evs, message.event_id), within=30)
    assert "Allowed once by" in edit.content["m.new_content"]["body"]
    assert len([e for e in op.events if "is not an answer" in e.body]) == 1
