"""Config checks of the agents' peers across entries: each name an agent's ``talks_to``
lists is another agent of the roster (a typo answered with the likeliest one meant); and
the peers as ``check-config`` sums them up.

What is checked inside one entry (a ``role:`` line, a name listed twice) is the schema's
own, :class:`fleet.agents.peer_keys.PeerKeys`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from bot.config.checks.problems import ConfigProblem
from bot.config.roster.file import RosterSource
from bot.config.schema import ConfigFile
from fleet.model import AgentSpec
from fleet.schema import did_you_mean


def roster_problems(document: ConfigFile, roster: RosterSource) -> Iterator[ConfigProblem]:
    """Names in a ``talks_to`` that are the entry itself or no agent of the roster."""
    names = [agent.name for agent in document.agents]
    for index, agent in enumerate(document.agents):
        for item, peer in enumerate(agent.talks_to):
            message = None
            if peer == agent.name:
                message = (
                    f"agent {agent.name!r} lists itself in talks_to: an agent never messages "
                    "itself, remove it"
                )
            elif peer not in names:
                message = _no_such_peer(agent.name, peer, names)
            if message is not None:
                line, path, _ = roster.locate(("agents", index, "talks_to", item))
                yield ConfigProblem(roster.file_name, line, path, message)


def _no_such_peer(agent: str, peer: str, names: Sequence[str]) -> str:
    others = sorted(name for name in names if name != agent)
    listed = ", ".join(others) or "none"
    guess = did_you_mean(peer, others)
    if guess is not None:
        return (
            f"no agent of the roster is called {peer!r} — did you mean {guess!r}? talks_to "
            f"lists other agents of the roster (here: {listed})"
        )
    return (
        f"no agent of the roster is called {peer!r}: add an agent of that name to the roster, "
        f"or remove it from talks_to (the other agents here: {listed})"
    )


def summary_lines(specs: Iterable[AgentSpec]) -> list[str]:
    """One line per agent that works with peers, for ``check-config``: who it may message,
    and what it is for when its entry says so."""
    lines = []
    for spec in specs:
        if not spec.talks_to and spec.purpose is None:
            continue
        peers = ", ".join(spec.talks_to) if spec.talks_to else "nobody"
        line = f"{spec.name} → {peers}"
        if spec.purpose is not None:
            line += f" ({spec.purpose})"
        lines.append(line)
    return lines
