"""The app's repositories phase: the mirrors and runs' lines of the config's ``repos:``
(:class:`~fleet.repos.service.Repos`), made before the heartbeat endpoint, whose git door
serves them, and the commands' verbs on them (:class:`~fleet.repos.verbs.RepoVerbs`)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.config import Config
from bot.config.forge_checks import repo_credentials
from fleet.clock import Clock
from fleet.ledger import Ledger
from fleet.repos.door.server import GitDoor
from fleet.repos.service import Repos
from fleet.repos.verbs import RepoVerbs
from fleet.watchdog.heartbeat import HeartbeatServer


def version() -> str:
    """Fleetwarden's version, for what its commits and summaries say of it."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("fleetwarden")
    except PackageNotFoundError:
        return "unknown"


async def open_repos(cfg: Config, ledger: Ledger, *, environ: Mapping[str, str]) -> Repos | None:
    """The repositories, their directories and hooks made; ``None`` without ``repos:``."""
    if not cfg.repos:
        return None
    repos = Repos(
        state_dir=cfg.state_dir,
        entries=cfg.repos,
        ledger=ledger,
        environ=environ,
        version=version(),
        credentials=repo_credentials(cfg.repos, cfg.forges),
    )
    await repos.start()
    return repos


def git_door(repos: Repos | None) -> GitDoor | None:
    """The git door on the heartbeat endpoint, when there are repositories."""
    return None if repos is None else GitDoor(repos.door.door_repo, repos.door.refused)


def open_door(
    repos: Repos | None, heartbeats: HeartbeatServer, clock: Clock | None = None
) -> RepoVerbs | None:
    """Point new checkouts at the listening door; the operators' verbs."""
    if repos is None:
        return None

    def door_url(agent: str, repo: str) -> str:
        token = heartbeats.token_for(agent)
        return f"http://{agent}:{token}@127.0.0.1:{heartbeats.port}/git/{agent}/{repo}.git"

    repos.bind_door(door_url)
    return RepoVerbs(repos, clock)
