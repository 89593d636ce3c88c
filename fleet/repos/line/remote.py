"""Runs' checkouts on SSH hosts: made, kept, harvested and removed over the host's link,
each from this machine's door repo through the git door the link forwards.

An agent placed on a host works there, so its line's checkout is there too, at
``STATE_DIR/agents/NAME/work/REPO-LINE`` on the host: below the agent's own default workdir,
which every sandbox there hides from the others (:mod:`fleet.hosts.workdirs`). The line
itself — its door repo, its branch — stays here, as for a local run. The checkout is
fetched by git there from the git door on the heartbeat endpoint, reached on the port the
link forwards to it (:meth:`fleet.hosts.place.HostPlace.url`), with the token of the
agent's run (a kept checkout's ``origin`` is pointed at each new run's): what the door
serves is this machine's mirror and the line's branch, and the upstream's credential never
leaves this machine. ``origin`` is that URL, so the agent's
pushes go through the door and its hook, as a local agent's do.

At a run's end what it left is committed and pushed to the door by git there, sandboxed as
:mod:`fleet.repos.line.host_git` says; the hook here accepts or refuses it. Every command is a
fixed argv on the link (:meth:`fleet.hosts.link.connection.HostLink.run`); paths, branch names
and the door's URL go to the host's Python as JSON on stdin.
"""

from __future__ import annotations

import json
import logging
import posixpath
from typing import Final, Protocol
from urllib.parse import urlsplit

from fleet.backends.process import SHIM
from fleet.hosts.errors import HostError
from fleet.hosts.lanes import read_uids
from fleet.hosts.link.connection import HostLink
from fleet.hosts.place import LOOPBACK, HostPlace
from fleet.hosts.remote import RemoteResult, failure
from fleet.hosts.schema import LOCAL_HOST
from fleet.ledger.records.lines import LineRecord
from fleet.repos.desk import RepoError
from fleet.repos.hook.policy import Identity, agent_identity
from fleet.repos.line.checkouts import CO_AUTHOR_HOOK
from fleet.repos.line.git_locks import MAX_ENTRIES, locked_words
from fleet.repos.line.harvest import Harvested, _remote_words
from fleet.repos.line.host_git import CHECKOUT, HARVEST, REPOINT
from fleet.repos.line.lane_git import _STAGER
from fleet.sandbox.git.git_probe import SAFE_CONFIG, git_env

log = logging.getLogger(__name__)

PYTHON: Final = ("python3", "-I", "-S", "-c")
WORK: Final = "repos-work"
"""Below the host's state dir: the throwaway repositories a harvest pushes from."""
_MAKE_TIMEOUT: Final = 900.0
_HARVEST_TIMEOUT: Final = 900.0
_PLAIN_ENV: Final = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/nonexistent",
    "LC_ALL": "C",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_TERMINAL_PROMPT": "0",
}


class HostAccess(Protocol):
    """What checkouts on hosts need of the fleet's hosts (:class:`fleet.hosts.service.Hosts`)."""

    def link(self, name: str) -> HostLink | None: ...

    def place(self, name: str) -> HostPlace | None: ...


class HostCheckouts:
    """Lines' checkouts on the fleet's SSH hosts."""

    def __init__(self, hosts: HostAccess) -> None:
        self._hosts = hosts

    def path_for(self, host: str, agent: str, repo: str, line_id: int) -> str:
        """Where line ``line_id`` of ``agent`` on ``repo`` is checked out on ``host``."""
        _link, place = self._up(host)
        return posixpath.join(place.work_of(agent), f"{repo}-{line_id}")

    def door_url(self, host: str, url: str) -> str:
        """The git door's ``url`` (``http://AGENT:TOKEN@127.0.0.1:PORT/git/…``) as agents on
        ``host`` reach it: the port the link forwards there."""
        _link, place = self._up(host)
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname != LOOPBACK or parts.port is None:
            raise RepoError(f"the git door is not on this machine's loopback: cannot reach {host}")
        try:
            mapped = urlsplit(place.url(f"http://{LOOPBACK}:{parts.port}/"))
        except HostError as exc:
            raise RepoError(f"the git door is not forwarded to host {host}: {exc}") from None
        userinfo = parts.netloc.rpartition("@")[0]
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}{LOOPBACK}:{mapped.port}{parts.path}"

    async def exists(self, host: str, path: str) -> bool:
        """Whether the checkout at ``path`` is there on ``host``."""
        link, place = self._up(host)
        self._owned(place, path)
        if (await self._run(link, ["test", "-L", path], timeout=30.0)).ok:
            raise RepoError(
                f"the checkout {path} on host {host} was replaced by a symlink: the run is "
                "not started there; `discard` the branch, or spawn with --fresh"
            )
        done = await self._run(link, ["test", "-d", path], timeout=30.0)
        return done.ok

    async def keep(
        self,
        line: LineRecord,
        url: str,
        identity: Identity | None = None,
        co_author: str | None = None,
    ) -> None:
        """``line``'s checkout on its host, made again from its branch if it was lost (its
        committer ``identity``, the line's; by default Fleetwarden's for the agent); one
        kept has its ``origin`` pointed at ``url``, the door with the new run's token."""
        if await self.exists(line.host, line.checkout):
            await self._repoint(line, url)
            return
        log.warning("the checkout of %s on %s was gone: made again", line.branch, line.host)
        await self.make(
            line.host,
            line.checkout,
            url=url,
            base_ref=line.base_ref,
            branch=line.branch,
            identity=identity or agent_identity(line.agent, line.host),
            co_author=co_author,
        )

    async def _repoint(self, line: LineRecord, url: str) -> None:
        """Point the kept checkout's ``origin`` at the door's ``url`` (local form), git run
        there sandboxed as the agent, as a harvest runs it."""
        link, place = self._up(line.host)
        door = self.door_url(line.host, url)
        try:
            uids = await read_uids(await link.sftp(), place) if place.root else {}
        except (HostError, OSError) as exc:
            raise RepoError(f"host {line.host}: the agents' uids cannot be read: {exc}") from None
        env = git_env()
        env.pop("GIT_OPTIONAL_LOCKS", None)  # this git writes: it takes its locks
        data = {
            "dir": line.checkout,
            "url": door,
            "env": env,
            "safe": list(SAFE_CONFIG),
            "uid": uids.get(line.agent),
            "stager": _STAGER,
            "shim": posixpath.dirname(place.bundled(SHIM)),
            "unsandboxed": "its origin still names the last run's token",
        }
        done = await self._run(link, [*PYTHON, REPOINT], input=json.dumps(data), timeout=120.0)
        got = _answer(done) if done.ok else None
        if got is None or got.get("accepted") is not True:
            said = str(got.get("words") or "") if got is not None else failure(line.host, done)
            raise RepoError(
                f"the checkout on host {line.host} could not be pointed at this run's git "
                f"door: {_scrub(said, door)}; `discard` its branch, or spawn with --fresh"
            )

    async def make(
        self,
        host: str,
        path: str,
        *,
        url: str,
        base_ref: str,
        branch: str,
        identity: Identity,
        co_author: str | None = None,
    ) -> None:
        """Make ``path`` on ``host`` a checkout of the door at ``url`` (local form) on
        ``branch``, its ``origin`` the door as the host reaches it, ``identity`` its
        committer, ``co_author`` named in its commits by the hook a local checkout has
        (:data:`fleet.repos.line.checkouts.CO_AUTHOR_HOOK`). ``path`` must not exist."""
        link, place = self._up(host)
        self._owned(place, path)
        door = self.door_url(host, url)
        data = {
            "dir": path,
            "url": door,
            "base": base_ref,
            "branch": branch,
            "env": _PLAIN_ENV,
            "name": identity.name,
            "email": identity.email,
            "coauthor": co_author or "",
            "hook": CO_AUTHOR_HOOK,
        }
        done = await self._run(
            link, [*PYTHON, CHECKOUT], input=json.dumps(data), timeout=_MAKE_TIMEOUT
        )
        if not done.ok or done.stdout.strip() != "ok":
            said = _scrub(failure(host, done), door)
            raise RepoError(f"the checkout on host {host} could not be made: {said}")

    async def harvest(
        self,
        host: str,
        path: str,
        *,
        agent: str,
        url: str,
        branch: str,
        fork_sha: str,
        message: str,
        identity: Identity,
    ) -> Harvested:
        """Commit what the run left in ``path`` on ``host`` and push its ``HEAD`` to the
        door's ``branch`` (the hook here decides)."""
        try:
            link, place = self._up(host)
            self._owned(place, path)
            door = self.door_url(host, url)
            uid = (await read_uids(await link.sftp(), place)).get(agent) if place.root else None
        except (RepoError, HostError, OSError) as exc:
            return Harvested(None, False, False, f"the run's end could not be kept: {exc}")
        env = {**git_env(), **identity.env()}
        env.pop("GIT_OPTIONAL_LOCKS", None)  # this git writes: it takes its locks
        data = {
            "dir": path,
            "url": door,
            "branch": branch,
            "fork": fork_sha,
            "message": message,
            "env": env,
            "safe": [*SAFE_CONFIG, "commit.gpgSign=false", "core.autocrlf=false"],
            "work": posixpath.join(place.state_dir, WORK),
            "uid": uid,
            "stager": _STAGER,
            "shim": posixpath.dirname(place.bundled(SHIM)),
            "max_entries": MAX_ENTRIES,
            "unsandboxed": "nothing was committed",
        }
        try:
            done = await self._run(
                link, [*PYTHON, HARVEST], input=json.dumps(data), timeout=_HARVEST_TIMEOUT
            )
        except RepoError as exc:
            return Harvested(None, False, False, f"the run's end could not be kept: {exc}")
        got = _answer(done) if done.ok else None
        if got is None:
            said = _scrub(failure(host, done), door)
            return Harvested(None, False, False, f"the run's end could not be kept: {said}")
        head = got.get("head")
        accepted = got.get("accepted") is True
        unlocked, left = got.get("unlocked"), got.get("left")
        if isinstance(unlocked, list) and unlocked:
            log.info("removed what git left locked in %s on host %s: %s", path, host, unlocked)
        words = "" if accepted else str(got.get("words") or "")
        if "remote:" in words or "\n" in words.strip():
            words = _remote_words(words)
        left = {str(k): str(v) for k, v in left.items()} if isinstance(left, dict) else {}
        words = locked_words(str(got.get("git_err") or ""), path, left) or words
        return Harvested(
            head if isinstance(head, str) and len(head) == 40 else None,
            got.get("committed") is True,
            accepted,
            _scrub(words, door),
        )

    async def remove(self, host: str, path: str) -> None:
        """Remove the checkout at ``path`` on ``host`` (its links never followed)."""
        link, place = self._up(host)
        self._owned(place, path)
        done = await self._run(link, ["rm", "-rf", "--", path], timeout=300.0)
        if not done.ok:
            raise RepoError(f"the checkout {path} on host {host} could not be removed: "
                            f"{failure(host, done)}")  # fmt: skip

    async def disk_bytes(self, host: str, path: str) -> int | None:
        """The bytes the checkout at ``path`` on ``host`` takes (``None``: unknown now)."""
        try:
            link, place = self._up(host)
            self._owned(place, path)
            done = await self._run(link, ["du", "-s", "-k", "--", path], timeout=60.0)
        except RepoError:
            return None
        size = done.stdout.split()[:1]
        if not done.ok or not (size and size[0].isascii() and size[0].isdigit()):
            return None
        return int(size[0]) * 1024

    def _up(self, host: str) -> tuple[HostLink, HostPlace]:
        link, place = self._hosts.link(host), self._hosts.place(host)
        if link is None:
            raise RepoError(f"no host {host} in the config's hosts")
        if place is None:
            why = f": {link.error}" if link.error else ""
            raise RepoError(f"host {host} cannot be reached now ({link.state.value}{why})")
        return link, place

    @staticmethod
    def _owned(place: HostPlace, path: str) -> None:
        """Refuse a checkout path that is not an agent's workdir's below the state dir."""
        agents = posixpath.join(place.state_dir, "agents") + "/"
        parts = path[len(agents) :].split("/") if path.startswith(agents) else []
        if (
            len(parts) != 3
            or parts[1] != "work"
            or posixpath.normpath(path) != path
            or any(p in ("", ".", "..") for p in parts)
        ):
            raise RepoError(f"{path} is no checkout of Fleetwarden's on host {place.host}")

    @staticmethod
    async def _run(
        link: HostLink,
        argv: list[str],
        *,
        input: str | None = None,
        timeout: float,  # noqa: ASYNC109  (asyncssh closes the channel at it)
    ) -> RemoteResult:
        try:
            return await link.run(argv, input=input, timeout=timeout)
        except HostError as exc:
            raise RepoError(str(exc)) from None


def elsewhere(line: LineRecord, host: str) -> str:
    """Why ``line``'s agent cannot go on with it on ``host``: its checkout is elsewhere."""

    def where(name: str) -> str:
        return "this machine" if name == LOCAL_HOST else f"host {name}"

    return (
        f"{line.agent}'s branch {line.branch} is checked out on {where(line.host)}, and it "
        f"would run on {where(host)}: give it host {line.host} again, or spawn it --fresh "
        "for a new branch there"
    )


def _answer(done: RemoteResult) -> dict[str, object] | None:
    """The JSON object the harvest printed last (``None``: none)."""
    lines = done.stdout.strip().splitlines()
    try:
        got = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return got if isinstance(got, dict) else None


def _scrub(words: str, url: str) -> str:
    """``words`` without the door's token (git may quote the URL it was given)."""
    token = urlsplit(url).password
    return words.replace(token, "***") if token else words
