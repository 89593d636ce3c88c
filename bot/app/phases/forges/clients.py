"""The app's forges phase: each ``forges:`` entry's API client, the GitHub Apps' installation
tokens that their repositories' git uses (minted before the repositories are made, and
renewed by the scheduler), the forges' secrets for the redactor, and the forge door on the
heartbeat endpoint (:func:`open_forges`). Forge work over them is the next forges phase's
(:mod:`bot.app.phases.forges.work`)."""

from __future__ import annotations

import logging
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass

from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.stops import Stop
from bot.config import Config
from bot.config.checks.forges import app_token_variable
from fleet.forge.api.git_tokens import GitTokens
from fleet.forge.api.gitea.client import GiteaApi
from fleet.forge.api.github.app_token import AppKey
from fleet.forge.api.github.client import GitHubApi
from fleet.forge.api.gitlab.client import GitLabApi
from fleet.forge.api.secrets import ForgeSecrets
from fleet.forge.door.door import ForgeDoor
from fleet.forge.model import ForgeApi
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug
from fleet.markdown.shown import shown_text
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ForgeClients:
    """What the forges phase made: each forge's client, what the repositories' git reads
    (the Apps' installation tokens over the app's environment), the forge door (``None``
    without forges), the forges' tokens, keys and webhook secrets (the redactor's source),
    and the Apps' tokens the scheduler renews (a round of
    :class:`~fleet.forge.api.git_tokens.GitTokens`)."""

    apis: Mapping[str, ForgeApi]
    repo_environ: Mapping[str, str]
    door: ForgeDoor | None
    secrets: ForgeSecrets
    tokens: GitTokens


async def open_forges(at: Grounds, desks: Desks) -> ForgeClients:
    """The forges' clients, to be stopped from now on, with the GitHub Apps' tokens that
    their repositories' git uses minted. The forge door reaches forge work's desk in
    ``desks`` — opened later, over the fleet, whose agents reach the door."""
    cfg, environ = at.cfg, at.environ
    apis = {name: open_api(entry, environ, at.clock) for name, entry in cfg.forges.items()}
    tokens = GitTokens(apis, app_repos(cfg))

    async def stop() -> None:
        for api in apis.values():
            await api.close()

    at.stops.add(Stop.FORGE_CLIENTS, stop)
    if tokens.wanted:  # minted now; renewed by the scheduler from the start on
        await tokens.renew()
    door = ForgeDoor(desks.forge, clean=shown_text) if cfg.forges else None
    secrets = ForgeSecrets(cfg.forges, environ)
    return ForgeClients(apis, git_environ(tokens, environ), door, secrets, tokens)


def git_environ(tokens: GitTokens, environ: Mapping[str, str]) -> Mapping[str, str]:
    """What the repositories' git reads: the Apps' installation tokens over ``environ``
    (which never holds them)."""
    return ChainMap(tokens.tokens, dict(environ))


def open_api(entry: ForgeEntry, environ: Mapping[str, str], clock: Clock) -> ForgeApi:
    """``entry``'s client, with its credential from ``environ`` (checked at load)."""
    if entry.kind == "gitea":
        assert entry.token_env is not None
        return GiteaApi(entry.api_url, environ.get(entry.token_env, ""), clock=clock)
    if entry.kind == "gitlab":
        assert entry.token_env is not None
        return GitLabApi(entry.api_url, environ.get(entry.token_env, ""), clock=clock)
    if entry.app is not None:
        key = AppKey(
            environ.get(entry.app.app_id_env, ""), environ.get(entry.app.private_key_env, "")
        )
        return GitHubApi(entry.api_url, key, clock=clock)
    assert entry.token_env is not None
    return GitHubApi(entry.api_url, environ.get(entry.token_env, ""), clock=clock)


def app_repos(cfg: Config) -> list[tuple[str, str, Slug]]:
    """(forge, variable, slug) of each repository a GitHub App's token fetches."""
    found = []
    for name, repo in cfg.repos.items():
        forge = cfg.forges.get(repo.forge) if repo.forge else None
        slug = repo.forge_slug()
        if forge is None or forge.app is None or slug is None:
            continue
        if repo.token_env == app_token_variable(name):
            found.append((repo.forge or "", repo.token_env, Slug.parse(slug)))
    return found
