"""Whether bubblewrap can make a sandbox on this host (user namespaces may be off), asked
once at start by running it with the flags every sandbox has, as the user agents run as.

The probe runs in a session of its own: an operator's Ctrl-C at the terminal is
Fleetwarden's to handle, and must not kill the probe half-way (a sandbox's first process
would then hold its pipe open, and the probe would wrongly say bubblewrap hangs)."""

from __future__ import annotations

import asyncio
import os

from fleet.process_groups import end_whole
from fleet.sandbox.lanes import FIRST_UID

BWRAP = "bwrap"
_PROBE_TIMEOUT = 10.0

__all__ = ["BWRAP", "probe"]


async def probe(bwrap: str = BWRAP, first: int | None = None) -> str | None:
    """Why bubblewrap cannot make a sandbox here, or ``None`` when it can: with the flags
    every sandbox has, as the user agents run as (as root: ``first``, the first uid of
    this fleet's range, else the first lane's uid)."""
    uid = (first or FIRST_UID) if os.geteuid() == 0 else os.getuid()
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    argv += ["--uid", str(uid), "--gid", str(uid), "--die-with-parent", "--ro-bind", "/", "/"]
    argv += ["--dev", "/dev", "--proc", "/proc", "true"]
    user = {"user": uid, "group": uid, "extra_groups": []} if os.geteuid() == 0 else {}
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            **user,  # type: ignore[arg-type]
        )
    except OSError as exc:
        return f"bubblewrap is not installed or cannot run (`{bwrap}`: {exc.strerror})"
    try:
        _, err = await asyncio.wait_for(process.communicate(), _PROBE_TIMEOUT)
    except TimeoutError:
        await end_whole(process)
        return f"bubblewrap did not make a sandbox within {_PROBE_TIMEOUT:.0f} s"
    except BaseException:  # cancelled: nothing of the probe is left running
        await asyncio.shield(end_whole(process))
        raise
    if process.returncode != 0:
        said = err.decode(errors="replace").strip().splitlines()
        return "bubblewrap cannot make a sandbox here: " + (said[0] if said else "it failed")
    return None
