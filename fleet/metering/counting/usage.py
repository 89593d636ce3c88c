"""Reading token usage out of a provider's own answer, in each API's wire format.

* Anthropic Messages: ``message_start.message.usage``, then ``message_delta.usage``, which
  is *cumulative*: each field keeps its latest value, nothing is summed.
* OpenAI Responses: ``response.completed`` (or ``.incomplete`` / ``.failed``) carries
  ``response.usage``.
* Chat Completions: the final chunk (``choices: []``) carries ``usage`` when the request
  asked for ``stream_options.include_usage``.
* Not streamed: the JSON body's ``usage``, in the same three shapes.

Counts are made disjoint (see :mod:`fleet.metering.counting.events`). Events that cannot carry usage
(text deltas, the bulk of any stream) are recognised by name and never parsed.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal, TypeGuard

from fleet.hostile_json import JsonRefused, read_object
from fleet.metering.counting.events import Tokens
from fleet.metering.wire.sse import SseEvent

Api = Literal["anthropic", "responses", "chat"]
MAX_TOKENS: Final = 10**12  # per field of one answer; more is a broken or hostile provider

_ANTHROPIC_SKIP = frozenset({"content_block_start", "content_block_delta", "content_block_stop"})
_ANTHROPIC_FIELDS = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache_read",
    "cache_creation_input_tokens": "cache_write",
}
_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_RESPONSES_READ = _RESPONSES_TERMINAL | {"response.created", "error"}


def api_of(method: str, path: str) -> Api | None:
    """Which model API a request is, from its method and path (any prefix); ``None`` for
    everything else (preflights, model lists, token counting), which is not metered."""
    if method != "POST":
        return None
    path = "/" + path.strip("/")
    if path.endswith("/messages") and "/v1/" in path:
        return "anthropic"
    if path.endswith("/responses"):
        return "responses"
    if path.endswith("/chat/completions"):
        return "chat"
    return None


# What a reader never needs to see, by how the event starts on the wire: the deltas.
SKIP_PREFIXES: dict[str, tuple[bytes, ...]] = {
    "anthropic": (b"event: content_block_delta", b"event: ping"),
    "responses": (b"event: response.output_text.delta", b"event: response.function_call_"),
    "chat": (),
}


# The text a delta event carries, as a JSON string (escapes and all): what passes to the
# agent as output. A JSON string value cannot hold an unescaped quote, so a key matched
# here is a key, never text that looks like one. Any JSON whitespace may stand around the
# colon: ``"text": "…"`` is Python's ``json.dumps`` default, and pretty-printed JSON (an
# event over several data lines) keeps a key and its value on one line.
_SPACE: Final = rb"[ \t\r\n]*"
_STRING: Final = rb'"' + _SPACE + rb":" + _SPACE + rb'"([^"\\]*(?:\\.[^"\\]*)*)"'
DELTA_TEXT: dict[str, re.Pattern[bytes]] = {
    "anthropic": re.compile(rb'"(?:text|partial_json|thinking)' + _STRING),
    "responses": re.compile(rb'"delta' + _STRING),
    "chat": re.compile(rb'"(?:content|arguments|reasoning_content|reasoning|refusal)' + _STRING),
}


class UsageReader:
    """Collects the usage of one answer from its SSE events or its JSON body.

    After the answer: ``tokens`` (``None`` if none was seen), ``served_model``,
    ``complete`` (the terminal event arrived), ``failure`` (an error the provider reported
    inside a 200 answer) and ``problem`` (why the answer could not be read).
    """

    def __init__(self, api: Api) -> None:
        self.api = api
        self._counts: dict[str, int] = {}
        self.served_model: str | None = None
        self.complete = False
        self.failure: str | None = None
        self.problem: str | None = None
        self.usage_chunk = False  # the last chat event was the usage-only chunk

    @property
    def tokens(self) -> Tokens | None:
        if not self._counts:
            return None
        return Tokens(**self._counts)

    # -- streams -------------------------------------------------------------------

    def on_sse(self, event: SseEvent) -> None:
        """Take one parsed event into account, without reading the data of events that
        cannot carry usage."""
        if self._skips(event.name, event.raw):
            self.usage_chunk = False
            return
        self.on_event(event.name, event.data)

    def _skips(self, name: str | None, raw: bytes) -> bool:
        if self.api == "anthropic":
            return name in _ANTHROPIC_SKIP or name == "ping"
        if self.api == "responses":
            return name is not None and name not in _RESPONSES_READ
        if self.served_model is None:
            return False
        return not any(mark in raw for mark in (b'"usage"', b'"error"', b"[DONE]"))

    def on_event(self, name: str | None, data: bytes) -> None:
        """Take one SSE event into account."""
        self.usage_chunk = False
        if self.api == "anthropic":
            self._anthropic_event(name, data)
        elif self.api == "responses":
            self._responses_event(name, data)
        else:
            self._chat_event(data)

    def _anthropic_event(self, name: str | None, data: bytes) -> None:
        if name in _ANTHROPIC_SKIP or name == "ping":
            return
        body = self._json(data, name or "unnamed")
        if body is None:
            return
        kind = body.get("type")
        if kind == "message_start":
            message = body.get("message")
            if isinstance(message, dict):
                self._model(message.get("model"))
                self._anthropic_usage(message.get("usage"))
        elif kind == "message_delta":
            self._anthropic_usage(body.get("usage"))
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.failure = _error_text(body.get("error"))
            self.complete = True

    def _responses_event(self, name: str | None, data: bytes) -> None:
        if name is not None and name not in _RESPONSES_READ:
            return
        body = self._json(data, name or "unnamed")
        if body is None:
            return
        kind = body.get("type", name)
        response = body.get("response")
        if isinstance(response, dict):
            self._model(response.get("model"))
        if kind in _RESPONSES_TERMINAL:
            self.complete = True
            if isinstance(response, dict):
                self._openai_usage(response.get("usage"), "input_tokens", "output_tokens")
                if kind == "response.failed":
                    self.failure = _error_text(response.get("error")) or "response.failed"
        elif kind == "error":
            # The event's own "type" is always "error": the code says what went wrong.
            flat = {"code": body.get("code"), "message": body.get("message")}
            self.failure = _error_text(body.get("error")) or _error_text(flat) or "error event"
            self.complete = True

    def _chat_event(self, data: bytes) -> None:
        if data.strip() == b"[DONE]":
            self.complete = True
            return
        wanted = self.served_model is None or b'"usage"' in data or b'"error"' in data
        if not wanted:
            return
        body = self._json(data, "chunk")
        if body is None:
            return
        if "error" in body and "choices" not in body:
            self.failure = _error_text(body.get("error")) or "error chunk"
            return
        self._model(body.get("model"))
        usage = body.get("usage")
        if isinstance(usage, dict):
            self._openai_usage(usage, "prompt_tokens", "completion_tokens")
            self.usage_chunk = body.get("choices") == []

    # -- whole bodies --------------------------------------------------------------

    def on_body(self, data: bytes) -> None:
        """Take a whole (not streamed) JSON answer into account."""
        body = self._json(data, "body")
        if body is None:
            return
        self.complete = True
        self._model(body.get("model"))
        usage = body.get("usage")
        if self.api == "anthropic":
            self._anthropic_usage(usage)
        elif self.api == "responses":
            self._openai_usage(usage, "input_tokens", "output_tokens")
        else:
            self._openai_usage(usage, "prompt_tokens", "completion_tokens")
        if usage is None:
            self._problem("the answer carries no usage")

    # -- shapes --------------------------------------------------------------------

    def _anthropic_usage(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        for key, field in _ANTHROPIC_FIELDS.items():
            value = usage.get(key)
            if _count(value):
                self._counts[field] = value
            elif _huge(value):
                self._problem(f"usage {key} is no token count: over {MAX_TOKENS}")

    def _openai_usage(self, usage: object, input_key: str, output_key: str) -> None:
        if not isinstance(usage, dict):
            return
        total_in, output = usage.get(input_key), usage.get(output_key)
        details_in = usage.get(f"{input_key}_details") or usage.get("prompt_tokens_details")
        details_out = usage.get(f"{output_key}_details") or usage.get("completion_tokens_details")
        nested = [_get(details_in, "cached_tokens"), _get(details_out, "reasoning_tokens")]
        if any(_huge(value) for value in (total_in, output, *nested)):
            self._problem(f"usage with a token count over {MAX_TOKENS}")
            return
        if not _count(total_in) or not _count(output):
            self._problem(f"usage without integer {input_key}/{output_key}")
            return
        cached = _field(details_in, "cached_tokens")
        self._counts = {
            "input": max(total_in - cached, 0),
            "output": output,
            "cache_read": cached,
            "cache_write": 0,
            "reasoning": _field(details_out, "reasoning_tokens"),
        }

    def _model(self, model: object) -> None:
        if isinstance(model, str) and model:
            self.served_model = model

    def _json(self, data: bytes, what: str) -> dict[str, Any] | None:
        try:
            return read_object(data)
        except JsonRefused as exc:
            shape = "not a JSON object" if exc.kind == "shape" else "not JSON"
            self._problem(f"malformed {self.api} {what}: {shape}")
            return None

    def _problem(self, why: str) -> None:
        if self.problem is None:  # the first one says most
            self.problem = why


def _count(value: object) -> TypeGuard[int]:
    return type(value) is int and 0 <= value <= MAX_TOKENS


def _huge(value: object) -> bool:
    """An integer count past any real request's, which would poison sums and the ledger."""
    return type(value) is int and value > MAX_TOKENS


def _get(details: object, key: str) -> object:
    return details.get(key) if isinstance(details, dict) else None


def _field(details: object, key: str) -> int:
    value = _get(details, key)
    return value if _count(value) else 0


def _error_text(error: object) -> str | None:
    if not isinstance(error, dict):
        return None
    kind, message = error.get("type") or error.get("code"), error.get("message")
    parts = [str(part) for part in (kind, message) if part]
    return ": ".join(parts)[:200] or None
