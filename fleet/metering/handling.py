"""An agent's request through the metering proxy: its key and route checked, its account's
credential chosen, the budget policy's verdict taken, and the request forwarded upstream and
metered from the answer.

A request whose agent's accounts are all unusable is answered here, the provider untouched;
a provider refusing an account's credential marks the account and the agent is told why in
our words. What an answer's bytes mean is :mod:`fleet.metering.counting.meter`'s, and the
policy's verdict :mod:`fleet.metering.enforce`'s; the proxy that serves these requests is
:mod:`fleet.metering.proxy`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

import aiohttp
from aiohttp import web

from fleet.accounts.book import AccountBook
from fleet.accounts.chatgpt_keeper import LoginRevoked
from fleet.accounts.inject import Credential
from fleet.accounts.model import AccountError
from fleet.accounts.providers import ProviderRoute
from fleet.accounts.state import Health
from fleet.connections.loopback import AgentSecrets
from fleet.metering import enforce
from fleet.metering.config import MeteringSettings, PriceTable
from fleet.metering.counting.events import Outcome, QuotaSignal, UsageEvent
from fleet.metering.counting.meter import Meter
from fleet.metering.counting.recorder import Recorder
from fleet.metering.counting.usage import Api
from fleet.metering.offline.server import DEMO_MODEL
from fleet.metering.policy import AllowAll, Policy, Refuse, RequestInfo
from fleet.metering.wire.body import BodyRefused, asks_usage, encode_json, json_object, take_body
from fleet.metering.wire.endpoints import CHATGPT_ROUTE, decide, shown
from fleet.metering.wire.relay import Relay
from fleet.metering.wire.shapes import error_response
from fleet.metering.wire.strangers import AgentPath, Strangers, shape_of
from fleet.metering.wire.upstream import Outgoing, Send, Upstream
from fleet.names import AgentName
from fleet.placeholders import placeholder_tokens
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

REFRESH_TAIL: Final = "oauth/token"


class Requests:
    """The proxy's handler of agents' requests. ``policy`` and ``on_refused`` may be
    replaced while it serves; ``routes`` is the providers' table, the offline provider's
    address filled in at start; ``upstream.session`` is set at start."""

    def __init__(
        self,
        secrets: AgentSecrets,
        routes: Mapping[str, ProviderRoute],
        recorder: Recorder,
        *,
        settings: MeteringSettings,
        prices: PriceTable,
        clock: Clock,
        accounts: AccountBook | None,
    ) -> None:
        self.accounts = accounts
        self.routes = dict(routes)
        self._secrets = secrets
        self._settings = settings
        self._prices = prices
        self._clock = clock
        self.upstream = Upstream(accounts, clock)
        self._relay = Relay(settings, recorder, prices)
        self.policy: Policy = AllowAll()
        self.on_refused: Callable[[str, str], None] | None = None
        self.strangers = Strangers()
        self._warned: set[str] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        at = self._clock.now()
        parts = AgentPath(request.rel_url.raw_path)
        route = self.routes.get(parts.provider)
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
            upstream, credential = await self.upstream.open(out, send.credential)
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
