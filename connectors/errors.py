"""The connectors' exception tree.

FleetwardenError
└── ConnectorError           a chat service could not be reached or refused us
    ├── ConnectorAuthError   credentials rejected: fatal, never retried
    ├── ConnectorSetupError  the service refuses how we are set up there: exit status 2
    ├── RateLimited          the service asked us to slow down (``retry_after`` seconds)
    └── ThreadsUnsupported   this connector has no threads
"""

from __future__ import annotations

from fleet.errors import FleetwardenError


class ConnectorError(FleetwardenError):
    """A chat service failed or refused what we asked."""


class ConnectorAuthError(ConnectorError):
    """The service rejected our credentials; retrying cannot help."""


class ConnectorSetupError(ConnectorError):
    """The service refuses us until the operator changes a setting there or in the config
    (a privileged intent, an invitation, a missing token): a configuration error."""


class RateLimited(ConnectorError):
    """The service asked us to wait ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ThreadsUnsupported(ConnectorError):
    """The connector has no notion of threads."""
