"""Where the allow-list's forward proxy may connect (pure): which names, ports and addresses.

A locked agent names a host; the proxy lets it through only when the name is on the
agent's ``egress_allow`` exactly (lower case, no trailing dot: ``githuB.com.`` and
``github.com.evil.example`` are other names), the port is one the method may use (CONNECT:
443; plain HTTP: 80 and 443), and *every* address the name resolves to is a public one —
not loopback, private, link-local, shared (CGNAT), multicast, reserved, documentation or
unspecified, in IPv4 or IPv6, nor an IPv6 address that carries such an IPv4 one (mapped,
compatible, 6to4, Teredo, NAT64). The proxy then connects to an address it checked, never
resolving the name a second time.

:func:`name_problem` is the same idea for the config: an IP literal, ``localhost`` or a
name without a dot is no host an allow-list may name; :func:`is_loopback` says which hosts
are this machine only.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

DEFAULT_ALLOW: tuple[str, ...] = (
    "registry.npmjs.org",  # npm install
    "pypi.org",  # pip: the index
    "files.pythonhosted.org",  # pip: the packages
    "github.com",  # git clone/fetch over HTTPS
    "codeload.github.com",  # archives of a ref (pip and npm dependencies on GitHub)
    "objects.githubusercontent.com",  # release assets and LFS objects
)
"""The hosts a locked agent reaches when neither its entry nor ``defaults`` names any."""
CONNECT_PORTS = frozenset({443})
HTTP_PORTS = frozenset({80, 443})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")


def _kind(address: IPAddress) -> str | None:
    """What makes ``address`` no public one, in a word or two; ``None`` when it is."""
    for word, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private or special-purpose", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return f"a {word} address"
    if not address.is_global:
        return "not a public address"
    return None


def _embedded(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, 6to4, Teredo, NAT64, compatible)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found += list(address.teredo)
    if address in _NAT64 or address in _COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def address_problem(text: str) -> str | None:
    """Why the proxy must not connect to the address ``text``; ``None`` when it may."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return f"{text!r} is not an address"
    why = _kind(address)
    if why is not None:
        return f"{address} is {why}"
    for inner in _embedded(address):
        why = _kind(inner)
        if why is not None:
            return f"{address} leads to {inner}, {why}"
    return None


def resolved_problem(
    addresses: Iterable[str], check: Callable[[str], str | None] = address_problem
) -> str | None:
    """Why a name that resolves to ``addresses`` is refused: none at all, or any one that is
    not public (a name with one private address among public ones is refused whole)."""
    listed = list(addresses)
    if not listed:
        return "it resolves to no address"
    for address in listed:
        why = check(address)
        if why is not None:
            return f"it resolves to {address} ({why})"
    return None


_LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def is_local(text: str) -> bool:
    """Whether the address ``text`` leads into this machine or its networks (loopback,
    link-local, unspecified, multicast, private or shared ranges), directly or embedded."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    for one in (address, *_embedded(address)):
        if one.is_loopback or one.is_link_local or one.is_unspecified or one.is_multicast:
            return True
        if any(one in network for network in _LOCAL_NETWORKS):
            return True
    return False


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an address, in any form the resolver reads as one
    (``127.1``, ``0x7f000001`` and ``2130706433`` included)."""
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(bare)
        return True
    except OSError:
        return False


def name_problem(host: str) -> str | None:
    """Why ``host`` (already lower case, no trailing dot) is no name an allow-list may hold."""
    if is_ip_literal(host):
        return f"{host} is an IP address; the allow-list takes host names only"
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is this machine (loopback); an agent reaches no service of the host"
    if "." not in host:
        return f"{host} has no domain; write a full public name such as github.com"
    if host.rsplit(".", 1)[1].isdigit():
        return f"{host} ends in a number, which the resolver may read as an address"
    return None


def port_problem(method: str, port: int) -> str | None:
    """Why ``method`` may not go to ``port``."""
    if method == "CONNECT":
        return None if port in CONNECT_PORTS else f"CONNECT goes only to port 443, not {port}"
    return None if port in HTTP_PORTS else f"plain HTTP goes only to ports 80 and 443, not {port}"


def is_loopback(host: str, *, under_localhost: bool = True) -> bool:
    """Whether ``host`` (an IP literal, bracketed or not, ``localhost``, or — with
    ``under_localhost`` — a name under it) is this machine only. A credential sent over
    plain HTTP asks for ``under_localhost=False``: a name under ``localhost`` is loopback
    only where the resolver makes it so."""
    name = host.lower().strip("[]")
    if name == "localhost" or (under_localhost and name.endswith(".localhost")):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
