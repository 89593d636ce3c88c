"""Git run by Fleetwarden on its own repositories: the mirrors, the lines' door repos and
the scratch repo, never on a directory an agent writes.

Every run is an argv list with a minimal environment: no system or global config, no
prompt, no pager, hooks only where the repository names Fleetwarden's own, a time limit and
capped output. A credential reaches git only through the environment this module is given
(:mod:`fleet.repos.upstream.credentials`), never through argv or a config file, and an error message
never repeats that environment.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fleet.errors import FleetError
from fleet.process_groups import end_whole
from fleet.sandbox.git.git_probe import SEALED_GIT_ENV, SYSTEM_PATH

log = logging.getLogger(__name__)

TIMEOUT: Final = 120.0
OUTPUT_CAP: Final = 32 * 1024 * 1024
ZERO: Final = "0" * 40
IDENTITY: Final = {
    "GIT_AUTHOR_NAME": "Fleetwarden",
    "GIT_AUTHOR_EMAIL": "fleetwarden@localhost",
    "GIT_COMMITTER_NAME": "Fleetwarden",
    "GIT_COMMITTER_EMAIL": "fleetwarden@localhost",
}


class GitFailed(FleetError):
    """A git command of Fleetwarden's own failed; ``stderr`` is git's own words."""

    def __init__(self, what: str, code: int | None, stderr: str) -> None:
        self.code = code
        self.stderr = stderr
        super().__init__(f"{what}: {stderr.strip() or f'git exited {code}'}")


@dataclass(frozen=True, slots=True)
class Ran:
    """What one git command did."""

    code: int
    out: bytes
    err: str
    more: int = 0  # bytes of output past ``keep`` (:func:`git`), counted and dropped

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", errors="replace")


def git_program() -> str:
    """The git on the system PATH."""
    found = shutil.which("git", path=SYSTEM_PATH) or shutil.which("git")
    if found is None:
        raise FleetError("git is not installed: install it (Debian: apt-get install git)")
    return found


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git of Fleetwarden's runs with, plus ``extra``."""
    env = {
        **SEALED_GIT_ENV,
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_PAGER": "cat",
        **IDENTITY,
    }
    if extra:
        env.update(extra)
    return env


async def git(
    repo: Path | None,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    limit: float = TIMEOUT,
    ok: Sequence[int] = (0,),
    what: str | None = None,
    keep: int | None = None,
) -> Ran:
    """``git [-C repo] ARGS``; raises :class:`GitFailed` on an exit status not in ``ok``,
    a timeout, or a git that cannot start. ``keep``: at most so many bytes of its output
    are held as it is read, the rest counted (:attr:`Ran.more`) and dropped — for output
    a line's commits can make as large as they like (a diff)."""
    argv = [git_program(), "--no-pager"]
    if repo is not None:
        argv += ["-C", str(repo)]
    argv += ["-c", "core.fsmonitor=false", "-c", "protocol.ext.allow=never", *args]
    label = what or f"git {args[0] if args else ''}"
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=base_env(env),
            start_new_session=True,
        )
    except OSError as exc:
        raise GitFailed(label, None, str(exc)) from exc
    more = 0
    try:
        if keep is None:
            out, err = await asyncio.wait_for(proc.communicate(stdin), limit)
        else:
            out, err, more = await asyncio.wait_for(_kept(proc, keep), limit)
    except TimeoutError:
        await end_whole(proc)
        raise GitFailed(label, None, f"took longer than {limit:.0f} s") from None
    except BaseException:
        await asyncio.shield(end_whole(proc))
        raise
    code = proc.returncode if proc.returncode is not None else -1
    ran = Ran(code, out[:OUTPUT_CAP], err[-8192:].decode("utf-8", errors="replace"), more)
    if code not in ok:
        raise GitFailed(label, code, ran.err)
    return ran


async def _kept(proc: asyncio.subprocess.Process, keep: int) -> tuple[bytes, bytes, int]:
    """``proc``'s output to its end, its first ``keep`` bytes held and the rest counted;
    its error output (git's own words: small)."""
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.ensure_future(proc.stderr.read())
    held: list[bytes] = []
    room, more = keep, 0
    while chunk := await proc.stdout.read(1 << 16):
        held.append(chunk[:room])
        more += max(0, len(chunk) - room)
        room = max(0, room - len(chunk))
    await proc.wait()
    return b"".join(held), await errors, more


async def text(repo: Path | None, args: Sequence[str], **kwargs: object) -> str:
    """What ``git ARGS`` printed, stripped."""
    ran = await git(repo, args, **kwargs)  # type: ignore[arg-type]
    return ran.text.strip()


async def rev(repo: Path, name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The commit ``name`` is in ``repo``, or ``None`` when there is none."""
    ran = await git(
        repo, ["rev-parse", "--verify", "-q", f"{name}^{{commit}}"], env=env, ok=(0, 1, 128)
    )
    sha = ran.text.strip()
    return sha if ran.code == 0 and len(sha) == 40 else None


def config_text(settings: Sequence[tuple[str, str]]) -> str | None:
    """``settings`` (``section[.subsection].name`` and value, a multi-valued key once per
    value) as lines of git's config file, each value quoted — what ``git config --add``
    of each would write to a config that has none of them — or ``None`` when a key or
    value holds a control character (then git is left to write them). For a repository
    of Fleetwarden's just made, which nothing else has seen: one write for many ``git
    config`` runs."""
    lines = []
    for key, value in settings:
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key + value):
            return None
        section, _, rest = key.partition(".")
        sub, _, name = rest.rpartition(".")
        lines.append(f'[{section} "{_quoted(sub)}"]' if sub else f"[{section}]")
        lines.append(f'\t{name} = "{_quoted(value)}"')
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


async def add_config(config: Path, settings: Sequence[tuple[str, str]]) -> None:
    """``settings`` added to the config file ``config`` of a repository of Fleetwarden's
    just made (:func:`config_text`; by ``git config --add``, one by one, when it cannot
    hold them)."""
    text = config_text(settings)
    if text is None:
        for key, value in settings:
            await git(None, ["config", "--file", str(config), "--add", key, value])
        return
    await asyncio.to_thread(_append, config, text)


def _append(config: Path, text: str) -> None:
    with config.open("a", encoding="utf-8") as out:
        out.write(text)


def alternates(*repos: Path) -> dict[str, str]:
    """The environment that lets git in another repository read ``repos``' objects."""
    return {"GIT_ALTERNATE_OBJECT_DIRECTORIES": ":".join(str(r / "objects") for r in repos)}
