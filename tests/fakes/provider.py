"""A fake LLM provider on 127.0.0.1 that speaks the real wire formats, driven by a script.

Real agent CLIs (Claude Code, Codex, pi, opencode) and Fleetwarden's metering proxy are
pointed at it. It answers the Anthropic Messages API, the OpenAI Responses API and Chat
Completions, streamed (SSE) or not, under any path prefix; each request takes the next
scripted :class:`Turn` (or the default "hi" turn). ``requests`` records what clients
sent; ``emitted`` records the usage each answer carried on the wire, to compare a
metering ledger against. Payload shapes live in :mod:`tests.fakes.sse`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy

from tests.fakes import sse
from tests.fakes.loopback import LoopbackServer
from tests.fakes.sse import Api, Event, Json, Reply, ToolCall, Usage

__all__ = ["Api", "EmittedUsage", "FakeProvider", "RecordedRequest", "ToolCall", "Turn", "Usage"]

DEFAULT_USAGE = Usage(input=12, output=3)
DEFAULT_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5-codex", "gpt-4o-mini")
_ERROR_MESSAGES = {401: "invalid x-api-key", 429: "Rate limited", 529: "Overloaded"}


@dataclass(frozen=True)
class Turn:
    """One scripted answer, rendered in whichever API the request used.

    ``error_status`` answers that HTTP status with the API's error body (``error_body``
    replaces it verbatim). ``fail_mid_stream`` starts a 200 stream and then sends the
    API's in-stream error. ``cut_after_events`` writes that many SSE events (or, not
    streaming, half the body) and then drops the connection.
    """

    text: str = "hi"
    tool: ToolCall | None = None
    usage: Usage = DEFAULT_USAGE
    error_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_body: Mapping[str, Any] | None = None
    fail_mid_stream: bool = False
    cut_after_events: int | None = None
    delay_between_events: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.error_status is not None and not 400 <= self.error_status <= 599:
            raise ValueError(f"error_status must be 4xx or 5xx, not {self.error_status}")
        if self.cut_after_events is not None and self.cut_after_events < 0:
            raise ValueError("cut_after_events must be >= 0")
        if self.delay_between_events < 0:
            raise ValueError("delay_between_events must be >= 0")

    def message(self, status: int) -> str:
        return self.error_message or _ERROR_MESSAGES.get(status, "Internal server error")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; ``body`` is the parsed JSON or None."""

    method: str
    path: str
    query: str
    headers: CIMultiDictProxy[str]
    body: Any
    raw: bytes
    model: str | None
    api: Api | None


@dataclass(frozen=True)
class EmittedUsage:
    """The usage of one answered turn.

    ``usage`` is what the bytes actually written carried, decoded into :class:`Usage`
    terms (None if none of them carried usage, e.g. a stream cut before its usage event
    or Chat Completions without ``include_usage``); ``planned`` is the turn's numbers.
    """

    api: Api
    model: str
    usage: Usage | None
    planned: Usage
    streamed: bool
    cut: bool
    failed: bool
    request_id: str


def route(method: str, path: str) -> Api | None:
    """Which API a request targets, matching on the path's suffix (any prefix works)."""
    if method != "POST":
        return None
    if path.endswith("/v1/messages"):
        return "anthropic"
    if path.endswith("/responses"):
        return "responses"
    if path.endswith("/chat/completions"):
        return "chat"
    return None


def _json(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    # Exactly application/json, no charset parameter, as the real APIs answer.
    data = json.dumps(body).encode()
    return web.Response(body=data, status=status, headers=headers, content_type="application/json")


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class FakeProvider(LoopbackServer):
    """An aiohttp server on 127.0.0.1 (random port) answering a script of turns."""

    def __init__(
        self,
        *turns: Turn,
        default: Turn | None = None,
        models: tuple[str, ...] = DEFAULT_MODELS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__()
        self.script: deque[Turn] = deque(turns)
        self.default = default or Turn()
        self.models = models
        self.requests: list[RecordedRequest] = []
        self.emitted: list[EmittedUsage] = []
        self._clock = clock
        self._sleep = sleep

    # --- lifecycle ---------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    # --- script ------------------------------------------------------------------

    def add(self, *turns: Turn) -> None:
        """Queue more turns; each model request consumes one, then the default answers."""
        self.script.extend(turns)

    def _next_turn(self) -> Turn:
        return self.script.popleft() if self.script else self.default

    # --- HTTP --------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = _parse(raw)
        path = request.path.rstrip("/") or "/"
        api = route(request.method, path)
        model = body.get("model") if isinstance(body, dict) else None
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                request.query_string,
                request.headers,
                body,
                raw,
                model if isinstance(model, str) else None,
                api,
            )
        )
        if api is not None:
            return await self._answer(request, api, body if isinstance(body, dict) else {})
        if request.method == "POST" and path.endswith("/v1/messages/count_tokens"):
            return _json({"input_tokens": self.default.usage.input})
        if request.method == "GET" and path.endswith("/models"):
            ids = list(self.models)
            if "anthropic-version" in request.headers:
                return _json(sse.anthropic_models(ids, "2025-01-01T00:00:00Z"))
            return _json(sse.openai_models(ids, int(self._clock())))
        rid = self._request_id()
        if path.endswith("/responses"):  # Codex's WebSocket attempt: non-101 -> HTTP fallback
            return _json(sse.openai_error(404, "Not found", None), 404, {"x-request-id": rid})
        error = sse.anthropic_error(404, "Not Found", None, rid)
        return _json(error, 404, {"request-id": rid})

    def _request_id(self) -> str:
        return f"req_fake{len(self.requests):016d}"

    async def _answer(self, request: web.Request, api: Api, body: Json) -> web.StreamResponse:
        turn = self._next_turn()
        rid = self._request_id()
        headers = {"request-id": rid, "x-request-id": rid, **turn.headers}
        model = body.get("model")
        model = model if isinstance(model, str) else self.models[0]
        if turn.error_status is not None:
            error = (
                dict(turn.error_body)
                if turn.error_body is not None
                else self._error(api, turn, rid)
            )
            return _json(error, turn.error_status, headers)
        reply = Reply(
            model, turn.text, turn.tool, turn.usage, len(self.requests), int(self._clock())
        )
        if body.get("stream") is True:
            return await self._stream(request, api, body, turn, reply, headers)
        return await self._whole(request, api, turn, reply, headers)

    def _error(self, api: Api, turn: Turn, rid: str) -> Json:
        status = turn.error_status or 500
        if api == "anthropic":
            return sse.anthropic_error(status, turn.message(status), turn.error_type, rid)
        return sse.openai_error(status, turn.message(status), turn.error_type)

    def _events(self, api: Api, body: Json, turn: Turn, reply: Reply) -> list[Event]:
        if api == "anthropic":
            events = sse.anthropic_events(reply)
            if turn.fail_mid_stream:  # message_start, first block start, ping, then error
                error = sse.anthropic_error(529, turn.message(529), turn.error_type, "")
                del error["request_id"]
                events = [*events[:3], Event("error", error)]
            return events
        if api == "responses":
            events = sse.responses_events(reply)
            if turn.fail_mid_stream:
                code = turn.error_type or "server_error"
                failed = sse.responses_failed(reply, code, turn.message(500))
                events = [*events[:2], Event("response.failed", {**failed, "sequence_number": 2})]
            return events
        options = body.get("stream_options")
        include = isinstance(options, dict) and options.get("include_usage") is True
        events = sse.chat_events(reply, include)
        if turn.fail_mid_stream:
            error = sse.openai_error(500, turn.message(500), turn.error_type)
            events = [*events[:1], Event(None, error)]
        return events

    async def _stream(
        self,
        request: web.Request,
        api: Api,
        body: Json,
        turn: Turn,
        reply: Reply,
        headers: Mapping[str, str],
    ) -> web.StreamResponse:
        events = self._events(api, body, turn, reply)
        limit = len(events) if turn.cut_after_events is None else turn.cut_after_events
        response = web.StreamResponse(
            headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        written = 0
        try:
            for event in events[:limit]:
                if written and turn.delay_between_events:
                    await self._sleep(turn.delay_between_events)
                await response.write(event.encode())
                written += 1
        finally:
            # Recorded before the end of stream (or the cut) is sent, so a client that saw
            # its stream end finds the usage here; a client hanging up is recorded too.
            seen = [e.usage for e in events[:written] if e.usage is not None]
            self.emitted.append(
                EmittedUsage(
                    api,
                    reply.model,
                    seen[-1] if seen else None,
                    turn.usage,
                    streamed=True,
                    cut=written < len(events),
                    failed=turn.fail_mid_stream,
                    request_id=headers["request-id"],
                )
            )
        if written < len(events):
            _drop(request)
            return response
        await response.write_eof()
        return response

    async def _whole(
        self,
        request: web.Request,
        api: Api,
        turn: Turn,
        reply: Reply,
        headers: Mapping[str, str],
    ) -> web.StreamResponse:
        if api == "anthropic":
            payload, seen = sse.anthropic_message(reply), turn.usage.seen_as_anthropic()
        elif api == "responses":
            payload, seen = sse.responses_body(reply), turn.usage.seen_as_openai()
        else:
            payload, seen = sse.chat_body(reply), turn.usage.seen_as_openai()
        data = json.dumps(payload).encode()
        cut = turn.cut_after_events is not None
        self.emitted.append(
            EmittedUsage(
                api,
                reply.model,
                None if cut else seen,
                turn.usage,
                streamed=False,
                cut=cut,
                failed=False,
                request_id=headers["request-id"],
            )
        )
        if not cut:
            return _json(payload, 200, headers)
        response = web.StreamResponse(headers={**headers, "Content-Type": "application/json"})
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        _drop(request)
        return response


def _drop(request: web.Request) -> None:
    """Close the connection mid-body: the client sees an incomplete payload."""
    if request.transport is not None:
        request.transport.close()
