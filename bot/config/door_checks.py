"""The credentials Fleetwarden's doors hold stay out of every agent's reach by config.

A repository's token and a forge's token, App key and webhook secret are Fleetwarden's: an
agent reaches the upstream only through its git door and the forge only through its forge
door, each of which checks what it does. The same variable named in an agent's
``secret_env`` (or set in its ``env``) would hand it the credential itself — around both
doors, to a forge its egress allows. :func:`door_secret_problems` refuses that, naming the
agent and the forge or repository, as :mod:`bot.config.load` refuses a provider account's
credential there.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.config.problems import ConfigProblem
from bot.config.roster_file import RosterSource
from bot.config.schema import ConfigFile

GIT_DOOR = "the upstream only through its git door"
FORGE_DOOR = "the forge only through its forge door"


def held_by_doors(document: ConfigFile) -> dict[str, tuple[str, str]]:
    """Each variable a forge or a repository of ``document`` holds a credential in → what
    it is, in words (``forge gh's token (forges.gh.token_env)``), and how an agent reaches
    what it opens instead."""
    held: dict[str, tuple[str, str]] = {}
    for name, repo in document.repos.items():
        if repo.token_env is not None:
            what = f"repository {name}'s token (repos.{name}.token_env)"
            held.setdefault(repo.token_env, (what, GIT_DOOR))
    for name, forge in document.forges.items():
        found = [(forge.token_env, f"forge {name}'s token (forges.{name}.token_env)")]
        if forge.app is not None:
            found.append((forge.app.private_key_env, f"forge {name}'s App key (forges.{name}.app)"))
        found.append(
            (
                forge.webhook_secret_env,
                f"forge {name}'s webhook secret (forges.{name}.webhook_secret_env)",
            )
        )
        for variable, what in found:
            if variable is not None:
                held.setdefault(variable, (what, FORGE_DOOR))
    return held


def door_secret_problems(document: ConfigFile, roster: RosterSource) -> Iterator[ConfigProblem]:
    """Agents whose ``secret_env`` or ``env`` names a variable a forge or a repository
    holds its credential in."""
    held = held_by_doors(document)
    if not held:
        return
    for index, agent in enumerate(document.agents):
        who = f"agent {agent.name!r}"
        for item, variable in enumerate(agent.secret_env):
            if variable in held:
                what, door = held[variable]
                message = (
                    f"{who} would get {variable}, which holds {what}: that credential is "
                    f"Fleetwarden's, and an agent reaches {door}. Remove it from secret_env "
                    "(a token of the agent's own goes in a variable of its own)"
                )
                yield _problem(roster, ("agents", index, "secret_env", item), message)
        for key in agent.env:
            if key in held:
                what, door = held[key]
                message = (
                    f"{who} sets {key} in its env, the variable that holds {what}: give the "
                    f"agent's variable another name (an agent reaches {door}, and never holds "
                    "nor shadows the credential)"
                )
                yield _problem(roster, ("agents", index, "env", key), message)


def _problem(roster: RosterSource, loc: tuple[str | int, ...], message: str) -> ConfigProblem:
    line, path, _ = roster.locate(loc)
    return ConfigProblem(roster.file_name, line, path, message)
