"""The app's hosts: each ``hosts:`` entry's link (:class:`~fleet.hosts.service.Hosts`), the
backends that run agents there (``tmux@NAME``, ``subprocess@NAME``: headless), and the
scripts each host gets a copy of. Started once the loopback listeners are up (the hosts
forward to them), stopped after the fleet."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from fleet.backends.base import Backend
from fleet.backends.process import SHIM
from fleet.backends.remote_headless import RemoteHeadlessBackend
from fleet.backends.remote_tmux import RemoteTmuxBackend
from fleet.backends.tmux import LAUNCHER
from fleet.clock import Clock
from fleet.connections.door_client import DOOR_CLIENT
from fleet.forge.door.tools import FW_FORGE, FW_FORGE_PROGRAM
from fleet.hosts.lanes import LANE_FILES, LANE_SETUP, LANE_WRITE
from fleet.hosts.sandbox import EgressDoor
from fleet.hosts.schema import HostEntry
from fleet.hosts.service import Hosts
from fleet.peers.tools import FW_MSG, FW_MSG_PROGRAM
from fleet.runtimes.gates import ASK_CLIENT, OPENCODE_PLUGIN, PI_EXTENSION
from fleet.runtimes.stub import STUB_AGENT, STUB_WORK
from fleet.sandbox.policy import FORWARDER

BUNDLED = (
    SHIM,
    LAUNCHER,
    STUB_AGENT,
    STUB_WORK,
    FORWARDER,
    ASK_CLIENT,
    PI_EXTENSION,
    OPENCODE_PLUGIN,
    LANE_SETUP,
    LANE_WRITE,
    LANE_FILES,
    FW_FORGE,
    FW_FORGE_PROGRAM,
    FW_MSG,
    FW_MSG_PROGRAM,
    DOOR_CLIENT,
)
"""Fleetwarden's standalone scripts each host gets a copy of (the shim, the tmux launcher,
the stub agent and the work it loads, a locked sandbox's forwarder, the gates pi and
opencode load, what readies an agent's lane where the login is root and writes its HOME's
files where it is not, and ``fw-forge`` and ``fw-msg`` with the programs they run and the
door client those load)."""


class AppHosts:
    """The hosts and their backends, added to ``backends`` (one ``tmux@NAME`` each)."""

    def __init__(
        self,
        entries: tuple[HostEntry, ...],
        backends: MutableMapping[str, Backend],
        *,
        environ: Mapping[str, str],
        clock: Clock,
        egress_door: EgressDoor | None = None,
    ) -> None:
        self.hosts = Hosts(
            entries, env=environ, clock=clock, bundled=BUNDLED, egress_door=egress_door
        )
        self._backends: list[RemoteTmuxBackend] = []
        for host in self.hosts.names():  # in tmux there, or headless
            for backend in (
                RemoteTmuxBackend(host, self.hosts),
                RemoteHeadlessBackend(host, self.hosts),
            ):
                backends.setdefault(backend.name, backend)
                self._backends.append(backend)

    async def start(self, heartbeat_port: int, metering_port: int | None) -> None:
        """Each host's link, kept up from now on (an unreachable host is retried, never
        waited for); its agents reach the endpoint and the proxy by its forwards."""
        targets = {"heartbeat": heartbeat_port}
        if metering_port is not None:
            targets["metering"] = metering_port
        await self.hosts.start(targets)

    async def stop(self) -> None:
        for backend in self._backends:
            await backend.close()
        await self.hosts.stop()
