"""What can go wrong with a host, as exceptions under :class:`fleet.errors.FleetError`.

    FleetError
    └── HostError                    a host could not be used
        ├── InvalidHostName          a name outside [a-z][a-z0-9-]{0,31}, or a reserved one
        ├── HostKeyError             the host's key is not one on record: never accepted
        │   ├── HostKeyUnknown       no key on record for it (`fleetwarden hosts trust NAME`)
        │   └── HostKeyChanged       a different key on record (reinstalled, or someone
        │                            in the middle): refused until an operator replaces it
        ├── HostLoginRefused         the host would not let us in (key, passphrase, agent)
        ├── HostDown                 no connection to the host right now
        └── RemoteCommandFailed      a command on the host could not be run or timed out

Messages are written for the operator: they name the host, say what was seen, and give
the fix. They never hold a secret (a passphrase is only ever read from the environment).
What the host wrote is quoted as its own words, never as a line of ours
(:func:`fleet.redaction.guard.says`; :func:`fleet.hosts.remote.failure`, :func:`ssh_says`).
"""

from __future__ import annotations

from fleet.errors import FleetError
from fleet.redaction.guard import says


class HostError(FleetError):
    """A host could not be used."""


class InvalidHostName(HostError):
    """A host name outside the allowed pattern, or a reserved word."""


class HostKeyError(HostError):
    """The key the host offered is not the one on record. ``fingerprint`` is the offered
    key's ``SHA256:…`` fingerprint, when the handshake got that far."""

    def __init__(self, message: str, *, fingerprint: str | None = None) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


class HostKeyUnknown(HostKeyError):
    """No key on record for the host (or no known_hosts file yet)."""


class HostKeyChanged(HostKeyError):
    """The host offered a key other than the one on record for it."""


class HostLoginRefused(HostError):
    """The host refused our login, or the client key could not be loaded."""


class HostDown(HostError):
    """There is no connection to the host right now."""


class RemoteCommandFailed(HostError):
    """A command on the host could not be started, or did not finish in time."""


def ssh_says(exc: BaseException) -> str:
    """An SSH error's text (``asyncssh``'s, or ``OSError``'s), quoted: its reason — why a
    connection was closed, a channel refused, an SFTP request failed — may be words the
    host's SSH server chose."""
    return says("SSH", str(exc) or type(exc).__name__)
