"""A fake LLM provider on 127.0.0.1 that speaks the real wire formats, driven by a script.

Real agent CLIs (Claude Code, Codex, pi, opencode) and Fleetwarden's metering proxy are
pointed at it. It answers the Anthropic Messages API, the OpenAI Responses API and Chat
Completions, streamed (SSE) or not, under any path prefix; each request takes the next
scripted :class:`Turn` (or the default "hi" turn). ``requests`` records what clients
sent; ``emitted`` records the usage each answer carried on the wire, to compare a
metering ledger against. Payload shapes live in :mod:`tests.fakes.provider.sse`.

It is as strict as the real APIs by default. Credentials are checked as they do (an API
key, or an Anthropic subscription's OAuth token with its beta flag; ``accept``, by default
only :data:`FAKE_KEY`): anything else is refused with the API's 401, so a test proves
which credential actually reached the provider. A body that is not JSON or lacks a
required field is refused with the API's 400, a model not in ``models`` with its 404 (see
:mod:`tests.fakes.provider.validation`). A test that needs leniency asks for it by name:
``lenient_credentials``, ``any_model``, ``lenient_body``. Per credential it can add quota
headers (``quota_headers``, see :func:`unified_headers`) and answer 429 (``rejecting``).
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

from tests.fakes.loopback import LoopbackServer
from tests.fakes.provider import sse
from tests.fakes.provider.sse import Api, Event, Json, Reply, ToolCall, Usage
from tests.fakes.provider.validation import Kind, Refusal, anthropic_refusal, check_body

__all__ = [
    "FAKE_KEY",
    "OAUTH_BETA",
    "Accepted",
    "Admission",
    "Api",
    "EmittedUsage",
    "FakeProvider",
    "RecordedRequest",
    "Refusal",
    "ToolCall",
    "Turn",
    "Usage",
    "authenticate",
    "unified_headers",
]

DEFAULT_USAGE = Usage(input=12, output=3)
# The models served unless a test names others: current ones the real APIs serve, among
# them each pinned CLI's default (Claude Code's claude-opus-4-8 on an API key and
# claude-sonnet-5 on a subscription, pi's claude-opus-4-7, opencode's claude-sonnet-4-6,
# Codex's gpt-6.1-sol). Any other name is 404, as the real APIs answer it.
DEFAULT_MODELS = (
    "claude-sonnet-4-5",
    "claude-sonnet-4-6",
    "claude-sonnet-5",
    "claude-haiku-4-5",
    "claude-opus-4-8",
    "claude-opus-4-7",
    "gpt-5-codex",
    "gpt-4o-mini",
    "gpt-5.5",
    "gpt-6.1-sol",
)
_ERROR_MESSAGES = {401: "invalid x-api-key", 429: "Rate limited", 529: "Overloaded"}
OAUTH_BETA = "oauth-2025-04-20"  # the anthropic-beta flag that admits a subscription's token
FAKE_KEY = "sk-fake-provider-key-0123456789"  # the one API key a default FakeProvider accepts
_COUNT_TOKENS = "/v1/messages/count_tokens"
_EXTRA_HEADERS = web.RequestKey("extra_headers", dict[str, str])  # added to any answer


@dataclass(frozen=True)
class Turn:
    """One scripted answer, rendered in whichever API the request used.

    ``error_status`` answers that HTTP status with the API's error body (``error_body``
    replaces it verbatim). ``fail_mid_stream`` starts a 200 stream and then sends the
    API's in-stream error. ``cut_after_events`` writes that many SSE events (or, not
    streaming, half the body) and then drops the connection. ``spaced_json`` writes a
    stream's JSON as Python's ``json.dumps`` does by default (``"text": "…"``), as
    OpenAI-compatible servers written in Python may, instead of the real APIs' compact JSON.
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
    spaced_json: bool = False

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
    credential: str | None = None  # the credential the fake accepted; None: refused/unchecked


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


def _served(method: str, path: str) -> bool:
    """Whether the fake serves anything at a path (else it answers 404)."""
    if route(method, path) is not None:
        return True
    if method == "POST" and path.endswith(_COUNT_TOKENS):
        return True
    return method == "GET" and path.endswith("/models")


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


# --- Credentials ----------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The credentials the fake provider accepts.

    ``api_keys``: Anthropic's ``x-api-key``, or OpenAI-style ``Authorization: Bearer``.
    ``oauth_tokens``: an Anthropic subscription's ``Authorization: Bearer`` token, only
    together with an ``anthropic-beta`` list containing :data:`OAUTH_BETA`.
    """

    api_keys: frozenset[str] = frozenset()
    oauth_tokens: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Admission:
    """What the credential check decided for one request.

    ``credential`` is the accepted credential (None: refused or unchecked); ``refusal``
    set means answer it instead of serving; ``headers`` go on whatever is answered.
    """

    credential: str | None = None
    refusal: Refusal | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


_OPENAI_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password "
    "field (with blank username) if you're accessing the API from your browser and are "
    "prompted for a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_RATE_LIMITED = "This request would exceed your account's rate limit. Please try again later."


def openai_refusal(status: int, message: str, code: str | None = None) -> Refusal:
    body = sse.openai_error(status, message, None)
    if status == 401:  # a missing key has no code; a wrong one is invalid_api_key
        body["error"]["code"] = code
    return Refusal(status, body)


def is_anthropic(path: str, headers: Mapping[str, str]) -> bool:
    """Whether a request is for the Anthropic API (its paths, or its version header)."""
    return "/v1/messages" in path or "anthropic-version" in headers


def bearer(value: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value, else None."""
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def beta_flags(headers: CIMultiDictProxy[str]) -> set[str]:
    """All ``anthropic-beta`` flags, over repeated headers and comma-separated lists."""
    values = headers.getall("anthropic-beta", [])
    return {flag.strip() for value in values for flag in value.split(",") if flag.strip()}


def authenticate(
    accept: Accepted, headers: CIMultiDictProxy[str], anthropic: bool
) -> str | Refusal:
    """The one acceptable credential a request carries, or the API's 401 refusal."""
    keys = headers.getall("x-api-key", [])
    auths = headers.getall("Authorization", [])
    if not anthropic:
        if not auths:
            return openai_refusal(401, _OPENAI_NO_KEY)
        token = bearer(auths[0]) if len(auths) == 1 else None
        if token is None or token not in accept.api_keys:
            return openai_refusal(401, "Incorrect API key provided", "invalid_api_key")
        return token
    if keys and auths:
        return anthropic_refusal(401, "Send either x-api-key or Authorization, not both.")
    if keys:
        if len(keys) == 1 and keys[0] in accept.api_keys:
            return keys[0]
        return anthropic_refusal(401, "invalid x-api-key")
    if not auths:
        return anthropic_refusal(401, "x-api-key header is required")
    token = bearer(auths[0]) if len(auths) == 1 else None
    if OAUTH_BETA not in beta_flags(headers):
        # What the real API answers to any Bearer without the OAuth beta flag.
        return anthropic_refusal(401, "OAuth authentication is currently not supported.")
    if token is None or token not in accept.oauth_tokens:
        return anthropic_refusal(401, "Invalid bearer token")
    return token


def _number(value: float) -> str:
    return f"{value:g}"


def unified_headers(
    *, five_hour: float, seven_day: float, status: str = "allowed", reset_5h: int, reset_7d: int
) -> dict[str, str]:
    """Anthropic's subscription quota headers; utilizations are fractions (0.42 = 42 %).

    ``status`` is the overall status and that of the representative (higher) window; the
    other window reports "allowed".
    """
    claim = "five_hour" if five_hour >= seven_day else "seven_day"
    prefix = "anthropic-ratelimit-unified"
    return {
        f"{prefix}-status": status,
        f"{prefix}-reset": str(reset_5h if claim == "five_hour" else reset_7d),
        f"{prefix}-representative-claim": claim,
        f"{prefix}-5h-utilization": _number(five_hour),
        f"{prefix}-5h-reset": str(reset_5h),
        f"{prefix}-5h-status": status if claim == "five_hour" else "allowed",
        f"{prefix}-7d-utilization": _number(seven_day),
        f"{prefix}-7d-reset": str(reset_7d),
        f"{prefix}-7d-status": status if claim == "seven_day" else "allowed",
    }


async def _add_extra_headers(request: web.Request, response: web.StreamResponse) -> None:
    # An explicit header (a turn's) wins over the per-credential ones.
    for name, value in request.get(_EXTRA_HEADERS, {}).items():
        response.headers.setdefault(name, value)


class FakeProvider(LoopbackServer):
    """An aiohttp server on 127.0.0.1 (random port) answering a script of turns.

    Every request to a served path needs exactly one credential in ``accept`` (default:
    :data:`FAKE_KEY`); refused requests are answered 401, recorded in ``requests`` and
    ``refused`` and consume no turn. A body the API would refuse (not JSON, a required
    field missing, a model not in ``models``) is answered 400/404, recorded in ``invalid``,
    consuming no turn. ``lenient_credentials`` serves any credential or none (recording
    none), ``any_model`` any model name, ``lenient_body`` a body that is not JSON (as
    ``{}``) or lacks fields. ``quota_headers[credential]`` is added to every answer made
    with that credential; a credential in ``rejecting`` is answered 429 (recorded in
    ``throttled``), consuming no turn. Both may be changed while running.
    """

    def __init__(
        self,
        *turns: Turn,
        default: Turn | None = None,
        models: tuple[str, ...] = DEFAULT_MODELS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        accept: Accepted | None = None,
        lenient_credentials: bool = False,
        any_model: bool = False,
        lenient_body: bool = False,
    ) -> None:
        super().__init__()
        if lenient_credentials and accept is not None:
            raise ValueError("accept and lenient_credentials exclude each other")
        self.script: deque[Turn] = deque(turns)
        self.default = default or Turn()
        self.models = models
        if accept is None and not lenient_credentials:
            accept = Accepted(api_keys=frozenset({FAKE_KEY}))
        self.accept = accept  # None: any credential, or none
        self.any_model = any_model
        self.lenient_body = lenient_body
        self.quota_headers: dict[str, Mapping[str, str]] = {}
        self.rejecting: set[str] = set()
        self.requests: list[RecordedRequest] = []
        self.refused: list[RecordedRequest] = []
        self.invalid: list[RecordedRequest] = []
        self.throttled: list[RecordedRequest] = []
        self.emitted: list[EmittedUsage] = []
        self._clock = clock
        self._sleep = sleep

    # --- lifecycle ---------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.on_response_prepare.append(_add_extra_headers)
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
        admission = self._admit(request, path)
        recorded = self._record(request, raw, body, api, admission.credential)
        request[_EXTRA_HEADERS] = dict(admission.headers)
        if admission.refusal is not None:
            refusal = admission.refusal
            (self.refused if refusal.status == 401 else self.throttled).append(recorded)
            return self._refuse(refusal)
        invalid = self._check(request, path, api, raw)
        if invalid is not None:
            self.invalid.append(recorded)
            return self._refuse(invalid)
        return await self._serve(request, path, api, body)

    def _check(
        self, request: web.Request, path: str, api: Api | None, raw: bytes
    ) -> Refusal | None:
        """The API's refusal of an admitted request's body; a subclass may override."""
        kind: Kind | None = api
        if api is None and request.method == "POST" and path.endswith(_COUNT_TOKENS):
            kind = "count_tokens"
        if kind is None:
            return None
        models = None if self.any_model else self.models
        return check_body(kind, raw, models, fields=not self.lenient_body)

    def _admit(self, request: web.Request, path: str) -> Admission:
        """Check the request's credential against ``accept``; a subclass may override."""
        if self.accept is None or not _served(request.method, path):
            # A path nothing is served on is 404 with or without a credential (Claude
            # Code's HEAD / preflight among them).
            return Admission()
        anthropic = is_anthropic(path, request.headers)
        checked = authenticate(self.accept, request.headers, anthropic)
        if isinstance(checked, Refusal):
            return Admission(refusal=checked)
        headers = self.quota_headers.get(checked, {})
        if checked in self.rejecting:
            refusal = (
                anthropic_refusal(429, _RATE_LIMITED)
                if anthropic
                else openai_refusal(429, "Rate limit reached for requests")
            )
            return Admission(checked, refusal, headers)
        return Admission(checked, None, headers)

    def _record(
        self, request: web.Request, raw: bytes, body: Any, api: Api | None, credential: str | None
    ) -> RecordedRequest:
        model = body.get("model") if isinstance(body, dict) else None
        recorded = RecordedRequest(
            request.method,
            request.path,
            request.query_string,
            request.headers,
            body,
            raw,
            model if isinstance(model, str) else None,
            api,
            credential,
        )
        self.requests.append(recorded)
        return recorded

    def _refuse(self, refusal: Refusal) -> web.Response:
        rid = self._request_id()
        body = dict(refusal.body)
        if body.get("type") == "error":  # Anthropic's errors carry their request id
            body["request_id"] = rid
        return _json(body, refusal.status, {"request-id": rid, "x-request-id": rid})

    async def _serve(
        self, request: web.Request, path: str, api: Api | None, body: Any
    ) -> web.StreamResponse:
        """Answer an admitted request by its path."""
        if api is not None:
            return await self._answer(request, api, body if isinstance(body, dict) else {})
        if request.method == "POST" and path.endswith(_COUNT_TOKENS):
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
                await response.write(event.encode(spaced=turn.spaced_json))
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
