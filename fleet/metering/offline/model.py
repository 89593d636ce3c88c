"""What the offline provider answers: its one model, that model's price, and the answer to a
request — a fixed text and token counts that follow from the request alone."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fleet.metering.config import Price

DEMO_MODEL: Final = "fleetwarden-demo"
"""The model the offline provider serves, whatever model a request names."""
DEMO_PRICE: Final = Price(input=1.0, output=5.0, cache_read=0.1, cache_write=1.25)
"""Its price in the built-in price table (dollars per million tokens); ``prices`` in the
config may set another."""
CHARS_PER_TOKEN: Final = 4
ANSWER: Final = (
    "This is Fleetwarden's offline demo model: no real model ran. "
    "Your request had {words} words, counted as {tokens} input tokens. "
    "Configure a provider to get real answers."
)
_TEXT_KEYS: Final = ("system", "messages", "input", "instructions", "tools", "prompt")
_WORD: Final = re.compile(r"\S+")
_CAPS: Final = ("max_tokens", "max_output_tokens", "max_completion_tokens")


@dataclass(frozen=True, slots=True)
class Answer:
    """One model turn's text and its usage."""

    text: str
    input_tokens: int
    output_tokens: int

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


def answer(payload: Mapping[str, Any]) -> Answer:
    """The answer to a model request: input tokens are the request's text (its system
    prompt, messages or input, instructions and tool definitions) at four characters a
    token; output tokens the answer's text the same way, within the request's own cap."""
    texts = [text for key in _TEXT_KEYS for text in _strings(payload.get(key))]
    chars = sum(len(text) for text in texts)
    # Counted without a list of them: a request's text may be tens of megabytes.
    words = sum(sum(1 for _ in _WORD.finditer(text)) for text in texts)
    input_tokens = max(1, math.ceil(chars / CHARS_PER_TOKEN))
    text = ANSWER.format(words=f"{words:,}", tokens=f"{input_tokens:,}")
    output_tokens = max(1, math.ceil(len(text) / CHARS_PER_TOKEN))
    cap = _cap(payload)
    if cap is not None and cap < output_tokens:
        output_tokens = cap
        text = text[: cap * CHARS_PER_TOKEN]
    return Answer(text, input_tokens, output_tokens)


def _cap(payload: Mapping[str, Any]) -> int | None:
    caps = [v for k in _CAPS if isinstance(v := payload.get(k), int) and v >= 1]
    return min(caps) if caps else None


def _strings(value: object, depth: int = 0) -> Iterator[str]:
    """Every string inside ``value`` (JSON), keys aside, to a sane depth."""
    if depth > 32:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in ("type", "role", "id", "cache_control"):
                yield from _strings(item, depth + 1)
