"""A cap on one run's spend, as operators write it: ``spawn NAME --max-tokens N``,
``--max-usd X``, and ``run_budget: {max_tokens: N, max_usd: X}`` in a roster entry or in
``defaults`` (with ``cutoff: ask``, its ``ask_within``, ``then`` and offered raise). Pure:
reading and checking the values, merging what a spawn gives over what the roster says, and
the words a capped run is described in.

A cap in tokens counts every token of the run's model requests (input, output, cache
reads and writes), as budgets do; a cap in dollars prices them (``prices``), so it needs
a model with a price. Enforcement is :mod:`fleet.budgets.runs.caps`'s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fleet.budgets.model import parse_duration
from fleet.metering import units
from fleet.model import DEFAULT_ASK_WITHIN, RunBudget

MAX_TOKENS: Final = 10**12  # more than any run spends; beyond it a typo is likelier
MAX_USD: Final = 1_000_000.0
_TOKENS = re.compile(r"(\d+(?:\.\d+)?)([km]?)")
_MULTIPLIERS: Final = {"": 1, "k": 1_000, "m": 1_000_000}
_DOLLARS = re.compile(r"\$?(\d+)(?:\.(\d{1,2}))?")
UNPRICED_FIX: Final = "add it to `prices` in the config, or set `price_default`"


class RunBudgetError(ValueError):
    """A cap that cannot be read; the message says what to write instead."""


def parse_max_tokens(text: str) -> int:
    """``--max-tokens``: a whole number of tokens above 0 (``200000``, ``200k``, ``1.5M``)."""
    compact = text.strip().lower().replace("_", "").replace(",", "")
    match = _TOKENS.fullmatch(compact)
    value = float(match[1]) * _MULTIPLIERS[match[2]] if match else math.nan
    if not math.isfinite(value) or not value.is_integer():
        raise RunBudgetError(
            f"--max-tokens {text.strip()[:24]!r} is not a whole number of tokens: "
            "write e.g. 200000 or 200k"
        )
    if value <= 0:
        raise RunBudgetError(f"--max-tokens must be more than 0, got {text.strip()[:24]!r}")
    if value > MAX_TOKENS:
        raise RunBudgetError(f"--max-tokens must be at most {MAX_TOKENS:,}")
    return int(value)


def parse_max_usd(text: str) -> float:
    """``--max-usd``: dollars above 0 with at most two decimal places (``5``, ``2.50``,
    ``$0.75``)."""
    return parse_dollars(text, "--max-usd", example="5 or 2.50")


def parse_dollars(text: str, flag: str, *, example: str) -> float:
    """Dollars above 0 and at most :data:`MAX_USD`, with at most two decimal places, as
    ``flag`` takes them (``example``: what to write); :class:`RunBudgetError` saying what
    was wrong."""
    shown = text.strip()[:24]
    if shown.startswith(("-", "$-")):
        raise RunBudgetError(f"{flag} must be more than $0, got {shown!r}")
    match = _DOLLARS.fullmatch(text.strip())
    if match is None:
        raise RunBudgetError(
            f"{flag} {shown!r} is not an amount of dollars: write e.g. {example} "
            "(at most two decimal places)"
        )
    value = float(f"{match[1]}.{match[2] or '0'}")
    if value <= 0:
        raise RunBudgetError(f"{flag} must be more than $0, got {shown!r}")
    if value > MAX_USD:
        raise RunBudgetError(f"{flag} must be at most ${MAX_USD:,.0f}")
    return value


def cents(value: float) -> float:
    """``value`` as dollars with at most two decimal places (a config's validator)."""
    if not math.isfinite(value) or round(value, 2) != value:
        raise ValueError("dollars take at most two decimal places, e.g. 2.50")
    return value


def seconds_of(error: str) -> Callable[[object], object]:
    """A config's validator of a duration: ``30m``-style text as seconds, a number passed
    on to be checked as seconds; text that is no duration refused as ``error``."""

    def seconds(value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return parse_duration(value).total_seconds()
        except ValueError:
            raise PydanticCustomError(
                error,
                f"{value[:40]!r} is not a duration: write e.g. 30m, 2h or 1d12h (at least a "
                "minute), or a number of seconds",
            ) from None

    return seconds


AskWithin = Annotated[
    float,
    BeforeValidator(seconds_of("ask_within")),
    Field(gt=0, le=7 * 86_400, strict=True, allow_inf_nan=False),
]


class RunBudgetEntry(BaseModel):
    """``run_budget:`` — a cap on each run's spend; at least one of the two."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int | None = Field(
        default=None,
        gt=0,
        le=MAX_TOKENS,
        strict=True,
        description="Tokens one run may use (input, output and cache), more than 0.",
    )
    max_usd: Annotated[float, AfterValidator(cents)] | None = Field(
        default=None,
        gt=0,
        le=MAX_USD,
        description=(
            "Dollars one run may spend, more than 0, at most two decimal places; the "
            "agent's model needs a price (`prices` or `price_default`)."
        ),
    )

    cutoff: Literal["refuse", "freeze", "stop", "ask"] = Field(
        default="refuse",
        description=(
            "What happens to the run past its cap: `refuse` its model requests (it keeps "
            "running), `freeze` it as well (paused until `resume NAME` or its end), `stop` "
            "it, or `ask`: freeze it and ask its operators, once, in its thread (and on its "
            "issue) to `raise NAME +AMOUNT` or `stop NAME`."
        ),
    )
    ask_within: AskWithin = Field(
        default=DEFAULT_ASK_WITHIN,
        description=(
            "With `cutoff: ask`: how long to wait for an answer (`30m`, `2h`, or seconds); "
            "then `then` applies. Default: 30m."
        ),
    )
    then: Literal["stop", "freeze"] = Field(
        default="freeze",
        description=(
            "With `cutoff: ask`, when nobody answers in time: `stop` the run, or `freeze` "
            "(it stays paused; `raise NAME` or `resume NAME` still continues it)."
        ),
    )
    offer_tokens: int | None = Field(
        default=None,
        gt=0,
        le=MAX_TOKENS,
        strict=True,
        description=(
            "With `cutoff: ask` and `max_tokens`: the raise a ✅ or `yes` grants, in tokens. "
            "Default: the cap again."
        ),
    )
    offer_usd: Annotated[float, AfterValidator(cents)] | None = Field(
        default=None,
        gt=0,
        le=MAX_USD,
        description=(
            "With `cutoff: ask` and `max_usd`: the raise a ✅ or `yes` grants, in dollars. "
            "Default: the cap again."
        ),
    )

    @model_validator(mode="after")
    def _one_at_least(self) -> RunBudgetEntry:
        if self.max_tokens is None and self.max_usd is None:
            raise ValueError("give max_tokens, max_usd or both (or leave run_budget out)")
        asking = {"ask_within", "then", "offer_tokens", "offer_usd"} & self.model_fields_set
        if asking and self.cutoff != "ask":
            keys, verb = ", ".join(sorted(asking)), "apply" if len(asking) > 1 else "applies"
            raise ValueError(f"{keys} {verb} only with `cutoff: ask` (the cutoff is {self.cutoff})")
        if self.offer_tokens is not None and self.max_tokens is None:
            raise ValueError("offer_tokens raises a cap in tokens: give max_tokens too")
        if self.offer_usd is not None and self.max_usd is None:
            raise ValueError("offer_usd raises a cap in dollars: give max_usd too")
        return self

    def to_budget(self) -> RunBudget:
        return RunBudget(
            self.max_tokens,
            self.max_usd,
            self.cutoff,
            ask_within=self.ask_within,
            then=self.then,
            offer_tokens=self.offer_tokens,
            offer_usd=self.offer_usd,
        )


def unpriced_cap(model: str | None) -> str:
    """Why a cap in dollars cannot bind on ``model``'s runs, and the fix."""
    if model is None:
        return (
            "--max-usd needs the model to be known and priced: name it with --model "
            "(one in `prices`), or set `price_default` in the config"
        )
    return f"--max-usd cannot cap {model!r}: it has no price; {UNPRICED_FIX}"


def cap_warnings(
    caps: Iterable[tuple[str, str | None, RunBudget | None]],
    priced: Callable[[str | None], bool],
    *,
    metered: bool,
) -> list[str]:
    """``check-config``'s lines on roster agents' caps (name, model, cap) that cannot bind:
    any cap without metering, a cap in dollars on a model without a price."""
    capped = [(name, model, cap) for name, model, cap in caps if cap is not None]
    if capped and not metered:
        names = ", ".join(name for name, _, _ in capped)
        return [f"run_budget caps {names}, but metering is off, so no cap can bind"]
    unpriced = [
        f"{name} ({model or 'the runtime default model'})"
        for name, model, cap in capped
        if cap.max_usd is not None and not priced(model)
    ]
    if not unpriced:
        return []
    return [
        "run_budget.max_usd caps these agents' runs in dollars, but their models have no "
        f"price, so their requests will be refused: {', '.join(unpriced)}; add them to "
        "`prices`, or set `price_default`"
    ]


def cap_text(budget: RunBudget) -> str:
    """The cap in words: ``200,000 tokens``, ``$2.50``, ``200,000 tokens or $2.50``."""
    parts = []
    if budget.max_tokens is not None:
        parts.append(units.tokens_words(budget.max_tokens))
    if budget.max_usd is not None:
        parts.append(units.usd(budget.max_usd))
    return " or ".join(parts) or "no cap"
