"""The offline provider's loopback server: the upstream the metering proxy forwards the
unconfigured built-in providers' requests to, in-process, on 127.0.0.1 and a free port.

Anthropic's API is served under ``/anthropic`` and OpenAI's under ``/openai`` (the routes'
upstream URLs end there): ``POST /v1/messages`` (and ``count_tokens``), ``POST
/v1/responses``, ``POST /v1/chat/completions``, ``GET /v1/models``, and Claude Code's ``HEAD
/`` preflight. Any credential, or none, is taken: there is nothing to pay for. A body that
is not a JSON object is answered 400 in the API's own error shape, as a provider does."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from aiohttp import web

from fleet.accounts.providers import ProviderRoute
from fleet.metering.offline import wire
from fleet.metering.offline.model import DEMO_MODEL, answer
from fleet.metering.wire.body import MAX_REQUEST
from fleet.timing.clock import Clock, SystemClock

__all__ = ["DEMO_MODEL", "OfflineProvider"]

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"
ANTHROPIC_PREFIX: Final = "/anthropic"
OPENAI_PREFIX: Final = "/openai"
_SSE_HEADERS: Final = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


class OfflineProvider:
    """Serves the offline model between :meth:`start` and :meth:`stop`."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, once started."""
        if self._url is None:
            raise RuntimeError("OfflineProvider is not started")
        return self._url

    async def serve(self, routes: Mapping[str, ProviderRoute]) -> dict[str, ProviderRoute]:
        """``routes`` with those the offline provider answers pointed at it, started for
        them (when there are any): from then on their requests take the same path as a
        real provider's."""
        if not any(route.offline for route in routes.values()):
            return dict(routes)
        await self.start()
        return {
            name: replace(route, upstream=self.upstream(route.api)) if route.offline else route
            for name, route in routes.items()
        }

    def upstream(self, api: str) -> str:
        """The base URL the provider API ``api`` (``anthropic`` or ``openai``) is served at."""
        return self.url + (ANTHROPIC_PREFIX if api == "anthropic" else OPENAI_PREFIX)

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("OfflineProvider is already started")
        app = web.Application(client_max_size=MAX_REQUEST)  # what the proxy lets through
        a, o = ANTHROPIC_PREFIX, OPENAI_PREFIX
        app.router.add_route("HEAD", a, self._preflight)
        app.router.add_route("HEAD", a + "/", self._preflight)
        app.router.add_post(a + "/v1/messages", self._messages)
        app.router.add_post(a + "/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get(a + "/v1/models", self._anthropic_models)
        app.router.add_get(a + "/v1/models/{model}", self._anthropic_models)
        app.router.add_post(o + "/v1/responses", self._responses)
        app.router.add_post(o + "/v1/chat/completions", self._chat)
        app.router.add_get(o + "/v1/models", self._openai_models)
        app.router.add_get(o + "/v1/models/{model}", self._openai_models)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, HOST, 0)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        port = runner.addresses[0][1]
        self._runner, self._url = runner, f"http://{HOST}:{port}"
        log.info("offline provider serving %s on %s", DEMO_MODEL, self._url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._url = None

    # -- handlers ------------------------------------------------------------------------

    async def _preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await self._turn_answer(
            request, "anthropic", wire.anthropic_stream, wire.anthropic_message
        )

    async def _count_tokens(self, request: web.Request) -> web.Response:
        payload = await _payload(request)
        if payload is None:
            return _refused("anthropic")
        return _json({"input_tokens": answer(payload).input_tokens})

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        return await self._turn_answer(
            request, "openai", wire.responses_stream, wire.responses_body
        )

    async def _turn_answer(
        self,
        request: web.Request,
        provider: str,
        streamed: Callable[[wire.Turn], list[bytes]],
        whole: Callable[[wire.Turn], wire.Json],
    ) -> web.StreamResponse:
        """A turn's answer in ``provider``'s wire: its events streamed when the payload asks
        for a stream, else the whole body; a payload that is no JSON object refused."""
        payload = await _payload(request)
        if payload is None:
            return _refused(provider)
        turn = self._turn(payload, await request.read())
        if payload.get("stream") is True:
            return await _stream(request, streamed(turn))
        return _json(whole(turn))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        payload = await _payload(request)
        if payload is None:
            return _refused("openai")
        turn = self._turn(payload, await request.read())
        if payload.get("stream") is True:
            options = payload.get("stream_options")
            usage = isinstance(options, dict) and options.get("include_usage") is True
            return await _stream(request, wire.chat_stream(turn, usage))
        return _json(wire.chat_body(turn))

    async def _anthropic_models(self, request: web.Request) -> web.Response:
        model = {
            "type": "model",
            "id": DEMO_MODEL,
            "display_name": "Fleetwarden offline demo",
            "created_at": "2026-01-01T00:00:00Z",
        }
        if "model" in request.match_info:
            return _json(model)
        return _json(
            {"data": [model], "has_more": False, "first_id": DEMO_MODEL, "last_id": DEMO_MODEL}
        )

    async def _openai_models(self, request: web.Request) -> web.Response:
        model = {"id": DEMO_MODEL, "object": "model", "created": 0, "owned_by": "fleetwarden"}
        if "model" in request.match_info:
            return _json(model)
        return _json({"object": "list", "data": [model]})

    def _turn(self, payload: dict[str, Any], body: bytes) -> wire.Turn:
        ident = hashlib.sha256(body).hexdigest()[:24]
        return wire.Turn(answer(payload), ident, int(self._clock.now().timestamp()))


async def _payload(request: web.Request) -> dict[str, Any] | None:
    try:
        value = json.loads(await request.read())
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return None
    return value if isinstance(value, dict) else None


async def _stream(request: web.Request, events: list[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers=_SSE_HEADERS)
    await response.prepare(request)
    for event in events:
        await response.write(event)
    await response.write_eof()
    return response


def _json(value: object) -> web.Response:
    return web.Response(
        body=json.dumps(value, separators=(",", ":")), content_type="application/json"
    )


def _refused(api: str) -> web.Response:
    message = "the request body is not a JSON object"
    if api == "anthropic":
        body: object = {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": message},
        }
    else:
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
    return web.Response(status=400, body=json.dumps(body), content_type="application/json")
