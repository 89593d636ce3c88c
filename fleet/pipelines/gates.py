"""A ``check:`` gate's command, run in a stage's checkout — code the agent wrote, so run as
git in that checkout is (:func:`fleet.repos.line.lane_git.in_checkout`): in a throwaway
bubblewrap sandbox that sees only the system's programs and the checkout (read-write), no
network, a pid namespace of its own; as root, as the checkout's owner — the agent's own uid.
It is an argv list, never a shell, started with a fixed PATH, a bare environment (nothing
of Fleetwarden's, no secret). Whatever it started is ended with it, whether it passed,
failed or ran out of time. It never runs as root: a checkout root owns (an agent with no
sandbox of its own) or a host without bubblewrap refuses the check, saying why. Only the
tail of what it printed is kept: :data:`TAIL` characters, its last lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fleet.process_groups import end_whole
from fleet.repos.line.lane_git import checkout_owner, in_checkout

TAIL: Final = 1_500
"""The most characters of a check's output kept, from its end."""
_KEEP: Final = 64 * 1024
_PATH: Final = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True, slots=True)
class CheckRan:
    """How a check went: its exit status (``None``: it never ran, or ran out of time),
    the tail of its output, and why it did not run or did not end (``""``: it ran)."""

    code: int | None
    tail: str
    problem: str = ""

    @property
    def passed(self) -> bool:
        return self.code == 0


def _environment(checkout: Path) -> dict[str, str]:
    return {"PATH": _PATH, "HOME": str(checkout), "LANG": "C.UTF-8"}


def _refusal(argv: Sequence[str], checkout: Path, bwrap: str | None) -> str:
    """Why the check cannot be run sandboxed, as its agent's own user (``""``: it can)."""
    if bwrap is None:
        return ("a check: gate needs bubblewrap (`bwrap`) here, to run the agent's code "
                "sandboxed; install it, or use `gate: approve`")  # fmt: skip
    if os.geteuid() == 0 and checkout_owner(checkout) is None:
        return (f"a check: gate needs a sandboxed agent: its checkout {checkout} is root's, "
                "and the agent's code is never run as root; give the stage's agent a sandbox "
                "(not `sandbox: none`), or use `gate: approve`")  # fmt: skip
    if "/" not in argv[0] and shutil.which(argv[0], path=_PATH) is None:
        return f"{argv[0]!r} could not be run: it is not on {_PATH}"
    return ""


async def run_check(argv: Sequence[str], checkout: Path, seconds: float) -> CheckRan:
    """Run ``argv`` in ``checkout``, for at most ``seconds``."""
    if not await asyncio.to_thread(checkout.is_dir):
        return CheckRan(None, "", f"its checkout {checkout} is gone")
    bwrap = shutil.which("bwrap")
    refused = await asyncio.to_thread(_refusal, argv, checkout, bwrap)
    if refused or bwrap is None:
        return CheckRan(None, "", refused)
    try:
        proc = await asyncio.create_subprocess_exec(
            *in_checkout(bwrap, checkout, argv, chdir=checkout),
            env=_environment(checkout),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return CheckRan(None, "", f"its sandbox could not be started: {exc.strerror or exc}")
    kept = bytearray()

    async def read() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(8192):
            kept.extend(chunk)
            del kept[:-_KEEP]
        await proc.wait()

    try:
        await asyncio.wait_for(read(), seconds)
    except TimeoutError:
        await end_whole(proc)
        return CheckRan(None, _tail(kept), f"it ran out of its {seconds:g} s")
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await end_whole(proc)
        raise
    await end_whole(proc)  # over: nothing it started lives on, passed or not
    return CheckRan(proc.returncode, _tail(kept))


def _tail(kept: bytes | bytearray) -> str:
    text = kept.decode("utf-8", "replace").rstrip()
    if len(text) <= TAIL:
        return text
    return "…" + text[-TAIL:].split("\n", 1)[-1] if "\n" in text[-TAIL:] else text[-TAIL:]
