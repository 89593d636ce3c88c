"""The config file's ``timezone`` and ``budgets`` sections, their conversion to
:mod:`fleet.budgets.model` types, and the checks that span entries (the ``groups`` section's
own are :mod:`fleet.budgets.group_section`'s).

Each entry is checked on its own by pydantic (a window of zero, a ladder naming a model
twice, a fixed window without ``reset_at``). What needs the whole file — a scope given two
budgets, a group scope naming no group, a parent that does not exist or a cycle of parents,
an agent in two groups, a ``reset_at`` already past at load time — is
:func:`section_problems`, which the loader runs once every entry is valid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fleet.budgets.group_section import GroupEntry, group_problems

# Named here too: the config's schema reads every section from this module.
from fleet.budgets.group_section import GroupsSection as GroupsSection
from fleet.budgets.group_section import groups_of as groups_of
from fleet.budgets.model import Groups, contradictions, ladder_problem, parse_window
from fleet.caps import MAX_RUNNING_HELP
from fleet.ledger.records.budgets import Budget, Confidence, Cutoff, Scope, WindowKind
from fleet.schema import check_known, did_you_mean, schema_context

Loc = tuple[str | int, ...]
"""A place in the config data, e.g. ``("budgets", 1, "scope")``."""

ConfidenceName = Literal["provider", "user", "estimated", "unknown"]
AccountName = Literal["anthropic", "openai"]

DEFAULT_TIMEZONE = "UTC"
_CALENDAR = (WindowKind.DAILY.value, WindowKind.WEEKLY.value, WindowKind.MONTHLY.value)


# --- Single values --------------------------------------------------------------------------


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        guess = did_you_mean(value, available_timezones()) if value else None
        hint = f" — did you mean {guess!r}?" if guess else "."
        raise PydanticCustomError(
            "timezone",
            f"unknown timezone {value!r}{hint} Write an IANA name, e.g. UTC, Europe/Berlin "
            "or America/New_York",
        ) from None
    return value


def _check_scope(value: str) -> str:
    try:
        return str(Scope.parse(value))
    except ValueError as exc:
        raise PydanticCustomError("scope", str(exc)) from None


def _check_window(value: str) -> str:
    word = value.strip().lower()
    if word in (*_CALENDAR, WindowKind.FIXED.value):
        return word  # with or without reset_at: checked with the whole entry
    try:
        parse_window(word)
    except ValueError as exc:
        raise PydanticCustomError("window", str(exc)) from None
    return word


def _moment(value: object) -> object:
    """``reset_at`` as written: a datetime, a date (its midnight), or ISO text."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise PydanticCustomError(
                "reset_at",
                f"{value!r} is not a date and time: write ISO 8601, e.g. 2025-04-01T09:00 "
                "(in `timezone`) or 2025-04-01T09:00:00+02:00",
            ) from None
    return value


def _check_models(value: tuple[str, ...]) -> tuple[str, ...]:
    problem = ladder_problem(value)
    if problem is not None:
        raise PydanticCustomError("ladder", problem)
    return value


def _check_usd(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise PydanticCustomError("limit_usd", "must be a finite number of dollars")
    return value


TimezoneName = Annotated[str, AfterValidator(_check_timezone)]
ScopeText = Annotated[str, AfterValidator(_check_scope)]
WindowText = Annotated[str, AfterValidator(_check_window)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
Ladder = Annotated[tuple[str, ...], AfterValidator(_check_models)]


# --- The sections ---------------------------------------------------------------------------


class BudgetEntry(BaseModel):
    """How much one scope may spend in a window. The most specific scope with a budget
    governs an agent (its own, else its group's, else the nearest ancestor group's, else
    `global`); only that budget paces it. Budgets set with `budget set` replace the one
    here of the same scope until it is set again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: ScopeText = Field(
        description=(
            "Who it covers: `global`, `group:NAME` (a group under `groups`) or `agent:NAME`."
        )
    )
    limit_tokens: int | None = Field(
        default=None,
        gt=0,
        strict=True,
        description=(
            "Tokens per window: input + output + cache reads + cache writes (e.g. 5000000; "
            "YAML also reads 5_000_000). Give this, `limit_usd`, or both (both bind; the "
            "budget is paced in tokens)."
        ),
    )
    limit_usd: Annotated[float | None, AfterValidator(_check_usd)] = Field(
        default=None,
        gt=0,
        strict=True,
        description=(
            "US dollars per window, at the configured `prices`. A request for a model "
            "without a price is refused, naming it, unless `price_default` is set."
        ),
    )
    window: WindowText = Field(
        description=(
            "When the allowance resets: a rolling duration (`5h`, `7d`, `90m`, `1d12h`), a "
            "calendar period (`daily`, `weekly`, `monthly`, in `timezone`), or `fixed` "
            "(ends at `reset_at`)."
        )
    )
    reset_at: Moment | None = Field(
        default=None,
        description=(
            "When the current window ends, ISO 8601 (`2025-04-01T09:00`, in `timezone` unless "
            "it has an offset). Required for `fixed`; for a rolling window, anchors its "
            "resets; not allowed for calendar windows. Must be ahead of the load time."
        ),
    )
    confidence: ConfidenceName = Field(
        default="user",
        description=(
            "How sure the reset you give is (`reset_at`, or a calendar window's midnight): "
            "`user` (you set it), `provider` (copied from the provider), `estimated`, "
            "`unknown`. Shown beside the reset in `budget`, the report and the dashboard; a "
            "fresh provider reading's reset shows as `provider`, a rolling window without "
            "`reset_at` as `estimated`."
        ),
    )
    account: AccountName | None = Field(
        default=None,
        description=(
            "A subscription whose own quota signals give utilization and reset: `anthropic` "
            "(`anthropic-ratelimit-unified-*` headers) or `openai` (`x-codex-*`). Without "
            "fresh signals, our metering is used and shown as `estimated`."
        ),
    )
    ladder: dict[str, Ladder] = Field(
        default_factory=dict,
        description=(
            "Per runtime, its models from most to least capable (e.g. `claude: [opus, sonnet, "
            "haiku]`): an agent over pace is moved down one rung at a time; at the floor, its "
            "requests are queued."
        ),
    )
    tolerance: float = Field(
        default=0.1,
        ge=0,
        le=1,
        strict=True,
        description="How far over the even-spread pace still counts as on pace (0.1: 10%).",
    )
    cutoff: Literal["refuse", "freeze", "stop", "ask"] = Field(
        default="refuse",
        description=(
            "What happens when the limit is reached, checked on every request: `refuse` "
            "(model requests refused until the window resets; the agents keep running), "
            "`freeze` (their processes are paused — their control group frozen, else SIGSTOP — "
            "and continued at the reset, "
            "on `resume NAME` or a burst), `stop` (they are stopped gracefully), `ask` (frozen, "
            "and the operators asked once per window: `raise budget SCOPE +AMOUNT` lifts the "
            "limit and continues them, ❌ stops them; unanswered in 30 min, they stay frozen)."
        ),
    )
    max_running: int | None = Field(
        default=None,
        gt=0,
        strict=True,
        description=(
            "How many of the agents this budget's scope covers may run at once (for an "
            "account or provider scope: the agents on it): " + MAX_RUNNING_HELP
        ),
    )

    @field_validator("ladder")
    @classmethod
    def _known_runtimes(cls, value: dict[str, Ladder], info: ValidationInfo) -> dict[str, Ladder]:
        for runtime in value:
            check_known("runtime", runtime, schema_context(info).runtimes)
        return value

    @model_validator(mode="after")
    def _coherent(self) -> BudgetEntry:
        if self.limit_tokens is None and self.limit_usd is None:
            raise PydanticCustomError("no_limit", "a budget needs limit_tokens, limit_usd or both")
        if self.window == WindowKind.FIXED and self.reset_at is None:
            raise PydanticCustomError(
                "fixed_reset",
                "a fixed window needs reset_at: when it ends, e.g. 2025-04-01T00:00",
            )
        if self.window in _CALENDAR and self.reset_at is not None:
            raise PydanticCustomError(
                "calendar_reset",
                f"a {self.window} window resets at midnight in `timezone`, so it takes no "
                "reset_at: leave reset_at out, or use window: fixed",
            )
        return self

    def to_budget(self, tz: ZoneInfo) -> Budget:
        """The budget, with a ``reset_at`` written without an offset read in ``tz``."""
        reset_at = None
        if self.reset_at is not None:
            written = self.reset_at
            aware = written if written.tzinfo is not None else written.replace(tzinfo=tz)
            reset_at = aware.astimezone(UTC)
        return Budget(
            scope=Scope.parse(self.scope),
            window=parse_window(
                self.window, reset_at=reset_at, confidence=Confidence(self.confidence)
            ),
            limit_tokens=self.limit_tokens,
            limit_usd=self.limit_usd,
            account=self.account,
            ladder={runtime: tuple(models) for runtime, models in self.ladder.items()},
            tolerance=self.tolerance,
            source="config",
            cutoff=Cutoff(self.cutoff),
        )


# --- Conversion and checks across entries -------------------------------------------------------


def budgets_of(entries: Sequence[BudgetEntry], tz: ZoneInfo) -> dict[str, Budget]:
    """The ``budgets`` section by scope (``str(scope)``), in file order."""
    budgets = (entry.to_budget(tz) for entry in entries)
    return {budget.key: budget for budget in budgets}


def section_problems(
    groups: Mapping[str, GroupEntry],
    budgets: Sequence[BudgetEntry],
    tz: ZoneInfo,
    now: datetime,
    where: Callable[[Loc], str],
) -> Iterator[tuple[Loc, str]]:
    """Problems that span entries, each with its place. ``where`` names another place for a
    message (``budgets[0].scope on line 3``); ``now`` is the load time."""
    yield from group_problems(groups, where)
    model = groups_of(groups)
    first: dict[str, int] = {}
    for index, entry in enumerate(budgets):
        if entry.scope in first:
            earlier = where(("budgets", first[entry.scope], "scope"))
            yield (
                ("budgets", index, "scope"),
                f"duplicate budget scope {entry.scope!r}: {earlier} already has it; give each "
                "scope one budget (the most specific scope governs an agent)",
            )
        else:
            first[entry.scope] = index
        for field, message in contradictions(entry.to_budget(tz), model, now):
            yield ("budgets", index, *field.split(".")), message


def unpriced_warnings(
    budgets: Mapping[str, Budget],
    groups: Groups,
    agents: Iterable[tuple[str, str | None]],
    priced: Callable[[str], bool],
) -> list[str]:
    """One line per budget in dollars that governs roster agents (name, configured model)
    whose model has no price, or whose ladder steps onto one: those requests are refused
    (:mod:`fleet.budgets.pacing.policy`) until the model is priced or ``price_default`` is set."""
    fix = "add them to `prices`, or set `price_default`"
    found: dict[str, list[str]] = {}
    for agent, model in agents:
        if model is None or priced(model):
            continue
        key = next((str(s) for s in groups.chain(agent) if str(s) in budgets), None)
        if key is not None and budgets[key].limit_usd is not None:
            found.setdefault(key, []).append(f"{agent} ({model})")
    lines = [
        f"budget {key} is in dollars, but these agents' models have no price, so their "
        f"requests will be refused: {', '.join(names)}; {fix}"
        for key, names in found.items()
    ]
    for key, budget in budgets.items():
        rungs = {m for models in budget.ladder.values() for m in models if not priced(m)}
        if budget.limit_usd is not None and rungs:
            lines.append(
                f"budget {key} is in dollars, but its ladder steps down to models with no "
                f"price, so downgraded requests will be refused: {', '.join(sorted(rungs))}; " + fix
            )
    return lines
