"""Config checks of the repositories across entries: each agent's ``repo`` names a
``repos:`` entry, sets no ``workdir`` (its run's checkout is its workdir) and runs on this
machine; and, at start, each repository's credential is there (its ``token_env`` set, its
``ssh_key`` a file of its owner's alone).

What is checked inside one entry (its url, one credential, branch names) is the schema's
own, :class:`fleet.repos.schema.RepoEntry`; what is checked on this machine's disk (a path
``url`` that is no git repository, a ``copy_from`` that is no directory) is
:func:`path_problems`, which ``check-config`` and ``roster reload`` both run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from bot.config.checks.problems import ConfigProblem
from bot.config.roster.file import RosterSource
from bot.config.schema import ConfigFile
from fleet.budgets.schema import Loc
from fleet.repos.schema import RepoEntry
from fleet.repos.upstream.credentials import key_problem
from fleet.repos.upstream.git_words import local_path_problem
from fleet.repos.urls import url_kind
from fleet.schema import token_problem, unknown_value_message

GUIDE = "docs/repos.md"
"""Where an operator reads how repositories are set up."""


def roster_problems(document: ConfigFile, roster: RosterSource) -> Iterator[ConfigProblem]:
    """Agents whose ``repo`` names no repository, or comes with a ``workdir`` or a host."""
    known = sorted(document.repos)
    for index, agent in enumerate(document.agents):
        if agent.repo is None:
            continue
        who = f"agent {agent.name!r}"
        message = None
        if agent.repo not in document.repos:
            message = (
                unknown_value_message("repository", agent.repo, known)
                if known
                else f"{who} names repository {agent.repo!r}, but the config has no `repos:` "
                f"section: add the repository there (see {GUIDE})"
            )
        elif agent.workdir is not None:
            message = (
                f"{who} works on repository {agent.repo!r}: each run's checkout is its "
                "workdir, so remove `workdir` (or `repo`)"
            )
        if message is not None:
            line, path, _ = roster.locate(("agents", index, "repo"))
            yield ConfigProblem(roster.file_name, line, path, message)


def environment_problems(
    repos: Mapping[str, RepoEntry], environ: Mapping[str, str]
) -> Iterator[tuple[Loc, str]]:
    """Credentials that are not there: a ``token_env`` unset or empty, an ``ssh_key`` that
    is no file or that others may read."""
    for name, entry in repos.items():
        if entry.token_env is not None:
            what = f"a token that may fetch and push {name}"
            problem = token_problem(environ, entry.token_env, what)
            if problem is not None:
                yield ("repos", name, "token_env"), problem
        if entry.ssh_key is not None:
            problem = key_problem(Path(entry.ssh_key))
            if problem is not None:
                yield ("repos", name, "ssh_key"), f"the key {entry.ssh_key} {problem}"


def path_problems(repos: Mapping[str, RepoEntry]) -> list[tuple[Loc, str]]:
    """What is wrong on this machine's disk with ``repos`` (read without git): a path
    ``url`` that does not exist or is no git repository, a ``copy_from`` that is no
    directory."""
    found: list[tuple[Loc, str]] = []
    for name, entry in repos.items():
        if url_kind(entry.url) == "local":
            path = Path(entry.url)
            is_repository = (path / "HEAD").is_file() or (path / ".git").exists()
            problem = local_path_problem(
                name, entry.url, exists=path.exists(), is_repository=is_repository
            )
            if problem is not None:
                found.append((("repos", name, "url"), problem))
        if entry.copy_from is not None and not Path(entry.copy_from).is_dir():
            found.append((("repos", name, "copy_from"), copy_from_problem(name, entry)))
    return found


def copy_from_problem(name: str, entry: RepoEntry) -> str:
    """Why ``entry``'s ``copy_from`` (not a directory here) copies nothing, and the fix."""
    source = Path(str(entry.copy_from))
    what = "is not a directory" if source.exists() else "does not exist on this machine"
    return (
        f"the copy_from of repository {name}, {source}, {what}: set repos.{name}.copy_from to the "
        "directory the files named in `copy` are copied from (a relative path is read from "
        "the config file's directory), or remove copy_from and copy"
    )


def credential_kind(entry: RepoEntry) -> str:
    """How Fleetwarden reaches ``entry``'s upstream, in a few words (never the secret)."""
    if entry.token_env is not None:
        return f"token from ${entry.token_env}"
    if entry.ssh_key is not None:
        return f"ssh key {entry.ssh_key}"
    kind = url_kind(entry.url)
    if kind == "local":
        return "a path on this machine"
    if kind == "ssh":
        return "ssh, Fleetwarden's own keys"
    return "no credential"


def summary_lines(repos: Mapping[str, RepoEntry]) -> list[str]:
    """One line per repository for ``check-config``: its url, default branch, credential
    and policy."""
    lines = []
    for name, entry in repos.items():
        policy = [f"merge {entry.merge}"]
        if entry.autopush:
            policy.append("autopush")
        if entry.workflows_allowed():
            policy.append("workflows allowed")
        lines.append(
            f"{name}: {entry.url} ({entry.default_branch}; {credential_kind(entry)}; "
            f"{', '.join(policy)})"
        )
    return lines
