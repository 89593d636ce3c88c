"""Where an agent's workdir may lie on a host, and where not: decided at each launch there
(:func:`fleet.hosts.sandbox.wrap`, with where each path really lies) and, as far as the
config alone tells without connecting, by ``check-config`` (:func:`config_problems`).

Agents logged in as one user share its uid, so what keeps one agent from another's files
is what every sandbox there hides whole — the state dir, the login's home, the entry's
``workdirs``, ``/root``, ``/home`` (:attr:`fleet.hosts.place.HostPlace.hidden_whole`) —
with only its own workdir and HOME bound back. A workdir is refused, with the fix, when:

* it is or holds one of those directories: binding it back would undo the hiding;
* it lies outside all of them: the host's other agents would see it;
* it lies in the host's state dir, but for the agent's own default (``agents/NAME/work``):
  the agents' HOMEs and runs are there, and ``lib/`` with Fleetwarden's scripts — which
  run as root where the login is root;
* it lies in a hidden directory of a home (``~/.ssh``, ``~/.config``, ``/root/.aws``):
  where keys and tokens are kept;
* it lies inside another agent's workdir on the host, or holds one: a sandbox binds its
  own workdir back whole, the other's tree with it. Here the local sandbox hides such a
  nested workdir; there it is refused instead, so the outcome never depends on which
  agent started first. Two agents given the very same workdir share it, as here.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from fleet.hosts.schema import HostEntry

SYSTEM_HOMES = (Path("/root"), Path("/home"))
"""Where homes lie besides the login's: ``/root``, and one per user below ``/home``."""


def workdir_problem(
    workdir: Path,
    whole: Sequence[Path],
    *,
    state_dir: Path | None = None,
    own: Path | None = None,
    home: Path | None = None,
    others: Iterable[Path] = (),
) -> str | None:
    """Why ``workdir`` cannot be an agent's on a host whose sandboxes all hide ``whole``
    (the module says when), in words with the fix; ``None`` when it can. ``state_dir``,
    ``home``: the host's state dir and the login's home; ``own``: the agent's default
    workdir in that state dir; ``others``: the other agents' workdirs there — each where
    it really lies."""
    held = next((w for w in whole if w == workdir or w.is_relative_to(workdir)), None)
    if held is not None:
        return (
            f"its workdir {workdir} is or holds {held}, which every sandbox there hides; "
            "give it a directory of its own below it"
        )
    if not _under(workdir, whole):
        shown = ", ".join(str(w) for w in whole)
        return (
            f"its workdir {workdir} lies outside what every sandbox there hides whole "
            f"({shown}), so the host's other agents could read it; "
            "put it below one of them, or name its parent in the host's `workdirs:`"
        )
    if state_dir is not None and _under(workdir, [state_dir]):
        if own is None or not _under(workdir, [own]):
            return (
                f"its workdir {workdir} lies in the host's state dir {state_dir}, which holds "
                "the agents' HOMEs and runs and Fleetwarden's scripts (`lib/`, run as root "
                "where the login is root); leave `workdir` out for a directory of its own "
                "there, or choose one below the login's home or the host's `workdirs:`"
            )
        return _nested(workdir, others)
    hidden = hidden_home_dir(workdir, [home] if home is not None else [])
    if hidden is not None:
        return (
            f"its workdir {workdir} lies in {hidden}, a hidden directory of a home, where "
            "keys and tokens are kept (`~/.ssh`, `~/.config`, …); choose a directory that "
            "is not hidden, below the login's home or the host's `workdirs:`"
        )
    return _nested(workdir, others)


def _nested(workdir: Path, others: Iterable[Path]) -> str | None:
    for other in others:
        if other == workdir:
            continue  # the same workdir, shared on purpose
        if workdir.is_relative_to(other):
            return (
                f"its workdir {workdir} lies inside {other}, another agent's workdir there, "
                "whose sandbox binds it back whole, this one's with it; give each agent a "
                f"directory of its own side by side (e.g. {other.parent / workdir.name})"
            )
        if other.is_relative_to(workdir):
            return (
                f"its workdir {workdir} holds {other}, another agent's workdir there, which "
                "its sandbox would bind back with its own; give each agent a directory of "
                f"its own side by side (e.g. {workdir.parent / other.name})"
            )
    return None


def hidden_home_dir(path: Path, homes: Iterable[Path]) -> Path | None:
    """The hidden directory of a home (``/home/fw/.ssh``) that ``path`` is or lies in: of
    one of ``homes``, of ``/root``, or of a user's below ``/home``; ``None`` if none."""
    roots = [*homes, SYSTEM_HOMES[0]]
    if path.is_relative_to(SYSTEM_HOMES[1]) and len(path.parts) > 3:
        roots.append(Path(*path.parts[:3]))  # /home/USER
    for root in roots:
        if path != root and path.is_relative_to(root):
            first = path.relative_to(root).parts[0]
            if first.startswith("."):
                return root / first
    return None


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


class HostAgent(NamedTuple):
    """What :func:`config_problems` reads of an agent in the config."""

    name: str
    host: str
    workdir: Path | None
    sandboxed: bool


def config_problems(hosts: Sequence[HostEntry], agents: Iterable[HostAgent]) -> list[str]:
    """What the config alone says of workdirs on its hosts, without connecting: a
    sandboxed agent's workdir inside or holding another's on the same host, inside that
    host's state dir or holding it or the entry's ``workdirs`` (where those are absolute
    paths), and an entry's ``workdirs`` in its state dir or a hidden directory of the
    login's home (``~/.…``). The rest depends on the host (where its home is, what its
    symlinks lead to) and is refused at launch."""
    found = [*_entry_problems(hosts)]
    entries = {entry.name: entry for entry in hosts}
    placed = [a for a in agents if a.host in entries and a.workdir is not None]
    refused: dict[str, str] = {}  # an agent that never starts holds no other's place
    for agent in placed:
        problem = _config_workdir_problem(agent, entries[agent.host]) if agent.sandboxed else None
        if problem is not None:
            refused[agent.name] = problem
    for agent in placed:
        assert agent.workdir is not None
        problem = refused.get(agent.name) or _nested(
            agent.workdir,
            [
                other.workdir
                for other in placed
                if other.host == agent.host
                and other.name != agent.name
                and other.name not in refused
                and other.workdir is not None
                and (agent.sandboxed or other.sandboxed)
            ],
        )
        if problem is not None:
            found.append(f"agent {agent.name!r} cannot start on host {agent.host}: {problem}")
    return found


def _config_workdir_problem(agent: HostAgent, entry: HostEntry) -> str | None:
    assert agent.workdir is not None
    workdir = agent.workdir
    state = Path(entry.state_dir) if entry.state_dir.startswith("/") else None
    fixed = [p for p in (state, _absolute(entry.workdirs)) if p is not None]
    held = next((p for p in fixed if _under(p, [workdir])), None)
    if held is not None:
        return (
            f"its workdir {workdir} is or holds {held}, which every sandbox there hides; "
            "give it a directory of its own below it"
        )
    if state is not None and _under(workdir, [state]):
        own = state / "agents" / agent.name / "work"
        if not _under(workdir, [own]):
            return (
                f"its workdir {workdir} lies in the host's state dir {state}, which holds "
                "the agents' HOMEs and runs and Fleetwarden's scripts; leave `workdir` out "
                "for a directory of its own there, or choose one outside it"
            )
        return None
    hidden = hidden_home_dir(workdir, [])
    if hidden is not None:
        return (
            f"its workdir {workdir} lies in {hidden}, a hidden directory of a home, where "
            "keys and tokens are kept; choose a directory that is not hidden"
        )
    return None


def _entry_problems(hosts: Sequence[HostEntry]) -> Iterator[str]:
    for entry in hosts:
        if entry.workdirs is None:
            continue
        where = f"host {entry.name}: its `workdirs: {entry.workdirs}`"
        state, workdirs = _comparable(entry.state_dir), _comparable(entry.workdirs)
        if _overlap(state, workdirs):
            yield (
                f"{where} and its `state_dir: {entry.state_dir}` overlap: every workdir "
                "there would lie in the state dir, or hold it, and be refused; give the "
                "agents' workdirs a directory apart (e.g. /srv/agents)"
            )
            continue
        below = workdirs[1].parts[1:] if workdirs is not None and workdirs[0] == "~" else ()
        if below and below[0].startswith("."):
            yield (
                f"{where} lies in a hidden directory of the login's home (~/{below[0]}), "
                "where keys and tokens are kept: every workdir there would be refused; "
                "choose a directory that is not hidden (e.g. ~/agents)"
            )


def _overlap(one: tuple[str, Path] | None, other: tuple[str, Path] | None) -> bool:
    if one is None or other is None or one[0] != other[0]:
        return False  # one absolute, one below the home: where the home is decides
    return _under(one[1], [other[1]]) or _under(other[1], [one[1]])


def _comparable(path: str) -> tuple[str, Path] | None:
    """A remote path as (``/`` or ``~``, where below it): two of one kind compare."""
    if path == "~":
        return "~", Path("/")
    if path.startswith("~/"):
        return "~", Path("/", path[2:])
    return ("/", Path(posixpath.normpath(path))) if path.startswith("/") else None


def _absolute(path: str | None) -> Path | None:
    return Path(path) if path is not None and path.startswith("/") else None
