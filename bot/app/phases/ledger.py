"""The app's ledger phase: the ledger, opened and migrated; the notifier, which finds
threads in it; and the agents' asks (:class:`~fleet.approvals.service.Approvals`) kept
there."""

from __future__ import annotations

from dataclasses import dataclass

from bot.app import assembly as wiring
from bot.app.grounds import Grounds
from bot.app.stops import Stop
from bot.chat.notifier import Notifier
from fleet.approvals.service import Approvals
from fleet.ledger import Ledger


@dataclass(frozen=True, slots=True)
class Ledgered:
    """What the ledger phase made."""

    ledger: Ledger
    notifier: Notifier
    approvals: Approvals


async def open_ledger(at: Grounds) -> Ledgered:
    """The notifier posts through the running connectors. News at boot is held until they
    run (the notifier's :meth:`~bot.chat.notifier.Notifier.release`)."""
    ledger = await Ledger.connect(wiring.ledger_location(at.cfg, at.environ), at.clock)
    at.stops.add(Stop.LEDGER, ledger.close)
    notifier = Notifier(ledger.chat, lambda: at.serving.connectors)
    at.stops.add(Stop.ORDERING, notifier.ordering.drain)
    approvals = Approvals(ledger.approvals, at.clock)
    notifier.hold()
    return Ledgered(ledger, notifier, approvals)
