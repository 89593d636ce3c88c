"""Presence and alerts as an Element user sees them, on a real Synapse: the bot reads each
command (a read receipt), types while a slow one is handled, and an agent's failure is an
`m.text` that mentions the operator who started it, while routine answers stay notices."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nio
import pytest

from tests.integration.connectors.matrix.test_matrix_bot import (
    BotProcess,
    Deployment,
)
from tests.matrix_user import Event

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

# Writes nothing for a while: its spawn waits out the reply time (2 s), longer than the
# second after which the bot shows it is typing.
SILENT = "import time\ntime.sleep(60)"
# Fails a few seconds in, after its spawn was answered.
FAILING = "import sys, time\nprint('about to fail', flush=True)\ntime.sleep(3)\nsys.exit(1)"


class PresenceDeployment(Deployment):
    def config(self) -> Path:
        path = super().config()
        agents = "".join(
            f"  - name: {name}\n"
            "    runtime: command\n"
            f"    argv: {json.dumps([sys.executable, '-I', '-c', code])}\n"
            "    restart: never\n"
            for name, code in (("silent", SILENT), ("failing", FAILING))
        )
        path.write_text(path.read_text() + "agents:\n" + agents)
        return path


DEPLOYMENT = PresenceDeployment  # the room conftest's `deployment` is one of these


def _typing_users(deployment: Deployment) -> set[str]:
    return {
        user
        for room, event in deployment.operator.ephemeral
        if room == deployment.room and isinstance(event, nio.TypingNoticeEvent)
        for user in event.users
    }


async def test_a_command_is_read_and_a_slow_one_shows_typing(
    deployment: Deployment, bot: BotProcess
) -> None:
    """The bot sends a read receipt for a command it takes, and types while a slow one
    (a spawn waiting on a silent agent) is handled; the typing ends with the answer."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    sent = await op.say(room, "!spawn silent")
    await op.wait_for(
        lambda evs: [e for e in evs if "Agent **silent** started" in e.body], within=30
    )

    def receipt() -> bool:
        for where, event in op.ephemeral:
            if where != room or not isinstance(event, nio.ReceiptEvent):
                continue
            for each in event.receipts:
                if each.user_id == me and each.event_id == sent and each.receipt_type == "m.read":
                    return True
        return False

    await op.wait_for(lambda _: receipt())
    await op.wait_for(lambda _: me in _typing_users(deployment))
    # The last typing notice names nobody: the bot stopped once it had answered.
    await op.wait_for(
        lambda _: (
            [
                e
                for where, e in op.ephemeral
                if where == room and isinstance(e, nio.TypingNoticeEvent) and me not in e.users
            ]
            and not any(
                me in e.users
                for where, e in op.ephemeral[-1:]
                if where == room and isinstance(e, nio.TypingNoticeEvent)
            )
        )
    )


async def test_a_failure_mentions_the_operator_and_routine_stays_a_notice(
    deployment: Deployment, bot: BotProcess
) -> None:
    """An agent that exits 1 is announced as an `m.text` mentioning the operator who
    spawned it (so Element notifies them); the spawn's answer is an `m.notice`."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    await op.say(room, "!spawn failing")
    (answer,) = await op.wait_for(
        lambda evs: [e for e in evs if "Agent **failing** started" in e.body], within=30
    )
    assert answer.content["msgtype"] == "m.notice"
    assert "m.mentions" not in answer.content

    def failed(events: list[Event]) -> list[Event]:
        return [e for e in events if e.sender == me and "**failing** failed" in e.body]

    alerts = await op.wait_for(lambda evs: len(failed(evs)) >= 2 and failed(evs), within=40)
    for alert in alerts:  # in the agent's thread and in the room
        assert alert.content["msgtype"] == "m.text"
        assert alert.content["m.mentions"] == {"user_ids": [op.user_id]}
        assert f'href="https://matrix.to/#/{op.user_id}"' in alert.content["formatted_body"]
        assert alert.body.startswith(op.user_id)
    assert {e.thread_root is None for e in alerts} == {True, False}
    fed = [e for e in op.events if e.sender == me and "about to fail" in e.body]
    assert fed and all(e.content["msgtype"] == "m.notice" for e in fed)
