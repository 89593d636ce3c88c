"""``spawn``'s repository flags: ``--repo`` (a repository of the config's ``repos:``, its
run working in a checkout and on a branch of its own), ``--base`` (the branch a new one is
cut from) and ``--fresh`` (a new branch instead of the live one), checked before anything
starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.commands.errors import CommandError, NotFound
from bot.commands.handlers.places.repos import NO_REPOS
from bot.commands.parsing.grammar import FlagValue
from bot.text.agent_text import said
from fleet.repos.desk import RepoDesk
from fleet.repos.schema import ref_problem
from fleet.schema import unknown_value_message


@dataclass(frozen=True, slots=True)
class RepoChoice:
    """What ``spawn``'s repository flags ask for."""

    repo: str | None = None
    base: str | None = None
    fresh: bool = False


def repo_choice(
    repos: RepoDesk | None,
    flags: Mapping[str, FlagValue],
    *,
    workdir: Path | None,
    own: str | None,
) -> RepoChoice:
    """``spawn``'s ``--repo``, ``--base`` and ``--fresh``, checked; ``own``: the repository
    the agent's settings name, if any. Raises :class:`CommandError` saying why not."""
    repo, base, fresh = flags.get("repo"), flags.get("base"), flags.get("fresh") is True
    repo = repo if isinstance(repo, str) else None
    base = base if isinstance(base, str) else None
    if repo is None and base is None and not fresh:
        return RepoChoice()
    if repos is None:
        raise CommandError(NO_REPOS)
    if repo is not None:
        known = list(repos.names())
        if repo not in known:
            raise NotFound(unknown_value_message("repository", repo, known))
        if workdir is not None:
            raise CommandError(
                "give --repo or --workdir, not both: a run on a repository works in a "
                "checkout of its own"
            )
    elif own is None:
        raise CommandError("--base and --fresh are for an agent on a repository: add --repo REPO")
    if base is not None and (problem := ref_problem(base)):
        raise CommandError(f"--base {said(base, 60)} is no branch name: {problem}")
    return RepoChoice(repo, base, fresh)
