"""The forge room's fixtures: the real ``fleetwarden run`` with ``command`` agents on the
strict fake GitHub, as most of the room's modules start it (a module whose bot differs —
another config, a provider, rounds of review — keeps a ``bot`` of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.github_api import DEFAULT_PAT, FakeGitHub
from tests.git_upstream import GitUpstream
from tests.integration.console_bot import ConsoleBot
from tests.integration.forge_rig import command_bot_on_github


@pytest.fixture
def bot(
    request: pytest.FixtureRequest, tmp_path: Path, upstream: GitUpstream, github: FakeGitHub
) -> Iterator[tuple[ConsoleBot, int]]:
    """The real ``fleetwarden run`` on the test module's ``CONFIG`` (``APP_ON_GITHUB`` and
    its agents, whose script is its ``WORK``), given its upstream ``TOKEN`` and webhook
    ``SECRET``, listening; the bot and its port, killed if the test failed."""
    module = request.module
    tokens = {
        "APP_TOKEN": module.TOKEN,
        "FORGE_TOKEN": DEFAULT_PAT,
        "FORGE_HOOK_SECRET": module.SECRET.decode(),
    }
    with command_bot_on_github(
        tmp_path, module.CONFIG, module.WORK, upstream, github, tokens
    ) as running:
        yield running
