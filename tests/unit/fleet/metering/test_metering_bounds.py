"""What a model request can cost at most, read from its body: bytes and output cap for a
request of text only, on each API; no bound for what the provider counts otherwise or
fetches, for no output cap, or for a part of a kind not on the list."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet.metering.config import Price, PriceTable
from fleet.metering.counting import estimate as estimate_module
from fleet.metering.counting.estimate import estimate
from fleet.metering.wire.bounds import (
    INPUT_OVERHEAD,
    bounded_input,
    detached,
    output_cap,
    worst_case,
)

PRICES = PriceTable({"m": Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)})
TOOL = {
    "name": "WebFetch",
    "description": "fetch a page",
    "input_schema": {
        "type": "object",
        "properties": {"url": {"type": "string"}, "type": {"type": "string"}},
        "required": ["url"],
    },
}
ANTHROPIC_TEXT: dict[str, Any] = {
    "model": "m",
    "max_tokens": 1_000,
    "stream": True,
    "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
    "thinking": {"type": "enabled", "budget_tokens": 500},
    "tools": [TOOL],
    "tool_choice": {"type": "auto"},
    "messages": [
        {"role": "user", "content": "read it"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hm", "signature": "s"},
                {"type": "tool_use", "id": "t1", "name": "WebFetch", "input": {"url": "x"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "page"}],
        },
    ],
}
RESPONSES_TEXT: dict[str, Any] = {
    "model": "m",
    "max_output_tokens": 2_000,
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c", "name": "shell", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "ok"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}]},
    ],
    "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}],
    "reasoning": {"effort": "low"},
    "text": {"format": {"type": "text"}},
}
CHAT_TEXT: dict[str, Any] = {
    "model": "m",
    "max_completion_tokens": 300,
    "n": 2,
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ],
    "response_format": {"type": "json_object"},
}


def size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload).encode())


@pytest.mark.parametrize(
    ("payload", "output"), [(ANTHROPIC_TEXT, 1_000), (RESPONSES_TEXT, 2_000), (CHAT_TEXT, 600)]
)
def test_a_request_of_text_is_bounded_by_its_bytes_and_its_output_cap(
    payload: dict[str, Any], output: int
) -> None:
    """Messages, Responses and Chat Completions bodies of text, tools and settings: input at
    most its bytes plus the overhead, output its cap (times its choices)."""
    tokens, usd = worst_case(payload, size(payload), "m", PRICES)
    assert tokens == size(payload) + INPUT_OVERHEAD + output
    # Every input token at the dearest input rate (a cache write, $3.75/M here).
    expected = ((size(payload) + INPUT_OVERHEAD) * 3.75 + output * 15.0) / 1_000_000
    assert usd == pytest.approx(expected)


def with_part(part: dict[str, Any]) -> dict[str, Any]:
    message = {"role": "user", "content": [{"type": "text", "text": "look"}, part]}
    return {**ANTHROPIC_TEXT, "messages": [message]}


@pytest.mark.parametrize(
    "payload",
    [
        with_part({"type": "image", "source": {"type": "base64", "data": "AAAA"}}),
        with_part({"type": "image", "source": {"type": "url", "url": "https://x/i.png"}}),
        with_part({"type": "document", "source": {"type": "file", "file_id": "f1"}}),
        with_part({"type": "search_result", "source": "s", "content": []}),
        {**ANTHROPIC_TEXT, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        {**ANTHROPIC_TEXT, "mcp_servers": [{"type": "url", "url": "https://mcp"}]},
        {**ANTHROPIC_TEXT, "container": "c-1"},
        {**RESPONSES_TEXT, "previous_response_id": "resp_1"},
        {**RESPONSES_TEXT, "prompt": {"id": "pmpt_1"}},
        {**RESPONSES_TEXT, "tools": [{"type": "web_search"}]},
        {**RESPONSES_TEXT, "input": [{"type": "input_image", "image_url": "https://x"}]},
        {**RESPONSES_TEXT, "input": [*RESPONSES_TEXT["input"], {"id": "msg_1"}]},
        {**RESPONSES_TEXT, "input": [{"id": "rs_1", "type": None}]},
        {**CHAT_TEXT, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        {**CHAT_TEXT, "messages": [{"role": "user", "content": [{"type": "something_new"}]}]},
    ],
)
def test_what_the_provider_counts_otherwise_or_fetches_leaves_a_request_unbounded(
    payload: dict[str, Any],
) -> None:
    """Images, documents, files, URLs, server tools, a previous response, a stored prompt,
    a kind of part not on the list: no bound."""
    assert not bounded_input(payload)
    assert worst_case(payload, size(payload), "m", PRICES) == (None, None)


def test_without_an_output_cap_or_a_body_nothing_bounds_a_request() -> None:
    """No output cap (or a nonsense one), an unparsed body: no bound; a completion's text
    prompt is its own text."""
    for cap in (None, 0, -5, True, "100"):
        payload = {**CHAT_TEXT, "max_completion_tokens": cap}
        assert output_cap(payload) is None
        assert worst_case(payload, 100, "m", PRICES) == (None, None)
    assert worst_case(None, 100, "m", PRICES) == (None, None)
    assert bounded_input({"model": "m", "prompt": "once upon", "max_tokens": 5})


def test_an_unpriced_model_bounds_tokens_only_and_the_estimate_carries_the_bound() -> None:
    """Without a price the worst case has tokens and no dollars; ``estimate`` fills both
    next to its likely cost, which stays the budgets' (bytes ÷ 4)."""
    assert worst_case(ANTHROPIC_TEXT, 1_000, "other", PRICES) == (
        1_000 + INPUT_OVERHEAD + 1_000,
        None,
    )
    made = estimate(ANTHROPIC_TEXT, 4_000, "m", PRICES)
    assert made.tokens == 1_000 + 1_000
    worst_tokens, worst_usd = made.worst()
    assert worst_tokens == 4_000 + INPUT_OVERHEAD + 1_000
    assert worst_usd is not None and made.usd is not None and worst_usd > made.usd


def test_the_largest_output_cap_a_request_sets_bounds_it() -> None:
    """``max_tokens`` 16 beside ``max_completion_tokens`` 5,000: servers honour the newer
    field, so the bound is 5,000 whichever comes first; ``null`` is no cap at all."""
    for first, second in (
        ("max_tokens", "max_completion_tokens"),
        ("max_completion_tokens", "max_tokens"),
    ):
        payload = {**CHAT_TEXT, "n": 1, first: 16, second: 5_000}
        assert output_cap(payload) == 5_000
    assert output_cap({**RESPONSES_TEXT, "max_tokens": 10, "max_output_tokens": 2_000}) == 2_000
    assert output_cap({**CHAT_TEXT, "max_tokens": None}) == 600
    made = estimate(
        {**CHAT_TEXT, "max_tokens": 16, "max_completion_tokens": 5_000}, 400, "m", PRICES
    )
    assert made.tokens == 100 + 5_000


@pytest.mark.parametrize(
    "changes",
    [
        {"n": 8.0},
        {"n": "8"},
        {"n": True},
        {"n": 0},
        {"n": -2},
        {"n": 129},
        {"best_of": 4.0},
        {"max_tokens": 16, "max_completion_tokens": 5_000.0},
        {"max_tokens": "5000"},
        {"max_tokens": False},
    ],
)
def test_a_cap_or_a_count_of_choices_that_is_not_a_positive_integer_bounds_nothing(
    changes: dict[str, Any],
) -> None:
    """Servers read ``8.0`` as 8 choices (and may read ``"5000"`` as a cap): a count the
    bound cannot read as they do leaves the request unbounded, never at one choice."""
    payload = {**CHAT_TEXT, **changes}
    assert output_cap(payload) is None
    assert worst_case(payload, size(payload), "m", PRICES) == (None, None)


def test_the_most_choices_asked_for_multiply_the_cap() -> None:
    """``best_of`` generates more than ``n`` returns: the larger of the two counts."""
    assert output_cap({**CHAT_TEXT, "n": 2, "best_of": 5}) == 300 * 5
    assert output_cap({**CHAT_TEXT, "n": None}) == 300


def test_a_request_the_provider_works_on_after_answering_it_is_detached_and_unbounded() -> None:
    """``background: true`` (any value but false or null): the answer comes back queued,
    without usage; the estimate says so, and nothing bounds the request."""
    for value in (True, "true", 1):
        payload = {**RESPONSES_TEXT, "background": value, "store": True}
        assert detached(payload) == "background"
        assert worst_case(payload, size(payload), "m", PRICES) == (None, None)
        assert estimate(payload, size(payload), "m", PRICES).detached == "background"
    for value in (False, None):
        payload = {**RESPONSES_TEXT, "background": value}
        assert detached(payload) is None
        assert worst_case(payload, size(payload), "m", PRICES)[0] is not None
        assert estimate(payload, size(payload), "m", PRICES).detached is None
    assert detached(None) is None


def test_the_worst_case_is_worked_out_only_when_asked_and_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An estimate reads no body for its worst case until a run's cap asks, then once."""
    calls: list[int] = []

    def counted(*args: object) -> tuple[int, float]:
        calls.append(1)
        return 7, 0.5

    monkeypatch.setattr(estimate_module, "worst_case", counted)
    made = estimate_module.estimate({"model": "m", "max_tokens": 10}, 100, "m", PriceTable({}))
    assert calls == []
    assert made.worst() == (7, 0.5) and made.worst() == (7, 0.5)
    assert calls == [1]
