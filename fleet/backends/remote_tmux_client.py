"""tmux on another host: each client call a fixed argv on the host's private tmux server
(``tmux -S STATE_DIR/tmux.sock``), run on the host's one SSH connection; what tmux says on
its error output is the host's words, quoted as such."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

from fleet.backends.remote_watch import HostAccess
from fleet.backends.tmux_client import TmuxResult, tmux_argv
from fleet.errors import FleetError
from fleet.hosts.errors import HostError
from fleet.hosts.link.connection import HostLink
from fleet.hosts.place import HostPlace
from fleet.redaction.guard import says

_TMUX_TIMEOUT: Final = 20.0


@dataclasses.dataclass(frozen=True, slots=True)
class HostTmuxResult(TmuxResult):
    """A tmux call's result on a host: what it wrote on its error output is the host's,
    quoted as its own words wherever a message shows it."""

    host: str = ""

    @property
    def message(self) -> str:
        if self.stderr.strip():
            return says(f"host {self.host}", self.stderr)
        return f"tmux exited with status {self.status}"


class RemoteTmuxClient:
    """tmux client calls on a host's private server (``tmux -S STATE_DIR/tmux.sock``)."""

    def __init__(self, host: str, hosts: HostAccess) -> None:
        self._host = host
        self._hosts = hosts

    @property
    def socket_name(self) -> str:
        place = self._hosts.place(self._host)
        return place.tmux_socket if place is not None else "(host down)"

    async def run(
        self,
        *commands: Sequence[str],
        error: type[FleetError] = FleetError,
        prefix: Sequence[str] = (),
    ) -> TmuxResult:
        """One tmux client call there; ``prefix`` runs it under another program (the
        systemd scope a new server is to live in)."""
        link, place = host_up(self._hosts, self._host, error)
        argv = tmux_argv("-", commands)
        argv[argv.index("-L") : argv.index("-L") + 2] = ["-S", place.tmux_socket]
        argv = [*prefix, *argv]
        try:
            done = await link.run(argv, timeout=_TMUX_TIMEOUT)
        except HostError as exc:
            raise error(str(exc)) from None
        status = done.exit_status if done.exit_status is not None else -1
        return HostTmuxResult(status, done.stdout, done.stderr, self._host)


def host_up(hosts: HostAccess, host: str, error: type[FleetError]) -> tuple[HostLink, HostPlace]:
    """``host``'s link and its place, up now; ``error`` saying why not."""
    link = hosts.link(host)
    place = hosts.place(host)
    if link is None:
        raise error(f"no host {host} in the config's hosts")
    if place is None:
        why = f": {link.error}" if link.error else ""
        raise error(f"host {host} cannot be reached now ({link.state.value}{why})")
    return link, place
