"""The metering proxy: agents' provider traffic goes through here, and every model request
is metered from the provider's own answer.

An agent's base URL for a provider is
``http://127.0.0.1:PORT/a/<agent>/<provider>/<key>``, where ``key`` is the agent's own
random secret (so one agent cannot bill another); the CLI appends the provider's path
(``/v1/messages``, ``/v1/responses``…) and the proxy forwards to that provider's upstream.

* Credentials: when an account pays for the agent's requests to a provider
  (:class:`~fleet.accounts.book.AccountBook`), whatever credential the agent sent is
  dropped and the account's own is injected (:mod:`fleet.accounts.inject`); agents hold
  only placeholders. A provider refusing the credential marks the account (a ChatGPT
  login is first refreshed, here and only here, and the request sent once more); the
  provider's quota headers become the account's quota windows. A provider no account
  covers gets the agent's headers as sent.
* Codex's refresh of its (placeholder) ChatGPT login is pointed here too, at
  ``…/chatgpt/<key>/oauth/token``, and gets placeholders back.
* Other headers pass through both ways (never logged), except hop-by-hop headers and
  ``Accept-Encoding``, which asks for ``identity`` so the stream can be read.
* Answers are passed on chunk by chunk as they arrive; a copy is parsed on the side.
* A Chat Completions stream that did not ask for usage is asked for it
  (``stream_options.include_usage``), and the extra usage-only chunk is dropped before the
  agent sees it.
* The agent hanging up mid-stream does not stop the metering: the upstream is read on (up
  to ``drain_timeout``) until its usage arrives. An upstream that cuts the stream is
  recorded with what was seen, flagged partial — at least the deltas that passed. An
  upstream that cannot be reached gets the agent a 502/504 in the provider's error shape.
* The known unmetered endpoints (Claude's ``HEAD /`` preflight, model lists, token
  counting) and a provider's ``passthrough`` paths pass through unmetered and unrecorded;
  any other path is refused, naming it (:mod:`fleet.metering.wire.endpoints`).

This module owns the proxy's listening, its routes and the agents' keys; one request's way
through it is :mod:`fleet.metering.handling`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web

from fleet.accounts.book import AccountBook
from fleet.accounts.providers import ProviderRoute
from fleet.connections.admission import Admission, refusal
from fleet.connections.loopback import HOST, AgentSecrets, Served, serve
from fleet.metering.config import MeteringSettings, PriceTable
from fleet.metering.counting.journal import UsageJournal
from fleet.metering.counting.recorder import Recorder, Sink
from fleet.metering.handling import Requests
from fleet.metering.offline.server import OfflineProvider
from fleet.metering.policy import AllowAll, Policy
from fleet.metering.wire.body import (
    MAX_REQUEST,
)
from fleet.metering.wire.shapes import FULL, too_busy
from fleet.metering.wire.strangers import AgentPath, Strangers, shape_of
from fleet.redaction.known import Secret
from fleet.timing.clock import Clock, SystemClock

log = logging.getLogger(__name__)

STATE_FILE: Final = "metering.json"
REFRESH_TAIL: Final = "oauth/token"


class MeteringProxy:
    """The proxy on 127.0.0.1. ``sink`` receives batches of what was metered (normally
    ``MeteringStore.record_metering``)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        routes: Mapping[str, ProviderRoute],
        sink: Sink,
        settings: MeteringSettings | None = None,
        prices: PriceTable | None = None,
        policy: Policy | None = None,
        clock: Clock | None = None,
        accounts: AccountBook | None = None,
        journal: UsageJournal | None = None,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        """``on_refused``: told of a known agent's request refused for its path or provider."""
        self._journal = journal
        self._secrets = AgentSecrets(state_dir / STATE_FILE, "metering")
        self._settings = settings or MeteringSettings()
        clock = clock or SystemClock()
        keep = journal.keep if journal is not None else None
        self.recorder = Recorder(sink, interval=self._settings.flush_interval, keep=keep)
        self.requests = Requests(
            self._secrets,
            routes,
            self.recorder,
            settings=self._settings,
            prices=prices or PriceTable(),
            clock=clock,
            accounts=accounts,
        )
        self.requests.policy = policy or AllowAll()
        self.requests.on_refused = on_refused  # the agent and why: its egress refusals count it
        self._session: aiohttp.ClientSession | None = None
        self._offline = OfflineProvider(clock)  # serving only what config leaves it
        self._served: Served | None = None
        self._port: int | None = None

    @property
    def accounts(self) -> AccountBook | None:
        """The book of accounts that pay for agents' requests, if any."""
        return self.requests.accounts

    @property
    def policy(self) -> Policy:
        """The budget policy asked about every model request."""
        return self.requests.policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self.requests.policy = policy

    @property
    def on_refused(self) -> Callable[[str, str], None] | None:
        """Told of a known agent's request refused for its path or provider."""
        return self.requests.on_refused

    @on_refused.setter
    def on_refused(self, told: Callable[[str, str], None] | None) -> None:
        self.requests.on_refused = told

    @property
    def strangers(self) -> Strangers:
        """The requests that carried no agent's right key, counted."""
        return self.requests.strangers

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MeteringProxy is not started")
        return self._port

    @property
    def running(self) -> bool:
        return self._served is not None

    @property
    def connection(self) -> Callable[[], asyncio.Protocol]:
        """A new connection's protocol, within the proxy's caps (once started): what a
        locked agent's door to its port serves in place, with no second connection."""
        if self._served is None:
            raise RuntimeError("MeteringProxy is not started")
        return self._served.factory

    async def start(self) -> None:
        """Write what the last shutdown kept in the journal, load the agents' keys and
        listen, on the saved port when it is free."""
        if self._served is not None:
            raise RuntimeError("MeteringProxy is already started")
        if self._journal is not None:
            await self._journal.replay()  # before any new request is metered
        # Bodies are decoded by :mod:`fleet.metering.wire.body`, which refuses what it cannot read.
        app = web.Application(client_max_size=MAX_REQUEST, handler_args={"auto_decompress": False})
        app.router.add_route("*", "/a/{agent}/{provider}/{key}/{tail:.*}", self.requests.handle)
        app.router.add_route("*", "/a/{agent}/{provider}/{key}", self.requests.handle)
        app.router.add_route("*", "/{tail:.*}", self.strangers.stray)
        # Ready before the first request can come: a reattached agent asks at once.
        self.requests.routes = await self._offline.serve(self.requests.routes)
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, trust_env=False
        )
        self.requests.upstream.session = self._session
        try:
            served = await serve(
                app,
                self._secrets,
                wanted_port=self._settings.port,
                what="metering proxy",
                shutdown_timeout=2.0,
                limits=self._settings.limits(),
                who=self._whose,
                busy=self._busy,
                refusal=refusal(FULL),
            )
        except BaseException:
            await self._session.close()
            await self._offline.stop()
            raise
        self._port = served.port
        self._served = served
        self.recorder.start()
        log.info("metering proxy listening on http://%s:%d", HOST, self._port)

    async def stop(self) -> None:
        """Stop listening (requests in flight get a moment to finish), then write every
        metered request to the ledger."""
        if self._served is not None:
            await self._served.close()
            self._served = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._offline.stop()
        await self.recorder.stop()

    @property
    def admission(self) -> Admission:
        """The connection caps in force (once started)."""
        if self._served is None:
            raise RuntimeError("MeteringProxy is not started")
        return self._served.admission

    def _whose(self, request: web.Request) -> str | None:
        """The agent whose key the request carries, if it is right: its requests count
        against its own cap of requests at once."""
        parts = AgentPath(request.rel_url.raw_path)
        return self._secrets.matches(parts.agent, parts.key)

    def _busy(self, request: web.Request, agent: str, held: int) -> web.StreamResponse:
        route = self.requests.routes.get(AgentPath(request.rel_url.raw_path).provider)
        return too_busy(route.api if route else shape_of(request.path), agent, held)

    # -- agents ------------------------------------------------------------------------

    def urls_for(self, agent: str) -> dict[str, str]:
        """``agent``'s base URL for each provider (issuing its key if it has none)."""
        key = self._secrets.issue(agent)
        return {
            name: f"http://{HOST}:{self.port}/a/{agent}/{name}/{key}"
            for name in self.requests.routes
        }

    @property
    def offline(self) -> frozenset[str]:
        """The providers the offline provider answers (:mod:`fleet.metering.offline`)."""
        return frozenset(name for name, route in self.requests.routes.items() if route.offline)

    def revoke(self, agent: str) -> bool:
        """Refuse ``agent``'s requests from now on; whether it had a key."""
        return self._secrets.revoke(agent)

    def known_secrets(self) -> list[Secret]:
        """Every agent's key (its base URLs carry it), for the redactor."""
        return [Secret(key, "metering key") for key in self._secrets.values()]

    @property
    def secrets(self) -> AgentSecrets:
        """The agents' keys (and the digests of those another orchestrator gave out)."""
        return self._secrets
