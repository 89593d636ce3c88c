"""The backends on the configured hosts: each host's ``tmux@NAME`` and ``subprocess@NAME``
(headless) backend over its link (:class:`~fleet.hosts.service.Hosts`), the links kept up
from start to stop."""

from __future__ import annotations

from collections.abc import MutableMapping

from fleet.backends.base import Backend
from fleet.backends.remote_headless import RemoteHeadlessBackend
from fleet.backends.remote_tmux import RemoteTmuxBackend
from fleet.hosts.service import Hosts


class HostBackends:
    """The hosts and their backends, added to ``backends`` (a name already there is kept)."""

    def __init__(self, hosts: Hosts, backends: MutableMapping[str, Backend]) -> None:
        self.hosts = hosts
        self._backends: list[RemoteTmuxBackend] = []
        for host in hosts.names():  # in tmux there, or headless
            for backend in (RemoteTmuxBackend(host, hosts), RemoteHeadlessBackend(host, hosts)):
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
