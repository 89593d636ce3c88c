"""The fake provider speaks each API's real wire format, as a client parses it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.loopback import State
from tests.fakes.provider import sse
from tests.fakes.provider.bodies import (
    CHAT,
    CLAUDE,
    GPT,
    anthropic,
    body_for,
    chat,
    responses,
    send_key,
)
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn, Usage

SseEvent = tuple[str | None, Any]
IDENTITY_PROBE = {"Accept-Encoding": "gzip, br, zstd"}
USAGE = Usage(input=100, output=40, cache_read=30, cache_write=20, reasoning=10)


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as fake:
        yield fake


@pytest.fixture
async def server_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(middlewares=(send_key,)) as client:
        yield client


def parse_sse(text: str) -> list[SseEvent]:
    """Parse an SSE body into (event name, decoded data) pairs, in order."""
    events: list[SseEvent] = []
    for frame in text.split("\n\n"):
        if not frame.strip():
            continue
        name, data = None, None
        for line in frame.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data = value if value == "[DONE]" else json.loads(value)
        events.append((name, data))
    return events


async def post_sse(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[aiohttp.ClientResponse, list[SseEvent]]:
    async with session.post(url, json=body, headers=IDENTITY_PROBE) as response:
        text = await response.text()
    return response, parse_sse(text)


async def read_cut(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> bytes:
    """Read a response that must end in a payload error; return the bytes that came."""
    received = b""
    async with session.post(url, json=body) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in response.content.iter_any():
                received += chunk
    return received


def names(events: list[SseEvent]) -> list[str | None]:
    return [name for name, _ in events]


# --- Anthropic Messages --------------------------------------------------------------


async def test_anthropic_stream_event_order_and_usage(provider, server_session) -> None:
    """A streamed Messages turn sends the real event sequence with start and final usage."""
    provider.add(Turn(text="Hello world", usage=USAGE))
    url = f"{provider.base_url}/v1/messages?beta=true"
    response, events = await post_sse(server_session, url, anthropic(stream=True))
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert "Content-Encoding" not in response.headers
    assert response.headers["request-id"].startswith("req_")
    assert names(events) == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    message = events[0][1]["message"]
    assert message["model"] == CLAUDE and message["role"] == "assistant"
    assert message["content"] == [] and message["stop_reason"] is None
    assert message["usage"] == {
        "input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 30,
        "output_tokens": 1,
    }
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    assert "".join(d["text"] for d in deltas) == "Hello world"
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == 40
    assert provider.emitted[0].usage == Usage(100, 40, cache_read=30, cache_write=20)


async def test_anthropic_non_stream_message(provider, server_session) -> None:
    """Without stream:true, Messages answers one JSON message carrying the full usage."""
    provider.add(Turn(text="ok", usage=USAGE))
    async with server_session.post(
        f"{provider.base_url}/v1/messages", json=anthropic()
    ) as response:
        assert response.headers["Content-Type"] == "application/json"
        body = await response.json()
    assert body["type"] == "message" and body["stop_reason"] == "end_turn"
    assert body["content"] == [{"type": "text", "text": "ok"}]
    assert body["usage"]["input_tokens"] == 100 and body["usage"]["output_tokens"] == 40
    assert provider.emitted[0].streamed is False and provider.emitted[0].cut is False


async def test_anthropic_tool_use_stream(provider, server_session) -> None:
    """A tool call streams as a tool_use block whose input_json_delta pieces join to the args."""
    provider.add(Turn(text="Let me look.", tool=ToolCall("Bash", {"command": "ls -la"})))
    _, events = await post_sse(
        server_session, f"{provider.base_url}/v1/messages", anthropic(stream=True)
    )
    starts = [data for name, data in events if name == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1]
    tool = starts[1]["content_block"]
    assert tool["type"] == "tool_use" and tool["name"] == "Bash" and tool["input"] == {}
    assert tool["id"].startswith("toolu_")
    fragments = [
        data["delta"]["partial_json"]
        for name, data in events
        if name == "content_block_delta" and data["index"] == 1
    ]
    assert len(fragments) == 2
    assert json.loads("".join(fragments)) == {"command": "ls -la"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_anthropic_tool_use_non_stream(provider, server_session) -> None:
    """A non-streamed tool call is a tool_use content block with a parsed input object."""
    provider.add(Turn(text="", tool=ToolCall("Read", {"path": "a.txt"})))
    async with server_session.post(
        f"{provider.base_url}/v1/messages", json=anthropic()
    ) as response:
        body = await response.json()
    assert body["stop_reason"] == "tool_use"
    assert [b["type"] for b in body["content"]] == ["tool_use"]
    assert body["content"][0]["input"] == {"path": "a.txt"}


async def test_anthropic_error_mid_stream(provider, server_session) -> None:
    """fail_mid_stream sends message_start then an `error` event, and no message_stop."""
    provider.add(Turn(fail_mid_stream=True))
    _, events = await post_sse(
        server_session, f"{provider.base_url}/v1/messages", anthropic(stream=True)
    )
    assert names(events) == ["message_start", "content_block_start", "ping", "error"]
    assert events[-1][1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    emitted = provider.emitted[0]
    assert emitted.failed and not emitted.cut
    assert emitted.usage == Usage(input=12, output=1)


# --- OpenAI Responses ----------------------------------------------------------------


async def test_responses_stream_event_order_and_usage(provider, server_session) -> None:
    """A streamed Responses turn sends the real event sequence; usage comes in completed."""
    provider.add(Turn(text="Hi there", usage=USAGE))
    response, events = await post_sse(
        server_session, f"{provider.base_url}/v1/responses", responses(stream=True)
    )
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["x-request-id"].startswith("req_")
    assert names(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert all(data["type"] == name for name, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    created = events[0][1]["response"]
    assert created["status"] == "in_progress" and created["usage"] is None
    added = events[2][1]
    assert added["item"]["type"] == "message" and added["item"]["content"] == []
    delta = events[4][1]
    assert delta["item_id"] == added["item"]["id"] and delta["output_index"] == 0
    assert delta["content_index"] == 0
    assert events[6][1]["text"] == "Hi there"
    done = events[8][1]["item"]
    assert done["status"] == "completed"
    assert done["content"][0]["type"] == "output_text" and done["content"][0]["text"] == "Hi there"
    completed = events[-1][1]["response"]
    assert completed["status"] == "completed" and completed["id"].startswith("resp_")
    assert completed["model"] == GPT
    assert completed["usage"] == {
        "input_tokens": 150,
        "input_tokens_details": {"cached_tokens": 30},
        "output_tokens": 40,
        "output_tokens_details": {"reasoning_tokens": 10},
        "total_tokens": 190,
    }
    assert provider.emitted[0].usage == Usage(120, 40, cache_read=30, reasoning=10)


async def test_responses_non_stream_body(provider, server_session) -> None:
    """Without stream:true, Responses answers one completed response object with usage."""
    async with server_session.post(f"{provider.base_url}/responses", json=responses()) as response:
        body = await response.json()
    assert body["object"] == "response" and body["status"] == "completed"
    assert body["output"][0]["content"][0]["text"] == "hi"
    assert body["usage"]["input_tokens"] == 12 and body["usage"]["total_tokens"] == 15


async def test_responses_function_call_stream(provider, server_session) -> None:
    """A tool call streams as a function_call item with argument deltas and a done item."""
    provider.add(Turn(text="", tool=ToolCall("shell", {"command": ["ls"]})))
    _, events = await post_sse(
        server_session, f"{provider.base_url}/v1/responses", responses(stream=True)
    )
    assert names(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added, done = events[2][1]["item"], events[6][1]["item"]
    assert added["type"] == "function_call" and added["arguments"] == ""
    assert done["name"] == "shell" and done["call_id"].startswith("call_")
    assert json.loads(done["arguments"]) == {"command": ["ls"]}
    joined = "".join(data["delta"] for name, data in events if name.endswith("arguments.delta"))
    assert joined == done["arguments"] == events[5][1]["arguments"]
    assert events[-1][1]["response"]["output"] == [done]


async def test_responses_namespaced_function_call(provider, server_session) -> None:
    """A namespaced tool call carries its namespace on the streamed items and the body's."""
    call = ToolCall("echo", {"text": "hi"}, namespace="mcp__srv")
    provider.add(Turn(text="", tool=call), Turn(text="", tool=call))
    _, events = await post_sse(
        server_session, f"{provider.base_url}/v1/responses", responses(stream=True)
    )
    added, done = events[2][1]["item"], events[6][1]["item"]
    assert (added["namespace"], done["namespace"], done["name"]) == ("mcp__srv", "mcp__srv", "echo")
    assert json.loads(done["arguments"]) == {"text": "hi"}
    async with server_session.post(
        f"{provider.base_url}/v1/responses", json=responses()
    ) as response:
        [item] = (await response.json())["output"]
    assert (item["type"], item["namespace"], item["name"]) == ("function_call", "mcp__srv", "echo")


async def test_responses_failed_mid_stream(provider, server_session) -> None:
    """fail_mid_stream ends a Responses stream with response.failed carrying the error."""
    provider.add(Turn(fail_mid_stream=True, error_message="boom"))
    _, events = await post_sse(
        server_session, f"{provider.base_url}/v1/responses", responses(stream=True)
    )
    assert names(events)[-1] == "response.failed"
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "boom"}
    assert provider.emitted[0].usage is None and provider.emitted[0].failed


# --- Chat Completions ---------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [True, False])
async def test_chat_stream_usage_chunk_only_when_asked(
    provider, server_session, include_usage
) -> None:
    """Chat chunks end with a `choices: []` usage chunk only under include_usage, then [DONE]."""
    provider.add(Turn(text="a b", usage=USAGE))
    body = chat(stream=True, stream_options={"include_usage": include_usage})
    _, events = await post_sse(server_session, f"{provider.base_url}/v1/chat/completions", body)
    assert set(names(events)) == {None}
    assert events[-1][1] == "[DONE]"
    chunks = [data for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == CHAT for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "a b"
    if include_usage:
        *body_chunks, last = chunks
        assert last["choices"] == []
        assert last["usage"]["prompt_tokens"] == 150
        assert last["usage"]["completion_tokens"] == 40
        assert last["usage"]["total_tokens"] == 190
        assert last["usage"]["prompt_tokens_details"]["cached_tokens"] == 30
        assert last["usage"]["completion_tokens_details"]["reasoning_tokens"] == 10
        assert all(c["usage"] is None for c in body_chunks)
        assert provider.emitted[0].usage == Usage(120, 40, cache_read=30, reasoning=10)
    else:
        body_chunks = chunks
        assert all("usage" not in c for c in chunks)
        assert provider.emitted[0].usage is None
    assert body_chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_chat_tool_call_stream_and_body(provider, server_session) -> None:
    """A chat tool call streams as delta.tool_calls pieces and ends with finish tool_calls."""
    tool = ToolCall("get_weather", {"city": "Paris"})
    provider.add(Turn(text="", tool=tool), Turn(text="", tool=tool))
    _, events = await post_sse(
        server_session, f"{provider.base_url}/chat/completions", chat(stream=True)
    )
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for _, c in events[:-1]
        if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["type"] == "function" and calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["id"].startswith("call_") and all(c["index"] == 0 for c in calls)
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == {"city": "Paris"}
    assert events[-2][1]["choices"][0]["finish_reason"] == "tool_calls"
    async with server_session.post(f"{provider.base_url}/chat/completions", json=chat()) as r:
        body = await r.json()
    message = body["choices"][0]["message"]
    assert body["object"] == "chat.completion" and message["content"] is None
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert body["choices"][0]["finish_reason"] == "tool_calls"


# --- Errors and cuts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "expected"),
    [
        (
            "/v1/messages",
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
        (
            "/v1/responses",
            429,
            {
                "error": {
                    "message": "Rate limited",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
        ),
        (
            "/v1/chat/completions",
            500,
            {
                "error": {
                    "message": "Internal server error",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
        ),
    ],
)
async def test_error_turn_status_and_shape(
    provider, server_session, path, status, expected
) -> None:
    """An error turn answers its status with that API's real error body and no usage."""
    provider.add(Turn(error_status=status), Turn(text="recovered"))
    async with server_session.post(provider.base_url + path, json=body_for(path, stream=True)) as r:
        assert r.status == status
        assert r.headers["Content-Type"] == "application/json"
        body = await r.json()
    body.pop("request_id", None)
    assert body == expected
    assert provider.emitted == []
    _, events = await post_sse(
        server_session, provider.base_url + path, body_for(path, stream=True)
    )
    assert "recovered" in json.dumps(events)


async def test_error_body_override_is_sent_verbatim(provider, server_session) -> None:
    """error_body replaces the generated error JSON exactly."""
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    provider.add(Turn(error_status=429, error_body=body, headers={"retry-after": "7"}))
    async with server_session.post(f"{provider.base_url}/v1/messages", json=anthropic()) as r:
        assert r.status == 429 and r.headers["retry-after"] == "7"
        assert await r.json() == body


@pytest.mark.parametrize(
    ("path", "extra", "first"),
    [
        ("/v1/messages", {}, b"event: message_start"),
        ("/v1/responses", {}, b"event: response.created"),
        ("/v1/chat/completions", {"stream_options": {"include_usage": True}}, b"data: {"),
    ],
)
async def test_cut_stream_ends_early_and_is_marked(
    provider, server_session, path, extra, first
) -> None:
    """A cut stream delivers exactly N events, then the client sees a payload error."""
    provider.add(Turn(cut_after_events=2))
    body = body_for(path, stream=True, **extra)
    received = await read_cut(server_session, provider.base_url + path, body)
    assert received.startswith(first)
    assert received.count(b"\n\n") == 2
    emitted = provider.emitted[0]
    assert emitted.cut and emitted.streamed
    assert emitted.planned == Turn().usage


async def test_anthropic_cut_after_message_start_keeps_start_usage(
    provider, server_session
) -> None:
    """Cut after message_start, the emitted usage is the input side and the 1 initial output."""
    provider.add(Turn(usage=USAGE, cut_after_events=1))
    await read_cut(server_session, f"{provider.base_url}/v1/messages", anthropic(stream=True))
    assert provider.emitted[0].usage == Usage(100, 1, cache_read=30, cache_write=20)


async def test_cut_non_stream_body(provider, server_session) -> None:
    """A cut non-streamed answer sends half its declared body and records no usage."""
    provider.add(Turn(cut_after_events=0))
    await read_cut(server_session, f"{provider.base_url}/v1/messages", anthropic())
    assert provider.emitted[0].cut and provider.emitted[0].usage is None


async def test_delay_between_events_uses_injected_sleep(server_session) -> None:
    """delay_between_events sleeps between events (never before the first) via `sleep`."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with FakeProvider(Turn(delay_between_events=0.25), sleep=sleep) as fake:
        _, events = await post_sse(
            server_session, f"{fake.base_url}/v1/messages", anthropic(stream=True)
        )
    assert slept == [0.25] * (len(events) - 1)


# --- Routing and recording -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/run/abc/v1/messages?beta=true", "/some/prefix/v1/responses", "/p/chat/completions"],
)
async def test_path_prefix_is_accepted(provider, server_session, path) -> None:
    """Any prefix before the API path routes to that API and is recorded as sent."""
    async with server_session.post(provider.base_url + path, json=body_for(path)) as response:
        assert response.status == 200
        await response.read()
    recorded = provider.requests[0]
    assert path.startswith(recorded.path)
    assert recorded.api is not None


async def test_requests_are_recorded_with_model(provider, server_session) -> None:
    """Every request is recorded with method, path, query, headers, body and model."""
    body = anthropic(model="claude-haiku-4-5", stream=True)
    headers = {"X-Claude-Code-Session-Id": "s1"}
    url = f"{provider.base_url}/run/7/v1/messages?beta=true"
    async with server_session.post(url, json=body, headers=headers) as response:
        await response.read()
    (recorded,) = provider.requests
    assert (recorded.method, recorded.path, recorded.query) == (
        "POST",
        "/run/7/v1/messages",
        "beta=true",
    )
    assert recorded.headers["x-claude-code-session-id"] == "s1"
    assert recorded.body == body and recorded.model == "claude-haiku-4-5"
    assert recorded.api == "anthropic"
    assert provider.emitted[0].model == "claude-haiku-4-5"


async def test_script_runs_in_order_then_default(provider, server_session) -> None:
    """Scripted turns answer in order; an empty script answers the default "hi" turn."""
    provider.add(Turn(text="one"), Turn(text="two"))
    texts = []
    for _ in range(3):
        async with server_session.post(f"{provider.base_url}/v1/messages", json=anthropic()) as r:
            texts.append((await r.json())["content"][0]["text"])
    assert texts == ["one", "two", "hi"]
    assert provider.emitted[-1].usage == Usage(input=12, output=3)


async def test_turn_headers_are_sent(provider, server_session) -> None:
    """A turn's headers (rate-limit headers, say) come back on the streamed answer."""
    headers = {
        "anthropic-ratelimit-unified-5h-utilization": "0.42",
        "x-codex-primary-used-percent": "12.5",
    }
    provider.add(Turn(headers=headers))
    async with server_session.post(
        f"{provider.base_url}/v1/responses", json=responses(stream=True)
    ) as r:
        await r.read()
    assert r.headers["anthropic-ratelimit-unified-5h-utilization"] == "0.42"
    assert r.headers["x-codex-primary-used-percent"] == "12.5"


@pytest.mark.parametrize(("method", "path"), [("HEAD", "/"), ("GET", "/"), ("GET", "/run/1")])
async def test_preflight_root_is_404(provider, server_session, method, path) -> None:
    """Claude's HEAD/GET preflight on the base URL gets a 404 JSON answer."""
    async with server_session.request(method, provider.base_url + path) as response:
        assert response.status == 404
        assert response.headers["Content-Type"] == "application/json"
        if method == "GET":
            assert (await response.json())["error"]["type"] == "not_found_error"
    assert provider.requests[0].method == method


async def test_websocket_attempt_on_responses_is_404(provider, server_session) -> None:
    """Codex's WebSocket GET /v1/responses is refused (non-101) so it falls back to HTTP."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await server_session.ws_connect(f"{provider.base_url}/v1/responses")
    assert caught.value.status == 404
    assert provider.emitted == []


@pytest.mark.parametrize("anthropic", [True, False])
async def test_models_list_in_each_shape(provider, server_session, anthropic) -> None:
    """GET /v1/models lists the models, Anthropic-shaped when anthropic-version is sent."""
    headers = {"anthropic-version": "2023-06-01"} if anthropic else {}
    async with server_session.get(f"{provider.base_url}/x/v1/models", headers=headers) as response:
        body = await response.json()
    ids = [m["id"] for m in body["data"]]
    assert ids == list(provider.models)
    if anthropic:
        assert body["has_more"] is False and body["data"][0]["type"] == "model"
    else:
        assert body["object"] == "list" and body["data"][0]["object"] == "model"


# --- Lifecycle and pure builders -----------------------------------------------------


async def test_lifecycle_is_one_shot() -> None:
    """base_url needs a started server; start is one-shot; stop moves to STOPPED."""
    fake = FakeProvider()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    await fake.start()
    assert fake.state is State.RUNNING and fake.base_url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError):
        await fake.start()
    await fake.stop()
    assert fake.state is State.STOPPED


@pytest.mark.parametrize(
    "bad", [{"cut_after_events": -1}, {"error_status": 200}, {"delay_between_events": -1.0}]
)
def test_turn_rejects_invalid_values(bad: dict[str, Any]) -> None:
    """A Turn refuses a negative cut or delay and a non-error error_status."""
    with pytest.raises(ValueError):
        Turn(**bad)


_args = st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3)
_usages = st.builds(Usage, *[st.integers(0, 10**6)] * 5)


@given(
    text=st.text(max_size=40),
    tool=st.none() | st.builds(ToolCall, st.text(min_size=1, max_size=8), _args),
    usage=_usages,
)
def test_anthropic_events_reassemble_to_the_message(text, tool, usage) -> None:
    """Joining an Anthropic stream's deltas rebuilds the text, tool input and final usage."""
    reply = sse.Reply("m", text, tool, usage, serial=1, created=0)
    events = sse.anthropic_events(reply)
    message = sse.anthropic_message(reply)
    parts: dict[int, str] = {}
    for event in events:
        if event.name == "content_block_delta":
            delta = event.data["delta"]
            piece = delta["text"] if delta["type"] == "text_delta" else delta["partial_json"]
            parts[event.data["index"]] = parts.get(event.data["index"], "") + piece
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            assert parts.get(index, "") == block["text"]
        else:
            assert json.loads(parts[index]) == block["input"]
    assert events[-2].data["usage"] == message["usage"]
    assert events[-2].usage == usage.seen_as_anthropic()


@given(text=st.text(max_size=40), usage=_usages)
def test_responses_and_chat_streams_reassemble_text_and_usage(text, usage) -> None:
    """Responses and Chat deltas rebuild the text; their final usage matches the body."""
    reply = sse.Reply("m", text, None, usage, serial=1, created=0)
    responses = sse.responses_events(reply)
    deltas = "".join(e.data["delta"] for e in responses if e.name == "response.output_text.delta")
    assert deltas == text
    assert responses[-1].data["response"]["usage"] == sse.responses_body(reply)["usage"]
    chat = sse.chat_events(reply, include_usage=True)
    chunks = [e.data for e in chat[:-2]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == text
    assert chat[-2].data["usage"] == sse.chat_body(reply)["usage"]
    assert chat[-2].usage == usage.seen_as_openai()
