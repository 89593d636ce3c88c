"""Wire payloads of the three LLM APIs the fake provider speaks, as pure functions.

Each builder turns one :class:`Reply` (text, optional tool call, usage, model) into the
exact SSE event sequence or JSON body a real provider sends, so real clients parse it.
Field names follow the official SDK types (anthropic-sdk-python ``types/``,
openai-python ``types/responses`` and ``types/chat``) and Codex's SSE parser
(``codex-rs/codex-api/src/sse/responses.rs``).

Every event also says what a reader of the stream knows about the turn's usage once it
has read that event, decoded back into :class:`Usage` terms: that is what a metering
proxy can at best record, and what a cut stream leaves visible.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Api = Literal["anthropic", "responses", "chat"]
Json = dict[str, Any]


@dataclass(frozen=True)
class Usage:
    """Token counts of one model turn, in Anthropic's disjoint terms.

    ``input`` excludes cache reads and writes; ``output`` includes ``reasoning``. OpenAI
    APIs report ``openai_input`` (cache reads are a subset of it, and they have no cache
    writes, so those count as plain input there); Anthropic reports no reasoning count.
    """

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0

    @property
    def openai_input(self) -> int:
        return self.input + self.cache_read + self.cache_write

    def seen_as_anthropic(self) -> Usage:
        return Usage(self.input, self.output, self.cache_read, self.cache_write)

    def seen_as_openai(self) -> Usage:
        return Usage(self.input + self.cache_write, self.output, self.cache_read, 0, self.reasoning)


@dataclass(frozen=True)
class ToolCall:
    """A function call the model makes: a tool name and its JSON arguments. ``freeform``
    makes it a Responses API custom tool call with that raw input instead (Codex's
    ``apply_patch`` on current models); ``namespace`` puts a Responses API function call in
    that namespace (Codex gives an MCP server's tools as the namespace ``mcp__<server>``,
    and takes a call to one only so). The other APIs ignore both."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    freeform: str | None = None
    namespace: str | None = None

    @property
    def arguments_json(self) -> str:
        return json.dumps(dict(self.arguments), separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    """What one turn answers, with the serial number its ids derive from and the time."""

    model: str
    text: str
    tool: ToolCall | None
    usage: Usage
    serial: int
    created: int

    def ident(self, prefix: str) -> str:
        return f"{prefix}fake{self.serial:016d}"


@dataclass(frozen=True)
class Event:
    """One SSE event; ``name`` is None for Chat Completions' unnamed ``data:`` events."""

    name: str | None
    data: Json | str
    usage: Usage | None = None  # usage known to a reader once this event is read

    def encode(self, *, spaced: bool = False) -> bytes:
        """The event on the wire: its JSON compact, as the real APIs send it, or with
        ``spaced``, as Python's ``json.dumps`` writes it by default (``", "`` and
        ``": "``), as OpenAI-compatible servers written in Python may."""
        if isinstance(self.data, str):
            data = self.data
        else:
            data = json.dumps(self.data) if spaced else _dumps(self.data)
        head = "" if self.name is None else f"event: {self.name}\n"
        return f"{head}data: {data}\n\n".encode()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def pieces(text: str) -> list[str]:
    """Split text into word-sized deltas the way a model streams it."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or ([text] if text else [])


def _halves(s: str) -> list[str]:
    return [s[: len(s) // 2], s[len(s) // 2 :]] if len(s) > 1 else [s]


# --- Anthropic Messages -------------------------------------------------------------


def _anthropic_usage(u: Usage, output: int) -> Json:
    return {
        "input_tokens": u.input,
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cache_read,
        "output_tokens": output,
    }


def _anthropic_content(r: Reply) -> list[Json]:
    blocks: list[Json] = []
    if r.text or r.tool is None:
        blocks.append({"type": "text", "text": r.text})
    if r.tool is not None:
        tool = {"type": "tool_use", "id": r.ident("toolu_"), "name": r.tool.name}
        blocks.append({**tool, "input": dict(r.tool.arguments)})
    return blocks


def anthropic_message(r: Reply) -> Json:
    """The non-streaming ``Message`` body."""
    return {
        "id": r.ident("msg_"),
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": _anthropic_content(r),
        "stop_reason": "tool_use" if r.tool else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(r.usage, r.usage.output),
    }


def anthropic_events(r: Reply) -> list[Event]:
    """message_start, per block start/ping/deltas/stop, message_delta, message_stop."""
    first_output = min(1, r.usage.output)
    start = {**anthropic_message(r), "content": [], "stop_reason": None}
    start["usage"] = _anthropic_usage(r.usage, first_output)
    seen = r.usage.seen_as_anthropic()
    events = [
        Event(
            "message_start",
            {"type": "message_start", "message": start},
            Usage(seen.input, first_output, seen.cache_read, seen.cache_write),
        )
    ]
    for index, block in enumerate(_anthropic_content(r)):
        opening: Json = {"type": "text", "text": ""}
        deltas: list[Json] = [{"type": "text_delta", "text": p} for p in pieces(r.text)]
        if block["type"] == "tool_use":
            opening = {**block, "input": {}}
            arguments = r.tool.arguments_json if r.tool else "{}"
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _halves(arguments)]
        start_block = {"type": "content_block_start", "index": index, "content_block": opening}
        events.append(Event("content_block_start", start_block))
        if index == 0:
            events.append(Event("ping", {"type": "ping"}))
        for delta in deltas:
            body = {"type": "content_block_delta", "index": index, "delta": delta}
            events.append(Event("content_block_delta", body))
        events.append(Event("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop: Json = {"stop_reason": "tool_use" if r.tool else "end_turn", "stop_sequence": None}
    final = {
        "type": "message_delta",
        "delta": stop,
        "usage": _anthropic_usage(r.usage, r.usage.output),
    }
    events.append(Event("message_delta", final, seen))
    events.append(Event("message_stop", {"type": "message_stop"}))
    return events


ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str, kind: str | None, request_id: str) -> Json:
    """``{"type":"error","error":{"type","message"},"request_id"}``, also the stream's error."""
    kind = kind or ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


# --- OpenAI Responses ---------------------------------------------------------------


def _responses_usage(u: Usage) -> Json:
    return {
        "input_tokens": u.openai_input,
        "input_tokens_details": {"cached_tokens": u.cache_read},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.openai_input + u.output,
    }


def _output_text(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _responses_items(r: Reply, status: str) -> list[Json]:
    items: list[Json] = []
    if r.text or r.tool is None:
        content = [_output_text(r.text)] if status == "completed" else []
        message = {"id": r.ident("msg_"), "type": "message", "status": status}
        items.append({**message, "role": "assistant", "content": content})
    if r.tool is not None and r.tool.freeform is not None:
        text = r.tool.freeform if status == "completed" else ""
        call = {"id": r.ident("ctc_"), "type": "custom_tool_call", "status": status}
        items.append({**call, "input": text, "call_id": r.ident("call_"), "name": r.tool.name})
    elif r.tool is not None:
        args = r.tool.arguments_json if status == "completed" else ""
        call = {"id": r.ident("fc_"), "type": "function_call", "status": status}
        if r.tool.namespace is not None:
            call["namespace"] = r.tool.namespace
        items.append({**call, "arguments": args, "call_id": r.ident("call_"), "name": r.tool.name})
    return items


def responses_body(r: Reply, status: str = "completed", error: Json | None = None) -> Json:
    """The ``Response`` object: the non-streaming body and the streamed snapshots."""
    done = status == "completed"
    return {
        "id": r.ident("resp_"),
        "object": "response",
        "created_at": r.created,
        "status": status,
        "error": error,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": r.model,
        "output": _responses_items(r, "completed") if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _responses_usage(r.usage) if done else None,
        "metadata": {},
    }


def responses_events(r: Reply) -> list[Event]:
    """created, in_progress, per item added/deltas/done, completed (with usage)."""
    bodies: list[Json] = [
        {"type": "response.created", "response": responses_body(r, "in_progress")},
        {"type": "response.in_progress", "response": responses_body(r, "in_progress")},
    ]
    opened, finished = _responses_items(r, "in_progress"), _responses_items(r, "completed")
    for index, (item, done) in enumerate(zip(opened, finished, strict=True)):
        where = {"item_id": item["id"], "output_index": index}
        bodies.append({"type": "response.output_item.added", "output_index": index, "item": item})
        if item["type"] == "message":
            part = {**where, "content_index": 0}
            bodies.append({"type": "response.content_part.added", **part, "part": _output_text("")})
            for p in pieces(r.text):
                bodies.append(
                    {"type": "response.output_text.delta", **part, "delta": p, "logprobs": []}
                )
            bodies.append(
                {"type": "response.output_text.done", **part, "text": r.text, "logprobs": []}
            )
            bodies.append(
                {"type": "response.content_part.done", **part, "part": _output_text(r.text)}
            )
        elif item["type"] == "custom_tool_call":
            kind = "response.custom_tool_call_input"
            for p in _halves(done["input"]):
                bodies.append({"type": f"{kind}.delta", **where, "delta": p})
            bodies.append({"type": f"{kind}.done", **where, "input": done["input"]})
        else:
            for p in _halves(done["arguments"]):
                bodies.append(
                    {"type": "response.function_call_arguments.delta", **where, "delta": p}
                )
            args = done["arguments"]
            bodies.append(
                {"type": "response.function_call_arguments.done", **where, "arguments": args}
            )
        bodies.append({"type": "response.output_item.done", "output_index": index, "item": done})
    bodies.append({"type": "response.completed", "response": responses_body(r)})
    events = [Event(b["type"], {**b, "sequence_number": n}) for n, b in enumerate(bodies)]
    events[-1] = Event(events[-1].name, events[-1].data, r.usage.seen_as_openai())
    return events


def responses_failed(r: Reply, code: str, message: str) -> Json:
    """The ``response.failed`` event body (its sequence number is set by the caller)."""
    error = {"code": code, "message": message}
    return {"type": "response.failed", "response": responses_body(r, "failed", error)}


OPENAI_ERRORS = {  # status -> (type, code), as the OpenAI API answers them
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def openai_error(status: int, message: str, kind: str | None) -> Json:
    """``{"error":{"message","type","param","code"}}``."""
    default_kind, code = OPENAI_ERRORS.get(status, ("server_error", None))
    return {
        "error": {"message": message, "type": kind or default_kind, "param": None, "code": code}
    }


# --- OpenAI Chat Completions ---------------------------------------------------------


def _chat_usage(u: Usage) -> Json:
    return {
        "prompt_tokens": u.openai_input,
        "completion_tokens": u.output,
        "total_tokens": u.openai_input + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_frame(r: Reply, obj: str) -> Json:
    return {"id": r.ident("chatcmpl-"), "object": obj, "created": r.created, "model": r.model}


def _chat_tool(r: Reply, arguments: str) -> Json:
    function = {"name": r.tool.name if r.tool else "", "arguments": arguments}
    return {"id": r.ident("call_"), "type": "function", "function": function}


def chat_body(r: Reply) -> Json:
    """The non-streaming ``chat.completion`` body."""
    message: Json = {"role": "assistant", "content": r.text or None, "refusal": None}
    if r.tool is not None:
        message["tool_calls"] = [_chat_tool(r, r.tool.arguments_json)]
    finish = "tool_calls" if r.tool else "stop"
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    frame = {**_chat_frame(r, "chat.completion"), "system_fingerprint": "fp_fake"}
    return {**frame, "choices": [choice], "usage": _chat_usage(r.usage)}


def chat_events(r: Reply, include_usage: bool) -> list[Event]:
    """Role chunk, content/tool deltas, finish chunk, usage chunk if asked, ``[DONE]``."""
    deltas: list[Json] = [{"role": "assistant", "content": "", "refusal": None}]
    deltas += [{"content": p} for p in pieces(r.text)]
    if r.tool is not None:
        deltas.append({"tool_calls": [{"index": 0, **_chat_tool(r, "")}]})
        for p in _halves(r.tool.arguments_json):
            deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
    finish = "tool_calls" if r.tool else "stop"
    frame = {**_chat_frame(r, "chat.completion.chunk"), "system_fingerprint": "fp_fake"}
    if include_usage:  # every chunk carries "usage": null but the last one
        frame["usage"] = None
    chunks = [
        {**frame, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}]}
        for d in deltas
    ]
    chunks.append(
        {**frame, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]}
    )
    events = [Event(None, c) for c in chunks]
    if include_usage:
        last = {**frame, "choices": [], "usage": _chat_usage(r.usage)}
        events.append(Event(None, last, r.usage.seen_as_openai()))
    events.append(Event(None, "[DONE]"))
    return events


# --- Model lists ---------------------------------------------------------------------


def anthropic_models(ids: list[str], created: str) -> Json:
    data = [{"type": "model", "id": i, "display_name": i, "created_at": created} for i in ids]
    first, last = (ids[0], ids[-1]) if ids else (None, None)
    return {"data": data, "has_more": False, "first_id": first, "last_id": last}


def openai_models(ids: list[str], created: int) -> Json:
    data = [{"id": i, "object": "model", "created": created, "owned_by": "fake"} for i in ids]
    return {"object": "list", "data": data}
