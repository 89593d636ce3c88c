"""The ``restart:`` settings of an agent entry and of ``defaults.restart``.

:class:`RestartSettings` is the schema (a mode alone, or a mapping); :meth:`RestartSettings.over`
turns it, with the fallback settings, into the :class:`~fleet.model.RestartPolicy` the
watchdog follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from fleet.model import RestartMode, RestartPolicy
from fleet.schema import Seconds, unknown_value_message

RestartModeName = Literal["never", "on-failure", "always"]
"""How ``restart`` modes are written in the file: the values of :class:`RestartMode`."""

RESTART_MODES: tuple[str, ...] = get_args(RestartModeName)

_DEFAULT_POLICY = RestartPolicy()


def restart_shorthand(value: object) -> object:
    """``restart: always`` is short for ``restart: {mode: always}``."""
    if isinstance(value, str):
        if value not in RESTART_MODES:
            message = unknown_value_message("restart mode", value, RESTART_MODES)
            raise PydanticCustomError("restart_mode", message)
        return {"mode": value}
    if value is None or isinstance(value, Mapping | RestartSettings):
        return value
    raise PydanticCustomError(
        "restart_type",
        f"expected one of {', '.join(RESTART_MODES)}, or a mapping with mode, max_restarts, "
        f"backoff_initial and backoff_max; found {_kind_of(value)}",
    )


def _kind_of(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


class RestartSettings(BaseModel):
    """When, and how soon, the watchdog relaunches an agent that ended or stalled.

    Write a mode alone (`restart: on-failure`) or a mapping. Keys left out take their value
    from `defaults.restart` (there: the values shown). The n-th restart in a row waits
    `min(backoff_initial * 2**(n-1), backoff_max)` seconds; after `max_restarts` restarts
    in a row the agent is left down and reported. A run that stays healthy for
    `backoff_max` seconds starts the count again.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: RestartModeName = Field(
        default="never",
        description=(
            "`never`; `on-failure` (after a non-zero exit or a stall); `always` (after any "
            "end an operator did not ask for). An agent an operator stopped is never restarted."
        ),
    )
    max_restarts: int = Field(
        default=_DEFAULT_POLICY.max_restarts,
        ge=0,
        le=100,
        strict=True,
        description="Restarts in a row before giving up (0 to 100).",
    )
    backoff_initial: Seconds = Field(
        default=_DEFAULT_POLICY.backoff_initial,
        description="Seconds before the first restart (more than 0); doubled for each next one.",
    )
    backoff_max: Seconds = Field(
        default=_DEFAULT_POLICY.backoff_max,
        description=(
            "The longest wait between restarts, in seconds (at least `backoff_initial`); also "
            "how long a run must stay healthy to reset the count."
        ),
    )

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> RestartSettings:
        # Checked only when both are written in this mapping: with one inherited from
        # defaults.restart the pair may differ, and then every restart waits backoff_max
        # (the formula's min()), which is well defined.
        both = {"backoff_initial", "backoff_max"} <= self.model_fields_set
        if both and self.backoff_max < self.backoff_initial:
            raise PydanticCustomError(
                "backoff_order",
                f"backoff_max ({self.backoff_max:g}) must be at least backoff_initial "
                f"({self.backoff_initial:g})",
            )
        return self

    def over(self, fallback: RestartSettings) -> RestartPolicy:
        """The policy: the keys written here, the others from ``fallback``."""
        values = fallback.model_dump()
        values.update(self.model_dump(include=set(self.model_fields_set)))
        return RestartPolicy(
            mode=RestartMode(values["mode"]),
            max_restarts=values["max_restarts"],
            backoff_initial=values["backoff_initial"],
            backoff_max=values["backoff_max"],
        )


RestartField = Annotated[RestartSettings, BeforeValidator(restart_shorthand)]
"""A ``restart:`` value: a mode alone, or a :class:`RestartSettings` mapping."""
