"""The app's forges phase: each ``forges:`` entry's API client, the GitHub Apps'
installation tokens that their repositories' git uses (minted before the repositories are
made, and renewed), the forges' secrets for the redactor, and the forge door on the
heartbeat endpoint (:func:`open_forges`). Forge work over them is the next forges phase's
(:mod:`bot.app.forge_work`)."""

from __future__ import annotations

import asyncio
import logging
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.app.grounds import Grounds
from bot.app.stops import Stop
from bot.config import Config
from bot.config.forge_checks import app_token_variable
from connectors.inbox import cancel_and_wait
from fleet.clock import Clock
from fleet.forge.api.app_token import AppKey
from fleet.forge.api.gitea import GiteaApi
from fleet.forge.api.github import GitHubApi
from fleet.forge.door.door import DoorDesk, ForgeDoor
from fleet.forge.model import ForgeApi, Slug
from fleet.forge.schema import ForgeEntry
from fleet.forge.text.shown import shown_text
from fleet.redaction.known import Secret

log = logging.getLogger(__name__)

RENEW_SECONDS = 2 * 60
"""How often the Apps' installation tokens for git are asked for: a token is minted anew once
it has under 5 minutes left (each lasts an hour), so git's never runs out between asks."""


@dataclass(frozen=True, slots=True)
class ForgeClients:
    """What the forges phase made: each forge's client, what the repositories' git reads
    (the Apps' installation tokens over the app's environment), the forge door (``None``
    without forges) and the forges' tokens, keys and webhook secrets."""

    apis: Mapping[str, ForgeApi]
    repo_environ: Mapping[str, str]
    door: ForgeDoor | None
    secrets: tuple[Secret, ...]

    def known_secrets(self) -> list[Secret]:
        """The forges' secrets, for the redactor (the Apps' installation tokens are the
        repositories': their environ)."""
        return list(self.secrets)


async def open_forges(at: Grounds, *, desk: Callable[[], DoorDesk | None]) -> ForgeClients:
    """The forges' clients, to be stopped from now on, with the GitHub Apps' tokens that
    their repositories' git uses minted. ``desk``: forge work's side of the forge door —
    made later, over the fleet, whose agents reach the door — asked at each call to it."""
    cfg, environ = at.cfg, at.environ
    apis = {name: open_api(entry, environ, at.clock) for name, entry in cfg.forges.items()}
    tokens = AppTokens(apis, app_repos(cfg), environ)

    async def stop() -> None:
        await tokens.stop()
        for api in apis.values():
            await api.close()

    at.stops.add(Stop.FORGE_CLIENTS, stop)
    await tokens.start()
    door = ForgeDoor(desk, clean=shown_text) if cfg.forges else None
    return ForgeClients(apis, tokens.environ, door, tuple(forge_secrets(cfg, environ)))


def open_api(entry: ForgeEntry, environ: Mapping[str, str], clock: Clock) -> ForgeApi:
    """``entry``'s client, with its credential from ``environ`` (checked at load)."""
    if entry.kind == "gitea":
        assert entry.token_env is not None
        return GiteaApi(entry.api_url, environ.get(entry.token_env, ""), clock=clock)
    if entry.app is not None:
        key = AppKey(
            environ.get(entry.app.app_id_env, ""), environ.get(entry.app.private_key_env, "")
        )
        return GitHubApi(entry.api_url, key, clock=clock)
    assert entry.token_env is not None
    return GitHubApi(entry.api_url, environ.get(entry.token_env, ""), clock=clock)


def forge_secrets(cfg: Config, environ: Mapping[str, str]) -> list[Secret]:
    """The forges' tokens, keys and webhook secrets."""
    found: list[Secret] = []
    for name, entry in cfg.forges.items():
        variables = [entry.token_env, entry.webhook_secret_env]
        if entry.app is not None:
            variables.append(entry.app.private_key_env)
        for variable in variables:
            value = environ.get(variable) if variable else None
            if value:
                found.append(Secret(value, f"secret of forge {name}"))
    return found


class AppTokens:
    """The installation tokens of GitHub Apps, by the variable their repository's git reads
    (:func:`bot.config.forge_checks.app_token_variable`), over the app's environment."""

    def __init__(
        self,
        apis: Mapping[str, ForgeApi],
        wanted: Sequence[tuple[str, str, Slug]],
        environ: Mapping[str, str],
    ) -> None:
        self._apis = apis
        self._wanted = wanted
        self._tokens: dict[str, str] = {}
        self.environ: Mapping[str, str] = ChainMap(self._tokens, dict(environ))
        self._renewing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Mint the tokens now, and renew them from now on (each lasts an hour: renewed
        every :data:`RENEW_SECONDS`)."""
        if not self._wanted:
            return
        await self._mint()
        self._renewing = asyncio.create_task(self._renew(), name="forge-app-tokens")

    async def _mint(self) -> None:
        """Each App repository's token, asked for side by side; one that fails keeps the
        token it had (still good for the hour) and is said in the log."""

        async def one(forge: str, variable: str, slug: Slug) -> None:
            try:
                self._tokens[variable] = await self._apis[forge].git_token(slug)
            except Exception as exc:  # the round goes on: the next may get one
                log.warning("no installation token for %s on %s: %s", slug, forge, exc)

        await asyncio.gather(*(one(*wanted) for wanted in self._wanted))

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            await self._mint()

    async def stop(self) -> None:
        await cancel_and_wait(self._renewing)


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
