"""A line's door repo on disk: the bare repository the git door serves one agent for one
branch, its config, the pre-receive hook every such repository runs, and the refusals that
hook leaves behind.

The repository borrows the mirror's objects (``objects/info/alternates``), holds the base
branch and the line's own branch, and keeps what the agent pushes in its own objects
directory, so no other line ever sees them. Everything here is Fleetwarden's own: nothing
an agent sends reaches a path, a config value or an argv of this module but through git's
own checks (see :mod:`fleet.repos.hook.receive` for what the hook refuses).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import fleet
from fleet.private_files import private_dir, write_private
from fleet.repos.git import add_config, git, rev
from fleet.repos.hook.policy import (
    MAX_REFUSALS_FILE,
    REFUSALS,
    Identity,
    Issue,
    Policy,
    agent_identity,
)
from fleet.repos.schema import ref_problem

HOOK: Final = "pre-receive"
_MANY: Final = ("fleetwarden.cipath", "fleetwarden.coauthor")
"""Keys with a value per item, written anew each time (``fleetwarden.run`` only grows)."""
_SETTINGS: Final = (
    ("http.receivepack", "true"),
    ("receive.denyDeletes", "true"),
    ("receive.denyNonFastForwards", "true"),
    ("receive.fsckObjects", "true"),
    ("receive.advertisePushOptions", "false"),
    ("uploadpack.allowAnySHA1InWant", "false"),
    ("uploadpack.allowReachableSHA1InWant", "false"),
    ("uploadpack.allowTipSHA1InWant", "false"),
    ("uploadpack.allowFilter", "false"),
    # The mirror's branch tips are not advertised to a pusher (no `.have` lines): a merge
    # with an upstream commit the line never had is refused by the hook besides.
    ("core.alternateRefsCommand", "true"),
    # Every push is kept as the pack it came in, never unpacked: a file it sends whole is in
    # its quarantine even when the mirror holds the same content (git's unpacking skips
    # an object the store has already), so the hook tells what the push carried.
    ("receive.unpackLimit", "1"),
    # One push (its pack) is at most this big: the state dir is not the agent's to fill.
    ("receive.maxInputSize", str(256 * 1024 * 1024)),
)


@dataclass(frozen=True, slots=True)
class LineRules:
    """What a line's pushes are held to besides its branch and base: whether they may touch
    CI (``workflows``, and the repository's own ``ci_paths``), who its commits are by, the
    co-author they may name, and the issue they may name."""

    workflows: bool
    ci_paths: tuple[str, ...] = ()
    identity: Identity | None = None
    co_author: str | None = None
    issue: Issue | None = None


async def create_line_repo(
    path: Path,
    mirror: Path,
    *,
    branch: str,
    base_ref: str,
    start_sha: str,
    agent: str,
    repo: str,
    hooks_dir: Path,
    rules: LineRules,
) -> None:
    """Make (or bring up to date) the line's bare door repo at ``path``: objects borrowed
    from ``mirror``, ``refs/heads/<base_ref>`` and ``refs/heads/<branch>`` at
    ``start_sha`` when missing (a branch already there keeps what the agent pushed), and
    the config the door and the hook go by (``rules``). Directories are 0700. Raises
    :class:`~fleet.repos.git.GitFailed` or ``ValueError`` (a bad branch name)."""
    for name in (branch, base_ref):
        problem = ref_problem(name)
        if problem:
            raise ValueError(f"{name!r} is not a branch a line can have: {problem}")
    if branch == base_ref:
        raise ValueError(f"a line's branch cannot be its base ({branch!r})")
    fresh = not _existing(path)
    if fresh:
        await git(
            None,
            ["init", "--quiet", "--bare", "--template=", str(path)],
            what="git init (line repo)",
        )
    _borrow(path, mirror)
    policy = Policy(
        branch=f"refs/heads/{branch}",
        workflows=rules.workflows,
        base=f"refs/heads/{base_ref}",
        ci_paths=rules.ci_paths,
        identity=rules.identity,
        agent=agent,
        co_authors=frozenset((rules.co_author,) if rules.co_author else ()),
        issue=rules.issue,
    )
    settings = (
        *_SETTINGS,
        ("core.hooksPath", _absolute(hooks_dir)),
        ("fleetwarden.repo", repo),
        *policy.settings(),
    )
    if fresh:  # none of them there yet: written in one go, both branches made at once
        await add_config(path / "config", settings)
        await git(path, ["symbolic-ref", "HEAD", f"refs/heads/{branch}"], what="git symbolic-ref")
        made = "".join(f"create refs/heads/{name} {start_sha}\n" for name in (base_ref, branch))
        await git(path, ["update-ref", "--stdin"], stdin=made.encode(), what="git update-ref")
        private_dir(path / "fleetwarden")
        return
    for key in _MANY:
        await git(path, ["config", "--unset-all", key], ok=(0, 5), what=f"git config {key}")
    for key, value in settings:
        verb = "--add" if key in _MANY else "--replace-all"
        await git(path, ["config", verb, key, value], what=f"git config {key}")
    await git(path, ["symbolic-ref", "HEAD", f"refs/heads/{branch}"], what="git symbolic-ref")
    for name in (base_ref, branch):
        if await rev(path, f"refs/heads/{name}") is None:
            await git(
                path,
                ["update-ref", f"refs/heads/{name}", start_sha, ""],
                what=f"git update-ref {name}",
            )
    private_dir(path / "fleetwarden")


async def line_identity(path: Path, agent: str, host: str) -> Identity:
    """The identity the line repo at ``path`` takes commits by (the one its line was cut
    with); Fleetwarden's default for ``agent`` on ``host`` when it names none."""
    found = await git(
        path, ["config", "--get-regexp", r"^fleetwarden\.(name|email)$"], ok=(0, 1, 128)
    )  # 128: no such repository (any more): the default
    said: dict[str, str] = {}
    for line in found.text.splitlines():
        key, _, value = line.partition(" ")
        said[key] = value
    name, email = said.get("fleetwarden.name", ""), said.get("fleetwarden.email", "")
    return Identity(name, email) if name and email else agent_identity(agent, host)


async def add_run(path: Path, run_id: int) -> None:
    """Let the commits pushed to the line repo at ``path`` name run ``run_id`` (one of its
    runs) in a ``Fleetwarden-Run:`` trailer."""
    await git(
        path,
        ["config", "--add", "fleetwarden.run", str(run_id)],
        what="git config fleetwarden.run",
    )


async def own_pull(path: Path, pull: Issue) -> None:
    """Let the commits pushed to the line repo at ``path`` name ``pull``, its forge run's
    pull request (open now), as they may name its issue."""
    await git(
        path,
        ["config", "--replace-all", "fleetwarden.pull", pull.said()],
        what="git config fleetwarden.pull",
    )


def _existing(path: Path) -> bool:
    """Whether the repo at ``path`` is there; its parent is made 0700 if missing."""
    private_dir(path.parent)
    return (path / "HEAD").is_file()


def _borrow(path: Path, mirror: Path) -> None:
    """Close the repo at ``path`` (0700) and have it read ``mirror``'s objects."""
    os.chmod(path, 0o700)
    info = path / "objects" / "info"
    info.mkdir(parents=True, exist_ok=True)
    write_private(info / "alternates", f"{_absolute(mirror / 'objects')}\n")


def _absolute(path: Path) -> str:
    return os.path.abspath(path)


async def set_base(path: Path, base_ref: str, sha: str) -> None:
    """Move the line repo's ``refs/heads/<base_ref>`` to ``sha`` (the mirror's tip of the
    base after a fetch)."""
    problem = ref_problem(base_ref)
    if problem:
        raise ValueError(f"{base_ref!r} is not a branch name: {problem}")
    await git(path, ["update-ref", f"refs/heads/{base_ref}", sha], what="git update-ref (base)")


def project_root() -> Path:
    """The directory holding the ``fleet`` package this process runs."""
    return Path(fleet.__file__).resolve().parent.parent


def hook_script(executable: str | None = None, root: Path | None = None) -> str:
    """The pre-receive script: this interpreter, isolated (``-I``: no environment, no user
    site, no script directory), running :func:`fleet.repos.hook.receive.main`."""
    python = executable or sys.executable
    if not python or any(c.isspace() for c in python):
        raise ValueError(f"the interpreter path {python!r} cannot go on a #! line")
    where = root if root is not None else project_root()
    return (
        f"#!{python} -I\n"
        "import sys\n"
        f"sys.path.insert(0, {str(where)!r})\n"
        "from fleet.repos.hook.receive import main\n"
        "sys.exit(main())\n"
    )


def write_hooks(hooks_dir: Path) -> None:
    """Write the pre-receive hook every line repo runs into ``hooks_dir`` (0700, replaced
    atomically). Call it at each start: the state dir's files are closed to 0600 then."""
    private_dir(hooks_dir)
    script = hooks_dir / HOOK
    write_private(script, hook_script())
    os.chmod(script, 0o700)


def take_refusals(path: Path) -> list[dict[str, str]]:
    """The refusals the hook wrote into the line repo at ``path`` since the last call, and
    none left behind: ``{"ref", "why", "kind", "at"}`` each (the agent's text in ``ref`` and
    ``why``: escape it to show it). A file that is not a plain file of ours is ignored."""
    target = path / REFUSALS
    try:
        fd = os.open(target, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return []
    except OSError:
        return []
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return []
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.pread(fd, MAX_REFUSALS_FILE, 0)
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    return parse_refusals(raw)


def parse_refusals(raw: bytes) -> list[dict[str, str]]:
    """The well-formed refusal lines of ``raw`` (a line cut short or malformed is left
    out)."""
    found: list[dict[str, str]] = []
    for line in raw.splitlines():
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if not isinstance(data, dict):
                continue
            ref, why = data.get("ref"), data.get("why")
            if not isinstance(ref, str) or not isinstance(why, str):
                continue
            entry = {"ref": ref, "why": why}
            kind, at = data.get("kind"), data.get("at")
            if isinstance(kind, str):
                entry["kind"] = kind
            if isinstance(at, int | float) and not isinstance(at, bool):
                entry["at"] = str(int(at))
            found.append(entry)
    return found
