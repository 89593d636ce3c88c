"""A ``check:`` gate's command, run in a stage's checkout: an argv list, never a shell;
in a session of its own (its whole process group ended at its time limit); with a bare
environment (nothing of Fleetwarden's, no secret); as the checkout's owner — the agent's
own uid — when Fleetwarden runs as root and the checkout is another user's, as git in a
checkout is (:func:`fleet.repos.line.lane_git.checkout_owner`). Only the tail of what it
printed is kept: :data:`TAIL` characters, its last lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fleet.process_groups import end_whole
from fleet.repos.line.lane_git import checkout_owner

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
    return {"PATH": os.environ.get("PATH", _PATH), "HOME": str(checkout), "LANG": "C.UTF-8"}


async def run_check(argv: Sequence[str], checkout: Path, seconds: float) -> CheckRan:
    """Run ``argv`` in ``checkout``, for at most ``seconds``."""
    if not await asyncio.to_thread(checkout.is_dir):
        return CheckRan(None, "", f"its checkout {checkout} is gone")
    extra: dict[str, Any] = {}
    owner = checkout_owner(checkout)
    if owner is not None:
        extra = {"user": owner, "group": owner, "extra_groups": []}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=checkout,
            env=_environment(checkout),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            **extra,
        )
    except OSError as exc:
        return CheckRan(None, "", f"{argv[0]!r} could not be run: {exc.strerror or exc}")
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
    return CheckRan(proc.returncode, _tail(kept))


def _tail(kept: bytes | bytearray) -> str:
    text = kept.decode("utf-8", "replace").rstrip()
    if len(text) <= TAIL:
        return text
    return "…" + text[-TAIL:].split("\n", 1)[-1] if "\n" in text[-TAIL:] else text[-TAIL:]
