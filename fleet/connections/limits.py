"""What one client may cost one of Fleetwarden's loopback servers: its timeouts, its header
caps and its share of connections (:class:`Limits`, a config's ``limits`` as the servers
take them)."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.connections import openfiles


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may cost a loopback server. ``header_timeout``: seconds a
    connection may go without a request's headers complete after its last answer before
    it is closed (a client trickling headers holds nothing for long); a new connection
    gets ``idle_timeout`` for its first request's. The handlers put their own deadline on
    reading a body. Header lines and the number of headers are capped (400/431 past them).

    Connections: at most ``max_connections``, and fewer when the open-file limit leaves
    less — the server gets ``fd_share`` of the descriptors past the reserve, each
    connection costing ``fds_each`` (see :mod:`fleet.connections.openfiles`); and ``max_per_agent``
    requests in flight per agent (see :mod:`fleet.connections.admission`)."""

    header_timeout: float = 10.0
    max_header_line: int = 8190  # bytes of the request line or one header
    max_headers: int = 128
    idle_timeout: float = 5.0
    max_connections: int = 1024
    max_per_agent: int = 64
    fd_share: float = 1 / 6
    fds_each: int = 1

    def connection_cap(self, open_files: int) -> int:
        """The cap in force under ``open_files`` descriptors."""
        fitting = openfiles.connection_cap(open_files, self.fd_share, self.fds_each)
        return min(self.max_connections, fitting)
