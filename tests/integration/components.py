"""The real components every room's end-to-end tests stand on, as fixtures written once
(:mod:`tests.integration.conftest` loads them): a git upstream served over smart HTTP that
holds ``app``, and the strict fake GitHub whose ``acme/app`` that upstream backs.

A module whose upstream or forge differs (another directory, another repository, another
collaborator) keeps a fixture of its own under a name that says how it differs, or the same
name where the difference is the module's whole subject: pytest takes the nearer one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.ledger.records.forge import Slug
from tests.fakes.github.api import FakeGitHub
from tests.git_upstream import GitUpstream, served_app
from tests.integration.console_bot import ConsoleBot, clean_env
from tests.integration.forge_rig import app_on_github

SLUG = Slug("acme", "app")
"""The repository on the fake forge: ``acme/app``, the upstream's ``app``."""
WRITER = "ann"
"""The person with write access to :data:`SLUG`, whose commands the bot takes."""
APP_ON_CONSOLE = """\
state_dir: ./state
connectors:
  console: {}
defaults:
  stop_grace_seconds: 1
repos:
  app:
    url: URL
    token_env: APP_TOKEN
agents:
"""
"""A config's head: the console, and the repository ``app`` at ``URL`` (its token in
``APP_TOKEN``); its agents follow."""


def app_head(url: str = "{url}") -> str:
    """:data:`APP_ON_CONSOLE` before its agents, as a ``str.format`` template whose
    repository ``app`` is at the placeholder ``url``: what follows may add to ``app``."""
    return APP_ON_CONSOLE.removesuffix("agents:\n").replace("{}", "{{}}").replace("URL", url)


def console_bot_on_app(
    tmp_path: Path, upstream: GitUpstream, token: str, agents: str
) -> ConsoleBot:
    """The real ``fleetwarden run`` at its console on :data:`APP_ON_CONSOLE` served by
    ``upstream`` (its ``token``) and ``agents`` (the config's agent list), not yet waited on."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(APP_ON_CONSOLE.replace("URL", upstream.url("app"), 1) + agents)
    return ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=token))


@pytest.fixture
def upstream_token(request: pytest.FixtureRequest) -> str:
    """The token the upstream takes from Fleetwarden: the test module's ``TOKEN``, the one
    its asserts look for where an agent could read it (each module names its own)."""
    token = getattr(request.module, "TOKEN", None)
    if not isinstance(token, str):
        pytest.fail(
            f"{request.module.__name__} uses the shared `upstream` fixture but has no "
            "TOKEN = '...' (the upstream's token): define one, or an `upstream_token` fixture",
            pytrace=False,
        )
    return token


@pytest.fixture
def upstream(tmp_path: Path, upstream_token: str) -> Iterator[GitUpstream]:
    """A git upstream under ``tmp_path / "upstream"`` holding ``app`` (a README on
    ``main``), served over smart HTTP behind :func:`upstream_token`, stopped after the test."""
    with served_app(tmp_path / "upstream", upstream_token) as served:
        yield served


@pytest.fixture
def github(upstream: GitUpstream) -> Iterator[FakeGitHub]:
    """The strict fake GitHub with :data:`SLUG` backed by the upstream's ``app.git``,
    :data:`WRITER` and Fleetwarden's own login its collaborators; no violation of GitHub's
    API when it stops."""
    with app_on_github(upstream, SLUG, WRITER) as fake:
        yield fake
