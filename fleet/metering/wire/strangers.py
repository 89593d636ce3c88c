"""Requests the proxy answers without knowing whose they are.

A request to a path that is no agent URL, or with an agent name and key that do not match,
comes from something that was never given a key — or from an agent trying another's. Such
a request is answered (in the provider's error shape, so a CLI shows it) and counted, and
nothing else: nothing of it is written to the ledger, and the log gets at most one line a
minute saying how many there were, with no text the sender chose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final
from urllib.parse import unquote

from aiohttp import web

from fleet.accounts.providers import ProviderApi
from fleet.metering.wire.shapes import error_response

log = logging.getLogger(__name__)

LOG_EVERY: Final = 60.0  # seconds between two log lines about strangers


class AgentPath:
    """The parts of an agent URL, ``/a/<agent>/<provider>/<key>/<tail>``, read from the raw
    request target: each of the first three percent-decoded, the tail as sent."""

    __slots__ = ("agent", "key", "provider", "tail")

    def __init__(self, raw_path: str) -> None:
        parts = raw_path.split("/", 5)
        parts += [""] * (6 - len(parts))
        self.agent, self.provider, self.key = (unquote(part) for part in parts[2:5])
        self.tail = parts[5]


def shape_of(path: str) -> ProviderApi:
    """The error shape for a request of unknown provider: Anthropic's for its paths."""
    return ProviderApi.ANTHROPIC if "/v1/messages" in path else ProviderApi.OPENAI


class Strangers:
    """Answers and counts requests that carry no valid agent key."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self.count = 0  # refused since start
        self._logged_at: float | None = None
        self._logged_count = 0

    def refuse(self, shape: ProviderApi) -> web.Response:
        """A wrong agent name or key."""
        self._note()
        return error_response(
            shape,
            403,
            "Fleetwarden metering proxy: unknown agent or wrong key; the agent's base URL "
            "must be the one Fleetwarden gave it (restart the agent to get a fresh one)",
        )

    async def stray(self, request: web.Request) -> web.StreamResponse:
        """A path that is no agent URL at all."""
        self._note()
        return error_response(
            shape_of(request.path),
            404,
            "Fleetwarden metering proxy: this is not an agent URL; agents' base URLs look "
            "like /a/<agent>/<provider>/<key>, as Fleetwarden sets them",
        )

    def _note(self) -> None:
        self.count += 1
        now = self._now()
        if self._logged_at is not None and now - self._logged_at < LOG_EVERY:
            return
        log.warning(
            "metering proxy: refused %d request(s) with no valid agent URL or key so far "
            "(%d since the last such line)",
            self.count,
            self.count - self._logged_count,
        )
        self._logged_at, self._logged_count = now, self.count
