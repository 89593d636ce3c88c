"""Tests for fleet.metering.counting.meter: a stream that ends without its usage is counted at
no less than the text its deltas carried, and an answer with its usage as reported."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import cast

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from fleet.metering.counting.events import Outcome, Tokens
from fleet.metering.counting.meter import Meter
from tests.fakes.provider import sse

TEXT = " ".join(f"token{n}" for n in range(300))


class Answer:
    """An upstream answer's status line and headers, as ``Meter.start_answer`` reads them."""

    status = 200
    headers: CIMultiDictProxy[str] = CIMultiDictProxy(
        CIMultiDict({"content-type": "text/event-stream"})
    )


def metered(api: str, events: list[sse.Event], body_size: int = 400) -> Meter:
    meter = Meter(datetime.now(UTC), time.perf_counter(), "a", "p", api, stream=True)
    meter.body_size = body_size
    meter.start_answer(cast(aiohttp.ClientResponse, Answer()))
    for event in events:
        meter.take(event.encode())
    meter.eof()
    return meter


def reply(usage: sse.Usage) -> sse.Reply:
    return sse.Reply("m", TEXT, None, usage, 1, 0)


def test_a_chat_stream_without_usage_is_counted_from_its_deltas() -> None:
    """A provider that sends no usage chunk: unmetered, but not free — output is the
    deltas' text ÷ 4 and input the body's estimate, the reason saying both."""
    meter = metered("chat", sse.chat_events(reply(sse.Usage(10, 20)), include_usage=False))
    event = meter.finish()
    assert event.outcome is Outcome.UNMETERED
    assert event.tokens == Tokens(input=100, output=math.ceil(len(TEXT) / 4))
    assert "counted from the deltas" in event.reason and "input estimated" in event.reason


@pytest.mark.parametrize("api", ["anthropic", "responses", "chat"])
def test_a_complete_stream_keeps_the_reported_usage(api: str) -> None:
    """With its usage, a stream is recorded as the provider reported it, never raised."""
    usage = sse.Usage(input=7, output=2)  # far under what the text would estimate
    answer = reply(usage)
    if api == "anthropic":
        events = sse.anthropic_events(answer)
    elif api == "responses":
        events = sse.responses_events(answer)
    else:
        events = sse.chat_events(answer, include_usage=True)
    event = metered(api, events).finish()
    assert event.outcome is Outcome.OK
    assert event.tokens.output == 2 and event.tokens.input + event.tokens.cache_read == 7


def test_a_cut_anthropic_stream_keeps_its_reported_input_and_raises_its_output() -> None:
    """Cut before ``message_delta``: input as ``message_start`` said, output counted."""
    events = sse.anthropic_events(reply(sse.Usage(input=900, output=5000)))[:-2]
    meter = metered("anthropic", events)
    meter.cut("upstream cut the answer")
    event = meter.finish()
    assert event.outcome is Outcome.PARTIAL
    assert event.tokens.input == 900
    assert event.tokens.output == math.ceil(len(TEXT) / 4)
    assert "input estimated" not in event.reason
