"""What a model request can cost at most, read from its body before it is sent: the bound
a run's cap reserves (:mod:`fleet.budgets.run_caps`), where a budget reserves a likely
cost (:mod:`fleet.metering.estimate`).

A request bounds its own cost only when everything it sends is text the provider counts
as it is. Its input is then at most one token per byte of its body — a token covers at
least one byte of text, and JSON's quoting and escapes only add bytes — plus
:data:`INPUT_OVERHEAD` for what the provider wraps around it (the tool-use system prompt,
message framing). Its output is at most the output cap it asks for (``max_tokens``,
``max_output_tokens``, ``max_completion_tokens``, times ``n`` choices), which the provider
enforces, thinking and reasoning included.

Anything else leaves the request without a bound: no output cap, a part that is not text
(an image, a document, a file, audio — counted by pixels and pages, not bytes), a
reference to content the provider holds or fetches (a URL, a file id, a previous response,
a stored prompt), a server-side tool (web search, code execution), or a ``type`` this
module does not know. The list of what is bounded is short and explicit on purpose: a
new kind of part is unbounded until it is added here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fleet.metering.config import PriceTable
from fleet.metering.events import Tokens

INPUT_OVERHEAD: Final = 1_024  # tokens a provider may add around a request's own text
MAX_CHOICES: Final = 128
OUTPUT_CAPS: Final = ("max_tokens", "max_output_tokens", "max_completion_tokens")

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
_MAX_DEPTH: Final = 64


def output_cap(payload: Mapping[str, Any]) -> int | None:
    """The output cap the request asks for, times its choices; ``None`` without one."""
    for key in OUTPUT_CAPS:
        cap = payload.get(key)
        if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0:
            choices = payload.get("n", 1)
            if not isinstance(choices, int) or isinstance(choices, bool) or choices < 1:
                choices = 1
            return cap * min(choices, MAX_CHOICES)
    return None


def bounded_input(payload: Mapping[str, Any]) -> bool:
    """Whether every part of ``payload`` (a parsed body) is text counted as it is sent."""
    for key in REFERENCES:
        item = payload.get(key)
        # A completion's ``prompt`` is its text; the Responses API's is a stored one, by id.
        if item not in (None, "", [], {}) and not (key == "prompt" and isinstance(item, str)):
            return False
    return _parts_bounded(payload, 0)


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
    if output is None or not bounded_input(payload):
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
