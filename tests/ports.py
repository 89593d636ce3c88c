"""Ports for the servers tests start, which no other test and no outgoing connection takes.

A port the kernel picks (``bind(0)``) comes from its ephemeral range
(``net.ipv4.ip_local_port_range``, 32768–60999 by default), the range every outgoing
connection and every server bound to port 0 draws from too. A test that picks a port, lets
it go and hands it to a server it starts can find it taken meanwhile by the other pytest
worker or by any connection, and then talks to a stranger. :func:`free_port` draws from a
band below that range instead, its own for each pytest-xdist worker, and never hands a port
twice in one process until its band is used up.
"""

from __future__ import annotations

import os
import random
import re
import socket
from typing import Final

LOW: Final = 20000
"""The bands' start: above the well-known and registered ports services here use."""
BAND: Final = 1500
"""Ports a worker owns: eight workers' bands end below the ephemeral range's 32768."""

_handed: set[tuple[str, int]] = set()


def _band() -> range:
    worker = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", "gw0"))
    index = int(worker[1]) % 8 if worker else 0
    return range(LOW + index * BAND, LOW + (index + 1) * BAND)


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port on ``address`` that nothing holds now and this worker has not handed out."""
    band = _band()
    if all((address, port) in _handed for port in band):
        _handed.difference_update({(address, port) for port in band})
    for port in random.sample(band, len(band)):
        if (address, port) in _handed:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:  # no SO_REUSEADDR: a port still in TIME_WAIT is passed over too
                sock.bind((address, port))
            except OSError:
                continue
        _handed.add((address, port))
        return port
    raise RuntimeError(f"no free port in {band.start}-{band.stop - 1} on {address}")
