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

This module owns the routes, the agents' keys, header filtering and the relay; the budget
policy's verdict on a request is :mod:`fleet.metering.enforce`'s, and what an answer's bytes
mean is :mod:`fleet.metering.counting.meter`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web

from fleet.accounts.book import AccountBook
from fleet.accounts.chatgpt import LoginRevoked
from fleet.accounts.inject import Credential
from fleet.accounts.model import AccountError
from fleet.accounts.providers import ProviderRoute
from fleet.accounts.state import Health
from fleet.connections.admission import Admission, refusal
from fleet.connections.loopback import HOST, AgentSecrets, Served, serve
from fleet.metering import enforce
from fleet.metering.config import MeteringSettings, PriceTable
from fleet.metering.counting.events import Outcome, QuotaSignal, UsageEvent
from fleet.metering.counting.journal import UsageJournal
from fleet.metering.counting.meter import Meter
from fleet.metering.counting.recorder import Recorder, Sink
from fleet.metering.counting.usage import Api
from fleet.metering.offline.server import DEMO_MODEL, OfflineProvider
from fleet.metering.policy import AllowAll, Policy, Refuse, RequestInfo
from fleet.metering.wire.body import (
    MAX_REQUEST,
    BodyRefused,
    asks_usage,
    encode_json,
    json_object,
    take_body,
)
from fleet.metering.wire.endpoints import CHATGPT_ROUTE, decide, shown
from fleet.metering.wire.relay import Relay
from fleet.metering.wire.shapes import FULL, error_response, too_busy
from fleet.metering.wire.strangers import AgentPath, Strangers, shape_of
from fleet.metering.wire.upstream import Outgoing, Send, Upstream
from fleet.names import AgentName
from fleet.placeholders import placeholder_tokens
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
        self.accounts = accounts
        self._journal = journal
        self._secrets = AgentSecrets(state_dir / STATE_FILE, "metering")
        self._routes = dict(routes)
        self._settings = settings or MeteringSettings()
        self._prices = prices or PriceTable()
        self.policy: Policy = policy or AllowAll()
        self._clock: Clock = clock or SystemClock()
        self._upstream = Upstream(accounts, self._clock)
        keep = journal.keep if journal is not None else None
        self.recorder = Recorder(sink, interval=self._settings.flush_interval, keep=keep)
        self._relay = Relay(self._settings, self.recorder, self._prices)
        self._session: aiohttp.ClientSession | None = None
        self._offline = OfflineProvider(self._clock)  # serving only what config leaves it
        self._served: Served | None = None
        self._port: int | None = None
        self._warned: set[str] = set()
        self.strangers = Strangers()
        self.on_refused = on_refused  # the agent and why: its egress refusals count it

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
        app.router.add_route("*", "/a/{agent}/{provider}/{key}/{tail:.*}", self._handle)
        app.router.add_route("*", "/a/{agent}/{provider}/{key}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self.strangers.stray)
        # Ready before the first request can come: a reattached agent asks at once.
        self._routes = await self._offline.serve(self._routes)
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, trust_env=False
        )
        self._upstream.session = self._session
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
        route = self._routes.get(AgentPath(request.rel_url.raw_path).provider)
        return too_busy(route.api if route else shape_of(request.path), agent, held)

    # -- agents ------------------------------------------------------------------------

    def urls_for(self, agent: str) -> dict[str, str]:
        """``agent``'s base URL for each provider (issuing its key if it has none)."""
        key = self._secrets.issue(agent)
        return {name: f"http://{HOST}:{self.port}/a/{agent}/{name}/{key}" for name in self._routes}

    @property
    def offline(self) -> frozenset[str]:
        """The providers the offline provider answers (:mod:`fleet.metering.offline`)."""
        return frozenset(name for name, route in self._routes.items() if route.offline)

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

    # -- requests ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        at = self._clock.now()
        parts = AgentPath(request.rel_url.raw_path)
        route = self._routes.get(parts.provider)
        # Nothing of a request is written anywhere before its agent's key is checked.
        agent = self._secrets.matches(parts.agent, parts.key)
        if agent is None:
            return self.strangers.refuse(route.api if route else shape_of(request.path))
        if route is None:
            why = f"no provider {shown(parts.provider[:32])!r}"
            self._warn_once(agent, "refused a request of %s: %s", why, refused=True)
            return error_response(shape_of(request.path), 403, f"Fleetwarden: {why}")
        decision = decide(route, request.method, parts.tail)
        if route.name == CHATGPT_ROUTE and decision.path == REFRESH_TAIL:
            return web.json_response(placeholder_tokens(agent, at))
        if decision.kind is None:
            status = 404 if decision.path else 403
            # Logged, not recorded: ``usage`` holds model requests, and this is none.
            self._warn_once(agent, "refused a request of %s: %s", decision.why, refused=True)
            return error_response(route.api, status, f"Fleetwarden: {decision.why}")
        api, tail = decision.api, decision.url_path
        held = self.accounts is not None and self.accounts.holds(agent)
        credential: Credential | None = None
        if held and decision.credentialed and self.accounts is not None:
            resolved = self.accounts.resolve(agent, route.name)
            if isinstance(resolved, str):
                return self._unusable(route, agent, api, resolved, at, started)
            credential = resolved
        send = Send(credential, model=api is not None, strip=held)
        if api is None:
            body = await take_body(request, route.api, within=self._settings.body_timeout)
            if isinstance(body, web.Response):
                return body
            return await self._forward(request, route, tail, body, None, send)
        return await self._metered(request, route, agent, api, tail, at, started, send)

    def _unusable(
        self,
        route: ProviderRoute,
        agent: AgentName,
        api: Api | None,
        why: str,
        at: datetime,
        started: float,
    ) -> web.StreamResponse:
        """The agent's accounts are all unusable: answered here, the provider untouched."""
        assert self.accounts is not None
        name = self.accounts.account_of(agent, route.name)
        mark = self.accounts.mark_of(name) if name is not None else None
        meter = Meter(at, started, agent, route.name, api or "", stream=False)
        self._record(meter.refused(429 if mark else 403, why), account=name)
        if mark is not None and mark.health is Health.REJECTED and mark.until is not None:
            wait = max((mark.until - self._clock.now()).total_seconds(), 1.0)
            return error_response(route.api, 429, f"Fleetwarden: {why}", retry_after=wait)
        return error_response(route.api, 403, f"Fleetwarden: {why}")

    async def _metered(
        self,
        request: web.Request,
        route: ProviderRoute,
        agent: AgentName,
        api: Api,
        tail: str,
        at: datetime,
        started: float,
        send: Send,
    ) -> web.StreamResponse:
        credential = send.credential
        body = await take_body(request, route.api, within=self._settings.body_timeout)
        if isinstance(body, web.Response):
            return body
        try:
            payload = json_object(body, say_why=True)
        except BodyRefused as exc:
            return error_response(route.api, exc.status, f"Fleetwarden: {exc}")
        if payload is None:
            why = "the request body is not a JSON object, so it cannot be metered"
            return error_response(route.api, 400, f"Fleetwarden: {why}")
        model = payload.get("model") if payload is not None else None
        model = model if isinstance(model, str) else None
        stream = payload is not None and payload.get("stream") is True
        meter = Meter(at, started, agent, route.name, api, stream, requested_model=model)
        meter.body_size = len(body)
        meter.account = credential.account.name if credential is not None else None
        served = DEMO_MODEL if route.offline else model  # its one model, whatever is named
        info = RequestInfo(agent, route.name, api, served, stream, at)
        hold = self._settings.max_hold
        said = await enforce.verdict(lambda: self.policy, info, self._clock, hold)
        claim = enforce.reserve(
            self.policy, said, info, payload, len(body), self._prices, self._clock
        )
        if isinstance(claim, Refuse):
            self._record(meter.refused(claim.status, claim.reason), account=meter.account)
            return error_response(
                route.api,
                claim.status,
                f"Fleetwarden: {claim.reason}",
                retry_after=claim.retry_after if claim.status == 429 else None,
            )
        changed = enforce.rewrite(said, payload, meter)
        if api == "chat" and stream and payload is not None and not asks_usage(payload):
            options = payload.get("stream_options")
            payload["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
            meter.hide_usage_chunk = changed = True
        if changed:
            body = encode_json(payload)
        try:
            return await self._forward(request, route, tail, body, meter, send)
        finally:
            if claim is not None:
                enforce.settle(self.policy, claim, meter)

    async def _forward(
        self,
        request: web.Request,
        route: ProviderRoute,
        tail: str,
        body: bytes | bytearray,
        meter: Meter | None,
        send: Send | None = None,
    ) -> web.StreamResponse:
        send = send or Send(None, model=False, strip=False)
        assert self._session is not None
        url = route.upstream.rstrip("/") + "/" + tail
        if request.rel_url.raw_query_string:
            url += "?" + request.rel_url.raw_query_string
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self._settings.connect_timeout,
            sock_read=self._settings.read_timeout,
        )
        try:
            out = Outgoing(
                request,
                route,
                url,
                body,
                timeout,
                agent=meter.agent if meter is not None else "",
                model_request=send.model,
                strip=send.strip,
            )
            upstream, credential = await self._upstream.open(out, send.credential)
            if meter is not None and credential is not None:
                meter.account = credential.account.name
        except AccountError as exc:
            # A revoked login: the account is marked, the agent told why. Anything else
            # (the token endpoint down) is passing: a 503 it may retry.
            status = 403 if isinstance(exc, LoginRevoked) else 503
            if meter is not None:
                self._record(meter.refused(status, str(exc)), account=meter.account)
            return error_response(route.api, status, f"Fleetwarden: {exc}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = 504 if isinstance(exc, TimeoutError) else 502
            why = "timed out" if status == 504 else f"unreachable ({type(exc).__name__})"
            if meter is not None:
                event = meter.failed(status, Outcome.UNREACHABLE, f"upstream {why}")
                self._record(event, account=meter.account)
            log.warning("%s upstream %s for a request to %s", route.name, why, tail or "/")
            return error_response(
                route.api, status, f"Fleetwarden metering proxy: the {route.name} upstream {why}"
            )
        if (
            credential is not None
            and send.model
            and upstream.status == 401
            and self.accounts is not None
        ):
            # The provider refused the account's credential: say so in our words (its own
            # answer may quote the key, masked or not) and keep the agent from retrying.
            upstream.release()
            if self.accounts.usable(credential.account.name):
                self.accounts.refused(credential.account.name, 401)
            why = self.accounts.why_not(credential.account.name)
            if meter is not None:
                self._record(meter.refused(403, why), account=credential.account.name)
            return error_response(route.api, 403, f"Fleetwarden: {why}")
        try:
            return await self._relay.relay(request, upstream, meter)
        finally:
            upstream.release()

    # -- bookkeeping -------------------------------------------------------------------

    def _record(
        self,
        event: UsageEvent,
        signals: list[QuotaSignal] | None = None,
        *,
        account: str | None = None,
    ) -> None:
        self._relay.record(event, signals or (), account=account)

    def _warn_once(self, key: str, message: str, why: str, *, refused: bool = False) -> None:
        if refused and self.on_refused is not None:
            self.on_refused(key, why)
        if key in self._warned or len(self._warned) >= 256:
            log.debug(message, key, why)
            return
        self._warned.add(key)
        log.warning(message, key, why)
