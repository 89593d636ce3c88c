"""Stand-in for the connector interface's Choice and RunState until they land in
connectors/base.py (deleted then)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal


class RunState(enum.StrEnum):
    WORKING = "working"
    WAITING = "waiting"
    IDLE = "idle"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Choice:
    label: str
    answer: str
    as_reply: bool = False
    style: Literal["primary", "danger"] | None = None
