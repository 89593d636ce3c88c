"""Git in a run's checkout — a directory its agent writes — run so that nothing the agent
planted there runs, and nothing outside the checkout is in reach.

This is the git of :mod:`fleet.sandbox.git.git_probe` (every config-driven program off, every
filter driver the repository names emptied, a minimal environment, a time limit) in the
same kind of throwaway bubblewrap sandbox — only ``/usr`` and the checkout, no network,
its own pid namespace — with the checkout bound read-write, since Fleetwarden commits the
work a run left uncommitted. As root it runs as the checkout's owner, the agent's own uid,
so what git writes stays the agent's; bubblewrap is then given the checkout through the
agent shim's staging (:func:`fleet.backends.agent_shim.stage_binds`), as the agent's own
sandbox is, since that uid cannot walk the state dir to it. Output (a bundle of the
branch) is written to a file Fleetwarden opened, never through a path in the sandbox.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from fleet.process_groups import end_whole
from fleet.repos.git import IDENTITY
from fleet.sandbox.git.git_probe import (
    SYSTEM_PATH,
    filter_env,
    filter_names,
    git_argv,
    git_env,
    sandbox_argv,
)

LIMIT: Final = 120.0
_SHIM_DIR = Path(__file__).resolve().parents[2] / "backends"
_STAGER = (
    "import os,sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "import agent_shim\n"
    "uid = int(sys.argv[2])\n"
    "argv = agent_shim.stage_binds(sys.argv[4:])\n"
    "os.setgroups([]); os.setgid(uid); os.setuid(uid)\n"
    "os.execv(argv[0], argv)\n"
)


@dataclass(frozen=True, slots=True)
class LaneRan:
    """What one sandboxed git did: its status and its last words."""

    code: int
    out: str
    err: str


class LaneGit:
    """Runs git in checkouts, each in a sandbox of its own (bubblewrap must be here)."""

    def __init__(self, *, bwrap: str = "bwrap") -> None:
        self._bwrap = shutil.which(bwrap)
        self._git = shutil.which("git", path=SYSTEM_PATH) or shutil.which("git")

    @property
    def usable(self) -> bool:
        return self._bwrap is not None and self._git is not None

    async def filters(self, checkout: Path) -> list[str]:
        """The filter drivers the checkout's config names (to be emptied)."""
        ran = await self.run(
            checkout, ["config", "--name-only", "--get-regexp", r"^filter\."], ok=(0, 1)
        )
        return filter_names(ran.out)

    async def run(
        self,
        checkout: Path,
        args: Sequence[str],
        *,
        filters: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        ok: Sequence[int] = (0,),
        stdout: IO[bytes] | None = None,
        limit: float = LIMIT,
    ) -> LaneRan:
        """``git -C checkout ARGS`` in its sandbox; ``stdout``: a file the output goes to
        instead of being read. Raises :class:`LaneGitFailed` past ``ok``."""
        if self._bwrap is None or self._git is None:
            raise LaneGitFailed("bubblewrap or git is missing here", None)
        command = git_argv(self._git, checkout, args)
        command[4:4] = ["-c", "commit.gpgSign=false", "-c", "core.autocrlf=false"]
        argv = in_checkout(self._bwrap, checkout, command)
        full_env = {**git_env(), **IDENTITY, **filter_env(filters), **(env or {})}
        full_env.pop("GIT_OPTIONAL_LOCKS", None)  # this git writes: it takes its locks
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout if stdout is not None else asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=full_env,
                start_new_session=True,
            )
        except OSError as exc:
            raise LaneGitFailed(f"cannot start git's sandbox: {exc.strerror}", None) from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            await end_whole(proc)
            raise LaneGitFailed(f"git took longer than {limit:.0f} s", None) from None
        except BaseException:
            await asyncio.shield(end_whole(proc))
            raise
        code = proc.returncode if proc.returncode is not None else -1
        ran = LaneRan(
            code,
            (out or b"")[: 1 << 20].decode("utf-8", "replace"),
            (err or b"")[-4096:].decode("utf-8", "replace"),
        )
        if code not in ok:
            raise LaneGitFailed(ran.err.strip() or f"git exited {code}", code)
        return ran


class LaneGitFailed(Exception):
    """Git in a checkout failed; the message is git's (or the sandbox's) last words."""

    def __init__(self, words: str, code: int | None) -> None:
        self.code = code
        super().__init__(words)


def in_checkout(
    bwrap: str, checkout: Path, command: Sequence[str], *, chdir: Path | None = None
) -> list[str]:
    """The argv that runs ``command`` in the checkout's sandbox (only ``/usr`` and the
    checkout, read-write; no network; a pid namespace of its own, ended with it): as root,
    as the checkout's owner, the checkout given through the agent shim's staging."""
    argv = sandbox_argv(bwrap, (), command, writable=(checkout,), chdir=chdir)
    owner = checkout_owner(checkout)
    if owner is None:
        return argv
    return [sys.executable, "-I", "-S", "-c", _STAGER, str(_SHIM_DIR), str(owner), "--", *argv]


def checkout_owner(checkout: Path) -> int | None:
    """As root, the checkout's owner when that is another user (the agent's own uid)."""
    if os.geteuid() != 0:
        return None
    try:
        uid = os.stat(checkout).st_uid
    except OSError:
        return None
    return uid if uid != 0 else None
