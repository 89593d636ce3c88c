"""How a Slack that cannot be reached is said: the same words from ``check-config --online``
and from the connector at start or later, naming the address tried and where it is set,
never the network library's exception class (``ClientConnectorDNSError``) alone."""

from __future__ import annotations

import aiohttp

from connectors.errors import ConnectorError

NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)
"""What a call raises when Slack was never reached (a name that does not resolve, a port
nobody listens on, no answer in time); Slack's own refusals are answers, not these."""


class SlackUnreachable(ConnectorError):
    """Slack's Web API could not be reached at the address the config gives."""


def unreachable(base_url: str, exc: BaseException) -> str:
    """Slack not reached at ``base_url`` because of ``exc``, with where to look."""
    return (
        f"could not reach Slack at {base_url} ({str(exc) or type(exc).__name__}): "
        "check this machine's network and api_base"
    )
