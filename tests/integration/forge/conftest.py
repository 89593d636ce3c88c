"""The forge room's fixtures: the real ``fleetwarden run`` with ``command`` agents on the
strict fake GitHub, as most of the room's modules start it (a module whose bot differs —
another config, a provider, rounds of review — keeps its own, named for how it differs:
``pushing_bot``, ``reviewing_bot``); and, for a suite
run on every forge kind, each kind's strict fake (``forge_kind``) and the bot on it
(``forge_bot``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.gitea import api as gitea_api
from tests.fakes.github.api import DEFAULT_PAT, FakeGitHub
from tests.fakes.gitlab import api as gitlab_api
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot
from tests.integration.forge.gitlab_kind import on_gitlab
from tests.integration.forge.kinds import KINDS, Forge, on_github
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


@pytest.fixture(params=KINDS)
def forge_kind(request: pytest.FixtureRequest, upstream: GitUpstream) -> Iterator[Forge]:
    """Each forge kind's strict fake with ``acme/app`` on the upstream, :data:`WRITER` a
    writer on it; no violation of its API when it stops."""
    if request.param == "github":
        yield on_github(request.getfixturevalue("github"))
        return
    if request.param == "gitlab":
        upstream.any_user = True  # GitLab's git takes any user with the token (oauth2 here)
        with gitlab_api.fake_gitlab_thread() as lab:
            yield on_gitlab(lab, upstream.root / "app.git")
            assert lab.violations == []
        return
    with gitea_api.fake_gitea_thread() as fake:
        fake.add_repo(str(SLUG))
        fake.link_git(str(SLUG), upstream.root / "app.git")
        fake.add_collaborator(str(SLUG), WRITER, "write")
        # Gitea shows another user's permission only to a repository admin.
        fake.add_collaborator(str(SLUG), gitea_api.BOT_LOGIN, "admin")
        yield Forge("gitea", "tea", fake, gitea_api.BOT_LOGIN, gitea_api.GITEA_TOKEN)
        assert fake.violations == []


@pytest.fixture
def forge_bot(
    request: pytest.FixtureRequest, tmp_path: Path, upstream: GitUpstream, forge_kind: Forge
) -> Iterator[tuple[ConsoleBot, int]]:
    """:func:`bot` on ``forge_kind``: the module's ``CONFIG`` with that forge, its ``WORK``,
    its upstream ``TOKEN`` and webhook ``SECRET``, listening; the bot and its port."""
    module = request.module
    tokens = {
        "APP_TOKEN": module.TOKEN,
        "FORGE_TOKEN": forge_kind.pat,
        "FORGE_HOOK_SECRET": module.SECRET.decode(),
    }
    config = forge_kind.config(module.CONFIG)
    with command_bot_on_github(
        tmp_path, config, module.WORK, upstream, forge_kind.fake, tokens, login=forge_kind.login
    ) as running:
        yield running
