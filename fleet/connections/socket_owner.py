"""Which local user holds the other end of a TCP connection: the kernel's socket table,
asked through sock_diag (the netlink interface ``ss`` reads) for the one socket whose
addresses are the connection's, swapped.

On one machine an address says little about who connects: any local user may bind any of
its addresses, all of 127.0.0.0/8 included, and an SSH tunnel brings its user in from
127.0.0.1 like everyone else. The kernel knows whose each socket is. One question is one
netlink request about one socket, answered from the kernel's hash of connections within
the ``send`` (tens of µs, however many sockets are open); reading ``/proc/net/tcp``
instead walks every socket of the machine, milliseconds per thousand, at every accept.

Linux only. Where the other end is not on this machine, or the kernel cannot be asked
(no sock_diag), there is no owner; :func:`available` says whether the kernel answers.
"""

from __future__ import annotations

import functools
import os
import socket
import struct
from typing import Any, Final

NETLINK_SOCK_DIAG: Final = 4
SOCK_DIAG_BY_FAMILY: Final = 20
NLM_F_REQUEST: Final = 1
TCP_TIME_WAIT: Final = 6  # a socket closed on its side: its owner is no longer kept
ANY: Final = 0xFFFFFFFF  # every state; no cookie (the lookup is by addresses alone)

_HEADER: Final = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_REQUEST: Final = struct.Struct("=BBBxI")  # inet_diag_req_v2: family, protocol, ext, states
_ID: Final = struct.Struct("!HH16s16s")  # inet_diag_sockid: ports, addresses (network order)
_TAIL: Final = struct.Struct("=III")  # inet_diag_sockid: interface, cookie
_STATE: Final = struct.Struct("=BB")  # inet_diag_msg: family, state
_UID: Final = struct.Struct("=I")
_ID_AT: Final = _HEADER.size + 4  # inet_diag_msg's id, after family, state, timer, retrans
_UID_AT: Final = _ID_AT + _ID.size + _TAIL.size + 12  # after expires, rqueue, wqueue


def owner(ours: Any, theirs: Any) -> int | None:
    """The uid of the socket on this machine at ``theirs`` that is connected to ``ours``:
    the other end of our connection (both socket names as Python gives them); ``None``
    when that end is not on this machine, or the kernel does not say."""
    try:
        family = socket.AF_INET6 if ":" in theirs[0] else socket.AF_INET
        request = _request(family, theirs, ours)
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as diag:
            diag.send(request)
            answer = diag.recv(1024, socket.MSG_DONTWAIT)  # queued within the send
    except (OSError, ValueError, TypeError, IndexError, AttributeError, struct.error):
        return None  # not an IP socket name, no AF_NETLINK here, no answer
    return _uid(answer, theirs[1], ours[1])


def _request(family: int, local: Any, remote: Any) -> bytes:
    """A lookup of the one TCP socket at ``local`` connected to ``remote``."""

    def packed(host: str) -> bytes:
        return socket.inet_pton(family, host.split("%", 1)[0]).ljust(16, b"\0")

    scope = int(local[3]) if family == socket.AF_INET6 and len(local) > 3 else 0
    body = (
        _REQUEST.pack(family, socket.IPPROTO_TCP, 0, ANY)
        + _ID.pack(int(local[1]), int(remote[1]), packed(local[0]), packed(remote[0]))
        + _TAIL.pack(scope, ANY, ANY)
    )
    head = _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
    return head + body


def _uid(answer: bytes, local_port: int, remote_port: int) -> int | None:
    """The owner in the kernel's answer; ``None`` for an error (no such socket here: the
    other end is on another machine) or an answer about another socket."""
    if len(answer) < _UID_AT + _UID.size:
        return None  # an error, NLMSG_ERROR, is shorter
    kind = _HEADER.unpack_from(answer)[1]
    _, state = _STATE.unpack_from(answer, _HEADER.size)
    sport, dport, _, _ = _ID.unpack_from(answer, _ID_AT)
    if kind != SOCK_DIAG_BY_FAMILY or state == TCP_TIME_WAIT:
        return None
    if (sport, dport) != (local_port, remote_port):
        return None
    uid: int = _UID.unpack_from(answer, _UID_AT)[0]
    return uid


@functools.cache
def available() -> bool:
    """Whether the kernel says who holds a connection's other end: asked once, of a
    connection this process makes to itself on loopback."""
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), 5):
                accepted, _ = server.accept()
                with accepted:
                    return owner(accepted.getsockname(), accepted.getpeername()) == os.geteuid()
    except OSError:
        return False
