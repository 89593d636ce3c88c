"""The Matrix room's fixtures: a deployment on the session's Synapse (the bot's account, a
room with an operator and a stranger in it, a workdir) and the real ``fleetwarden run``
serving it. A module whose deployment differs (its own config added) names its
:class:`Deployment` subclass as ``DEPLOYMENT``; the bot then runs on that. And the
connector's worlds: a room with an operator and the bot's account (``world``), the same
encrypted (``encrypted``); a module whose world differs (cross-signed, withholding keys,
usage recorded) keeps its own."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.ledger.store import Ledger
from fleet.timing.clock import SystemClock
from tests.integration.connectors.matrix.test_matrix_bot import (
    BotProcess,
    Deployment,
    _stop_stray_agents,
    make_deployment,
    serving,
)
from tests.integration.connectors.matrix.test_matrix_connector import World, make_world
from tests.matrix_e2ee_user import EncryptedUser
from tests.synapse_server import SynapseServer


@pytest.fixture
async def deployment(
    request: pytest.FixtureRequest, synapse: SynapseServer, tmp_path: Path
) -> AsyncIterator[Deployment]:
    """A fresh deployment on the shared Synapse, of the test module's ``DEPLOYMENT`` class
    if it names one; its users' clients closed afterwards."""
    made = await make_deployment(synapse, tmp_path)
    kind: type[Deployment] = getattr(request.module, "DEPLOYMENT", Deployment)
    yield made if kind is Deployment else kind(**vars(made))
    await made.operator.close()
    await made.stranger.close()


@pytest.fixture
async def bot(deployment: Deployment) -> AsyncIterator[BotProcess]:
    """The real ``fleetwarden run`` on ``deployment``, joined to its room; killed, and the
    agents it left ended, after the test."""
    try:
        async with serving(deployment) as process:
            yield process
    finally:
        _stop_stray_agents(deployment.workdir)


@pytest.fixture
async def world(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[World]:
    async with make_world(synapse, tmp_path) as made:
        yield made


@pytest.fixture
async def encrypted(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[World]:
    """A world whose operator has encryption on and whose room is encrypted."""
    password = secrets.token_urlsafe(12)
    bot = await synapse.register_async(f"bot{uuid.uuid4().hex[:8]}", password)
    made = await synapse.register_async(f"ann{uuid.uuid4().hex[:8]}", "pw-op")
    op = EncryptedUser(
        synapse.base_url, made.user_id, made.device_id, made.access_token, tmp_path / "ann"
    )
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    try:
        await op.sync_once(0)  # uploads its device keys
        room = await op.create_room(invite=(bot.user_id,))
        yield World(
            synapse.base_url,
            bot,
            password,
            op,  # type: ignore[arg-type]  # only its user id is used by the world
            room,
            ledger,
            tmp_path / "state",
            {op.user_id},
        )
    finally:
        await op.close()
        await ledger.close()
