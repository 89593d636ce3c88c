"""Tests for fleet.metering.offline's answers and wire shapes: deterministic token counts,
the real APIs' event sequences (as the fake provider the real CLIs are tested against
sends them), and usage the proxy's own reader takes from them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fleet.accounts.providers import DEFAULT_ROUTES
from fleet.metering.config import PriceTable
from fleet.metering.counting.events import Tokens
from fleet.metering.counting.usage import Api, UsageReader
from fleet.metering.offline import wire
from fleet.metering.offline.model import DEMO_MODEL, answer
from fleet.metering.offline.routes import priced_with, with_offline
from fleet.runtimes.base import OFFLINE_PROVIDERS_ENV, RuntimeContext, provider_env
from tests.fakes.provider import sse as fake_sse

PROMPT = {"role": "user", "content": "count to 3"}


def turn_for(payload: dict[str, Any]) -> wire.Turn:
    return wire.Turn(answer(payload), "0123456789abcdef", 1_700_000_000)


def fake_reply(turn: wire.Turn) -> fake_sse.Reply:
    usage = fake_sse.Usage(turn.answer.input_tokens, turn.answer.output_tokens)
    return fake_sse.Reply(DEMO_MODEL, turn.answer.text, None, usage, 1, turn.created)


def events_of(stream: list[bytes]) -> list[tuple[str | None, str]]:
    """Each event's name and data, as a reader of the stream splits them."""
    out: list[tuple[str | None, str]] = []
    for raw in stream:
        assert raw.endswith(b"\n\n")
        lines = raw.decode().rstrip("\n").split("\n")
        name = lines[0][len("event: ") :] if lines[0].startswith("event: ") else None
        out.append((name, lines[-1][len("data: ") :]))
    return out


def read(api: Api, stream: list[bytes]) -> UsageReader:
    reader = UsageReader(api)
    for name, data in events_of(stream):
        reader.on_event(name, data.encode())
    return reader


def test_the_answer_follows_from_the_request_alone() -> None:
    """The same request gets the same answer and counts; a longer one more input tokens;
    input is the request's text at four characters a token."""
    one = answer({"model": "x", "messages": [PROMPT]})
    assert one == answer({"model": "y", "messages": [PROMPT], "stream": True})
    assert one.input_tokens == 3  # "count to 3": 10 characters
    assert "no real model ran" in one.text
    assert one.output_tokens == -(-len(one.text) // 4)
    longer = answer({"messages": [PROMPT], "system": "You are a careful engineer. " * 10})
    assert longer.input_tokens > one.input_tokens
    assert answer({}).input_tokens == 1  # never a zero-token request


def test_the_answer_keeps_within_the_requests_cap() -> None:
    """A request's own cap on output (``max_tokens`` and kin) bounds the answer."""
    capped = answer({"messages": [PROMPT], "max_tokens": 5})
    assert capped.output_tokens == 5
    assert len(capped.text) <= 20
    assert answer({"input": "hi", "max_output_tokens": 2}).output_tokens == 2


def test_anthropic_stream_is_the_messages_event_sequence_with_its_usage() -> None:
    """message_start … message_delta … message_stop, event for event as the fake provider
    (which Claude Code parses) sends a text turn; the proxy's reader takes its usage."""
    turn = turn_for({"messages": [PROMPT]})
    ours = events_of(wire.anthropic_stream(turn))
    theirs = [(e.name, e.data) for e in fake_sse.anthropic_events(fake_reply(turn))]
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    start = json.loads(ours[0][1])["message"]
    assert start["model"] == DEMO_MODEL
    assert start["usage"]["input_tokens"] == turn.answer.input_tokens
    final = json.loads(ours[-2][1])
    assert final["usage"]["output_tokens"] == turn.answer.output_tokens
    text = "".join(
        json.loads(data)["delta"]["text"] for name, data in ours if name == "content_block_delta"
    )
    assert text == turn.answer.text
    reader = read("anthropic", wire.anthropic_stream(turn))
    assert reader.complete and reader.served_model == DEMO_MODEL
    assert reader.tokens == Tokens(input=turn.answer.input_tokens, output=turn.answer.output_tokens)


def test_responses_stream_is_the_responses_event_sequence_with_its_usage() -> None:
    """response.created … response.completed as the fake (which Codex parses) sends it,
    numbered; the completed response carries the usage."""
    turn = turn_for({"input": "count to 3"})
    ours = events_of(wire.responses_stream(turn))
    theirs = [(e.name, e.data) for e in fake_sse.responses_events(fake_reply(turn))]
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    numbers = [json.loads(data)["sequence_number"] for _, data in ours]
    assert numbers == list(range(len(ours)))
    ours_done, theirs_done = json.loads(ours[-1][1]), theirs[-1][1]
    assert isinstance(theirs_done, dict)
    assert ours_done["response"]["usage"] == theirs_done["response"]["usage"]
    reader = read("responses", wire.responses_stream(turn))
    assert reader.complete
    assert reader.tokens == Tokens(input=turn.answer.input_tokens, output=turn.answer.output_tokens)


@pytest.mark.parametrize("include_usage", [True, False])
def test_chat_stream_ends_with_the_usage_chunk_when_asked(include_usage: bool) -> None:
    """Chunks, the finish chunk, the usage-only chunk when ``include_usage`` asks, [DONE]."""
    turn = turn_for({"messages": [PROMPT]})
    ours = events_of(wire.chat_stream(turn, include_usage))
    theirs = fake_sse.chat_events(fake_reply(turn), include_usage)
    assert len(ours) == len(theirs)
    assert all(name is None for name, _ in ours)
    assert ours[-1][1] == "[DONE]"
    reader = read("chat", wire.chat_stream(turn, include_usage))
    if include_usage:
        usage = json.loads(ours[-2][1])["usage"]
        assert usage == fake_sse.chat_body(fake_reply(turn))["usage"]
        assert reader.tokens == Tokens(
            input=turn.answer.input_tokens, output=turn.answer.output_tokens
        )
    else:
        assert reader.tokens is None


@pytest.mark.parametrize("api", ["anthropic", "responses", "chat"])
def test_bodies_carry_the_usage_as_the_apis_do(api: Api) -> None:
    """The non-streamed body has the same fields and usage as the fake's for a text turn."""
    turn = turn_for({"messages": [PROMPT]})
    reply = fake_reply(turn)
    ours, theirs = {
        "anthropic": (wire.anthropic_message(turn), fake_sse.anthropic_message(reply)),
        "responses": (wire.responses_body(turn), fake_sse.responses_body(reply)),
        "chat": (wire.chat_body(turn), fake_sse.chat_body(reply)),
    }[api]
    assert set(ours) == set(theirs)
    assert ours["usage"] == theirs["usage"]
    reader = UsageReader(api)
    reader.on_body(json.dumps(ours).encode())
    assert reader.served_model == DEMO_MODEL
    assert reader.tokens == Tokens(input=turn.answer.input_tokens, output=turn.answer.output_tokens)


def test_agents_are_told_which_providers_are_the_stand_in(tmp_path: Path) -> None:
    """`FLEETWARDEN_OFFLINE_PROVIDERS` names the providers the offline one answers, and is
    absent when it answers none."""
    urls = {"anthropic": "http://127.0.0.1:1/a/x/anthropic/K"}
    ctx = RuntimeContext(home=tmp_path, workdir=tmp_path, environ={}, provider_urls=urls)
    assert OFFLINE_PROVIDERS_ENV not in provider_env(ctx, "x")
    told = provider_env(replace(ctx, offline=frozenset({"openai", "anthropic"})), "x")
    assert told[OFFLINE_PROVIDERS_ENV] == "anthropic,openai"


def test_every_model_is_priced_only_when_the_stand_in_answers_every_provider() -> None:
    """With no provider configured a `--max-usd` cap binds on any model (each is charged at
    the demo model's price); one real provider, or an account anywhere, and only `prices`
    decide."""
    unpriced = PriceTable({})
    alone = with_offline(DEFAULT_ROUTES, ())
    assert priced_with(alone, (), unpriced.priced)("claude-haiku-4-5")
    assert priced_with(alone, (), unpriced.priced)(None)
    assert not priced_with(alone, ("chatgpt",), unpriced.priced)("gpt-5-codex")
    half = with_offline(DEFAULT_ROUTES, ("anthropic",))
    assert not priced_with(half, ("anthropic",), unpriced.priced)("claude-haiku-4-5")
    assert not priced_with(DEFAULT_ROUTES, (), unpriced.priced)("claude-haiku-4-5")


def test_a_huge_request_is_counted_without_a_list_of_its_words() -> None:
    """A request of many megabytes of words is answered, its words counted as they are."""
    text = "ab " * 1_000_000
    found = answer({"messages": [{"role": "user", "content": text}]})
    assert found.input_tokens == len(text) // 4 and "1,000,000 words" in found.text
