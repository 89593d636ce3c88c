"""Where a server of Fleetwarden's listens, as the config writes it: ``HOST:PORT``."""

from __future__ import annotations

import ipaddress


def split_listen(text: str, example: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` for IPv6) as its parts; :class:`ValueError` says why
    not, with ``example`` (the setting's default) as what to write."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit():
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. {example})")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number} is out of range: use 1-65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"{host!r} is not an IP address: listen on an address of this machine "
                f"(e.g. {example}, or 0.0.0.0:{number} behind TLS)"
            ) from None
    return host, number
