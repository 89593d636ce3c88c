"""Which local user holds a connection's other end, asked of this machine's kernel (the
dashboard's per-user cap rests on it; another user's socket is in
tests/unit/bot/dashboard/test_dashboard_local_users.py)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

import pytest

from fleet.connections import socket_owner


@contextlib.contextmanager
def connected(family: socket.AddressFamily, host: str, source: str) -> Iterator[socket.socket]:
    """The server's end of a connection from ``source`` to ``host``, this process's own."""
    with socket.socket(family) as server:
        server.bind((host, 0))
        server.listen(1)
        with socket.socket(family) as client:
            client.bind((source, 0))
            client.connect(server.getsockname())
            accepted, _ = server.accept()
            with accepted:
                yield accepted


def test_the_kernel_says_whose_the_other_end_of_a_loopback_connection_is() -> None:
    assert socket_owner.available()
    with connected(socket.AF_INET, "127.0.0.1", "127.0.0.9") as ours:
        peer = ours.getpeername()
        assert peer[0] == "127.0.0.9"
        assert socket_owner.owner(ours.getsockname(), peer) == os.geteuid()
        # Our own end is not theirs: the lookup is of the socket at their address.
        assert socket_owner.owner(peer, ours.getsockname()) == os.geteuid()
        assert socket_owner.owner(ours.getsockname(), (peer[0], peer[1] ^ 1)) is None


def test_ipv6_too() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        with connected(socket.AF_INET6, "::1", "::1") as ours:
            assert socket_owner.owner(ours.getsockname(), ours.getpeername()) == os.geteuid()
    except OSError as exc:
        pytest.skip(f"no ::1 here: {exc}")


def test_another_machine_or_no_ip_address_has_no_owner() -> None:
    with connected(socket.AF_INET, "127.0.0.1", "127.0.0.1") as ours:
        # No socket of this machine is at a TEST-NET address: the other end is elsewhere.
        assert socket_owner.owner(ours.getsockname(), ("192.0.2.7", 40000)) is None
    assert socket_owner.owner("/run/fw.sock", "") is None  # a Unix socket's names
    assert socket_owner.owner(None, None) is None
