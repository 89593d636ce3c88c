"""The dashboard's views over a real ledger and a real fleet of no budgets and no caps, as
the page tests read them: :func:`views_over`, each test giving what differs — the
fleet's backends, the redactor, the chat connector a link is made by, the accounts, the
repositories and whether forges are set up."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.dashboard.pages.places import Places
from bot.dashboard.pages.views import PageSettings, Views
from connectors.base import Connector
from connectors.health import HealthReport
from fleet.hosts.service import Hosts
from fleet.ledger import Ledger
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.fleet import FleetSettings
from fleet.timing.clock import Clock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores, page_stores


def views_over(
    ledger: Ledger,
    clock: Clock,
    tmp_path: Path,
    *,
    redact: Callable[[str], str],
    backends: Mapping[str, Any] | None = None,
    connector_named: Callable[[str], Connector | None] = lambda name: None,
    links: Callable[[], Sequence[HealthReport]] = tuple,
    **more: Any,
) -> Views:
    """The views of a fleet on ``ledger`` (its state in ``tmp_path``, its ``backends``:
    none unless given), on this host alone, pages in UTC redacted by ``redact``; ``more``:
    the views' other fields (``accounts``, ``repos``, ``forges``); ``links``: the running
    connectors' link health."""
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=clock,
        kit=LaunchKit(
            runtimes=default_registry(),
            backends=dict(backends or {}),
            settings=FleetSettings(state_dir=tmp_path),
            environ={},
        ),
    )
    return Views(
        stores=page_stores(ledger),
        fleet=fleet,
        budgets=None,
        places=Places(more.pop("accounts", None), Hosts((), env={}, clock=clock)),
        clock=clock,
        pages=PageSettings(
            timezone=ZoneInfo("UTC"),
            connector_named=connector_named,
            orchestrator=lambda: "here",
            redact=redact,
            links=links,
            forges=more.pop("forges", False),
        ),
        **more,
    )
