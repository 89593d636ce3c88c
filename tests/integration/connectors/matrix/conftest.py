"""The Matrix room's fixtures: a deployment on the session's Synapse (the bot's account, a
room with an operator and a stranger in it, a workdir) and the real ``fleetwarden run``
serving it. A module whose deployment differs (its own config added) keeps a
``deployment`` of its own; the bot then runs on that."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.connectors.matrix.test_matrix_bot import (
    BotProcess,
    Deployment,
    _stop_stray_agents,
    joined,
    make_deployment,
)
from tests.synapse_server import SynapseServer


@pytest.fixture
async def deployment(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[Deployment]:
    """A fresh deployment on the shared Synapse; its users' clients closed afterwards."""
    made = await make_deployment(synapse, tmp_path)
    yield made
    await made.operator.close()
    await made.stranger.close()


@pytest.fixture
async def bot(deployment: Deployment) -> AsyncIterator[BotProcess]:
    """The real ``fleetwarden run`` on ``deployment``, joined to its room; killed, and the
    agents it left ended, after the test."""
    process = BotProcess(deployment)
    await joined(deployment.operator, deployment.room, deployment.bot)
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.kill()
        _stop_stray_agents(deployment.workdir)
