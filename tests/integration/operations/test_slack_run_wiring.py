"""The real ``fleetwarden run`` with a `connectors.slack` section, against the fake Slack:
the config's section starts the Slack connector, and the operators' ACL holds there — a
person in an operator user group (`usergroup:S…`) is answered, a stranger is not."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.slack.config import API_BASE_ENV
from tests.fakes.slack.server import SlackServer, slack_server
from tests.fakes.slack.world import SlackWorld
from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.polling import eventually

pytest.importorskip("connectors.slack.connector")  # the connector itself, built beside this
pytestmark = pytest.mark.integration

WITHIN = 30.0


@dataclass
class Running:
    server: SlackServer
    channel: str
    proc: asyncio.subprocess.Process

    @property
    def world(self) -> SlackWorld:
        return self.server.world

    def bot_said(self, after: str) -> list[str]:
        """The bot's messages in the channel (threads too) after the message ``after``."""
        return [
            m.text
            for m in self.world.messages(self.channel)
            if m.bot_id and float(m.ts) > float(after)
        ]


@pytest.fixture
async def slack_run_wiring_running(tmp_path: Path) -> AsyncIterator[Running]:
    world = SlackWorld()
    ann, stranger = world.add_user("ann"), world.add_user("sam")
    group = world.add_usergroup("fleet-ops", [ann])
    channel = world.add_channel("fleet", members=[ann, stranger])
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "operators:\n"
        f"  - {{id: 'usergroup:{group}', role: operator, connector: slack}}\n"
        "connectors:\n"
        "  slack:\n"
        "    bot_token_env: FW_SLACK_BOT\n"
        "    app_token_env: FW_SLACK_APP\n"
        f"    channel_id: {channel}\n"
    )
    async with slack_server(world) as server:
        env = clean_env(
            FW_SLACK_BOT=world.bot_token,
            FW_SLACK_APP=world.app_token,
            **{API_BASE_ENV: server.api_base},
        )
        proc = await asyncio.create_subprocess_exec(
            str(FLEETWARDEN),
            "run",
            "--config",
            str(config),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await eventually(lambda: server.hub.links, "the connector's socket", WITHIN)
            yield Running(server, channel, proc)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
            text = err.decode()
            assert world.bot_token[-16:] not in text and world.app_token[-16:] not in text


async def test_an_operator_by_user_group_is_answered_a_stranger_is_not(
    slack_run_wiring_running: Running,
) -> None:
    """`!ps` from someone in the operators' user group gets the fleet's answer; the same
    from someone in no group gets nothing, and the process keeps serving."""
    world = slack_run_wiring_running.world
    ann, sam = (uid for uid, user in world.users.items() if user.name in ("ann", "sam"))
    said = await world.person_says(sam, slack_run_wiring_running.channel, "!ps")
    asked = await world.person_says(ann, slack_run_wiring_running.channel, "!ps")
    answers = await eventually(
        lambda: slack_run_wiring_running.bot_said(asked), "the answer to ann", WITHIN
    )
    assert any("No agents yet." in text for text in answers), answers
    assert [
        m
        for m in world.messages(slack_run_wiring_running.channel)
        if m.bot_id and m.thread_ts == said
    ] == []
    assert slack_run_wiring_running.proc.returncode is None
