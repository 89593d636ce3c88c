"""The config file's ``pacing`` section: when the pacing tick runs and when the report is
posted. Times belong to the scheduler; what a tick decides is :mod:`fleet.budgets`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from scheduler.cron import CronError, cron_trigger


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """The config's ``pacing`` section: how often the law is applied, and when the daily
    report is posted (a crontab line in the configured timezone)."""

    tick_seconds: float = 60.0
    report_cron: str = "0 9 * * *"


def _check_cron(value: str) -> str:
    try:
        cron_trigger(value, UTC)
    except CronError as exc:
        raise PydanticCustomError(
            "cron",
            f"{value!r} is not a crontab line ({exc}): write five fields, minute hour "
            'day-of-month month day-of-week, e.g. "0 9 * * *" for 09:00 every day',
        ) from None
    return value


CronLine = Annotated[str, AfterValidator(_check_cron)]


class PacingSection(BaseModel):
    """How pacing runs: the tick that applies the law, and the daily report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tick_seconds: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        strict=True,
        description=(
            "How often the pacing law is applied: spend re-read, steps changed, changes "
            "posted (5 to 3600 seconds)."
        ),
    )
    report_cron: CronLine = Field(
        default="0 9 * * *",
        description=(
            "When the pacing report is posted, as a crontab line in `timezone` "
            '(minute hour day month weekday; default "0 9 * * *": 09:00 daily).'
        ),
    )

    def settings(self) -> PacingSettings:
        return PacingSettings(tick_seconds=self.tick_seconds, report_cron=self.report_cron)
