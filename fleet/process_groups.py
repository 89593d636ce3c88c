"""A child Fleetwarden started in a session of its own (``start_new_session=True``), ended
whole: its process group killed, not the child alone. Git's ``git-remote-http`` (or an ssh)
lives on after its ``git`` is killed, holding the pipes Fleetwarden reads; asyncio's
``wait()`` returns only once those close, so a timeout that killed ``git`` alone would wait
for as long as the upstream keeps that helper hanging."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


async def end_whole(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc``'s process group (its pid: it leads a session of its own) and wait for
    it; a group already gone is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    await proc.wait()
