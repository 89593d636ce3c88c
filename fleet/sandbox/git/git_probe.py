"""The git HEAD of an agent's workdir, found without running anything the agent wrote.

A repository's own config can make git run programs: ``core.fsmonitor``, hooks
(``core.hooksPath``), clean and smudge filters (``filter.X.*`` with ``.gitattributes``),
``diff.external``, a promisor remote's transport, and ``include.path``/``includeIf`` can
bring any of them in from another file. Fleetwarden reads the HEAD at a run's start and
end, often as root — of the workdir's own repository only: a workdir that is not a
repository's top (a directory inside some other repository) has no HEAD of the run's — so
git never runs here as it would in a shell:

* **In a sandbox of its own** (bubblewrap): its own user namespace with an unprivileged
  uid, every capability dropped, no further user namespaces, no network, its own pid
  namespace tied to Fleetwarden (``--die-with-parent``), a new session; of the host's
  files only ``/usr`` (with the ``/bin``, ``/lib`` links) and the repository — the
  workdir, and a linked worktree's git directories — all read-only, and an empty
  ``/tmp``. Whatever ran there would see nothing to read and nowhere to write that
  outlives it. (``--disable-userns`` needs bubblewrap 0.8; an older one runs without it.)
* **With every config-driven program off**, so that nothing runs even there: no system
  or global config, ``core.fsmonitor=false``, ``core.hooksPath=/dev/null``, no transport
  (``protocol.allow=never``), no pager, no external diff; and every filter driver the
  repository's config names (listed first, :func:`filter_names`) overridden with empty
  commands — ``git status`` would otherwise run a clean filter on each file whose stat
  changed — and no git run inside submodules (``--ignore-submodules=dirty``: their own
  filters are not listed). A minimal environment, never Fleetwarden's; a time limit;
  output capped. (A driver added between the listing and the status could still run,
  inside the sandbox: at a run's start and end the agent's sandbox, and everything in
  it, is gone.)

Where bubblewrap cannot run, git does not run at all: the HEAD is read by
:mod:`fleet.sandbox.git.git_refs` in Python, and whether the tree has uncommitted changes is
then not known (``<head> (changes not checked)``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Final

from fleet.process_groups import end_whole
from fleet.sandbox.git.git_refs import git_dirs, read_head, repo_root

log = logging.getLogger(__name__)

TIMEOUT: Final = 5.0
OUTPUT_CAP: Final = 64 * 1024
SANDBOX_UID: Final = 4242  # inside the git sandbox's user namespace: no one in particular
SYSTEM_PATH: Final = "/usr/local/bin:/usr/bin:/bin"
SEALED_GIT_ENV: Final[Mapping[str, str]] = MappingProxyType(
    {
        "PATH": SYSTEM_PATH,
        "HOME": "/nonexistent",
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
    }
)
"""What every git Fleetwarden runs starts its environment from, never Fleetwarden's own:
the system's programs, no home, no config outside the repository, no prompt, no
replacement objects (the probe here, :func:`fleet.repos.git.base_env`, the repo door's
http-backend)."""
DIRTY: Final = " + uncommitted changes"
UNCHECKED: Final = " (changes not checked)"

# Overrides of every repository setting that runs a program; the command line wins over
# the repository's config and whatever it includes.
SAFE_CONFIG: Final = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.untrackedCache=false",
    "core.pager=cat",
    "core.sshCommand=false",
    "core.askPass=",
    "diff.external=",
    "protocol.allow=never",
    "safe.directory=*",
)
# A submodule's own changes would be found by a git run inside it, with filters of its own
# config: only a submodule moved to another commit counts (read without running git).
NO_SUBMODULE: Final = "--ignore-submodules=dirty"
_FILTER_KEY = re.compile(r"filter\.(?P<name>.+)\.[a-z]+")
_HEX = re.compile(r"[0-9a-f]{4,64}")


def git_env() -> dict[str, str]:
    """The whole environment git runs with: no config outside the repository, no prompts,
    no locks taken, nothing of Fleetwarden's own."""
    return {
        **SEALED_GIT_ENV,
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_PAGER": "cat",
        "GIT_NO_LAZY_FETCH": "1",
    }


def git_argv(
    git: str, workdir: Path, args: Sequence[str], filters: Sequence[str] = ()
) -> list[str]:
    """``git -C workdir ARGS`` with every config-driven program off, and the filter
    drivers ``filters`` emptied."""
    argv = [git, "--no-pager", "-C", str(workdir)]
    for setting in SAFE_CONFIG:
        argv += ["-c", setting]
    for name in filters:
        for key in ("clean", "smudge", "process"):
            argv += ["-c", f"filter.{name}.{key}="]
        argv += ["-c", f"filter.{name}.required=false"]
    return [*argv, *args]


def filter_env(filters: Sequence[str]) -> dict[str, str]:
    """The environment that empties the filter drivers ``filters``, as ``-c`` would but
    for any name: git's ``GIT_CONFIG_COUNT`` keys are taken whole, so a driver named
    ``a=b`` (which ``-c filter.a=b.clean=`` would read as setting ``filter.a``) is
    emptied too. It is the command line's scope: it wins over the repository's config."""
    pairs: list[tuple[str, str]] = []
    for name in filters:
        pairs += [(f"filter.{name}.{key}", "") for key in ("clean", "smudge", "process")]
        pairs.append((f"filter.{name}.required", "false"))
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def filter_names(config_keys: str) -> list[str]:
    """The filter drivers named among ``git config --name-only`` keys (one per line)."""
    names = []
    for key in config_keys.splitlines():
        match = _FILTER_KEY.fullmatch(key.strip())
        if match and match["name"] not in names:
            names.append(match["name"])
    return names


def sandbox_argv(
    bwrap: str,
    shown: Sequence[Path],
    command: Sequence[str],
    *,
    disable_userns: bool = True,
    writable: Sequence[Path] = (),
    chdir: Path | None = None,
) -> list[str]:
    """``command`` in a throwaway sandbox that sees only the system's programs and the
    directories ``shown`` (a repository, a linked worktree's git directories), all
    read-only, and ``writable`` read-write (pure but for looking at which of /bin, /lib…
    are links); it starts in ``chdir`` (``/`` unless given). Given ``chdir``, ``command``
    is a program looked up in the sandbox's own PATH, no prefix of it bound."""
    argv = [bwrap, "--unshare-all", "--unshare-user"]
    argv += ["--disable-userns", "--cap-drop", "ALL"] if disable_userns else ["--cap-drop", "ALL"]
    argv += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    argv += ["--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for loader in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"):
        argv += ["--ro-bind-try", loader, loader]
    real = Path(os.path.realpath(command[0])).parent.parent
    if chdir is None and not real.is_relative_to("/usr") and real != Path("/"):
        argv += ["--ro-bind", str(real), str(real)]  # a git installed elsewhere: its prefix
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in shown:
        argv += ["--ro-bind", str(path), str(path)]
    for path in writable:
        argv += ["--bind", str(path), str(path)]
    argv += ["--chdir", str(chdir or "/")]
    return [*argv, "--", *command]


class GitProbe:
    """Reads workdirs' HEADs; finds out once whether its sandbox can be made here."""

    def __init__(self, *, bwrap: str = "bwrap", git: str = "git") -> None:
        self._bwrap = shutil.which(bwrap)
        self._git = shutil.which(git, path=SYSTEM_PATH) or shutil.which(git)
        self._usable: bool | None = None
        self._disable_userns = True

    async def head(self, workdir: Path | None) -> str | None:
        """``workdir``'s HEAD (12 hex digits), with ``+ uncommitted changes`` when its
        tracked files differ; ``None`` when it is no repository (or it cannot be read)."""
        if workdir is None or not workdir.is_absolute():  # workdirs are made absolute early
            return None
        if not await self.sandboxed():
            return await self._unchecked(workdir)
        shown = await asyncio.to_thread(_shown, workdir)
        if shown is None:
            return None

        owner = await asyncio.to_thread(_owner, workdir)
        who: int | None = None

        async def git(args: Sequence[str], filters: Sequence[str] = (), ok: int = 0) -> str | None:
            return await self._git_in(workdir, args, filters, shown, ok, who)

        async def read() -> tuple[str | None, str | None]:
            return await asyncio.gather(  # side by side: each is a sandbox's start-up
                git(("rev-parse", "--short=12", "--verify", "-q", "HEAD")),
                git(("config", "--name-only", "--get-regexp", r"^filter\."), ok=1),
            )

        head, keys = await read()
        if head is None and owner is not None:  # a workdir closed to all but its agent's uid
            who = owner
            head, keys = await read()
        if head is None or not _HEX.fullmatch(head):  # unborn, or git's sandbox failed here
            return await self._unchecked(workdir)
        status = ("status", "--porcelain", "--untracked-files=no", "--no-renames", NO_SUBMODULE)
        dirty = None if keys is None else await git(status, filter_names(keys))
        if dirty is None:
            return head + UNCHECKED
        return head + DIRTY if dirty else head

    async def _unchecked(self, workdir: Path) -> str | None:
        """The HEAD read without git, its changes not checked."""
        head = await asyncio.to_thread(read_head, workdir)
        return head[:12] + UNCHECKED if head is not None else None

    async def sandboxed(self) -> bool:
        """Whether git runs here, in its sandbox (found out once)."""
        if self._usable is None:
            self._usable = await self._git_in(Path("/"), ("--version",)) is not None
            if not self._usable:  # bubblewrap before 0.8 has no --disable-userns
                self._disable_userns = False
                self._usable = await self._git_in(Path("/"), ("--version",)) is not None
            if not self._usable:
                log.warning(
                    "git cannot run in a sandbox here (bubblewrap or git is missing, or "
                    "fails): workdirs' HEADs are read without git, their changes not checked"
                )
        return self._usable

    async def _git_in(
        self,
        workdir: Path,
        args: Sequence[str],
        filters: Sequence[str] = (),
        shown: Sequence[Path] = (),
        ok: int = 0,
        owner: int | None = None,
    ) -> str | None:
        """What ``git -C workdir ARGS`` printed in a sandbox showing ``shown`` (at most
        :data:`OUTPUT_CAP` bytes), or ``None`` when it failed (an exit status other than 0
        and ``ok``), timed out or could not start. ``owner``: the uid the sandbox runs as
        (a workdir handed to an agent's own uid is readable by that uid only)."""
        if self._bwrap is None or self._git is None:
            return None
        command = git_argv(self._git, workdir, args)
        try:
            proc = await asyncio.create_subprocess_exec(
                *sandbox_argv(self._bwrap, shown, command, disable_userns=self._disable_userns),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env={**git_env(), **filter_env(filters)},
                start_new_session=True,
                user=owner,
                group=owner,
                extra_groups=None if owner is None else [],
            )
        except OSError:
            return None
        try:
            out = await asyncio.wait_for(_read_capped(proc), TIMEOUT)
        except TimeoutError:
            await end_whole(proc)
            return None
        except BaseException:  # cancelled (the fleet stops): git is not left running
            await asyncio.shield(end_whole(proc))
            raise
        if len(out) <= OUTPUT_CAP and proc.returncode not in (0, ok):
            return None
        return out[:OUTPUT_CAP].decode("utf-8", errors="replace").strip()


def _owner(workdir: Path) -> int | None:
    """Who git's sandbox runs as in ``workdir``: as root, the workdir's owner when that is
    another user (an agent's own uid, see :mod:`fleet.sandbox.lanes`); else ``None``."""
    try:
        uid = os.stat(workdir).st_uid
    except OSError:
        return None
    return uid if os.geteuid() == 0 and uid != 0 else None


def _shown(workdir: Path) -> tuple[Path, ...] | None:
    """What git's sandbox must show for ``workdir``: its repository's directory and, for
    a linked worktree, its git directories; ``None`` when it is no repository's top."""
    root = repo_root(workdir)
    found = git_dirs(root) if root is not None else None
    if root is None or found is None:
        return None
    extra = {path for path in found if not path.is_relative_to(root) and path.is_dir()}
    return (root, *sorted(extra))


async def _read_capped(proc: asyncio.subprocess.Process) -> bytes:
    """Up to one byte more than :data:`OUTPUT_CAP` of ``proc``'s output; then it is ended."""
    out = b""
    while proc.stdout is not None and len(out) <= OUTPUT_CAP:
        chunk = await proc.stdout.read(OUTPUT_CAP + 1 - len(out))
        if not chunk:
            break
        out += chunk
    if len(out) > OUTPUT_CAP:
        proc.kill()
    await proc.wait()
    return out
