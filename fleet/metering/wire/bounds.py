"""What a model request can cost at most, read from its body before it is sent: the bound
a run's cap reserves (:mod:`fleet.budgets.runs.caps`), where a budget reserves a likely
cost (:mod:`fleet.metering.counting.estimate`).

A request bounds its own cost only when everything it sends is text the provider counts
as it is. Its input is then at most one token per byte of its body — a token covers at
least one byte of text, and JSON's quoting and escapes only add bytes — plus
:data:`INPUT_OVERHEAD` for what the provider wraps around it (the tool-use system prompt,
message framing). Its output is at most the output cap it asks for, which the provider
enforces, thinking and reasoning included: the largest of the caps it sets
(``max_tokens``, ``max_completion_tokens``, ``max_output_tokens`` — OpenAI-compatible
servers honour the newer ``max_completion_tokens`` over ``max_tokens``, so the smaller one
bounds nothing), times its ``n`` choices (``best_of`` where it is more). A cap or a count
of choices that is not a positive integer (``8.0``, ``"100"``, ``true``, ``0``), or more
than :data:`MAX_CHOICES` choices, leaves the request unbounded: servers read some of them
leniently, and what they read cannot be told from here.

Anything else leaves the request without a bound: no output cap, a part that is not text
(an image, a document, a file, audio — counted by pixels and pages, not bytes), a
reference to content the provider holds or fetches (a URL, a file id, a previous response,
a stored prompt, a Responses input item given by ``id`` alone), a server-side tool (web
search, code execution), or a ``type`` this module does not know. The list of what is
bounded is short and explicit on purpose: a new kind of part is unbounded until it is
added here.

A request the provider goes on working on after its answer (:data:`DETACHED`: OpenAI's
background mode, answered at once as ``queued``, generated and billed later) is unbounded
too, and more: its answer never carries its usage, so nothing that meters answers can
count it (:func:`detached`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fleet.metering.config import PriceTable
from fleet.metering.counting.events import Tokens

INPUT_OVERHEAD: Final = 1_024  # tokens a provider may add around a request's own text
MAX_CHOICES: Final = 128  # more choices than this leave a request unbounded
OUTPUT_CAPS: Final = ("max_tokens", "max_output_tokens", "max_completion_tokens")
CHOICES: Final = ("n", "best_of")  # choices generated (Chat Completions, compatible servers)

# ``type`` values of the parts and settings whose tokens are the text they carry: content
# blocks and items of the three APIs, tool definitions of the client's own tools, the
# options around them, and the JSON Schema words inside those tools' parameters.
BOUNDED_TYPES: Final = frozenset(
    {
        # content and items
        "text",
        "input_text",
        "output_text",
        "summary_text",
        "refusal",
        "message",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "reasoning",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "local_shell_call",
        "local_shell_call_output",
        # the client's own tools
        "function",
        "custom",
        "local_shell",
        # settings: tool choice, thinking, caching, output format
        "auto",
        "any",
        "tool",
        "none",
        "required",
        "allowed_tools",
        "enabled",
        "disabled",
        "adaptive",
        "ephemeral",
        "json_object",
        "json_schema",
        "grammar",
        # JSON Schema
        "object",
        "string",
        "number",
        "integer",
        "boolean",
        "array",
        "null",
    }
)
# A body's own keys that make the provider read content the body does not carry (a part
# that does, such as an image by URL or a document by file id, has a ``type`` not above).
REFERENCES: Final = frozenset(
    {"previous_response_id", "conversation", "prompt", "mcp_servers", "container"}
)
# A body's own keys that have the provider work on the request after answering it: any
# value but absent, ``null`` or ``false`` counts.
DETACHED: Final = ("background",)
_MAX_DEPTH: Final = 64


def largest_cap(payload: Mapping[str, Any]) -> int | None:
    """The largest output cap the request sets; ``None`` without one, or when one it sets
    is not a positive integer."""
    caps = _counts(payload, OUTPUT_CAPS)
    return max(caps) if caps else None


def output_cap(payload: Mapping[str, Any]) -> int | None:
    """The output cap the request asks for, times its choices; ``None`` without one."""
    cap = largest_cap(payload)
    choices = _counts(payload, CHOICES)
    if cap is None or choices is None:
        return None
    most = max(choices, default=1)
    return None if most > MAX_CHOICES else cap * most


def _counts(payload: Mapping[str, Any], keys: tuple[str, ...]) -> list[int] | None:
    """The values ``payload`` sets (not ``null``) for ``keys``; ``None`` when one of them
    is not a positive integer."""
    values = [payload[key] for key in keys if payload.get(key) is not None]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        return None
    return values


def detached(payload: Mapping[str, Any] | None) -> str | None:
    """The key (:data:`DETACHED`) that has the provider go on working on the request
    after its answer, so the answer never carries its usage; ``None`` when none does."""
    if payload is None:
        return None
    return next((key for key in DETACHED if payload.get(key) not in (None, False)), None)


def bounded_input(payload: Mapping[str, Any]) -> bool:
    """Whether every part of ``payload`` (a parsed body) is text counted as it is sent."""
    for key in REFERENCES:
        item = payload.get(key)
        # A completion's ``prompt`` is its text; the Responses API's is a stored one, by id.
        if item not in (None, "", [], {}) and not (key == "prompt" and isinstance(item, str)):
            return False
    items = payload.get("input")
    if isinstance(items, list) and any(_by_id(item) for item in items):
        return False
    return _parts_bounded(payload, 0)


def _by_id(item: object) -> bool:
    """Whether a Responses input item names a stored item by its ``id`` (no ``type``)."""
    return isinstance(item, Mapping) and item.get("type") is None and "id" in item


def _parts_bounded(value: object, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, Mapping):
        kind = value.get("type")
        if isinstance(kind, str) and kind not in BOUNDED_TYPES:
            return False
        return all(_parts_bounded(item, depth + 1) for item in value.values())
    if isinstance(value, list):
        return all(_parts_bounded(item, depth + 1) for item in value)
    return True


def worst_case(
    payload: Mapping[str, Any] | None, body_size: int, model: str | None, prices: PriceTable
) -> tuple[int | None, float | None]:
    """The most the request can cost: tokens, and dollars at ``model``'s price (every
    input token at the dearest input rate); ``None`` where nothing bounds it."""
    if payload is None:
        return None, None
    output = output_cap(payload)
    if output is None or detached(payload) is not None or not bounded_input(payload):
        return None, None
    input_bound = body_size + INPUT_OVERHEAD
    spends = (
        Tokens(input=input_bound, output=output),
        Tokens(cache_write=input_bound, output=output),
        Tokens(cache_read=input_bound, output=output),
    )
    costs = [prices.cost((model,), tokens) for tokens in spends]
    usd = None if any(cost is None for cost in costs) else max(c for c in costs if c is not None)
    return input_bound + output, usd
