"""The offline provider's answers on the wire, in each API's real shape: Anthropic Messages
(a ``Message``, or the SSE sequence ``message_start`` … ``message_delta`` with its usage …
``message_stop``), OpenAI Responses (a ``Response``, or ``response.created`` …
``response.completed`` with its usage) and Chat Completions (a ``chat.completion``, or
chunks ending in a usage chunk when ``stream_options.include_usage`` asks and ``[DONE]``).
Pure functions of an :class:`~fleet.metering.offline.model.Answer`; JSON is compact, as the
real APIs send it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fleet.metering.offline.model import DEMO_MODEL, Answer

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Turn:
    """One answer as it goes out: its text and usage, the id it is known by, the time."""

    answer: Answer
    ident: str
    created: int

    def id(self, prefix: str) -> str:
        return f"{prefix}{self.ident}"


def sse(name: str | None, data: Json | str) -> bytes:
    """One SSE event; Chat Completions' events have no ``event:`` line."""
    body = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = "" if name is None else f"event: {name}\n"
    return f"{head}data: {body}\n\n".encode()


def pieces(text: str) -> list[str]:
    """The text in word-sized deltas, as a model streams it."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or [text]


# --- Anthropic Messages -------------------------------------------------------------


def _anthropic_usage(answer: Answer, output: int) -> Json:
    return {
        "input_tokens": answer.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
    }


def anthropic_message(turn: Turn) -> Json:
    """The non-streamed ``Message``."""
    return {
        "id": turn.id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": DEMO_MODEL,
        "content": [{"type": "text", "text": turn.answer.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(turn.answer, turn.answer.output_tokens),
    }


def anthropic_stream(turn: Turn) -> list[bytes]:
    """message_start (input usage), one text block's start/ping/deltas/stop, message_delta
    (the output usage), message_stop."""
    start = {**anthropic_message(turn), "content": [], "stop_reason": None}
    start["usage"] = _anthropic_usage(turn.answer, 1)
    block = {"type": "text", "text": ""}
    events = [
        sse("message_start", {"type": "message_start", "message": start}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
        sse("ping", {"type": "ping"}),
    ]
    for piece in pieces(turn.answer.text):
        delta = {"type": "text_delta", "text": piece}
        events.append(
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        )
    events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    final = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": _anthropic_usage(turn.answer, turn.answer.output_tokens),
    }
    events.append(sse("message_delta", final))
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


# --- OpenAI Responses ---------------------------------------------------------------


def _output_text(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(turn: Turn, done: bool) -> Json:
    content = [_output_text(turn.answer.text)] if done else []
    status = "completed" if done else "in_progress"
    return {
        "id": turn.id("msg_"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def responses_body(turn: Turn, done: bool = True) -> Json:
    """The ``Response``: the non-streamed body, and the stream's snapshots of it."""
    answer = turn.answer
    usage = {
        "input_tokens": answer.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": answer.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.total,
    }
    return {
        "id": turn.id("resp_"),
        "object": "response",
        "created_at": turn.created,
        "status": "completed" if done else "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": DEMO_MODEL,
        "output": [_message_item(turn, True)] if done else [],
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
        "usage": usage if done else None,
        "metadata": {},
    }


def responses_stream(turn: Turn) -> list[bytes]:
    """created, in_progress, the message item added, its text part and deltas, done, and
    ``response.completed`` carrying the usage; each numbered in ``sequence_number``."""
    text = turn.answer.text
    where = {"item_id": turn.id("msg_"), "output_index": 0, "content_index": 0}
    bodies: list[Json] = [
        {"type": "response.created", "response": responses_body(turn, False)},
        {"type": "response.in_progress", "response": responses_body(turn, False)},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _message_item(turn, False),
        },
        {"type": "response.content_part.added", **where, "part": _output_text("")},
    ]
    bodies += [
        {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
        for piece in pieces(text)
    ]
    bodies += [
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": _output_text(text)},
        {"type": "response.output_item.done", "output_index": 0, "item": _message_item(turn, True)},
        {"type": "response.completed", "response": responses_body(turn)},
    ]
    return [sse(body["type"], {**body, "sequence_number": n}) for n, body in enumerate(bodies)]


# --- OpenAI Chat Completions ---------------------------------------------------------


def _chat_usage(answer: Answer) -> Json:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.total,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_frame(turn: Turn, obj: str) -> Json:
    return {
        "id": turn.id("chatcmpl-"),
        "object": obj,
        "created": turn.created,
        "model": DEMO_MODEL,
        "system_fingerprint": "fp_offline",
    }


def chat_body(turn: Turn) -> Json:
    """The non-streamed ``chat.completion``."""
    message = {"role": "assistant", "content": turn.answer.text, "refusal": None}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    return {
        **_chat_frame(turn, "chat.completion"),
        "choices": [choice],
        "usage": _chat_usage(turn.answer),
    }


def chat_stream(turn: Turn, include_usage: bool) -> list[bytes]:
    """The role chunk, content deltas, the finish chunk, the usage chunk when asked for,
    ``[DONE]``."""
    frame = _chat_frame(turn, "chat.completion.chunk")
    if include_usage:  # every chunk carries "usage": null but the last
        frame["usage"] = None
    deltas: list[Json] = [{"role": "assistant", "content": "", "refusal": None}]
    deltas += [{"content": piece} for piece in pieces(turn.answer.text)]
    choices: list[Json] = [
        {"index": 0, "delta": d, "logprobs": None, "finish_reason": None} for d in deltas
    ]
    choices.append({"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"})
    events = [sse(None, {**frame, "choices": [choice]}) for choice in choices]
    if include_usage:
        events.append(sse(None, {**frame, "choices": [], "usage": _chat_usage(turn.answer)}))
    events.append(sse(None, "[DONE]"))
    return events
