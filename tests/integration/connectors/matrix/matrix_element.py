"""The real `fleetwarden run` on a real Synapse with an operator in Element: matrix-js-sdk 37.5
on its Rust crypto (tests/matrix_js_user.py), cross-signed as Element sets up at a first
login, in an encrypted room with the bot. The world and its fixtures, shared by the test
files that use it (import ``element`` and ``bot`` into the test module)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.connectors.matrix.test_matrix_bot import (
    PASSWORD,
    BotProcess,
    _stop_stray_agents,
)
from tests.matrix_js_user import JsOperator
from tests.synapse_server import SynapseServer


@dataclass
class ElementWorld:
    """A bot account, an operator in Element (a js-sdk device), their encrypted room, and a
    stranger who has an account but no role."""

    homeserver: str
    bot: str
    room: str
    operator: JsOperator
    workdir: Path
    extra: list[str] = field(default_factory=list)  # more lines under `connectors.matrix`
    bot_token: str = ""  # the bot's access token, to read the keys only the bot is shown
    stranger: str = ""

    def config(self) -> Path:
        path = self.workdir / "fleetwarden.yaml"
        path.write_text(
            "state_dir: ./state\n"
            "operators:\n"
            f"  - {{id: '{self.operator.user_id}', role: operator}}\n"
            "connectors:\n"
            "  matrix:\n"
            f"    homeserver: {self.homeserver}\n"
            f"    user_id: '{self.bot}'\n"
            "    password_env: FW_BOT_PASSWORD\n"
            f"    rooms: ['{self.room}']\n"
            "    sync_timeout_seconds: 5\n"
            "    key_wait_seconds: 4\n" + "".join(f"    {line}\n" for line in self.extra)
        )
        return path


@pytest.fixture
async def element(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[ElementWorld]:
    """The world, with the operator's js-sdk process stopped at the end whatever happens."""
    bot = await synapse.register_async(f"bot{uuid.uuid4().hex[:8]}", PASSWORD)
    ann = await synapse.register_async(f"ann{uuid.uuid4().hex[:8]}", PASSWORD)
    stranger = await synapse.register_async(f"mallory{uuid.uuid4().hex[:8]}", PASSWORD)
    async with JsOperator.start(
        synapse.base_url, ann.user_id, PASSWORD, workdir=tmp_path / "ann"
    ) as operator:
        room = await operator.create_room(invite=[bot.user_id])
        yield ElementWorld(
            synapse.base_url,
            bot.user_id,
            room,
            operator,
            tmp_path,
            bot_token=bot.access_token,
            stranger=stranger.user_id,
        )
    _stop_stray_agents(tmp_path)


@pytest.fixture
async def bot(element: ElementWorld) -> AsyncIterator[BotProcess]:
    """The real `fleetwarden run`, started once the operator sees the bot in the room."""
    process = BotProcess(element)
    try:
        await element.operator.wait_member(element.room, element.bot, timeout=60)
        yield process
    finally:
        process.stop()
