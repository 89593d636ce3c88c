"""One lane per agent on a host where Fleetwarden logs in as root: a host uid of its own
there, as here (:mod:`fleet.sandbox.lanes`).

There, as root, bubblewrap would otherwise make every sandbox as root: the agent's uid
inside maps to root's outside, and every root 0600 file a sandbox shows would be its to
read. So each sandboxed agent there runs as a uid of its own, :data:`~fleet.sandbox.lanes.
FIRST_UID` + n, allocated once per agent name and kept on the host
(``STATE_DIR/uids.json``, so a restarted orchestrator or a standby finds the same); before
each launch its HOME and workdir are made, the runtime's files written into its HOME and
both handed to that uid there (:mod:`fleet.hosts.lane_setup`, run as root), and its doors
are its own. The shim there stays root and starts bubblewrap as that uid, as here.

On a host where Fleetwarden logs in as an ordinary user there are no lanes: its agents
share that user, and what keeps them apart is what every sandbox there hides
(:mod:`fleet.hosts.sandbox`).
"""

from __future__ import annotations

import asyncio
import json
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from fleet import lane_files
from fleet.errors import LaunchFailed
from fleet.hosts.errors import HostError
from fleet.hosts.link import ssh as asyncssh
from fleet.hosts.link.connection import HostLink
from fleet.hosts.place import HostPlace
from fleet.hosts.remote import failure
from fleet.sandbox.lanes import FIRST_UID, LANES

UIDS_FILE: Final = "uids.json"
LANE_SETUP: Final = Path(__file__).with_name("lane_setup.py")
LANE_WRITE: Final = Path(__file__).with_name("lane_write.py")
"""Writes a runtime's files into an agent's HOME where the login is the agent's own user."""
"""The script that readies a lane there (copied to the host with the others)."""
LANE_FILES: Final = Path(lane_files.__file__)
"""What it writes and hands over with (copied beside it, under ``fleet/``)."""
_SETUP_TIMEOUT: Final = 120.0  # a large workdir's tree is walked and chowned


class HostLanes:
    """The agents' uids on each host whose login is root."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    async def uid_for(self, link: HostLink, place: HostPlace, agent: str) -> int:
        """``agent``'s own uid on ``place``'s host, allocated there on first use."""
        lock = self._locks.setdefault(place.host, asyncio.Lock())
        async with lock:
            sftp = await link.sftp()
            uids = await read_uids(sftp, place)
            if agent in uids:
                return uids[agent]
            taken = set(uids.values())
            free = next((n for n in range(LANES) if FIRST_UID + n not in taken), None)
            if free is None:
                raise HostError(f"all {LANES} agent uids from {FIRST_UID} are taken there")
            uids[agent] = FIRST_UID + free
            path = posixpath.join(place.state_dir, UIDS_FILE)
            tmp = f"{path}.tmp"
            attrs = asyncssh.SFTPAttrs(permissions=0o600)
            async with sftp.open(tmp, "w", attrs) as fh:
                await fh.write(json.dumps(uids, indent=1, sort_keys=True))
            await sftp.posix_rename(tmp, path)
            return uids[agent]


async def read_uids(sftp: asyncssh.SFTPClient, place: HostPlace) -> dict[str, int]:
    """The uids allocated on the host so far, by agent name."""
    try:
        async with sftp.open(posixpath.join(place.state_dir, UIDS_FILE), "r") as fh:
            loaded = json.loads(await fh.read())
    except (OSError, asyncssh.SFTPError):
        return {}
    except ValueError as exc:
        raise HostError(
            f"{place.state_dir}/{UIDS_FILE} there is unreadable ({exc}); remove it to start over"
        ) from None
    if not isinstance(loaded, dict):
        return {}
    return {str(k): v for k, v in loaded.items() if isinstance(v, int) and v >= FIRST_UID}


async def set_up_lane(
    link: HostLink,
    place: HostPlace,
    uid: int,
    home: str,
    workdir: str,
    files: Mapping[str, str],
    fresh: Sequence[str] = (),
) -> None:
    """Make ``home`` and ``workdir`` there, empty the ``fresh`` folders below ``home``,
    write ``files`` (path below ``home`` → text) into ``home`` and hand both to ``uid``
    (:mod:`fleet.hosts.lane_setup`)."""
    argv = ["python3", "-I", "-S", place.bundled(LANE_SETUP), str(uid), home, workdir, *fresh]
    try:
        done = await link.run(argv, input=lane_files.files_json(files), timeout=_SETUP_TIMEOUT)
    except HostError as exc:
        raise LaunchFailed(f"host {place.host}: cannot ready the agent's lane: {exc}") from None
    if not done.ok:
        raise LaunchFailed(
            f"host {place.host}: cannot hand the agent's HOME and workdir to its own user: "
            f"{failure(place.host, done)}"
        )


async def write_home(
    link: HostLink, place: HostPlace, home: str, files: Mapping[str, str], fresh: Sequence[str]
) -> None:
    """Empty the ``fresh`` folders of the agent's ``home`` on the host, then write ``files``
    there, through no symlink the agent left (:mod:`fleet.hosts.lane_write`)."""
    argv = ["python3", "-I", "-S", place.bundled(LANE_WRITE), home, *fresh]
    try:
        done = await link.run(argv, input=lane_files.files_json(files), timeout=_SETUP_TIMEOUT)
    except HostError as exc:
        raise LaunchFailed(f"host {place.host}: cannot write the agent's files: {exc}") from None
    if not done.ok:
        why = failure(place.host, done)
        raise LaunchFailed(f"host {place.host}: cannot write the agent's files: {why}")
