"""What every start phase of the app works with, made with the app before it starts: the
config, the clock, the environment, the parts to stop so far, the serving of inbound
messages, the sandboxes, the hosts, the redactor, the agent runtimes and the backends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.app.serving import Serving
from bot.app.stops import Stops
from bot.config import Config
from fleet.backends.base import Backend
from fleet.hosts.service import Hosts
from fleet.redaction.redactor import Redactor
from fleet.runtimes import RuntimeRegistry
from fleet.sandbox.service import Sandboxes
from fleet.timing.clock import Clock


@dataclass(frozen=True, slots=True)
class Grounds:
    """The app's own parts, which each phase takes along with what earlier phases made."""

    cfg: Config
    clock: Clock
    environ: Mapping[str, str]
    stops: Stops
    serving: Serving
    sandboxes: Sandboxes
    hosts: Hosts
    redactor: Redactor
    runtimes: RuntimeRegistry
    backends: Mapping[str, Backend]

    @property
    def reports_dir(self) -> Path:
        """Where pacing charts are written."""
        return self.cfg.state_dir / "reports"
