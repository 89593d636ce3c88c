"""Errors the proxy itself answers with, in the provider's own JSON shape, so an agent's CLI
shows them as it would show the provider's."""

from __future__ import annotations

import json
import math
from typing import Final

from aiohttp import web

from fleet.accounts.providers import ProviderApi

# Sent to a connection past the proxy's cap, before its request is read (so its provider is
# not known): both providers' SDKs read it as an overloaded server, and retry.
FULL: Final = (
    b'{"type":"error","error":{"type":"overloaded_error","message":"Fleetwarden metering '
    b'proxy: every connection it takes is in use; retry shortly"}}'
)

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    415: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}
_OPENAI_TYPES = {
    400: ("invalid_request_error", None),
    408: ("invalid_request_error", "timeout"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    403: ("invalid_request_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "overloaded"),
    504: ("server_error", "timeout"),
}


def error_response(
    api: ProviderApi, status: int, message: str, *, retry_after: float | None = None
) -> web.Response:
    """``status`` with ``message`` as ``api``'s error body (and ``retry-after`` if given)."""
    body: dict[str, object]
    if api is ProviderApi.ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        kind, code = _OPENAI_TYPES.get(status, ("server_error", None))
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    headers = {"x-fleetwarden-proxy": "1"}
    if retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


def too_busy(api: ProviderApi, agent: str, held: int) -> web.Response:
    """A request past its agent's cap of requests at once: a 503 to retry."""
    why = (
        f"Fleetwarden: {agent} has {held} requests in flight, the most one agent may have "
        "at once; retry when one has ended"
    )
    return error_response(api, 503, why, retry_after=1)
