"""Tests for fleet.metering.counting.usage: token usage read out of each API's own answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet.metering.counting.events import Tokens
from fleet.metering.counting.usage import DELTA_TEXT, SKIP_PREFIXES, Api, UsageReader, api_of
from fleet.metering.wire.sse import SseParser
from tests.fakes.provider import sse as wire
from tests.fakes.provider.sse import Event, Reply, ToolCall, Usage

MODEL = "claude-sonnet-4-5-20250929"
USAGE = Usage(input=1200, output=340, cache_read=5000, cache_write=800, reasoning=120)


def reply(usage: Usage = USAGE, model: str = MODEL, tool: ToolCall | None = None) -> Reply:
    return Reply(model, "Hello there, world.", tool, usage, serial=7, created=1_700_000_000)


def tokens_of(usage: Usage) -> Tokens:
    return Tokens(usage.input, usage.output, usage.cache_read, usage.cache_write, usage.reasoning)


def read_stream(api: Api, events: list[Event], chunk: int = 7) -> UsageReader:
    """Feed the events' real bytes through the SSE parser, in small chunks, checking after
    every event that the reader knows what the fake says a reader can know by then."""
    reader = UsageReader(api)
    parser = SseParser()
    stream = b"".join(event.encode() for event in events)
    parsed = []
    for start in range(0, len(stream), chunk):
        parsed.extend(parser.feed(stream[start : start + chunk]))
    assert parser.finish() == b""
    assert len(parsed) == len(events)
    for sent, got in zip(events, parsed, strict=True):
        reader.on_sse(got)  # as the proxy does: events that cannot carry usage are skipped
        if sent.usage is not None:
            assert reader.tokens == tokens_of(sent.usage), sent.name
    return reader


def event(name: str | None, body: dict[str, Any] | str) -> tuple[str | None, bytes]:
    return name, (body if isinstance(body, str) else json.dumps(body)).encode()


# --- Which requests are metered ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "api"),
    [
        ("POST", "/v1/messages", "anthropic"),
        ("POST", "/v1/messages/", "anthropic"),
        ("POST", "/gateway/anthropic/v1/messages", "anthropic"),
        ("POST", "/v1/messages/count_tokens", None),
        ("POST", "/messages", None),  # not under /v1/: not the Messages API
        ("POST", "/v1/responses", "responses"),
        ("POST", "/responses", "responses"),
        ("POST", "/backend-api/codex/responses", "responses"),
        ("POST", "/v1/chat/completions", "chat"),
        ("POST", "/openai/deployments/x/chat/completions", "chat"),
        ("POST", "/v1/completions", None),
        ("POST", "/v1/embeddings", None),
        ("GET", "/v1/messages", None),
        ("GET", "/v1/models", None),
        ("OPTIONS", "/v1/chat/completions", None),
        ("GET", "/v1/responses", None),
    ],
)
def test_api_of_method_and_path(method: str, path: str, api: str | None) -> None:
    """Only POSTs to a model endpoint are metered; token counting, lists and preflights
    are not."""
    assert api_of(method, path) == api


# --- Anthropic Messages ------------------------------------------------------------------------


def test_anthropic_stream_yields_disjoint_tokens_model_and_completion() -> None:
    """A full Messages stream gives its final usage (no reasoning count), the model and
    completeness; at each step the reader knows what the stream has said so far."""
    reader = read_stream("anthropic", wire.anthropic_events(reply(tool=ToolCall("ls", {"p": 1}))))
    assert reader.tokens == Tokens(input=1200, output=340, cache_read=5000, cache_write=800)
    assert reader.served_model == MODEL
    assert reader.complete
    assert (reader.failure, reader.problem) == (None, None)


def test_anthropic_message_delta_is_cumulative_latest_wins() -> None:
    """Each message_delta repeats the running totals: the latest value is kept, never
    summed with earlier ones, and fields it leaves out keep their value."""
    reader = UsageReader("anthropic")
    start = {
        "type": "message_start",
        "message": {
            "model": MODEL,
            "usage": {
                "input_tokens": 10,
                "output_tokens": 1,
                "cache_read_input_tokens": 300,
                "cache_creation_input_tokens": 40,
            },
        },
    }
    reader.on_event(*event("message_start", start))
    assert reader.tokens == Tokens(input=10, output=1, cache_read=300, cache_write=40)
    for output in (20, 35):
        delta = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": output}}
        reader.on_event(*event("message_delta", delta))
    assert reader.tokens == Tokens(input=10, output=35, cache_read=300, cache_write=40)
    assert not reader.complete
    reader.on_event(*event("message_stop", {"type": "message_stop"}))
    assert reader.complete


def test_anthropic_message_delta_with_input_tokens_replaces_them() -> None:
    """A message_delta carrying input and cache counts too (newer API) overrides the
    message_start ones; a null or negative count is ignored."""
    reader = UsageReader("anthropic")
    start = {"type": "message_start", "message": {"model": MODEL, "usage": {"input_tokens": 5}}}
    reader.on_event(*event("message_start", start))
    usage = {
        "input_tokens": 12,
        "output_tokens": 99,
        "cache_read_input_tokens": 7,
        "cache_creation_input_tokens": None,
    }
    reader.on_event(*event("message_delta", {"type": "message_delta", "usage": usage}))
    reader.on_event(
        *event("message_delta", {"type": "message_delta", "usage": {"output_tokens": -1}})
    )
    assert reader.tokens == Tokens(input=12, output=99, cache_read=7, cache_write=0)


def test_anthropic_counts_that_are_not_integers_are_ignored() -> None:
    """Booleans, floats and strings are not token counts."""
    reader = UsageReader("anthropic")
    usage = {"input_tokens": True, "output_tokens": 3.0, "cache_read_input_tokens": "4"}
    reader.on_event(*event("message_delta", {"type": "message_delta", "usage": usage}))
    assert reader.tokens is None


def test_anthropic_content_and_ping_events_are_never_parsed() -> None:
    """Text deltas and pings are skipped by name, so their contents cannot be a problem."""
    reader = UsageReader("anthropic")
    for name in ("content_block_start", "content_block_delta", "content_block_stop", "ping"):
        reader.on_event(name, b"{not json")
    assert (reader.problem, reader.tokens) == (None, None)


def test_anthropic_error_event_is_a_failure_and_ends_the_answer() -> None:
    """An `error` event inside a 200 stream is the provider's failure, typed."""
    reader = UsageReader("anthropic")
    body = wire.anthropic_error(529, "Overloaded", None, "req_1")
    reader.on_event(*event("error", body))
    assert reader.failure == "overloaded_error: Overloaded"
    assert reader.complete


def test_anthropic_stream_cut_before_message_stop_is_incomplete() -> None:
    """Without message_stop the answer is not complete, but what was seen is kept."""
    events = wire.anthropic_events(reply())
    reader = read_stream("anthropic", events[:-2])  # no message_delta, no message_stop
    assert reader.tokens == Tokens(input=1200, output=1, cache_read=5000, cache_write=800)
    assert not reader.complete


# --- OpenAI Responses --------------------------------------------------------------------------


def test_responses_stream_subtracts_cached_tokens_and_keeps_reasoning() -> None:
    """response.completed's usage: cached tokens leave input (it counts them), reasoning
    stays part of output."""
    usage = Usage(input=1000, output=300, cache_read=4000, reasoning=120)
    reader = read_stream("responses", wire.responses_events(reply(usage, "gpt-5-codex")))
    assert reader.tokens == Tokens(input=1000, output=300, cache_read=4000, reasoning=120)
    assert reader.served_model == "gpt-5-codex"
    assert reader.complete
    assert (reader.failure, reader.problem) == (None, None)


def test_responses_model_is_known_from_response_created() -> None:
    """The served model is read from response.created, before any usage."""
    reader = UsageReader("responses")
    first = wire.responses_events(reply(model="gpt-5"))[0]
    reader.on_event(first.name, first.encode().split(b"data: ", 1)[1].strip())
    assert reader.served_model == "gpt-5"
    assert (reader.tokens, reader.complete) == (None, False)


def test_responses_incomplete_carries_usage_and_is_no_failure() -> None:
    """response.incomplete (e.g. max_output_tokens) ends the answer with its usage."""
    body = wire.responses_body(reply(Usage(input=50, output=8, cache_read=10)), "incomplete")
    body["usage"] = {
        "input_tokens": 60,
        "input_tokens_details": {"cached_tokens": 10},
        "output_tokens": 8,
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    reader = UsageReader("responses")
    reader.on_event(
        *event("response.incomplete", {"type": "response.incomplete", "response": body})
    )
    assert reader.tokens == Tokens(input=50, output=8, cache_read=10)
    assert reader.complete
    assert reader.failure is None


def test_responses_failed_is_a_failure_with_the_code() -> None:
    """response.failed names the provider's error; its null usage leaves no tokens."""
    failed = wire.responses_failed(reply(), "server_error", "The model crashed")
    reader = UsageReader("responses")
    reader.on_event(*event("response.failed", failed))
    assert reader.failure == "server_error: The model crashed"
    assert reader.complete
    assert reader.tokens is None


def test_responses_error_event_names_its_code() -> None:
    """A top-level `error` event reports its code, not the event type `error`."""
    reader = UsageReader("responses")
    body = {
        "type": "error",
        "code": "rate_limit_exceeded",
        "message": "Slow down",
        "param": None,
        "sequence_number": 3,
    }
    reader.on_event(*event("error", body))
    assert reader.failure == "rate_limit_exceeded: Slow down"
    assert reader.complete


def test_responses_error_event_with_a_nested_error_object() -> None:
    """Servers that nest the error ({"type":"error","error":{...}}) are read too."""
    reader = UsageReader("responses")
    nested = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}
    reader.on_event(*event("error", nested))
    assert reader.failure == "invalid_request_error: bad"


def test_responses_error_event_without_details_still_fails() -> None:
    """An error event saying nothing else is still a failure."""
    reader = UsageReader("responses")
    reader.on_event(*event("error", {"type": "error"}))
    assert reader.failure == "error event"


def test_responses_deltas_are_never_parsed() -> None:
    """Output deltas are skipped by name; only terminal events are read."""
    reader = UsageReader("responses")
    reader.on_event("response.output_text.delta", b"{not json")
    reader.on_event("response.in_progress", b"{not json")
    assert (reader.problem, reader.tokens) == (None, None)


def test_responses_without_event_names_are_read_by_type() -> None:
    """A server that sends only data: lines is read by each body's `type`."""
    usage = Usage(input=9, output=4, cache_read=1)
    events = [Event(None, e.data, e.usage) for e in wire.responses_events(reply(usage))]
    reader = read_stream("responses", events)
    assert reader.tokens == Tokens(input=9, output=4, cache_read=1)
    assert reader.complete


def test_cached_tokens_above_input_never_make_input_negative() -> None:
    """A cached count larger than the input total leaves input at 0."""
    reader = UsageReader("responses")
    usage = {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 9}, "output_tokens": 1}
    body = {"type": "response.completed", "response": {"model": "m", "usage": usage}}
    reader.on_event(*event("response.completed", body))
    assert reader.tokens == Tokens(input=0, output=1, cache_read=9)


# --- Chat Completions --------------------------------------------------------------------------


def test_chat_final_usage_chunk_is_read_and_flagged() -> None:
    """With include_usage, the last chunk (choices: []) carries the usage; the reader
    flags exactly that event as the usage chunk."""
    usage = Usage(input=700, output=90, cache_read=300, reasoning=30)
    events = wire.chat_events(reply(usage, "gpt-4.1", ToolCall("grep", {"q": "x"})), True)
    reader = UsageReader("chat")
    flagged = []
    for sent in events:
        reader.on_event(sent.name, sent.encode().split(b"data: ", 1)[1].strip())
        flagged.append(reader.usage_chunk)
    assert flagged == [False] * (len(events) - 2) + [True, False]  # then [DONE]
    assert reader.tokens == Tokens(input=700, output=90, cache_read=300, reasoning=30)
    assert reader.served_model == "gpt-4.1"
    assert reader.complete
    assert (reader.failure, reader.problem) == (None, None)


def test_chat_stream_through_the_parser_matches_the_fake() -> None:
    """The same stream cut into chunks: tokens known only once the usage chunk is read."""
    reader = read_stream("chat", wire.chat_events(reply(USAGE, "gpt-4.1"), True), chunk=3)
    assert reader.tokens == tokens_of(USAGE.seen_as_openai())


def test_chat_stream_without_usage_has_no_tokens_and_no_problem() -> None:
    """Without include_usage there is nothing to read: no tokens, yet complete."""
    reader = read_stream("chat", wire.chat_events(reply(model="gpt-4.1"), False))
    assert reader.tokens is None
    assert reader.served_model == "gpt-4.1"
    assert reader.complete
    assert (reader.usage_chunk, reader.problem, reader.failure) == (False, None, None)


def test_chat_chunks_after_the_first_are_read_only_when_they_may_hold_usage() -> None:
    """Once the model is known, plain content chunks are not parsed (a garbled one is
    passed over), but one mentioning usage is."""
    reader = UsageReader("chat")
    reader.on_event(*event(None, {"model": "m", "choices": [{"delta": {"content": "a"}}]}))
    reader.on_event(None, b"{garbled")
    assert reader.problem is None
    reader.on_event(None, b'{"usage": garbled')
    assert reader.problem == "malformed chat chunk: not JSON"


def test_chat_usage_on_a_chunk_with_choices_is_read_but_not_flagged() -> None:
    """Some servers put usage on the last content chunk: counted, but the agent must
    still get that chunk."""
    reader = UsageReader("chat")
    chunk = {
        "model": "m",
        "choices": [{"delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2},
    }
    reader.on_event(*event(None, chunk))
    assert reader.tokens == Tokens(input=10, output=2)
    assert not reader.usage_chunk


def test_chat_error_chunk_is_a_failure() -> None:
    """A chunk that is an error object, not a completion, is the provider's failure."""
    reader = UsageReader("chat")
    reader.on_event(*event(None, wire.openai_error(500, "The server had an error", None)))
    assert reader.failure == "server_error: The server had an error"
    assert not reader.complete


# --- Whole (not streamed) bodies ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "body", "expected"),
    [
        (
            "anthropic",
            wire.anthropic_message(reply()),
            Tokens(input=1200, output=340, cache_read=5000, cache_write=800),
        ),
        (
            "responses",
            wire.responses_body(reply()),
            # OpenAI has no cache writes: they count as plain input there.
            Tokens(input=2000, output=340, cache_read=5000, reasoning=120),
        ),
        (
            "chat",
            wire.chat_body(reply(tool=ToolCall("ls"))),
            Tokens(input=2000, output=340, cache_read=5000, reasoning=120),
        ),
    ],
)
def test_whole_bodies_of_each_api(api: Api, body: dict[str, Any], expected: Tokens) -> None:
    """A JSON answer's usage, model and completeness, in each API's shape."""
    reader = UsageReader(api)
    reader.on_body(json.dumps(body).encode())
    assert reader.tokens == expected
    assert reader.served_model == MODEL
    assert reader.complete
    assert (reader.failure, reader.problem) == (None, None)


def test_whole_body_without_usage_is_a_problem() -> None:
    """A JSON answer with no usage cannot be metered, and says so."""
    reader = UsageReader("chat")
    reader.on_body(b'{"model": "m", "choices": []}')
    assert reader.tokens is None
    assert reader.problem == "the answer carries no usage"


def test_usage_without_integer_counts_is_a_problem() -> None:
    """OpenAI usage whose totals are not integers is named as such, with no tokens."""
    reader = UsageReader("responses")
    reader.on_body(b'{"model": "m", "usage": {"input_tokens": "12", "output_tokens": 3}}')
    assert reader.tokens is None
    assert reader.problem == "usage without integer input_tokens/output_tokens"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"<html>502 Bad Gateway</html>", "malformed anthropic body: not JSON"),
        (b"\xff\xfe\x00garbage", "malformed anthropic body: not JSON"),
        (b'["a list"]', "malformed anthropic body: not a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed anthropic body: not JSON"),
    ],
    ids=["html", "bad-bytes", "list", "deeply-nested"],
)
def test_malformed_bodies_are_problems_never_exceptions(data: bytes, problem: str) -> None:
    """Anything that is not a JSON object is a problem on the reader, never an error
    raised into the proxy (not even nesting too deep for the json module)."""
    reader = UsageReader("anthropic")
    reader.on_body(data)
    assert reader.problem == problem
    assert (reader.tokens, reader.complete) == (None, False)


def test_deeply_nested_tool_input_in_a_body_is_a_problem_not_a_crash() -> None:
    """A model's tool input nested deeper than json reads makes the body unmetered."""
    deep = "[" * 5000 + "]" * 5000
    text = json.dumps(wire.anthropic_message(reply(tool=ToolCall("t", {"x": 0}))))
    reader = UsageReader("anthropic")
    reader.on_body(text.replace('{"x":0}', deep).replace('{"x": 0}', deep).encode())
    assert reader.problem == "malformed anthropic body: not JSON"


def test_the_first_problem_is_kept() -> None:
    """Later problems do not overwrite the first, which says most."""
    reader = UsageReader("anthropic")
    reader.on_event("message_start", b"{truncated")
    reader.on_event("message_delta", b"[1, 2]")
    reader.on_event(None, b"null")
    assert reader.problem == "malformed anthropic message_start: not JSON"


def test_an_unnamed_malformed_event_is_named_as_such() -> None:
    """An event without a name is called `unnamed` in the problem."""
    reader = UsageReader("anthropic")
    reader.on_event(None, b"[]")
    assert reader.problem == "malformed anthropic unnamed: not a JSON object"


@pytest.mark.parametrize("count", [2**63, 2**64 + 5, 10**12 + 1, 10**30])
@pytest.mark.parametrize("api", ["anthropic", "responses", "chat"])
def test_huge_token_counts_are_a_problem_not_a_count(api: Api, count: int) -> None:
    """A count no request can have (over 10**12) is not taken: the answer is flagged."""
    reader = UsageReader(api)
    if api == "anthropic":
        usage = {"input_tokens": 5, "output_tokens": count}
        reader.on_body(json.dumps({"model": "m", "usage": usage}).encode())
    elif api == "responses":
        usage = {"input_tokens": count, "output_tokens": 1}
        reader.on_body(json.dumps({"model": "m", "usage": usage}).encode())
    else:
        usage = {
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "completion_tokens_details": {"reasoning_tokens": count},
        }
        reader.on_body(json.dumps({"model": "m", "usage": usage}).encode())
    tokens = reader.tokens
    assert (
        tokens is None
        or max(tokens.input, tokens.output, tokens.cache_read, tokens.cache_write, tokens.reasoning)
        <= 10**12
    )
    assert reader.problem is not None and "token count" in reader.problem


# --- Output counted from the deltas of a stream that ended early -----------------------

# Quotes, backslashes, a tab and a newline (escaped in every spelling), accents, a line
# separator, a symbol and an emoji (escaped only by ``json.dumps``' default, the emoji as
# a surrogate pair).
EARLY_TEXT = 'Say "hi" \\ back\\slash\ttab\nline café naïve \u2028 ☕ 🎉 end'
EARLY_TOOL = ToolCall("grep", {"pattern": 'café "x" \\d+', "path": "☕/🎉"})
SPELLINGS: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":"), "ensure_ascii": False},  # as the real APIs send
    "compact, ASCII": {"separators": (",", ":")},
    "spaced": {},  # json.dumps' default: ", " and ": ", non-ASCII escaped
    "indented": {"indent": 1},  # newlines too: one event's JSON over several data lines
}


def spelled(event: Event, options: dict[str, Any]) -> bytes:
    """``event`` on the wire with its JSON written as ``json.dumps(**options)`` writes it."""
    if isinstance(event.data, str):
        return event.encode()
    lines = json.dumps(event.data, **options).split("\n")
    head = "" if event.name is None else f"event: {event.name}\n"
    return (head + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


def early_events(api: Api) -> list[Event]:
    """An answer with text and a tool call, cut before the events that carry its usage."""
    answer = Reply(MODEL, EARLY_TEXT, EARLY_TOOL, USAGE, serial=3, created=1_700_000_000)
    if api == "anthropic":
        return wire.anthropic_events(answer)[:-3]  # no block stop, message_delta or stop
    if api == "responses":
        return wire.responses_events(answer)[:-3]  # no arguments done, item done, completed
    return wire.chat_events(answer, include_usage=True)[:-3]  # no finish, usage or [DONE]


@pytest.mark.parametrize("api", ["anthropic", "responses", "chat"])
def test_an_early_ended_stream_counts_the_same_output_however_its_json_is_spelled(
    api: Api,
) -> None:
    """The deltas of a stream cut before its usage count as the UTF-8 bytes of the text
    and tool input they carried, whether the JSON is compact, spaced, escaped or indented."""
    counted = {}
    for spelling, options in SPELLINGS.items():
        stream = b"".join(spelled(event, options) for event in early_events(api))
        parser = SseParser(SKIP_PREFIXES[api], count=DELTA_TEXT[api])
        for start in range(0, len(stream), 11):
            parser.feed(stream[start : start + 11])
        counted[spelling] = parser.counted
    expected = len(EARLY_TEXT.encode()) + len(EARLY_TOOL.arguments_json.encode())
    assert counted == dict.fromkeys(SPELLINGS, expected)


@pytest.mark.parametrize("api", ["anthropic", "responses", "chat"])
def test_a_spaced_stream_is_read_as_a_compact_one(api: Api) -> None:
    """Spaced JSON changes nothing of what the reader takes from a whole stream."""
    answer = reply(tool=EARLY_TOOL)
    if api == "anthropic":
        events = wire.anthropic_events(answer)
    elif api == "responses":
        events = wire.responses_events(answer)
    else:
        events = wire.chat_events(answer, include_usage=True)
    readers = []
    for spaced in (False, True):
        reader, parser = UsageReader(api), SseParser(SKIP_PREFIXES[api])
        for got in parser.feed(b"".join(event.encode(spaced=spaced) for event in events)):
            reader.on_sse(got)
        readers.append((reader.tokens, reader.served_model, reader.complete, reader.problem))
    assert readers[0] == readers[1] and readers[0][2] and readers[0][0] is not None
