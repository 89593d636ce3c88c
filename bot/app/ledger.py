"""The app's ledger phase: the ledger, opened and migrated; the notifier, which finds
threads in it; and the agents' asks (:class:`~fleet.approvals.service.Approvals`) kept
there."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.app import assembly as wiring
from bot.app.stops import Stop, Stops
from bot.chat.notifier import Notifier
from bot.config import Config
from connectors.base import Connector
from fleet.approvals.service import Approvals
from fleet.clock import Clock
from fleet.ledger import Ledger


@dataclass(frozen=True, slots=True)
class Ledgered:
    """What the ledger phase made."""

    ledger: Ledger
    notifier: Notifier
    approvals: Approvals


async def open_ledger(
    cfg: Config,
    *,
    environ: Mapping[str, str],
    clock: Clock,
    connectors: Callable[[], Sequence[Connector]],
    stops: Stops,
) -> Ledgered:
    """``connectors``: the running ones, which the notifier posts through. News at boot
    is held until they run (the notifier's :meth:`~bot.chat.notifier.Notifier.release`)."""
    ledger = await Ledger.connect(wiring.ledger_location(cfg, environ), clock)
    stops.add(Stop.LEDGER, ledger.close)
    notifier = Notifier(ledger.chat, connectors)
    stops.add(Stop.ORDERING, notifier.ordering.drain)
    approvals = Approvals(ledger, clock)
    notifier.hold()
    return Ledgered(ledger, notifier, approvals)
